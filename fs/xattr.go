package fs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// Extended attributes of a file:
//   - user.fdfs.file_id: the FastDFS file ID (read-only);
//   - user.fdfs.url: where nginx with the FastDFS module serves it, when
//     --http-base names the group (read-only);
//   - any other user.* name: the FastDFS metadata of that file, read and
//     written on the storage.
const (
	xattrFileID = "user.fdfs.file_id"
	xattrURL    = "user.fdfs.url"
	xattrUser   = "user."
)

func (f *FS) fixedXattr(fileID, name string) (string, bool) {
	switch name {
	case xattrFileID:
		return fileID, true
	case xattrURL:
		group, _, _ := strings.Cut(fileID, "/")
		base, ok := f.opts.HTTPBase[group]
		if !ok {
			return "", false
		}
		return strings.TrimRight(base, "/") + "/" + fileID, true
	}
	return "", false
}

func (f *FS) getxattr(ctx context.Context, fileID, name string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(name, xattrUser) {
		return 0, notUserXattr()
	}
	if fileID == "" {
		return 0, syscall.ENODATA
	}
	val, ok := f.fixedXattr(fileID, name)
	if !ok {
		if !strings.HasPrefix(name, xattrUser) || name == xattrURL {
			return 0, syscall.ENODATA
		}
		meta, err := f.metadata(ctx, fileID)
		if err != nil {
			return 0, f.toErrno("getxattr", err)
		}
		if val, ok = meta[strings.TrimPrefix(name, xattrUser)]; !ok {
			return 0, syscall.ENODATA
		}
	}
	return copyOut(dest, []byte(val))
}

func (f *FS) listxattr(ctx context.Context, fileID string, dest []byte) (uint32, syscall.Errno) {
	if fileID == "" {
		return 0, 0
	}
	names := []string{xattrFileID}
	if _, ok := f.fixedXattr(fileID, xattrURL); ok {
		names = append(names, xattrURL)
	}
	meta, err := f.metadata(ctx, fileID)
	if err != nil {
		return 0, f.toErrno("listxattr", err)
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, xattrUser+k)
	}
	sort.Strings(keys)
	var buf []byte
	for _, n := range append(names, keys...) {
		buf = append(append(buf, n...), 0)
	}
	return copyOut(dest, buf)
}

// metadata reads a file's FastDFS metadata. A storage answers ENOENT both
// for a missing file and for one that never had metadata; the index says
// the file exists, so ENOENT here means no metadata.
func (f *FS) metadata(ctx context.Context, fileID string) (map[string]string, error) {
	meta, err := f.be.GetMetadata(ctx, fileID)
	if errors.Is(err, syscall.ENOENT) {
		return map[string]string{}, nil
	}
	return meta, err
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

// committedFileID is the file's FastDFS ID; metadata lives on that file, so
// pending writes are committed first.
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

// notUserXattr answers a getxattr outside the user namespace. The kernel
// asks for security.capability before every write, and `ls -l` for
// security.selinux and system.posix_acl_access on every entry; those are
// answered at once (never committing a file being written) with ENOTSUP,
// which tells ls that this file system has none, so it stops asking: an
// `ls -l` of 100,000 names then costs no 200,000 extra round trips.
func notUserXattr() syscall.Errno { return syscall.ENOTSUP }

// Directories and symlinks carry no FastDFS file, so no metadata.
var _ = (fusefs.NodeGetxattrer)((*dirNode)(nil))

func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, noMetadataXattr(attr)
}

var _ = (fusefs.NodeGetxattrer)((*symlinkNode)(nil))

func (l *symlinkNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, noMetadataXattr(attr)
}

// noMetadataXattr answers getxattr on a node without a FastDFS file.
func noMetadataXattr(attr string) syscall.Errno {
	if !strings.HasPrefix(attr, xattrUser) {
		return notUserXattr()
	}
	return syscall.ENODATA
}

var _ = (fusefs.NodeGetxattrer)((*fileNode)(nil))

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, xattrUser) {
		return 0, notUserXattr()
	}
	id, errno := n.committedFileID(ctx)
	if errno != 0 {
		return 0, errno
	}
	return n.fs.getxattr(ctx, id, attr, dest)
}

var _ = (fusefs.NodeListxattrer)((*fileNode)(nil))

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	id, errno := n.committedFileID(ctx)
	if errno != 0 {
		return 0, errno
	}
	return n.fs.listxattr(ctx, id, dest)
}

var _ = (fusefs.NodeSetxattrer)((*fileNode)(nil))

func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if n.fs.opts.ReadOnly {
		return syscall.EROFS
	}
	if attr == xattrFileID || attr == xattrURL {
		return syscall.EPERM
	}
	if !strings.HasPrefix(attr, xattrUser) {
		return syscall.ENOTSUP
	}
	id, errno := n.committedFileID(ctx)
	if errno != 0 {
		return errno
	}
	if id == "" {
		// An empty file has no FastDFS file to carry metadata.
		return syscall.ENOTSUP
	}
	key := strings.TrimPrefix(attr, xattrUser)
	const xattrCreate, xattrReplace = 1, 2
	if flags&(xattrCreate|xattrReplace) != 0 {
		meta, err := n.fs.metadata(ctx, id)
		if err != nil {
			return n.fs.toErrno("setxattr", err)
		}
		_, exists := meta[key]
		if flags&xattrCreate != 0 && exists {
			return syscall.EEXIST
		}
		if flags&xattrReplace != 0 && !exists {
			return syscall.ENODATA
		}
	}
	err := n.fs.be.SetMetadata(ctx, id, map[string]string{key: string(data)}, true)
	return n.fs.toErrno("setxattr", err)
}

var _ = (fusefs.NodeRemovexattrer)((*fileNode)(nil))

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if n.fs.opts.ReadOnly {
		return syscall.EROFS
	}
	if attr == xattrFileID || attr == xattrURL {
		return syscall.EPERM
	}
	if !strings.HasPrefix(attr, xattrUser) {
		return syscall.ENODATA
	}
	id, errno := n.committedFileID(ctx)
	if errno != 0 {
		return errno
	}
	if id == "" {
		return syscall.ENODATA
	}
	meta, err := n.fs.metadata(ctx, id)
	if err != nil {
		return n.fs.toErrno("removexattr", err)
	}
	key := strings.TrimPrefix(attr, xattrUser)
	if _, ok := meta[key]; !ok {
		return syscall.ENODATA
	}
	delete(meta, key)
	return n.fs.toErrno("removexattr", n.fs.be.SetMetadata(ctx, id, meta, false))
}

// Directories and symlinks have no FastDFS file to carry metadata. Setting
// an attribute on them is ENOTSUP, the answer cp -a and rsync -X take as
// "this file system has none" (go-fuse's default, ENODATA, makes cp -a
// fail on every directory it copies).

var _ = (fusefs.NodeSetxattrer)((*dirNode)(nil))

func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}

var _ = (fusefs.NodeSetxattrer)((*symlinkNode)(nil))

func (s *symlinkNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}
