package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// engine holds the namespace operations every engine shares: the rules of
// the Index contract written once over txn (txn.go), which reads and writes
// through the engine's kv. An engine embeds it and supplies the backend:
// how a transaction runs and retries, and where inode numbers come from.
type engine struct {
	be  backend
	log *slog.Logger
}

// backend is what an engine supplies to the shared operations.
type backend interface {
	// update runs fn in one read-write transaction and commits it, running
	// it again from the start when the commit conflicts with a concurrent
	// one, and for no other error. It fails with ErrClosed after Close and
	// ErrReadOnly on a read-only store.
	update(ctx context.Context, fn func(tx *txn) error) error
	// view runs fn in a transaction that only reads. It may run fn more
	// than once (Redis reads again when what it read changed meanwhile),
	// so fn starts over each time.
	view(ctx context.Context, fn func(tx *txn) error) error
	// allocIno hands out an inode number never handed out before.
	allocIno(ctx context.Context) (Ino, error)
}

func (e *engine) Lookup(ctx context.Context, parent Ino, name string) (Attr, error) {
	if err := CheckName(name); err != nil {
		return Attr{}, err
	}
	var a Attr
	err := e.be.view(ctx, func(tx *txn) error {
		ino, _, ok, err := tx.dentry(parent, name)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := tx.dir(parent); err != nil {
				return err
			}
			return ErrNotFound
		}
		n, err := tx.named(parent, name, ino)
		if err != nil {
			return err
		}
		a = n.Attr
		return nil
	})
	return a, err
}

func (e *engine) GetAttr(ctx context.Context, ino Ino) (Attr, error) {
	var a Attr
	err := e.be.view(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err == nil {
			a = n.Attr
		}
		return err
	})
	return a, err
}

// ReadDir lists parent in one transaction: one scan of its entries, then
// the attributes of all of them in one read. An entry whose inode is
// missing is left out and logged; Check reports it.
func (e *engine) ReadDir(ctx context.Context, parent Ino) ([]Entry, error) {
	var entries []Entry
	err := e.be.view(ctx, func(tx *txn) error {
		entries = nil
		return e.listDir(ctx, tx, parent, 0, "", func(b []Entry) error {
			entries = append(entries, b...)
			return nil
		})
	})
	return entries, err
}

// ReadDirBatches lists parent as ReadDir does, but hands the entries to fn
// as they are read, batch names at a time (all at once for batch <= 0):
// the attributes of each batch are one read. Should the engine read again
// (view runs its function once more), the listing goes on after the last
// name fn was given, so that no entry is handed over twice.
func (e *engine) ReadDirBatches(ctx context.Context, parent Ino, batch int, fn func([]Entry) error) error {
	var last string
	return e.be.view(ctx, func(tx *txn) error {
		return e.listDir(ctx, tx, parent, batch, last, func(b []Entry) error {
			if len(b) == 0 {
				return nil
			}
			if err := fn(b); err != nil {
				return err
			}
			last = b[len(b)-1].Name
			return nil
		})
	})
}

