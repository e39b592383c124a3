package fs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/index"
)

// dirNode is a directory inside a group (the group directory itself too).
type dirNode struct {
	fusefs.Inode
	indexedXattrs // fs and ino
	group         string
	// top is true for the group directory, where by-ID paths start.
	top bool
	// listing is the small files of the last complete listing, kept to
	// fetch them ahead of a reader going through them in order
	// (prefetch.go); nil when none is kept.
	listing atomic.Pointer[dirListing]
}

// newChild builds (or finds) the node for an index inode and fills out.
func (f *FS) newChild(ctx context.Context, parent *fusefs.Inode, name string, a index.Attr, out *fuse.EntryOut) *fusefs.Inode {
	group := groupOf(parent)
	top := false
	if _, isRoot := parent.Operations().(*rootNode); isRoot {
		group, top = name, true
	}
	var node fusefs.InodeEmbedder
	switch a.Kind {
	case index.KindDir:
		node = &dirNode{indexedXattrs: indexedXattrs{f, a.Ino}, group: group, top: top}
	case index.KindSymlink:
		node = &symlinkNode{indexedXattrs: indexedXattrs{f, a.Ino}}
	case index.KindFIFO, index.KindSocket, index.KindCharDev, index.KindBlockDev:
		node = &specialNode{indexedXattrs: indexedXattrs{f, a.Ino}}
	default:
		node = &fileNode{fs: f, ino: a.Ino, group: group}
	}
	ch := parent.NewInode(ctx, node, fusefs.StableAttr{Mode: modeOf(a.Kind), Ino: uint64(a.Ino)})
	f.nodes.track(a.Ino, ch)
	if out != nil {
		if fn, ok := ch.Operations().(*fileNode); ok {
			a = fn.overlay(a)
		}
		fillAttr(a, &out.Attr)
	}
	return ch
}

// groupOf is the FastDFS group a node lives in.
func groupOf(n *fusefs.Inode) string {
	switch d := n.Operations().(type) {
	case *dirNode:
		return d.group
	case *fileNode:
		return d.group
	}
	return ""
}

var _ = (fusefs.NodeGetattrer)((*dirNode)(nil))

func (d *dirNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := d.fs.idx.GetAttr(ctx, d.ino)
	if err != nil {
		return d.fs.toErrno("getattr", err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

var _ = (fusefs.NodeSetattrer)((*dirNode)(nil))

func (d *dirNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterrupted(ctx)
	return d.fs.setattr(ctx, d.ino, in, out)
}

var _ = (fusefs.NodeLookuper)((*dirNode)(nil))

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	a, err := d.fs.idx.Lookup(ctx, d.ino, name)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) && d.top && d.fs.isStorePathOf(d.group, name) {
			// A name in the index wins; otherwise M00 starts a by-ID path.
			return d.NewInode(ctx, &byIDDir{fs: d.fs, group: d.group, parts: []string{name}},
				fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: byIDIno(d.group + "/" + name)}), 0
		}
		return nil, d.fs.toErrno("lookup "+name, err)
	}
	return d.fs.newChild(ctx, &d.Inode, name, a, out), 0
}

var _ = (fusefs.NodeOpendirHandler)((*dirNode)(nil))

// listBatch is how many entries a directory scan hands over at a time: the
// kernel's first readdirplus is answered after this many, while the rest of
// the scan goes on.
const listBatch = 1024

// OpendirHandle starts one index scan of the directory and waits for its
// first batch (so that a missing directory fails the open). The handle
// answers readdirplus lookups from that scan, so `ls -l` costs one index
// scan, not one lookup per entry; and the kernel (and go-fuse's inode
// bookkeeping) work on the first entries while the scan reads the rest.
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	h := &dirHandle{dir: d}
	h.more = sync.NewCond(&h.mu)
	var scanCtx context.Context
	scanCtx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go h.scan(scanCtx)
	h.mu.Lock()
	for len(h.ents) == 0 && !h.done {
		h.more.Wait()
	}
	// An error after the first entries is left to the read that reaches it.
	err := h.err
	if len(h.ents) > 0 {
		err = nil
	}
	h.mu.Unlock()
	if err != nil {
		h.cancel()
		return nil, 0, d.fs.toErrno("readdir", err)
	}
	return h, 0, 0
}

