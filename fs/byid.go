package fs

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/cache"
	"fdfsfs/index"
)

// By-ID paths: group2/M00/00/00/<name> opens the FastDFS file
// group2/M00/00/00/<name> read-only, whether or not a name in the index
// points at it, so file IDs kept in an application's database work as
// paths, as nginx URLs do. The directories list the index's by-ID view:
// the files `fdfsfs index adopt` found in the group and those written
// through the mount. The group directory does not list its store paths
// (M00): a copy, du or find of a group would otherwise meet every named
// file twice; the tree is listed from M00 down. The tree is read-only (EROFS), so that an rm -rf in
// the wrong place never deletes a file an application still references; ln
// from it into a named directory gives a file a name without copying it.
// These nodes are virtual: they have no inodes in the index, and their
// numbers come from their paths.

// isStorePath reports whether name is a FastDFS store path directory (M00).
func isStorePath(name string) bool {
	return len(name) == 3 && name[0] == 'M' && isHex(name[1:])
}

// isHex reports whether s is upper-case hex, as FastDFS names its store
// paths and directories (%02X); the index's by-ID view takes no other.
func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// byIDIno gives virtual nodes inode numbers far above the index's, stable
// for the same path.
func byIDIno(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64() | 1<<63
}

// byIDDir is M00, M00/00 or M00/00/00 below a group.
type byIDDir struct {
	fusefs.Inode
	fs    *FS
	group string
	parts []string
}

var _ = (fusefs.NodeGetattrer)((*byIDDir)(nil))

func (d *byIDDir) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	return 0
}

var _ = (fusefs.NodeReaddirer)((*byIDDir)(nil))

// Readdir lists the index's by-ID view of the directory: the
// sub-directories that hold files, or the files of a leaf directory. A
// file the view does not list still opens by its ID.
func (d *byIDDir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	byID, ok := d.fs.idx.(index.ByIDIndex)
	if !ok {
		return fusefs.NewListDirStream(nil), 0
	}
	dir := d.path()
	var list []fuse.DirEntry
	err := byID.ByIDReadDir(ctx, dir, 0, func(subs []string) error {
		for _, s := range subs {
			list = append(list, fuse.DirEntry{Name: s, Mode: syscall.S_IFDIR, Ino: byIDIno(dir + "/" + s)})
		}
		return nil
	}, func(es []index.ByIDEntry) error {
		for _, e := range es {
			list = append(list, fuse.DirEntry{Name: e.Name(), Mode: syscall.S_IFREG, Ino: byIDIno(e.FileID)})
		}
		return nil
	})
	if err != nil {
		return nil, d.fs.toErrno("readdir by id "+dir, err)
	}
	return fusefs.NewListDirStream(list), 0
}

func (d *byIDDir) path() string { return d.group + "/" + strings.Join(d.parts, "/") }

var _ = (fusefs.NodeLookuper)((*byIDDir)(nil))

func (d *byIDDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	parts := append(append([]string(nil), d.parts...), name)
	path := d.group + "/" + strings.Join(parts, "/")
	if len(parts) < 4 {
		if len(name) != 2 || !isHex(name) {
			return nil, syscall.ENOENT
		}
		out.Mode = syscall.S_IFDIR | 0o555
		return d.NewInode(ctx, &byIDDir{fs: d.fs, group: d.group, parts: parts},
			fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: byIDIno(path)}), 0
	}
	n, err := d.fs.byIDFile(ctx, path)
	if err != nil {
		return nil, d.fs.toErrno("lookup by id "+path, err)
	}
	desc := n.current()
	desc.fill(&out.Attr)
	ch := d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFREG, Ino: byIDIno(path)})
	if old, ok := ch.Operations().(*byIDFile); ok && old != n {
		// go-fuse keeps the node of an inode the kernel still holds:
		// it takes what this lookup found.
		old.set(desc)
	}
	return ch, 0
}

// byIDFile is an existing FastDFS file opened by its ID, read-only. The
// kernel may keep its inode across many lookups and opens while the file
// changes (a named appender file is changed in place under its ID), so
// getattr and open describe it again.
type byIDFile struct {
	fusefs.Inode
	fs     *FS
	fileID string

	mu   sync.Mutex
	desc byIDDesc // guarded by mu
}

// byIDDesc is what a by-ID file looks like at one moment.
type byIDDesc struct {
	size  int64
	mtime time.Time
	// ino is the inode of the name holding the file (a named entry of
	// the view), 0 when no name does or it is not known.
	ino index.Ino
	// gen is that inode's content generation, which keys the file's
	// blocks in the cache as a read through the name does: a named
	// appender file is changed in place under the same ID.
	gen uint64
}