// listDir scans parent's entries named after after ("": all of them) in
// tx, and hands them to fn with their attributes, batch at a time (all at
// once for batch <= 0).
func (e *engine) listDir(ctx context.Context, tx *txn, parent Ino, batch int, after string, fn func([]Entry) error) error {
	if _, err := tx.dir(parent); err != nil {
		return err
	}
	var names []string
	var inos []Ino
	flush := func() error {
		if len(names) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		vs, err := tx.kv.attrs(inos)
		if err != nil {
			return err
		}
		entries := make([]Entry, 0, len(names))
		for i, v := range vs {
			if v == nil {
				e.log.Warn("index: entry names a missing inode", "parent", parent, "name", names[i], "ino", inos[i])
				continue
			}
			a, _, err := decodeAttr(inos[i], v)
			if err != nil {
				return err
			}
			entries = append(entries, Entry{Name: names[i], Attr: a})
		}
		names, inos = names[:0], inos[:0]
		return fn(entries)
	}
	err := tx.scanDentries(ctx, parent, func(name string, ino Ino, _ Kind) error {
		if after != "" && name <= after {
			return nil
		}
		names = append(names, name)
		inos = append(inos, ino)
		if batch > 0 && len(names) >= batch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

func (e *engine) Create(ctx context.Context, parent Ino, name string, attr Attr) (Attr, error) {
	return e.CreateInheriting(ctx, parent, name, attr, nil)
}

func (e *engine) CreateInheriting(ctx context.Context, parent Ino, name string, attr Attr, inherit Inherit) (Attr, error) {
	if err := CheckName(name); err != nil {
		return Attr{}, err
	}
	if !attr.Kind.valid() {
		return Attr{}, fmt.Errorf("%w: kind %d", ErrInvalid, attr.Kind)
	}
	if attr.Kind == KindSymlink && attr.Target == "" {
		return Attr{}, fmt.Errorf("%w: symlink without a target", ErrInvalid)
	}
	for {
		created, err := e.create(ctx, parent, name, attr, inherit)
		if !errors.Is(err, errInoTaken) {
			return created, err
		}
	}
}

// errInoTaken: the number allocIno handed out names an inode already. A
// Redis master that died before its replica had the counter's last
// increments makes the promoted replica hand those numbers out again, and
// a create sent before the failover may have committed one of them.
var errInoTaken = errors.New("index: inode number in use")

func (e *engine) create(ctx context.Context, parent Ino, name string, attr Attr, inherit Inherit) (Attr, error) {
	ino, err := e.be.allocIno(ctx)
	if err != nil {
		return Attr{}, err
	}
	var created Attr
	err = e.be.update(ctx, func(tx *txn) error {
		p, err := tx.dir(parent)
		if err != nil {
			return err
		}
		if _, _, ok, err := tx.dentry(parent, name); err != nil {
			return err
		} else if ok {
			return ErrExists
		}
		if v, err := tx.kv.attr(ino); err != nil {
			return err
		} else if v != nil {
			return errInoTaken
		}
		a := attr
		var xs []Xattr
		if inherit != nil {
			pxs, err := tx.xattrs(parent)
			if err != nil {
				return err
			}
			if xs, err = inherit(pxs, &a); err != nil {
				return err
			}
			if xs, err = checkedXattrs(ino, xs); err != nil {
				return err
			}
		}
		a.Ino = ino
		a.Mode &= 0o7777
		a.Nlink = 1
		a.Gen = 0
		if a.Kind != KindSymlink {
			a.Target = ""
		}
		if a.Kind != KindFile {
			a.FileID, a.Appender, a.Size = "", false, 0
		}
		if a.Kind != KindCharDev && a.Kind != KindBlockDev {
			a.Rdev = 0
		}
		for _, t := range []*time.Time{&a.Atime, &a.Mtime, &a.Ctime} {
			if t.IsZero() {
				*t = tx.now
			}
		}
		n := tx.add(a)
		if a.Kind == KindDir {
			n.Nlink = 2
			n.parent = parent
			p.Nlink++
		}
		if a.FileID != "" {
			// The new name claims an uploaded file, as SetContent does,
			// or a file of the by-ID view (ln from the tree).
			if err := tx.checkFree(a.FileID); err != nil {
				return err
			}
			if err := tx.kv.deletePending(a.FileID); err != nil {
				return err
			}
			if err := tx.claimByID(n.Attr); err != nil {
				return err
			}
		}
		if err := tx.setDentry(parent, name, ino, a.Kind); err != nil {
			return err
		}
		if xs != nil {
			if err := tx.kv.setXattrs(ino, encodeXattrs(xs)); err != nil {
				return err
			}
		}
		p.Mtime, p.Ctime = tx.now, tx.now
		tx.touch(p)
		created = n.Attr
		return nil
	})
	return created, err
}

// Link refuses a directory with ErrInvalid (link(2) says EPERM, which the
// error set has no match for) and an orphan with ErrNotFound.
func (e *engine) Link(ctx context.Context, ino Ino, newParent Ino, newName string) (Attr, error) {
	if err := CheckName(newName); err != nil {
		return Attr{}, err
	}
	var linked Attr
	err := e.be.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		switch {
		case n.Kind == KindDir:
			return fmt.Errorf("%w: hard link to a directory", ErrInvalid)
		case n.Nlink == 0:
			return fmt.Errorf("%w: inode %d has no names left", ErrNotFound, ino)
		}
		p, err := tx.dir(newParent)
		if err != nil {
			return err
		}
		if _, _, ok, err := tx.dentry(newParent, newName); err != nil {
			return err
		} else if ok {
			return ErrExists
		}
		if err := tx.setDentry(newParent, newName, ino, n.Kind); err != nil {
			return err
		}
		n.Nlink++
		n.Ctime = tx.now
		tx.touch(n)
		p.Mtime, p.Ctime = tx.now, tx.now
		tx.touch(p)
		linked = n.Attr
		return nil
	})
	return linked, err
}

func (e *engine) Unlink(ctx context.Context, parent Ino, name string) (Attr, error) {
	if err := CheckName(name); err != nil {
		return Attr{}, err
	}
	var after Attr
	err := e.be.update(ctx, func(tx *txn) error {
		p, n, err := tx.removal(parent, name, false)
		if err != nil {
			return err
		}
		if err := tx.kv.deleteDentry(parent, name); err != nil {
			return err
		}
		if n.Nlink > 0 {
			n.Nlink--
		}
		n.Ctime = tx.now
		tx.touch(n)
		p.Mtime, p.Ctime = tx.now, tx.now
		tx.touch(p)
		after = n.Attr
		return nil
	})
	return after, err
}

// removal finds what Unlink (dir false) or Rmdir (dir true) removes: the
// parent directory and the inode its entry name names, refusing an entry
// of the other kind as those calls must.
func (tx *txn) removal(parent Ino, name string, dir bool) (p, n *node, err error) {
	if p, err = tx.dir(parent); err != nil {
		return nil, nil, err
	}
	ino, kind, ok, err := tx.dentry(parent, name)
	switch {
	case err != nil:
		return nil, nil, err
	case !ok:
		return nil, nil, ErrNotFound
	case dir && kind != KindDir:
		return nil, nil, ErrNotDir
	case !dir && kind == KindDir:
		return nil, nil, ErrIsDir
	}
	if n, err = tx.named(parent, name, ino); err != nil {
		return nil, nil, err
	}
	return p, n, nil
}

func (e *engine) Rmdir(ctx context.Context, parent Ino, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	return e.be.update(ctx, func(tx *txn) error {
		p, n, err := tx.removal(parent, name, true)
		if err != nil {
			return err
		}
		if err := tx.removeEmptyDir(n); err != nil {
			return err
		}
		if err := tx.kv.deleteDentry(parent, name); err != nil {
			return err
		}
		p.Nlink--
		p.Mtime, p.Ctime = tx.now, tx.now
		tx.touch(p)
		return nil
	})
}

func (e *engine) Rename(ctx context.Context, oldParent Ino, oldName string, newParent Ino, newName string, flags uint32) (*Attr, error) {
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return nil, fmt.Errorf("%w: rename flags %#x", ErrInvalid, flags)
	}
	if err := CheckName(oldName); err != nil {
		return nil, err
	}
	if err := CheckName(newName); err != nil {
		return nil, err
	}
	var replaced *Attr
	err := e.be.update(ctx, func(tx *txn) error {
		replaced = nil
		op, err := tx.dir(oldParent)
		if err != nil {
			return err
		}
		np, err := tx.dir(newParent)
		if err != nil {
			return err
		}
		srcIno, _, ok, err := tx.dentry(oldParent, oldName)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		src, err := tx.named(oldParent, oldName, srcIno)
		if err != nil {
			return err
		}
		dstIno, _, dstExists, err := tx.dentry(newParent, newName)
		if err != nil {
			return err
		}
		if oldParent == newParent && oldName == newName {
			return nil
		}
		moved := oldParent != newParent

		if flags&RenameExchange != 0 {
			if !dstExists {
				return ErrNotFound
			}
			dst, err := tx.named(newParent, newName, dstIno)
			if err != nil {
				return err
			}
			if moved && src.Kind == KindDir {
				if err := tx.notInside(src.Ino, newParent); err != nil {
					return err
				}
			}
			if moved && dst.Kind == KindDir {
				if err := tx.notInside(dst.Ino, oldParent); err != nil {
					return err
				}
			}
			if err := tx.setDentry(newParent, newName, src.Ino, src.Kind); err != nil {
				return err
			}
			if err := tx.setDentry(oldParent, oldName, dst.Ino, dst.Kind); err != nil {
				return err
			}
			if moved && src.Kind == KindDir {
				src.parent = newParent
				op.Nlink--
				np.Nlink++
			}
			if moved && dst.Kind == KindDir {
				dst.parent = oldParent
				np.Nlink--
				op.Nlink++
			}
			src.Ctime, dst.Ctime = tx.now, tx.now
			tx.touch(src)
			tx.touch(dst)
			op.Mtime, op.Ctime, np.Mtime, np.Ctime = tx.now, tx.now, tx.now, tx.now
			tx.touch(op)
			tx.touch(np)
			return nil
		}

		var dst *node
		if dstExists {
			if flags&RenameNoReplace != 0 {
				return ErrExists
			}
			if dstIno == srcIno {
				// Two names of one inode: rename(2) does nothing.
				return nil
			}
			if dst, err = tx.named(newParent, newName, dstIno); err != nil {
				return err
			}
			switch {
			case src.Kind == KindDir && dst.Kind != KindDir:
				return ErrNotDir
			case src.Kind != KindDir && dst.Kind == KindDir:
				return ErrIsDir
			}
		}
		if moved && src.Kind == KindDir {
			if err := tx.notInside(src.Ino, newParent); err != nil {
				return err
			}
		}
		if dst != nil {
			if dst.Kind == KindDir {
				if err := tx.removeEmptyDir(dst); err != nil {
					return err
				}
				np.Nlink--
				gone := dst.Attr
				gone.Nlink = 0
				replaced = &gone
			} else {
				dst.Nlink--
				dst.Ctime = tx.now
				tx.touch(dst)
				after := dst.Attr
				replaced = &after
			}
		}
		if err := tx.kv.deleteDentry(oldParent, oldName); err != nil {
			return err
		}
		if err := tx.setDentry(newParent, newName, src.Ino, src.Kind); err != nil {
			return err
		}
		if moved && src.Kind == KindDir {
			src.parent = newParent
			op.Nlink--
			np.Nlink++
		}
		src.Ctime = tx.now
		tx.touch(src)
		op.Mtime, op.Ctime, np.Mtime, np.Ctime = tx.now, tx.now, tx.now, tx.now
		tx.touch(op)
		tx.touch(np)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// SetAttr sets ctime to now unless in.Ctime says otherwise, as chmod,
// chown and utimes do.
func (e *engine) SetAttr(ctx context.Context, ino Ino, in SetAttrIn) (Attr, error) {
	var a Attr
	err := e.be.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		if in.Mode != nil {
			n.Mode = *in.Mode & 0o7777
		}
		if in.Uid != nil {
			n.Uid = *in.Uid
		}
		if in.Gid != nil {
			n.Gid = *in.Gid
		}
		if in.Atime != nil {
			n.Atime = *in.Atime
		}
		if in.Mtime != nil {
			n.Mtime = *in.Mtime
		}
		n.Ctime = tx.now
		if in.Ctime != nil {
			n.Ctime = *in.Ctime
		}
		tx.touch(n)
		a = n.Attr
		return nil
	})
	return a, err
}

// SetContent removes the journal entry of c.FileID whatever its reason: a
// file a name points at must never be deleted. A zero c.Mtime means now.
func (e *engine) SetContent(ctx context.Context, ino Ino, c Content) (Attr, error) {
	if c.Size < 0 {
		return Attr{}, fmt.Errorf("%w: size %d", ErrInvalid, c.Size)
	}
	var a Attr
	err := e.be.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		switch n.Kind {
		case KindDir:
			return ErrIsDir
		case KindSymlink:
			return fmt.Errorf("%w: content of a symlink", ErrInvalid)
		}
		if n.Kind.Special() {
			return fmt.Errorf("%w: content of a %s", ErrInvalid, n.Kind)
		}
		if c.Claim {
			v, err := tx.kv.pending(c.FileID)
			if err != nil {
				return err
			}
			if v == nil {
				return fmt.Errorf("%w: %s is not in the journal", ErrLost, c.FileID)
			}
			if p, err := decodePending(c.FileID, v); err != nil {
				return err
			} else if p.Reason != PendingUpload {
				return fmt.Errorf("%w: %s is journalled to be deleted", ErrLost, c.FileID)
			}
		}
		if c.FileID != "" {
			if err := tx.kv.deletePending(c.FileID); err != nil {
				return err
			}
		}
		if n.FileID != "" && n.FileID != c.FileID {
			if err := tx.setPending(Pending{FileID: n.FileID, Reason: PendingDelete, Session: tx.session}); err != nil {
				return err
			}
		}
		n.FileID, n.Appender, n.Size = c.FileID, c.Appender, c.Size
		n.Mtime = c.Mtime
		if n.Mtime.IsZero() {
			n.Mtime = tx.now
		}
		n.Ctime = tx.now
		n.Gen++
		tx.touch(n)
		a = n.Attr
		return tx.claimByID(n.Attr)
	})
	return a, err
}

