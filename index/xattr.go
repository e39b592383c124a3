package index

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
)

// Limits on extended attributes, as Linux sets them for every file system
// (XATTR_NAME_MAX, XATTR_SIZE_MAX); the kernel refuses more before a call
// reaches a FUSE file system, and the index refuses it again for callers
// that are not the kernel. MaxXattrTotal bounds one inode's attributes
// together, so that the one value they share stays a small read.
// MaxXattrList is the longest list of names, each with its NUL, that
// listxattr(2) reads (XATTR_LIST_MAX): FUSE caps the size it reports at
// that, so a longer list could never be read.
const (
	MaxXattrNameLen  = 255
	MaxXattrValueLen = 64 << 10
	MaxXattrTotal    = 1 << 20
	MaxXattrList     = 64 << 10
)

// SetXattr flags, as in setxattr(2).
const (
	XattrCreate  uint32 = 1 // fail with ErrExists if the name is set
	XattrReplace uint32 = 2 // fail with ErrNoXattr if it is not
)

// GetXattr reads one extended attribute; ErrNoXattr if ino has none by
// that name.
func (e *engine) GetXattr(ctx context.Context, ino Ino, name string) ([]byte, error) {
	var value []byte
	err := e.be.view(ctx, func(tx *txn) error {
		xs, err := tx.xattrs(ino)
		if err != nil {
			return err
		}
		i, ok := slices.BinarySearchFunc(xs, name, compareXattrName)
		if !ok {
			return ErrNoXattr
		}
		value = xs[i].Value
		return nil
	})
	return value, err
}

// ListXattr lists the names of ino's extended attributes in byte order.
func (e *engine) ListXattr(ctx context.Context, ino Ino) ([]string, error) {
	var names []string
	err := e.be.view(ctx, func(tx *txn) error {
		xs, err := tx.xattrs(ino)
		if err != nil {
			return err
		}
		names = names[:0]
		for _, x := range xs {
			names = append(names, x.Name)
		}
		return nil
	})
	return names, err
}

// SetXattr sets one extended attribute, any bytes, and changes ino's ctime
// in the same transaction. flags is 0, XattrCreate or XattrReplace.
func (e *engine) SetXattr(ctx context.Context, ino Ino, name string, value []byte, flags uint32) error {
	if err := checkXattrName(name); err != nil {
		return err
	}
	switch {
	case len(value) > MaxXattrValueLen:
		return fmt.Errorf("%w: xattr value of %d bytes", ErrTooBig, len(value))
	case flags&^(XattrCreate|XattrReplace) != 0 || flags == XattrCreate|XattrReplace:
		return fmt.Errorf("%w: xattr flags %#x", ErrInvalid, flags)
	}
	value = slices.Clone(value)
	if value == nil {
		value = []byte{}
	}
	return e.changeXattrs(ctx, ino, func(xs []Xattr) ([]Xattr, error) {
		i, ok := slices.BinarySearchFunc(xs, name, compareXattrName)
		switch {
		case ok && flags == XattrCreate:
			return nil, ErrExists
		case !ok && flags == XattrReplace:
			return nil, ErrNoXattr
		case ok:
			xs[i].Value = value
		default:
			xs = slices.Insert(xs, i, Xattr{Name: name, Value: value})
		}
		if total := xattrsSize(xs); total > MaxXattrTotal {
			return nil, fmt.Errorf("%w: %d bytes of xattrs on inode %d", ErrNoSpace, total, ino)
		}
		if list := xattrListSize(xs); list > MaxXattrList {
			return nil, fmt.Errorf("%w: %d bytes of xattr names on inode %d", ErrNoSpace, list, ino)
		}
		return xs, nil
	})
}

// RemoveXattr removes one extended attribute (ErrNoXattr if there is none
// by that name) and changes ino's ctime.
func (e *engine) RemoveXattr(ctx context.Context, ino Ino, name string) error {
	if err := checkXattrName(name); err != nil {
		return err
	}
	return e.changeXattrs(ctx, ino, func(xs []Xattr) ([]Xattr, error) {
		i, ok := slices.BinarySearchFunc(xs, name, compareXattrName)
		if !ok {
			return nil, ErrNoXattr
		}
		return slices.Delete(xs, i, i+1), nil
	})
}

