package fs

import (
	"context"
	"sort"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/index"
)

// rootNode is the mount root: one directory per FastDFS group. Groups are
// made by deploying storage servers, never by mkdir.
type rootNode struct {
	fusefs.Inode
	fs *FS
}

var _ = (fusefs.NodeOnAdder)((*rootNode)(nil))

func (r *rootNode) OnAdd(ctx context.Context) { r.fs.nodes.track(index.RootIno, &r.Inode) }

var _ = (fusefs.NodeGetattrer)((*rootNode)(nil))

func (r *rootNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := r.fs.idx.GetAttr(ctx, index.RootIno)
	if err != nil {
		return r.fs.toErrno("getattr /", err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

var _ = (fusefs.NodeLookuper)((*rootNode)(nil))

func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	a, err := r.fs.idx.Lookup(ctx, index.RootIno, name)
	if err != nil {
		if _, known := r.fs.groupInfo(name); !known || r.fs.opts.ReadOnly {
			return nil, r.fs.toErrno("lookup /"+name, err)
		}
		// A group the tracker announced since the last refresh.
		if a, err = r.fs.groupDir(ctx, name); err != nil {
			return nil, r.fs.toErrno("lookup /"+name, err)
		}
	}
	return r.fs.newChild(ctx, &r.Inode, name, a, out), 0
}

var _ = (fusefs.NodeReaddirer)((*rootNode)(nil))

// Readdir lists the groups the tracker knows and those the index remembers
// (a group whose storages are all down keeps its names).
func (r *rootNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	ents, err := r.fs.idx.ReadDir(ctx, index.RootIno)
	if err != nil {
		return nil, r.fs.toErrno("readdir /", err)
	}
	seen := make(map[string]bool, len(ents))
	list := make([]fuse.DirEntry, 0, len(ents))
	for _, e := range ents {
		seen[e.Name] = true
		list = append(list, fuse.DirEntry{Name: e.Name, Mode: syscall.S_IFDIR, Ino: uint64(e.Attr.Ino)})
	}
	r.fs.mu.Lock()
	for name := range r.fs.groups {
		if !seen[name] {
			list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
		}
	}
	r.fs.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return fusefs.NewListDirStream(list), 0
}

var _ = (fusefs.NodeFsyncer)((*rootNode)(nil))

func (r *rootNode) Fsync(ctx context.Context, fh fusefs.FileHandle, flags uint32) syscall.Errno {
	return r.fs.syncIndex(ctx)
}

func (r *rootNode) refuse(op, name string) syscall.Errno {
	r.fs.log.Warn("groups are made by deploying storage servers, not by "+op, "name", name)
	return syscall.EPERM
}

var _ = (fusefs.NodeMkdirer)((*rootNode)(nil))

func (r *rootNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, r.refuse("mkdir", name)
}

var _ = (fusefs.NodeCreater)((*rootNode)(nil))

func (r *rootNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, r.refuse("create", name)
}

var _ = (fusefs.NodeSymlinker)((*rootNode)(nil))

func (r *rootNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, r.refuse("symlink", name)
}

var _ = (fusefs.NodeMknoder)((*rootNode)(nil))

func (r *rootNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, r.refuse("mknod", name)
}

var _ = (fusefs.NodeRmdirer)((*rootNode)(nil))

func (r *rootNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return r.refuse("rmdir", name)
}

var _ = (fusefs.NodeRenamer)((*rootNode)(nil))

func (r *rootNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return r.refuse("rename", name)
}

var _ = (fusefs.NodeStatfser)((*rootNode)(nil))

// Statfs at the root is the sum over every group.
func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	r.fs.mu.Lock()
	var total, free int64
	for _, g := range r.fs.groups {
		total += g.TotalMB
		free += g.FreeMB
	}
	r.fs.mu.Unlock()
	fillStatfs(total, free, out)
	return 0
}

// fillStatfs reports capacity in 4 KiB blocks.
func fillStatfs(totalMB, freeMB int64, out *fuse.StatfsOut) {
	const blocksPerMB = 256
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = uint64(totalMB) * blocksPerMB
	out.Bfree = uint64(freeMB) * blocksPerMB
	out.Bavail = out.Bfree
	out.Files = 1 << 40
	out.Ffree = 1 << 40
	out.NameLen = index.MaxNameLen
}
