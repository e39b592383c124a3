package index

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// txn is one engine transaction (kv) seen as inodes and entries. Inodes read
// through it are kept, so that one inode in two roles (the old and the new
// parent of a rename being one directory) is one *node, and flush writes
// each changed inode once, with its orphan mark.
type txn struct {
	kv      kv
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

func newTxn(store kv, session string) *txn {
	return &txn{kv: store, now: time.Now(), session: session, nodes: make(map[Ino]*node)}
}

// readAttr reads one inode, bypassing the txn's cache.
func (tx *txn) readAttr(ino Ino) (Attr, Ino, error) {
	v, err := tx.kv.attr(ino)
	if err != nil {
		return Attr{}, 0, err
	}
	if v == nil {
		return Attr{}, 0, ErrNotFound
	}
	return decodeAttr(ino, v)
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
			if err := tx.kv.deleteAttr(n.Ino); err != nil {
				return err
			}
			if err := tx.kv.setXattrs(n.Ino, nil); err != nil {
				return err
			}
			if n.origNlink == 0 {
				if err := tx.kv.setOrphan(n.Ino, false); err != nil {
					return err
				}
			}
			continue
		}
		if err := tx.kv.setAttr(n.Ino, encodeAttr(n.Attr, n.parent)); err != nil {
			return err
		}
		if n.origNlink < 0 || (n.origNlink == 0) == (n.Nlink == 0) {
			continue
		}
		if err := tx.kv.setOrphan(n.Ino, n.Nlink == 0); err != nil {
			return err
		}
	}
	return nil
}

// dentry reads one entry; ok is false if there is none.
func (tx *txn) dentry(parent Ino, name string) (ino Ino, kind Kind, ok bool, err error) {
	v, err := tx.kv.dentry(parent, name)
	if err != nil || v == nil {
		return 0, 0, false, err
	}
	ino, kind, err = decodeDentry(v)
	return ino, kind, err == nil, err
}

func (tx *txn) setDentry(parent Ino, name string, ino Ino, kind Kind) error {
	return tx.kv.setDentry(parent, name, encodeDentry(ino, kind))
}

// removeEmptyDir removes directory n, or returns ErrNotEmpty. Every entry
// added to a directory also writes the directory's attributes, which this
// transaction has read, so a racing addition makes one of the two conflict.
func (tx *txn) removeEmptyDir(n *node) error {
	empty, err := tx.kv.dirEmpty(n.Ino)
	if err != nil {
		return err
	}
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
	if p.Reason == PendingDelete {
		// A file due for deletion leaves the by-ID view with it.
		if err := tx.dropByID(p.FileID); err != nil {
			return err
		}
	}
	return tx.kv.setPending(p.FileID, encodePending(p))
}

func (tx *txn) scanDentries(ctx context.Context, dir Ino, fn func(name string, ino Ino, kind Kind) error) error {
	return tx.kv.dentries(ctx, dir, func(name string, v []byte) error {
		ino, kind, err := decodeDentry(v)
		if err != nil {
			return fmt.Errorf("entry %q of %d: %w", name, dir, err)
		}
		return fn(name, ino, kind)
	})
}
