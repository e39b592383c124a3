package fs

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"fdfsfs/fdfs"
	"fdfsfs/index"
)

// Extended attributes.
//
// Every kind of node keeps its user.* and trusted.* attributes in the index:
// any bytes, values up to 64 KiB, as a local disk keeps them. A user.*
// attribute of a regular file is also mirrored into the FastDFS metadata
// of the file's content, so that other FastDFS clients see it, where
// FastDFS can hold it exactly (mirrorable); the index stays the one that
// getxattr and listxattr read.
//
// Two virtual attributes answer getxattr by name but are never listed, so
// that cp -a, mv and rsync -X neither copy them nor fail on them; setting or
// removing one is EPERM:
//   - user.fdfs.file_id: the FastDFS file ID of a regular file's content;
//   - user.fdfs.url: where nginx with the FastDFS module serves it, when
//     --http-base names the group.
//
// With Options.ACLs (--acl), POSIX ACLs (system.posix_acl_access and
// system.posix_acl_default) are kept in the index beside them, checked on
// the way in and kept in step with the mode (acl.go, aclfs.go), and the
// kernel enforces them.
//
// Other security.* and system.* names (SELinux labels, capabilities, ACLs
// without Options.ACLs) are
// not kept: every call on them is ENOTSUP at once, which ls -l remembers
// for the file system instead of asking twice per entry, and which tells
// the kernel's write path there is no security.capability to clear.
const (
	xattrFileID = "user.fdfs.file_id"
	xattrURL    = "user.fdfs.url"
	xattrUser   = "user."
	xattrTrust  = "trusted."
)

// xattrKept reports whether name lives in a namespace the index keeps.
func (f *FS) xattrKept(name string) bool {
	if isACLXattr(name) {
		return f.opts.ACLs
	}
	return strings.HasPrefix(name, xattrUser) || strings.HasPrefix(name, xattrTrust)
}

func isACLXattr(name string) bool { return name == xattrACLAccess || name == xattrACLDefault }

func isVirtualXattr(name string) bool { return name == xattrFileID || name == xattrURL }

// virtualXattr answers a virtual attribute from the file's ID.
func (f *FS) virtualXattr(fileID, name string) ([]byte, bool) {
	if fileID == "" {
		return nil, false
	}
	switch name {
	case xattrFileID:
		return []byte(fileID), true
	case xattrURL:
		group, _, _ := strings.Cut(fileID, "/")
		base, ok := f.opts.HTTPBase[group]
		if !ok {
			return nil, false
		}
		return []byte(strings.TrimRight(base, "/") + "/" + fileID), true
	}
	return nil, false
}

// getxattr answers getxattr for inode ino; fileID, called only for a
// virtual attribute, gives the content's file ID ("" for none).
func (f *FS) getxattr(ctx context.Context, ino index.Ino, name string, dest []byte, fileID func() (string, syscall.Errno)) (uint32, syscall.Errno) {
	if !f.xattrKept(name) {
		return 0, syscall.ENOTSUP
	}
	if isVirtualXattr(name) {
		if fileID == nil {
			return 0, syscall.ENODATA
		}
		id, errno := fileID()
		if errno != 0 {
			return 0, errno
		}
		v, ok := f.virtualXattr(id, name)
		if !ok {
			return 0, syscall.ENODATA
		}
		return copyOut(dest, v)
	}
	v, err := f.idx.GetXattr(ctx, ino, name)
	if err != nil {
		return 0, f.xattrErrno("getxattr", err)
	}
	return copyOut(dest, v)
}

func (f *FS) listxattr(ctx context.Context, ino index.Ino, dest []byte) (uint32, syscall.Errno) {
	names, err := f.idx.ListXattr(ctx, ino)
	if err != nil {
		return 0, f.xattrErrno("listxattr", err)
	}
	var buf []byte
	for _, n := range names {
		if f.xattrKept(n) { // not ACLs an earlier mount kept, without ACLs
			buf = append(append(buf, n...), 0)
		}
	}
	return copyOut(dest, buf)
}

// setxattr sets an attribute in the index; for a regular file, mirror
// (if not nil) then brings the FastDFS metadata in step.
func (f *FS) setxattr(ctx context.Context, ino index.Ino, name string, value []byte, flags uint32, mirror func(context.Context) syscall.Errno) syscall.Errno {
	ctx = uninterrupted(ctx)
	switch {
	case f.opts.ReadOnly:
		return syscall.EROFS
	case isVirtualXattr(name):
		return syscall.EPERM
	case !f.xattrKept(name):
		return syscall.ENOTSUP
	case isACLXattr(name):
		return f.setACL(ctx, ino, name, value, flags)
	}
	if err := f.idx.SetXattr(ctx, ino, name, value, flags); err != nil {
		return f.xattrErrno("setxattr", err)
	}
	if mirror != nil && strings.HasPrefix(name, xattrUser) {
		return mirror(ctx)
	}
	return 0
}