// changeXattrs rewrites ino's attributes with change, and its ctime, in
// one transaction.
func (e *engine) changeXattrs(ctx context.Context, ino Ino, change func([]Xattr) ([]Xattr, error)) error {
	return e.be.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		xs, err := tx.xattrs(ino)
		if err != nil {
			return err
		}
		if xs, err = change(xs); err != nil {
			return err
		}
		if err := tx.kv.setXattrs(ino, encodeXattrs(xs)); err != nil {
			return err
		}
		n.Ctime = tx.now
		tx.touch(n)
		return nil
	})
}

// xattrs reads ino's attributes; ErrNotFound if the inode is gone (its
// attributes went with it).
func (tx *txn) xattrs(ino Ino) ([]Xattr, error) {
	if _, err := tx.node(ino); err != nil {
		return nil, err
	}
	v, err := tx.kv.xattrs(ino)
	if err != nil {
		return nil, err
	}
	return decodeXattrs(ino, v)
}

func compareXattrName(x Xattr, name string) int { return strings.Compare(x.Name, name) }

func checkXattrName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty xattr name", ErrInvalid)
	case len(name) > MaxXattrNameLen:
		return fmt.Errorf("%w: xattr name of %d bytes", ErrNameLen, len(name))
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: xattr name holds NUL", ErrInvalid)
	}
	return nil
}

func xattrsSize(xs []Xattr) int {
	n := 0
	for _, x := range xs {
		n += len(x.Name) + len(x.Value)
	}
	return n
}

// xattrListSize is the length of the list listxattr(2) returns.
func xattrListSize(xs []Xattr) int {
	n := 0
	for _, x := range xs {
		n += len(x.Name) + 1
	}
	return n
}

// Inherit computes, inside the transaction that creates an inode
// (CreateInheriting), what the inode takes from its parent directory: given
// the parent's extended attributes, it may change a (the attributes asked
// for) and returns the new inode's extended attributes. A shared engine
// runs a transaction again when another host changed what it read, so
// Inherit may run more than once and must have no other effect.
type Inherit func(parent []Xattr, a *Attr) ([]Xattr, error)

// ModeXattrsChange computes, inside ChangeModeXattrs's transaction, an
// inode's new permission bits and extended attributes from its current
// attributes and extended attributes. It may run more than once, as
// Inherit may, and must not change xs in place.
type ModeXattrsChange func(a Attr, xs []Xattr) (mode uint32, _ []Xattr, _ error)

func (e *engine) ChangeModeXattrs(ctx context.Context, ino Ino, change ModeXattrsChange) (Attr, error) {
	var a Attr
	err := e.be.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		old, err := tx.kv.xattrs(ino)
		if err != nil {
			return err
		}
		xs, err := decodeXattrs(ino, old)
		if err != nil {
			return err
		}
		mode, xs, err := change(n.Attr, xs)
		if err != nil {
			return err
		}
		if xs, err = checkedXattrs(ino, xs); err != nil {
			return err
		}
		// A chmod of a file without ACLs writes no attributes.
		if v := encodeXattrs(xs); !bytes.Equal(v, old) {
			if err := tx.kv.setXattrs(ino, v); err != nil {
				return err
			}
		}
		n.Mode = mode & 0o7777
		n.Ctime = tx.now
		tx.touch(n)
		a = n.Attr
		return nil
	})
	return a, err
}

// checkedXattrs sorts a whole set of attributes that a caller computed
// (Inherit, ModeXattrsChange) and holds it to SetXattr's limits.
func checkedXattrs(ino Ino, xs []Xattr) ([]Xattr, error) {
	xs = slices.Clone(xs)
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	for i, x := range xs {
		if err := checkXattrName(x.Name); err != nil {
			return nil, err
		}
		if i > 0 && xs[i-1].Name == x.Name {
			return nil, fmt.Errorf("%w: xattr %q twice", ErrInvalid, x.Name)
		}
		if len(x.Value) > MaxXattrValueLen {
			return nil, fmt.Errorf("%w: xattr value of %d bytes", ErrTooBig, len(x.Value))
		}
	}
	if total := xattrsSize(xs); total > MaxXattrTotal {
		return nil, fmt.Errorf("%w: %d bytes of xattrs on inode %d", ErrNoSpace, total, ino)
	}
	if list := xattrListSize(xs); list > MaxXattrList {
		return nil, fmt.Errorf("%w: %d bytes of xattr names on inode %d", ErrNoSpace, list, ino)
	}
	return xs, nil
}