// Purge of a missing inode does nothing but drop a stale orphan mark, so
// that two releases racing to purge both succeed.
func (e *engine) Purge(ctx context.Context, ino Ino) error {
	return e.be.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if errors.Is(err, ErrNotFound) {
			return tx.kv.setOrphan(ino, false)
		}
		if err != nil || n.Nlink > 0 {
			return err
		}
		if err := tx.releaseHolds(ino); err != nil {
			return err
		}
		if n.FileID != "" {
			if err := tx.setPending(Pending{FileID: n.FileID, Reason: PendingDelete, Session: tx.session}); err != nil {
				return err
			}
		}
		if n.Kind == KindDir {
			// Only Repair orphans a directory; whatever it still lists
			// goes with it.
			var names []string
			err := tx.scanDentries(ctx, ino, func(name string, _ Ino, _ Kind) error {
				names = append(names, name)
				return nil
			})
			if err != nil {
				return err
			}
			for _, name := range names {
				if err := tx.kv.deleteDentry(ino, name); err != nil {
					return err
				}
			}
		}
		tx.remove(n)
		return tx.kv.setOrphan(ino, false)
	})
}

// AddPending fills in an empty Session with this mount's and a zero Since
// with now. It replaces an entry for the same file ID.
func (e *engine) AddPending(ctx context.Context, p Pending) error {
	if p.FileID == "" || !p.Reason.valid() {
		return fmt.Errorf("%w: pending entry %+v", ErrInvalid, p)
	}
	return e.be.update(ctx, func(tx *txn) error {
		if p.Session == "" {
			p.Session = tx.session
		}
		return tx.setPending(p)
	})
}

