package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// badgerKV is one Badger transaction as the kv the shared operations use,
// with the key layout of keys.go.
type badgerKV struct{ t *badger.Txn }

var _ kv = badgerKV{}

// get returns a copy of key's value, nil if there is none.
func (s badgerKV) get(key []byte) ([]byte, error) {
	item, err := s.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if v == nil && err == nil {
		v = []byte{} // present but empty
	}
	return v, err
}

func (s badgerKV) attr(ino Ino) ([]byte, error) { return s.get(attrKey(ino)) }

// attrsScanMin is the batch size from which attrs walks one iterator over
// the inode keys in order instead of looking each one up: a directory's
// inodes were mostly allocated together, so their keys sit in the same
// blocks, and a forward walk reads each block once where point lookups
// search every level for every key.
const attrsScanMin = 64

func (s badgerKV) attrs(inos []Ino) ([][]byte, error) {
	keys := make([][]byte, len(inos))
	for i, ino := range inos {
		keys[i] = attrKey(ino)
	}
	return s.getMany(keys)
}

// getMany reads many keys at once; a missing one is nil, as get says. A few
// are read one by one; many with one iterator walked in key order, since
// they mostly sit together (a directory's inodes, an adopt batch's IDs)
// and a forward walk reads each block once.
func (s badgerKV) getMany(keys [][]byte) ([][]byte, error) {
	vs := make([][]byte, len(keys))
	if len(keys) < attrsScanMin {
		for i, k := range keys {
			v, err := s.get(k)
			if err != nil {
				return nil, err
			}
			vs[i] = v
		}
		return vs, nil
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = keys[order[0]][:1] // the table
	it := s.t.NewIterator(opts)
	defer it.Close()
	for _, i := range order {
		key := keys[i]
		// Step forward while the wanted key is near; seek when it is not.
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
			return nil, err
		}
		if v == nil {
			v = []byte{}
		}
		vs[i] = v
	}
	return vs, nil
}

func (s badgerKV) setAttr(ino Ino, v []byte) error { return s.t.Set(attrKey(ino), v) }
func (s badgerKV) deleteAttr(ino Ino) error        { return s.t.Delete(attrKey(ino)) }

func (s badgerKV) dentry(dir Ino, name string) ([]byte, error) {
	return s.get(dentryKey(dir, name))
}

func (s badgerKV) setDentry(dir Ino, name string, v []byte) error {
	return s.t.Set(dentryKey(dir, name), v)
}

func (s badgerKV) deleteDentry(dir Ino, name string) error {
	return s.t.Delete(dentryKey(dir, name))
}

func (s badgerKV) dirEmpty(dir Ino) (bool, error) {
	prefix := dentryPrefix(dir)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := s.t.NewIterator(opts)
	defer it.Close()
	it.Seek(prefix)
	return !it.ValidForPrefix(prefix), nil
}

func (s badgerKV) dentries(ctx context.Context, dir Ino, fn func(name string, v []byte) error) error {
	return s.scan(ctx, dentryPrefix(dir), true, func(k, v []byte) error {
		name, ok := nameFromDentryKey(k)
		if !ok {
			return corruptf("dentry key %x", k)
		}
		return fn(name, v)
	})
}

func (s badgerKV) setOrphan(ino Ino, orphan bool) error {
	if orphan {
		return s.t.Set(orphanKey(ino), nil)
	}
	return s.t.Delete(orphanKey(ino))
}

func (s badgerKV) pending(fileID string) ([]byte, error) { return s.get(pendingKey(fileID)) }

func (s badgerKV) setPending(fileID string, v []byte) error {
	return s.t.Set(pendingKey(fileID), v)
}

func (s badgerKV) deletePending(fileID string) error { return s.t.Delete(pendingKey(fileID)) }

func (s badgerKV) holds(ino Ino) ([]byte, error) { return s.get(holdsKey(ino)) }

func (s badgerKV) setHolds(ino Ino, v []byte) error {
	if v == nil {
		return s.t.Delete(holdsKey(ino))
	}
	return s.t.Set(holdsKey(ino), v)
}

func (s badgerKV) xattrs(ino Ino) ([]byte, error) { return s.get(xattrsKey(ino)) }

func (s badgerKV) setXattrs(ino Ino, v []byte) error {
	if v == nil {
		return s.t.Delete(xattrsKey(ino))
	}
	return s.t.Set(xattrsKey(ino), v)
}

// sessionAlive compares the expiry in the value with the clock, to the
// nanosecond; Badger's own TTL counts whole seconds and only collects.
func (s badgerKV) sessionAlive(id string) (bool, error) {
	v, err := s.get(sessionKey(id))
	if err != nil || v == nil {
		return false, err
	}
	if len(v) != 8 {
		return false, corruptf("session %q: value of %d bytes", id, len(v))
	}
	return time.Now().UnixNano() < int64(binary.BigEndian.Uint64(v)), nil
}

func (s badgerKV) setSession(id string, ttl time.Duration) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(time.Now().Add(ttl).UnixNano()))
	return s.t.SetEntry(badger.NewEntry(sessionKey(id), v).WithTTL(ttl + 2*time.Second))
}

func (s badgerKV) deleteSession(id string) error { return s.t.Delete(sessionKey(id)) }

// scan calls fn for every key under prefix in key order, with its value if
// values is set. k and v are valid only during the call.
func (s badgerKV) scan(ctx context.Context, prefix []byte, values bool, fn func(k, v []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	// Values here are a few bytes, kept in the tree beside their keys:
	// prefetching them only adds a goroutine hand-off per batch of items.
	opts.PrefetchValues = false
	it := s.t.NewIterator(opts)
	defer it.Close()
	n := 0
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		var err error
		if values {
			err = item.Value(func(v []byte) error { return fn(item.Key(), v) })
		} else {
			err = fn(item.Key(), nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s badgerKV) scanInodes(ctx context.Context, fn func(a Attr, parent Ino) error) error {
	return s.scan(ctx, []byte{tableAttr}, true, func(k, v []byte) error {
		ino, ok := inoFromKey(k)
		if !ok {
			return corruptf("attr key %x", k)
		}
		a, parent, err := decodeAttr(ino, v)
		if err != nil {
			return err
		}
		return fn(a, parent)
	})
}

func (s badgerKV) scanPending(ctx context.Context, fn func(Pending) error) error {
	return s.scan(ctx, []byte{tablePending}, true, func(k, v []byte) error {
		p, err := decodePending(string(k[1:]), v)
		if err != nil {
			return err
		}
		return fn(p)
	})
}