func (f *FS) removexattr(ctx context.Context, ino index.Ino, name string, mirror func(context.Context) syscall.Errno) syscall.Errno {
	ctx = uninterrupted(ctx)
	switch {
	case f.opts.ReadOnly:
		return syscall.EROFS
	case isVirtualXattr(name):
		return syscall.EPERM
	case !f.xattrKept(name):
		return syscall.ENOTSUP
	}
	err := f.idx.RemoveXattr(ctx, ino, name)
	if errors.Is(err, index.ErrNoXattr) && isACLXattr(name) {
		// Removing an ACL that is not there succeeds, as on ext4: tar
		// --acls removes a directory's default ACL that way.
		err = nil
	}
	if err != nil {
		return f.xattrErrno("removexattr", err)
	}
	if mirror != nil && strings.HasPrefix(name, xattrUser) {
		return mirror(ctx)
	}
	return 0
}

// xattrErrno maps the index's xattr answers as ext4 gives them, and the
// rest through toErrno.
func (f *FS) xattrErrno(op string, err error) syscall.Errno {
	switch {
	case errors.Is(err, index.ErrNoXattr):
		return syscall.ENODATA
	case errors.Is(err, index.ErrTooBig):
		return syscall.E2BIG
	case errors.Is(err, index.ErrNoSpace):
		return syscall.ENOSPC
	case errors.Is(err, index.ErrNameLen):
		return syscall.ERANGE
	case errors.Is(err, errBadACL):
		return syscall.EINVAL
	case errors.Is(err, errDefaultACLNotDir):
		return syscall.EACCES
	}
	return f.toErrno(op, err)
}

// mirrorable reports whether FastDFS metadata holds a user.* attribute
// exactly: a key of 1 to 64 bytes and a value of up to 256, neither with a
// NUL or FastDFS's record and field separators (0x01, 0x02).
func mirrorable(name string, value []byte) (key string, ok bool) {
	key, ok = strings.CutPrefix(name, xattrUser)
	if !ok || key == "" || len(key) > fdfs.FdfsMaxMetaNameLen || len(value) > fdfs.FdfsMaxMetaValueLen {
		return "", false
	}
	const bad = "\x00\x01\x02"
	if strings.ContainsAny(key, bad) || bytes.ContainsAny(value, bad) {
		return "", false
	}
	return key, true
}

// mirrorMetadata makes the FastDFS metadata of fileID the file's mirrorable
// user.* attributes, all of them (an overwrite, so that a removed or
// no-longer-mirrorable attribute goes too).
// fresh says fileID is a new upload, which has no metadata yet: with no
// attribute to mirror there is then nothing to send.
func (f *FS) mirrorMetadata(ctx context.Context, ino index.Ino, fileID string, fresh bool) error {
	if fileID == "" {
		return nil
	}
	names, err := f.idx.ListXattr(ctx, ino)
	if err != nil {
		return err
	}
	meta := map[string]string{}
	for _, name := range names {
		if !strings.HasPrefix(name, xattrUser) {
			continue
		}
		v, err := f.idx.GetXattr(ctx, ino, name)
		if errors.Is(err, index.ErrNoXattr) {
			continue
		}
		if err != nil {
			return err
		}
		if key, ok := mirrorable(name, v); ok {
			meta[key] = string(v)
		}
	}
	if fresh && len(meta) == 0 {
		return nil
	}
	return f.be.SetMetadata(ctx, fileID, meta, false)
}

// copyOut follows getxattr(2): a zero-length buffer asks for the size.
func copyOut(dest, val []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(val)), 0
	}
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}

// committedFileID is the file's FastDFS ID, with pending writes committed
// first, for the virtual attributes.
func (n *fileNode) committedFileID(ctx context.Context) (string, syscall.Errno) {
	n.wmu.Lock()
	errno := n.commitLocked(ctx)
	n.wmu.Unlock()
	if errno != 0 {
		return "", errno
	}
	a, err := n.fs.idx.GetAttr(ctx, n.ino)
	if err != nil {
		return "", n.fs.toErrno("xattr", err)
	}
	return a.FileID, 0
}

