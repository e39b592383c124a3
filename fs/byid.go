package fs

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
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

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f') {
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
	n.fill(&out.Attr)
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFREG, Ino: byIDIno(path)}), 0
}

// byIDFile is an existing FastDFS file opened by its ID, read-only.
type byIDFile struct {
	fusefs.Inode
	fs     *FS
	fileID string
	size   int64
	mtime  time.Time
	// ino is the inode of the name holding the file (a named entry of
	// the view), 0 when no name does or it is not known.
	ino index.Ino
}

// byIDFile describes fileID from the index's view when it lists it with a
// size, so that `ls -l` of a by-ID directory asks FastDFS nothing, and
// from the storage otherwise.
func (f *FS) byIDFile(ctx context.Context, fileID string) (*byIDFile, error) {
	n := &byIDFile{fs: f, fileID: fileID, mtime: time.Unix(0, 0)}
	if byID, ok := f.idx.(index.ByIDIndex); ok {
		e, err := byID.ByIDLookup(ctx, fileID)
		switch {
		case err == nil:
			n.mtime, n.ino = e.Mtime, e.Ino
			if e.Size >= 0 {
				n.size = e.Size
				return n, nil
			}
		case !errors.Is(err, index.ErrNotFound):
			return nil, err
		}
	}
	size, err := f.be.FileSize(ctx, fileID)
	if err != nil {
		return nil, err
	}
	n.size = size
	return n, nil
}

// The view is not a link: a by-ID file counts one link whatever names the
// tree gives it.
func (n *byIDFile) fill(out *fuse.Attr) {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(n.size)
	out.Nlink = 1
	out.Blocks = (out.Size + 511) / 512
	out.SetTimes(&n.mtime, &n.mtime, &n.mtime)
}

var _ = (fusefs.NodeGetattrer)((*byIDFile)(nil))

func (n *byIDFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	return 0
}

var _ = (fusefs.NodeOpener)((*byIDFile)(nil))

func (n *byIDFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EROFS
	}
	// No FOPEN_KEEP_CACHE: an appender file can change under its ID, and
	// a by-ID node does not know whether it is one.
	obj := n.fs.object(index.Attr{FileID: n.fileID, Size: n.size})
	fuseFlags := uint32(fuse.FOPEN_NOFLUSH) // read-only: nothing to save at close
	if n.fs.opts.DirectIO {
		fuseFlags |= fuse.FOPEN_DIRECT_IO
	}
	return &byIDHandle{n: n, rd: n.fs.cache.NewReader(obj)}, fuseFlags, 0
}

// byIDHandle reads through a cache.Reader of its own, as a named file's
// handle does: sequential reads get readahead, and blocks in memory are
// lent to the reply instead of copied.
type byIDHandle struct {
	n  *byIDFile
	rd *cache.Reader
}

var _ = (fusefs.FileReader)((*byIDHandle)(nil))

func (h *byIDHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := h.n
	if off >= n.size {
		return fuse.ReadResultData(nil), 0
	}
	if rest := n.size - off; int64(len(dest)) > rest {
		dest = dest[:rest]
	}
	return n.fs.readShared(ctx, "read by id", h.rd, dest, off)
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