// dirHandle is an open directory, listed from one index scan that runs
// while the listing is read.
type dirHandle struct {
	dir    *dirNode
	cancel context.CancelFunc // ends the scan (Releasedir)

	mu   sync.Mutex
	more *sync.Cond    // on mu: broadcast when ents grows or done is set
	ents []index.Entry // guarded by mu: the entries scanned so far
	done bool          // guarded by mu: the scan has ended
	err  error         // guarded by mu: why it ended early, if it did
	pos  int           // guarded by mu: next entry Readdirent returns
}

func (h *dirHandle) scan(ctx context.Context) {
	err := h.dir.fs.idx.ReadDirBatches(ctx, h.dir.ino, listBatch, func(batch []index.Entry) error {
		h.mu.Lock()
		h.ents = append(h.ents, batch...)
		h.mu.Unlock()
		h.more.Broadcast()
		return nil
	})
	h.mu.Lock()
	h.done, h.err = true, err
	ents := h.ents
	h.mu.Unlock()
	h.more.Broadcast()
	if err == nil {
		h.dir.fs.keepListing(h.dir, ents)
	}
}

// waitLocked waits until entry i is scanned or the scan has ended, and
// reports whether entry i exists. Call with mu held.
func (h *dirHandle) waitLocked(i int) bool {
	for i >= len(h.ents) && !h.done {
		h.more.Wait()
	}
	return i < len(h.ents)
}

var _ = (fusefs.FileReaddirenter)((*dirHandle)(nil))

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.waitLocked(h.pos) {
		if h.err != nil {
			return nil, h.dir.fs.toErrno("readdir", h.err)
		}
		return nil, 0
	}
	e := h.ents[h.pos]
	h.pos++
	return &fuse.DirEntry{Name: e.Name, Mode: modeOf(e.Attr.Kind), Ino: uint64(e.Attr.Ino), Off: uint64(h.pos)}, 0
}

var _ = (fusefs.FileSeekdirer)((*dirHandle)(nil))

func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off > 0 && !h.waitLocked(int(min(off, 1<<31)-1)) {
		return syscall.EINVAL
	}
	h.pos = int(off)
	return 0
}

var _ = (fusefs.FileLookuper)((*dirHandle)(nil))

// Lookup answers readdirplus from the scan: the name is the last one
// Readdirent produced.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	h.mu.Lock()
	var e index.Entry
	found := h.pos > 0 && h.ents[h.pos-1].Name == name
	if found {
		e = h.ents[h.pos-1]
	}
	h.mu.Unlock()
	if found {
		return h.dir.fs.newChild(ctx, &h.dir.Inode, name, e.Attr, out), 0
	}
	return h.dir.Lookup(ctx, name, out)
}

var _ = (fusefs.FileFsyncdirer)((*dirHandle)(nil))

// Fsyncdir succeeds once the directory's entries are as durable as a
// file's close: every change to them was committed to the index before it
// returned, and the index is synced to its disk here.
func (h *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return h.dir.fs.syncIndex(ctx)
}

var _ = (fusefs.NodeFsyncer)((*dirNode)(nil))

// Fsync is the same for a directory opened without a handle of ours.
func (d *dirNode) Fsync(ctx context.Context, fh fusefs.FileHandle, flags uint32) syscall.Errno {
	return d.fs.syncIndex(ctx)
}

var _ = (fusefs.FileReleasedirer)((*dirHandle)(nil))

// Releasedir stops a scan still running: nobody reads the rest.
func (h *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) { h.cancel() }

// create makes an inode named name. Unless it is a symlink, it takes its
// ACLs from the directory's default ACL in the same transaction, or else
// loses the bits of umask (inheritACLs).
func (d *dirNode) create(ctx context.Context, name string, a index.Attr, umask uint32) (index.Attr, syscall.Errno) {
	if d.fs.opts.ReadOnly {
		return a, syscall.EROFS
	}
	now := time.Now()
	a.Uid, a.Gid = caller(ctx)
	a.Atime, a.Mtime, a.Ctime = now, now, now
	d.dropListing()
	var err error
	if a.Kind == index.KindSymlink || !d.fs.opts.ACLs {
		// posix_acl_create gives a symlink no ACL.
		a, err = d.fs.idx.Create(ctx, d.ino, name, a)
	} else {
		a, err = d.fs.idx.CreateInheriting(ctx, d.ino, name, a, inheritACLs(umask))
	}
	if err != nil {
		return a, d.fs.toErrno("create "+name, err)
	}
	return a, 0
}

