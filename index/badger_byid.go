package index

import (
	"bytes"
	"context"

	"github.com/dgraph-io/badger/v4"
)

// The by-ID view in Badger: 'I' fileID → encodeByID (keys.go). File IDs
// sort by their directories, so a leaf directory is one prefix scan and
// the sub-directories of a level are found by seeking past each one.

func byIDKey(fileID string) []byte { return append([]byte{tableByID}, fileID...) }

var _ byIDKV = badgerKV{}

func (s badgerKV) byIDs(fileIDs []string) ([][]byte, error) {
	keys := make([][]byte, len(fileIDs))
	for i, id := range fileIDs {
		keys[i] = byIDKey(id)
	}
	return s.getMany(keys)
}

func (s badgerKV) setByID(fileID string, v []byte) error { return s.t.Set(byIDKey(fileID), v) }
func (s badgerKV) deleteByID(fileID string) error        { return s.t.Delete(byIDKey(fileID)) }

func (s badgerKV) byIDDir(ctx context.Context, dir string, fn func(fileID string, v []byte) error) error {
	prefix := byIDKey(dir + "/")
	return s.scan(ctx, prefix, true, func(k, v []byte) error {
		if bytes.IndexByte(k[len(prefix):], '/') >= 0 {
			return nil
		}
		return fn(string(k[1:]), v)
	})
}

func (s badgerKV) byIDChildren(ctx context.Context, dir string) ([]string, error) {
	prefix := byIDKey(dir + "/")
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := s.t.NewIterator(opts)
	defer it.Close()
	var names []string
	for it.Seek(prefix); it.ValidForPrefix(prefix); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rest := it.Item().Key()[len(prefix):]
		i := bytes.IndexByte(rest, '/')
		if i <= 0 {
			it.Next() // a file directly in dir: not a sub-directory
			continue
		}
		name := string(rest[:i])
		names = append(names, name)
		// '0' follows '/': the first key past every key of name/.
		it.Seek(append(append(append([]byte(nil), prefix...), name...), '0'))
	}
	return names, nil
}