// mirror brings the FastDFS metadata of the file's committed content in
// step with its user.* attributes. The attribute is set in the index
// already, so a FastDFS failure is logged, not returned: the index is what
// getxattr reads, and the next change or commit mirrors again.
func (n *fileNode) mirror(ctx context.Context) syscall.Errno {
	a, err := n.fs.idx.GetAttr(ctx, n.ino)
	if err != nil {
		return n.fs.toErrno("xattr", err)
	}
	n.userXattrs.Store(true)
	if err := n.fs.mirrorMetadata(ctx, n.ino, a.FileID, false); err != nil {
		n.fs.log.Warn("mirroring xattrs into FastDFS metadata", "ino", n.ino, "file_id", a.FileID, "err", err)
	}
	return 0
}

var (
	_ = (fusefs.NodeGetxattrer)((*fileNode)(nil))
	_ = (fusefs.NodeListxattrer)((*fileNode)(nil))
	_ = (fusefs.NodeSetxattrer)((*fileNode)(nil))
	_ = (fusefs.NodeRemovexattrer)((*fileNode)(nil))
)

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return n.fs.getxattr(ctx, n.ino, attr, dest, func() (string, syscall.Errno) { return n.committedFileID(ctx) })
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return n.fs.listxattr(ctx, n.ino, dest)
}

func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.fs.setxattr(ctx, n.ino, attr, data, flags, n.mirror)
}

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.fs.removexattr(ctx, n.ino, attr, n.mirror)
}

// indexedXattrs gives a directory, a symlink or a special file the
// extended attributes the index keeps for its inode; they have no content,
// so no virtual attributes and no mirror. A symlink or special file takes
// trusted.* only: the kernel refuses user.* on them before it asks.
type indexedXattrs struct {
	fs  *FS
	ino index.Ino
}

var (
	_ = (fusefs.NodeGetxattrer)((*indexedXattrs)(nil))
	_ = (fusefs.NodeListxattrer)((*indexedXattrs)(nil))
	_ = (fusefs.NodeSetxattrer)((*indexedXattrs)(nil))
	_ = (fusefs.NodeRemovexattrer)((*indexedXattrs)(nil))
)

func (x *indexedXattrs) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return x.fs.getxattr(ctx, x.ino, attr, dest, nil)
}

func (x *indexedXattrs) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return x.fs.listxattr(ctx, x.ino, dest)
}

func (x *indexedXattrs) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return x.fs.setxattr(ctx, x.ino, attr, data, flags, nil)
}

func (x *indexedXattrs) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return x.fs.removexattr(ctx, x.ino, attr, nil)
}

// A file opened by its ID has no inode in the index: its attributes are
// the virtual ones and its FastDFS metadata, as user.* names.

func (f *FS) metadataXattr(ctx context.Context, fileID, name string, dest []byte) (uint32, syscall.Errno) {
	if isACLXattr(name) {
		// The kernel asks before it checks a permission; ENOTSUP would
		// fail the check.
		return 0, syscall.ENODATA
	}
	if !strings.HasPrefix(name, xattrUser) {
		return 0, syscall.ENOTSUP
	}
	if v, ok := f.virtualXattr(fileID, name); ok {
		return copyOut(dest, v)
	}
	meta, err := f.metadata(ctx, fileID)
	if err != nil {
		return 0, f.toErrno("getxattr", err)
	}
	v, ok := meta[strings.TrimPrefix(name, xattrUser)]
	if !ok || isVirtualXattr(name) {
		return 0, syscall.ENODATA
	}
	return copyOut(dest, []byte(v))
}

func (f *FS) listMetadataXattrs(ctx context.Context, fileID string, dest []byte) (uint32, syscall.Errno) {
	meta, err := f.metadata(ctx, fileID)
	if err != nil {
		return 0, f.toErrno("listxattr", err)
	}
	names := make([]string, 0, len(meta))
	for k := range meta {
		if name := xattrUser + k; !isVirtualXattr(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var buf []byte
	for _, n := range names {
		buf = append(append(buf, n...), 0)
	}
	return copyOut(dest, buf)
}

// metadata reads a file's FastDFS metadata. A storage answers ENOENT both
// for a missing file and for one that never had metadata; the caller knows
// the file exists, so ENOENT here means no metadata.
func (f *FS) metadata(ctx context.Context, fileID string) (map[string]string, error) {
	meta, err := f.be.GetMetadata(ctx, fileID)
	if errors.Is(err, syscall.ENOENT) {
		return map[string]string{}, nil
	}
	return meta, err
}