func (e *engine) RemovePending(ctx context.Context, fileID string) error {
	return e.be.update(ctx, func(tx *txn) error {
		if v, err := tx.kv.pending(fileID); err != nil {
			return err
		} else if v == nil {
			return ErrNotFound
		}
		return tx.kv.deletePending(fileID)
	})
}

func (e *engine) Dentries(ctx context.Context, dir Ino, fn func(name string, ino Ino, kind Kind) error) error {
	return e.be.view(ctx, func(tx *txn) error {
		return tx.scanDentries(ctx, dir, fn)
	})
}

func (e *engine) DropDentry(ctx context.Context, dir Ino, name string) error {
	return e.be.update(ctx, func(tx *txn) error {
		if v, err := tx.kv.dentry(dir, name); err != nil {
			return err
		} else if v == nil {
			return ErrNotFound
		}
		return tx.kv.deleteDentry(dir, name)
	})
}

func (e *engine) SetNlink(ctx context.Context, ino Ino, nlink uint32) (Attr, error) {
	var a Attr
	err := e.be.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		n.Nlink = nlink
		tx.touch(n)
		// Set the mark from the new count alone: the old one may be the
		// damage being repaired.
		n.origNlink = -1
		if nlink == 0 {
			err = tx.kv.setOrphan(ino, true)
		} else {
			err = tx.kv.setOrphan(ino, false)
		}
		a = n.Attr
		return err
	})
	return a, err
}
