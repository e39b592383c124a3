package fs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"fdfsfs/index"
)

// What the file system does around POSIX ACLs, as ext4 does it: each
// change is one index transaction with the mode it keeps in step.

// errDefaultACLNotDir: only a directory has a default ACL (EACCES, as
// set_posix_acl answers).
var errDefaultACLNotDir = errors.New("a default ACL on a non-directory")

// setACL stores an ACL attribute. An access ACL sets the mode's permission
// bits (the group bits from its mask), and one that says no more than
// those bits is not kept, as posix_acl_update_mode does; killSGID (the
// kernel's flag in flags) clears set-group-ID. A header without entries
// removes the ACL.
func (f *FS) setACL(ctx context.Context, ino index.Ino, name string, value []byte, flags uint32) syscall.Errno {
	killSGID := flags&xattrKillSGID != 0
	flags &^= xattrKillSGID
	if flags&^(index.XattrCreate|index.XattrReplace) != 0 || flags == index.XattrCreate|index.XattrReplace {
		return syscall.EINVAL
	}
	a, err := parseACL(value)
	if err != nil {
		return f.xattrErrno("setxattr "+name, err)
	}
	_, err = f.idx.ChangeModeXattrs(ctx, ino, func(attr index.Attr, xs []index.Xattr) (uint32, []index.Xattr, error) {
		_, exists := findXattr(xs, name)
		switch {
		case exists && flags == index.XattrCreate:
			return 0, nil, index.ErrExists
		case !exists && flags == index.XattrReplace:
			return 0, nil, index.ErrNoXattr
		}
		mode, keep := attr.Mode, a
		switch name {
		case xattrACLAccess:
			if a != nil {
				bits, equiv := a.modeBits()
				mode = mode&^0o777 | bits
				if equiv {
					keep = nil
				}
			}
			if killSGID {
				mode &^= syscall.S_ISGID
			}
		case xattrACLDefault:
			if attr.Kind != index.KindDir && a != nil {
				return 0, nil, errDefaultACLNotDir
			}
		}
		return mode, withXattr(xs, name, keep), nil
	})
	if err != nil {
		return f.xattrErrno("setxattr "+name, err)
	}
	return 0
}

// chmod sets ino's permission bits and, in the same transaction, the
// owner, group class and other entries of its access ACL, if it has one
// (posix_acl_chmod).
func (f *FS) chmod(ctx context.Context, ino index.Ino, mode uint32) (index.Attr, error) {
	return f.idx.ChangeModeXattrs(ctx, ino, func(_ index.Attr, xs []index.Xattr) (uint32, []index.Xattr, error) {
		v, ok := findXattr(xs, xattrACLAccess)
		if !ok {
			return mode, xs, nil
		}
		a, err := parseACL(v)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: inode's access ACL: %w", index.ErrCorrupt, err)
		}
		return mode, withXattr(xs, xattrACLAccess, a.chmod(mode)), nil
	})
}

// inheritACLs gives a new inode its ACLs from its directory's default ACL,
// in the transaction that creates it (posix_acl_create): the ACLs, and the
// mode narrowed to them, replace the umask; without a default ACL the
// umask applies (when the kernel left it to us).
func inheritACLs(umask uint32) index.Inherit {
	return func(parent []index.Xattr, attr *index.Attr) ([]index.Xattr, error) {
		v, ok := findXattr(parent, xattrACLDefault)
		if !ok {
			attr.Mode &^= umask
			return nil, nil
		}
		def, err := parseACL(v)
		if err != nil {
			return nil, fmt.Errorf("%w: directory's default ACL: %w", index.ErrCorrupt, err)
		}
		if def == nil {
			attr.Mode &^= umask
			return nil, nil
		}
		access, dflt, mode := def.inherit(attr.Mode, attr.Kind == index.KindDir)
		attr.Mode = mode
		var xs []index.Xattr
		xs = withXattr(xs, xattrACLAccess, access)
		return withXattr(xs, xattrACLDefault, dflt), nil
	}
}

func findXattr(xs []index.Xattr, name string) ([]byte, bool) {
	for _, x := range xs {
		if x.Name == name {
			return x.Value, true
		}
	}
	return nil, false
}

// withXattr is a copy of xs with name set to a's value, or removed for a
// nil a; xs itself is left as it was.
func withXattr(xs []index.Xattr, name string, a acl) []index.Xattr {
	out := slices.DeleteFunc(slices.Clone(xs), func(x index.Xattr) bool { return x.Name == name })
	if a != nil {
		out = append(out, index.Xattr{Name: name, Value: a.encode()})
	}
	return out
}