var _ = (fusefs.NodeMkdirer)((*dirNode)(nil))

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = uninterrupted(ctx)
	mode, umask := splitUmask(mode)
	a, errno := d.create(ctx, name, index.Attr{Kind: index.KindDir, Mode: mode & 0o7777}, umask)
	if errno != 0 {
		return nil, errno
	}
	return d.fs.newChild(ctx, &d.Inode, name, a, out), 0
}

var _ = (fusefs.NodeCreater)((*dirNode)(nil))

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	ctx = uninterrupted(ctx)
	mode, umask := splitUmask(mode)
	a, errno := d.create(ctx, name, index.Attr{Kind: index.KindFile, Mode: mode & 0o7777}, umask)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	ch := d.fs.newChild(ctx, &d.Inode, name, a, out)
	fn := ch.Operations().(*fileNode)
	fh, fuseFlags, errno := fn.open(ctx, flags, a)
	return ch, fh, fuseFlags, errno
}

var _ = (fusefs.NodeMknoder)((*dirNode)(nil))

// Mknod makes a regular file, or a FIFO, socket or device node: those live
// in the index alone (FastDFS holds content, and they have none), and the
// kernel checks CAP_MKNOD for a device before it asks.
func (d *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = uninterrupted(ctx)
	mode, umask := splitUmask(mode)
	attr := index.Attr{Kind: index.KindFile, Mode: mode & 0o7777}
	if kind, ok := specialKind(mode); ok {
		attr.Kind = kind
		if kind == index.KindCharDev || kind == index.KindBlockDev {
			attr.Rdev = dev
		}
	} else if mode&syscall.S_IFMT != syscall.S_IFREG && mode&syscall.S_IFMT != 0 {
		return nil, syscall.EINVAL
	}
	a, errno := d.create(ctx, name, attr, umask)
	if errno != 0 {
		return nil, errno
	}
	return d.fs.newChild(ctx, &d.Inode, name, a, out), 0
}

var _ = (fusefs.NodeSymlinker)((*dirNode)(nil))

func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = uninterrupted(ctx)
	a, errno := d.create(ctx, name, index.Attr{Kind: index.KindSymlink, Mode: 0o777, Target: target, Size: int64(len(target))}, 0)
	if errno != 0 {
		return nil, errno
	}
	return d.fs.newChild(ctx, &d.Inode, name, a, out), 0
}

var _ = (fusefs.NodeLinker)((*dirNode)(nil))

func (d *dirNode) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = uninterrupted(ctx)
	if d.fs.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	var ino index.Ino
	switch t := target.(type) {
	case *fileNode:
		if t.group != d.group {
			return nil, syscall.EXDEV
		}
		ino = t.ino
	case *symlinkNode:
		ino = t.ino
	case *specialNode:
		ino = t.ino
	case *byIDFile:
		return d.linkByID(ctx, t, name, out)
	default:
		return nil, syscall.EPERM
	}
	d.dropListing()
	a, err := d.fs.idx.Link(ctx, ino, d.ino, name)
	if err != nil {
		return nil, d.fs.toErrno("link "+name, err)
	}
	return d.fs.newChild(ctx, &d.Inode, name, a, out), 0
}

var _ = (fusefs.NodeUnlinker)((*dirNode)(nil))

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	ctx = uninterrupted(ctx)
	if d.fs.opts.ReadOnly {
		return syscall.EROFS
	}
	if err := d.fs.holdIfOpen(ctx, d.GetChild(name)); err != nil {
		return d.fs.toErrno("unlink "+name, err)
	}
	d.dropListing()
	a, err := d.fs.idx.Unlink(ctx, d.ino, name)
	if err != nil {
		return d.fs.toErrno("unlink "+name, err)
	}
	d.fs.purgeIfUnused(ctx, a)
	return 0
}

var _ = (fusefs.NodeRmdirer)((*dirNode)(nil))

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	ctx = uninterrupted(ctx)
	if d.fs.opts.ReadOnly {
		return syscall.EROFS
	}
	return d.fs.toErrno("rmdir "+name, d.fs.idx.Rmdir(ctx, d.ino, name))
}

var _ = (fusefs.NodeRenamer)((*dirNode)(nil))

