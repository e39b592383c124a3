package index

import (
	"bytes"
	"context"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// The by-ID view in Badger: 'I' fileID → encodeByID (keys.go). File IDs
// sort by their directories, so a leaf directory is one prefix scan and
// the sub-directories of a level are found by seeking past each one.

func byIDKey(fileID string) []byte { return append([]byte{tableByID}, fileID...) }

var _ byIDKV = badgerKV{}

// byIDs looks a few IDs up one by one, and walks one iterator over many in
// key order (as attrs does): an adopt's batch comes a directory at a time,
// so its keys sit together and a forward walk reads each block once.
func (s badgerKV) byIDs(fileIDs []string) ([][]byte, error) {
	vs := make([][]byte, len(fileIDs))
	if len(fileIDs) >= attrsScanMin {
		return vs, s.byIDsInOrder(fileIDs, vs)
	}
	for i, id := range fileIDs {
		v, err := s.get(byIDKey(id))
		if err != nil {
			return nil, err
		}
		vs[i] = v
	}
	return vs, nil
}

func (s badgerKV) byIDsInOrder(fileIDs []string, vs [][]byte) error {
	order := make([]int, len(fileIDs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(fileIDs[a], fileIDs[b]) })
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte{tableByID}
	it := s.t.NewIterator(opts)
	defer it.Close()
	key := []byte{tableByID}
	for _, i := range order {
		key = append(key[:1], fileIDs[i]...)
		for steps := 0; it.Valid() && bytes.Compare(it.Item().Key(), key) < 0 && steps < 8; steps++ {
			it.Next()
		}
		if !it.Valid() || bytes.Compare(it.Item().Key(), key) < 0 {
			it.Seek(key)
		}
		if !it.Valid() || !bytes.Equal(it.Item().Key(), key) {
			continue // missing: nil
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if v == nil {
			v = []byte{}
		}
		vs[i] = v
	}
	return nil
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