// byIDFile makes the node of fileID, described as describeByID does.
func (f *FS) byIDFile(ctx context.Context, fileID string) (*byIDFile, error) {
	desc, err := f.describeByID(ctx, fileID)
	if err != nil {
		return nil, err
	}
	return &byIDFile{fs: f, fileID: fileID, desc: desc}, nil
}

// describeByID describes fileID from the index's view when it lists it
// with a size, so that `ls -l` of a by-ID directory asks FastDFS nothing,
// and from the storage otherwise.
func (f *FS) describeByID(ctx context.Context, fileID string) (byIDDesc, error) {
	d := byIDDesc{mtime: time.Unix(0, 0)}
	if byID, ok := f.idx.(index.ByIDIndex); ok {
		e, err := byID.ByIDLookup(ctx, fileID)
		switch {
		case err == nil:
			d.mtime, d.ino = e.Mtime, e.Ino
			if e.Ino != 0 {
				a, err := f.idx.GetAttr(ctx, e.Ino)
				switch {
				case err == nil && a.FileID == fileID:
					d.gen = a.Gen
				case err != nil && !errors.Is(err, index.ErrNotFound):
					return byIDDesc{}, err
				}
			}
			if e.Size >= 0 {
				d.size = e.Size
				return d, nil
			}
		case !errors.Is(err, index.ErrNotFound):
			return byIDDesc{}, err
		}
	}
	size, err := f.be.FileSize(ctx, fileID)
	if err != nil {
		return byIDDesc{}, err
	}
	d.size = size
	return d, nil
}

func (n *byIDFile) current() byIDDesc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.desc
}

func (n *byIDFile) set(d byIDDesc) {
	n.mu.Lock()
	n.desc = d
	n.mu.Unlock()
}

// refresh describes the file again and keeps what it found.
func (n *byIDFile) refresh(ctx context.Context) (byIDDesc, error) {
	d, err := n.fs.describeByID(ctx, n.fileID)
	if err != nil {
		return byIDDesc{}, err
	}
	n.set(d)
	return d, nil
}

// The view is not a link: a by-ID file counts one link whatever names the
// tree gives it.
func (d byIDDesc) fill(out *fuse.Attr) {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(d.size)
	out.Nlink = 1
	out.Blocks = (out.Size + 511) / 512
	out.SetTimes(&d.mtime, &d.mtime, &d.mtime)
}

var _ = (fusefs.NodeGetattrer)((*byIDFile)(nil))

func (n *byIDFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d, err := n.refresh(ctx)
	if err != nil {
		return n.fs.toErrno("getattr by id "+n.fileID, err)
	}
	d.fill(&out.Attr)
	return 0
}

var _ = (fusefs.NodeOpener)((*byIDFile)(nil))

func (n *byIDFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EROFS
	}
	d, err := n.refresh(ctx)
	if err != nil {
		return nil, 0, n.fs.toErrno("open by id "+n.fileID, err)
	}
	// No FOPEN_KEEP_CACHE: an appender file can change under its ID, and
	// a by-ID node does not know whether it is one.
	obj := n.fs.object(index.Attr{FileID: n.fileID, Size: d.size, Gen: d.gen})
	fuseFlags := uint32(fuse.FOPEN_NOFLUSH) // read-only: nothing to save at close
	if n.fs.opts.DirectIO || n.fs.directIOFor(d.size) {
		fuseFlags |= fuse.FOPEN_DIRECT_IO
	}
	return &byIDHandle{n: n, size: d.size, rd: n.fs.cache.NewReader(obj)}, fuseFlags, 0
}

// byIDHandle reads through a cache.Reader of its own, as a named file's
// handle does: sequential reads get readahead, and blocks in memory are
// lent to the reply instead of copied.
type byIDHandle struct {
	n    *byIDFile
	size int64 // the file's size at open, which rd reads
	rd   *cache.Reader
}

var _ = (fusefs.FileReader)((*byIDHandle)(nil))

func (h *byIDHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= h.size {
		return fuse.ReadResultData(nil), 0
	}
	if rest := h.size - off; int64(len(dest)) > rest {
		dest = dest[:rest]
	}
	return h.n.fs.readShared(ctx, "read by id", h.rd, dest, off)
}

var _ = (fusefs.FileReleaser)((*byIDHandle)(nil))

func (h *byIDHandle) Release(ctx context.Context) syscall.Errno {
	h.rd.Close()
	return 0
}

var _ = (fusefs.NodeGetxattrer)((*byIDFile)(nil))

func (n *byIDFile) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return n.fs.metadataXattr(ctx, n.fileID, attr, dest)
}

var _ = (fusefs.NodeListxattrer)((*byIDFile)(nil))

func (n *byIDFile) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return n.fs.listMetadataXattrs(ctx, n.fileID, dest)
}