// Rename changes only the index: no data is copied. Across groups the
// content would have to move to another FastDFS group, so it is EXDEV and mv
// falls back to copy and delete.
func (d *dirNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	ctx = uninterrupted(ctx)
	if d.fs.opts.ReadOnly {
		return syscall.EROFS
	}
	if _, byID := newParent.(*byIDDir); byID {
		return syscall.EROFS
	}
	np, ok := newParent.(*dirNode)
	if !ok || np.group != d.group {
		return syscall.EXDEV
	}
	var iflags uint32
	if flags&1 != 0 { // RENAME_NOREPLACE
		iflags |= index.RenameNoReplace
	}
	if flags&2 != 0 { // RENAME_EXCHANGE
		iflags |= index.RenameExchange
	}
	if iflags&index.RenameExchange == 0 {
		if err := d.fs.holdIfOpen(ctx, np.GetChild(newName)); err != nil {
			return d.fs.toErrno("rename "+name, err)
		}
	}
	d.dropListing()
	np.dropListing()
	replaced, err := d.fs.idx.Rename(ctx, d.ino, name, np.ino, newName, iflags)
	if err != nil {
		return d.fs.toErrno("rename "+name, err)
	}
	if replaced != nil {
		d.fs.purgeIfUnused(ctx, *replaced)
	}
	return 0
}

var _ = (fusefs.NodeStatfser)((*dirNode)(nil))

// Statfs inside a group is that group's capacity as the tracker reports it.
func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	g, _ := d.fs.groupInfo(d.group)
	fillStatfs(g.TotalMB, g.FreeMB, out)
	return 0
}

// setattr applies mode, owner and time changes (size is the file's own
// business, see fileNode.Setattr).
func (f *FS) setattr(ctx context.Context, ino index.Ino, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var sa index.SetAttrIn
	changed := false
	mode, chmod := in.GetMode()
	if u, ok := in.GetUID(); ok {
		sa.Uid, changed = &u, true
	}
	if g, ok := in.GetGID(); ok {
		sa.Gid, changed = &g, true
	}
	if t, ok := in.GetATime(); ok {
		sa.Atime, changed = &t, true
	}
	if t, ok := in.GetMTime(); ok {
		sa.Mtime, changed = &t, true
	}
	if (chmod || changed) && f.opts.ReadOnly {
		return syscall.EROFS
	}
	if chmod && !f.opts.ACLs {
		// Without ACLs a chmod leaves them alone, as ext4's noacl does.
		m := mode & 0o7777
		sa.Mode, chmod, changed = &m, false, true
	}
	var a index.Attr
	var err error
	if chmod {
		// With the access ACL, in step (chmod); the rest, rarely with
		// it (a chown that clears set-ID bits), after.
		a, err = f.chmod(ctx, ino, mode&0o7777)
	}
	if err == nil && changed {
		now := time.Now()
		sa.Ctime = &now
		a, err = f.idx.SetAttr(ctx, ino, sa)
	} else if err == nil && !chmod {
		a, err = f.idx.GetAttr(ctx, ino)
	}
	if err != nil {
		return f.toErrno("setattr", err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

// symlinkNode is a symbolic link; its target lives in the index.
type symlinkNode struct {
	fusefs.Inode
	indexedXattrs // fs and ino
}

var _ = (fusefs.NodeReadlinker)((*symlinkNode)(nil))

func (s *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	a, err := s.fs.idx.GetAttr(ctx, s.ino)
	if err != nil {
		return nil, s.fs.toErrno("readlink", err)
	}
	return []byte(a.Target), 0
}

var _ = (fusefs.NodeGetattrer)((*symlinkNode)(nil))

func (s *symlinkNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := s.fs.idx.GetAttr(ctx, s.ino)
	if err != nil {
		return s.fs.toErrno("getattr", err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

var _ = (fusefs.NodeSetattrer)((*symlinkNode)(nil))

func (s *symlinkNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return s.fs.setattr(ctx, s.ino, in, out)
}

// uninterrupted detaches a change from the kernel's interruption of its
// request. go-fuse cancels the context when the caller gets a signal (Go
// programs get SIGURG all the time); an index transaction cut short after
// it committed would then answer EINTR for a create that happened, and the
// caller's retry with O_EXCL would get EEXIST. Changes are short and
// bounded by the engine's and the network's own timeouts.
func uninterrupted(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
