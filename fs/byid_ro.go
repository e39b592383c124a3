package fs

import (
	"context"
	"errors"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/fdfs"
	"fdfsfs/index"
)

// The by-ID tree is read-only: every change in it is EROFS. Its files
// take names in the named tree by ln (dirNode.Link, linkByID).

var _ = (fusefs.NodeCreater)((*byIDDir)(nil))

func (d *byIDDir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

var _ = (fusefs.NodeMkdirer)((*byIDDir)(nil))

func (d *byIDDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

var _ = (fusefs.NodeMknoder)((*byIDDir)(nil))

func (d *byIDDir) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

var _ = (fusefs.NodeSymlinker)((*byIDDir)(nil))

func (d *byIDDir) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

var _ = (fusefs.NodeLinker)((*byIDDir)(nil))

func (d *byIDDir) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

var _ = (fusefs.NodeUnlinker)((*byIDDir)(nil))

func (d *byIDDir) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

var _ = (fusefs.NodeRmdirer)((*byIDDir)(nil))

func (d *byIDDir) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

var _ = (fusefs.NodeRenamer)((*byIDDir)(nil))

func (d *byIDDir) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}

var _ = (fusefs.NodeSetattrer)((*byIDDir)(nil))

func (d *byIDDir) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

var _ = (fusefs.NodeSetattrer)((*byIDFile)(nil))

func (n *byIDFile) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

var _ = (fusefs.NodeSetxattrer)((*byIDFile)(nil))

func (n *byIDFile) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EROFS
}

var _ = (fusefs.NodeRemovexattrer)((*byIDFile)(nil))

func (n *byIDFile) Removexattr(ctx context.Context, attr string) syscall.Errno { return syscall.EROFS }

// linkByID gives a by-ID file a name in directory d without copying it:
// another link of the inode that holds it already, if a name does, so
// that one FastDFS file never has two inodes (each would delete it when
// its last name went); otherwise a new file claiming it. Like any named
// file it is then deleted from FastDFS when its last name goes.
func (d *dirNode) linkByID(ctx context.Context, t *byIDFile, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if !strings.HasPrefix(t.fileID, d.group+"/") {
		return nil, syscall.EXDEV
	}
	if byID, ok := d.fs.idx.(index.ByIDIndex); ok {
		e, err := byID.ByIDLookup(ctx, t.fileID)
		if err == nil && e.Origin == index.ByIDNamed && e.Ino != 0 {
			a, err := d.fs.idx.Link(ctx, e.Ino, d.ino, name)
			if err != nil {
				return nil, d.fs.toErrno("link "+name, err)
			}
			return d.fs.newChild(ctx, &d.Inode, name, a, out), 0
		}
		if err != nil && !errors.Is(err, index.ErrNotFound) {
			return nil, d.fs.toErrno("link "+name, err)
		}
	}
	appender := false
	if id, err := fdfs.ParseFileID(t.fileID); err == nil {
		appender = id.Appender
	}
	desc := t.current()
	a, errno := d.create(ctx, name, index.Attr{Kind: index.KindFile, Mode: 0o644, FileID: t.fileID, Appender: appender, Size: desc.size, Mtime: desc.mtime}, 0)
	if errno != 0 {
		return nil, errno
	}
	return d.fs.newChild(ctx, &d.Inode, name, a, out), 0
}
