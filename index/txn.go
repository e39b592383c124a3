package index

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// txn is one Badger transaction seen as inodes and entries. Inodes read
// through it are kept, so that one inode in two roles (the old and the new
// parent of a rename being one directory) is one *node, and flush writes
// each changed inode once, with its orphan mark.
type txn struct {
	t       *badger.Txn
	now     time.Time
	session string
	nodes   map[Ino]*node
	changed []*node
}

type node struct {
	Attr
	parent    Ino   // directories: the directory holding its entry
	origNlink int64 // Nlink as read, -1 for an inode made in this txn
	dirty     bool
	removed   bool
}

func newTxn(t *badger.Txn, session string) *txn {
	return &txn{t: t, now: time.Now(), session: session, nodes: make(map[Ino]*node)}
}

// readAttr reads one inode, bypassing the txn's cache.
func (tx *txn) readAttr(ino Ino) (Attr, Ino, error) {
	item, err := tx.t.Get(attrKey(ino))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Attr{}, 0, ErrNotFound
	}
	if err != nil {
		return Attr{}, 0, err
	}
	var a Attr
	var parent Ino
	err = item.Value(func(v []byte) error {
		a, parent, err = decodeAttr(ino, v)
		return err
	})
	return a, parent, err
}

func (tx *txn) node(ino Ino) (*node, error) {
	if n, ok := tx.nodes[ino]; ok {
		if n.removed {
			return nil, ErrNotFound
		}
		return n, nil
	}
	a, parent, err := tx.readAttr(ino)
	if err != nil {
		return nil, err
	}
	n := &node{Attr: a, parent: parent, origNlink: int64(a.Nlink)}
	tx.nodes[ino] = n
	return n, nil
}

// dir reads a directory: ErrNotFound if missing, ErrNotDir if not one.
func (tx *txn) dir(ino Ino) (*node, error) {
	n, err := tx.node(ino)
	if err != nil {
		return nil, err
	}
	if n.Kind != KindDir {
		return nil, ErrNotDir
	}
	return n, nil
}

// named reads the inode an entry names; its absence is damage, not a
// missing name.
func (tx *txn) named(parent Ino, name string, ino Ino) (*node, error) {
	n, err := tx.node(ino)
	if errors.Is(err, ErrNotFound) {
		return nil, corruptf("entry %q of %d names missing inode %d", name, parent, ino)
	}
	return n, err
}

// add makes a new inode, written by flush.
func (tx *txn) add(a Attr) *node {
	n := &node{Attr: a, origNlink: -1}
	tx.nodes[a.Ino] = n
	tx.touch(n)
	return n
}

func (tx *txn) touch(n *node) {
	if !n.dirty {
		n.dirty = true
		tx.changed = append(tx.changed, n)
	}
}

func (tx *txn) remove(n *node) {
	n.removed = true
	tx.touch(n)
}

// flush writes every changed inode and keeps the orphan set in step with
// Nlink crossing zero.
func (tx *txn) flush() error {
	for _, n := range tx.changed {
		if n.removed {
			if err := tx.t.Delete(attrKey(n.Ino)); err != nil {
				return err
			}
			if n.origNlink == 0 {
				if err := tx.t.Delete(orphanKey(n.Ino)); err != nil {
					return err
				}
			}
			continue
		}
		if err := tx.t.Set(attrKey(n.Ino), encodeAttr(n.Attr, n.parent)); err != nil {
			return err
		}
		if n.origNlink < 0 || (n.origNlink == 0) == (n.Nlink == 0) {
			continue
		}
		var err error
		if n.Nlink == 0 {
			err = tx.t.Set(orphanKey(n.Ino), nil)
		} else {
			err = tx.t.Delete(orphanKey(n.Ino))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dentry reads one entry; ok is false if there is none.
func (tx *txn) dentry(parent Ino, name string) (ino Ino, kind Kind, ok bool, err error) {
	item, err := tx.t.Get(dentryKey(parent, name))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	err = item.Value(func(v []byte) error {
		ino, kind, err = decodeDentry(v)
		return err
	})
	return ino, kind, err == nil, err
}

func (tx *txn) setDentry(parent Ino, name string, ino Ino, kind Kind) error {
	return tx.t.Set(dentryKey(parent, name), encodeDentry(ino, kind))
}

// removeEmptyDir removes directory n, or returns ErrNotEmpty. Every entry
// added to a directory also writes the directory's attributes, which this
// transaction has read, so a racing addition makes one of the two conflict.
func (tx *txn) removeEmptyDir(n *node) error {
	prefix := dentryPrefix(n.Ino)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := tx.t.NewIterator(opts)
	it.Seek(prefix)
	empty := !it.ValidForPrefix(prefix)
	it.Close()
	if !empty {
		return ErrNotEmpty
	}
	tx.remove(n)
	return nil
}

// notInside returns ErrInvalid if target is dir or lies below it, walking up
// from target through the parents of directories. The walk reads every
// ancestor, so a concurrent rename that moves one of them conflicts.
func (tx *txn) notInside(dir, target Ino) error {
	x := target
	for range maxDepth {
		if x == dir {
			return fmt.Errorf("%w: directory %d would move inside itself", ErrInvalid, dir)
		}
		if x == RootIno {
			return nil
		}
		n, err := tx.node(x)
		if errors.Is(err, ErrNotFound) {
			return corruptf("directory %d on the path up from %d is missing", x, target)
		}
		if err != nil {
			return err
		}
		if n.Kind != KindDir || n.parent == 0 {
			return corruptf("inode %d on the path up from %d has no parent directory", x, target)
		}
		x = n.parent
	}
	return corruptf("no root above %d within %d levels", target, maxDepth)
}

func (tx *txn) setPending(p Pending) error {
	if p.Since.IsZero() {
		p.Since = tx.now
	}
	return tx.t.Set(pendingKey(p.FileID), encodePending(p))
}

// scan calls fn for every key under prefix in key order, with its value if
// values is set. k and v are valid only during the call.
func (tx *txn) scan(ctx context.Context, prefix []byte, values bool, fn func(k, v []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = values
	it := tx.t.NewIterator(opts)
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

func (tx *txn) scanDentries(ctx context.Context, dir Ino, fn func(name string, ino Ino, kind Kind) error) error {
	return tx.scan(ctx, dentryPrefix(dir), true, func(k, v []byte) error {
		name, ok := nameFromDentryKey(k)
		if !ok {
			return corruptf("dentry key %x", k)
		}
		ino, kind, err := decodeDentry(v)
		if err != nil {
			return fmt.Errorf("entry %q of %d: %w", name, dir, err)
		}
		return fn(name, ino, kind)
	})
}

func (tx *txn) scanInodes(ctx context.Context, fn func(a Attr, parent Ino) error) error {
	return tx.scan(ctx, []byte{tableAttr}, true, func(k, v []byte) error {
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

func (tx *txn) scanPending(ctx context.Context, fn func(Pending) error) error {
	return tx.scan(ctx, []byte{tablePending}, true, func(k, v []byte) error {
		p, err := decodePending(string(k[1:]), v)
		if err != nil {
			return err
		}
		return fn(p)
	})
}
