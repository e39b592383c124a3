package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/index"
)

// specialNode is a FIFO, a unix socket or a device. It lives in the index
// alone: FastDFS holds no content for it, and the kernel serves its opens
// (a FIFO's pipe, a socket's connections, a device's driver) without
// asking the mount.
type specialNode struct {
	fusefs.Inode
	indexedXattrs // fs and ino
}

var _ = (fusefs.NodeGetattrer)((*specialNode)(nil))

func (s *specialNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := s.fs.idx.GetAttr(ctx, s.ino)
	if err != nil {
		return s.fs.toErrno("getattr", err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

var _ = (fusefs.NodeSetattrer)((*specialNode)(nil))

// Setattr changes mode, owner and times; a size on a special file is
// refused by the kernel before it reaches here.
func (s *specialNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return s.fs.setattr(uninterrupted(ctx), s.ino, in, out)
}

var _ = (fusefs.NodeOnForgetter)((*specialNode)(nil))

func (s *specialNode) OnForget() { s.fs.nodes.forget(s.ino, &s.Inode) }

// specialKind is the index kind for a mknod(2) file type, and whether the
// type is one the index keeps apart from regular files.
func specialKind(mode uint32) (index.Kind, bool) {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return index.KindFIFO, true
	case syscall.S_IFSOCK:
		return index.KindSocket, true
	case syscall.S_IFCHR:
		return index.KindCharDev, true
	case syscall.S_IFBLK:
		return index.KindBlockDev, true
	}
	return 0, false
}

// syncIndex answers fsync(2) on a directory: its entries are as durable as
// the index makes them (see index.Index.Sync).
func (f *FS) syncIndex(ctx context.Context) syscall.Errno {
	return f.toErrno("fsyncdir", f.idx.Sync(uninterrupted(ctx)))
}
