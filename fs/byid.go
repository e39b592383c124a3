package fs

import (
	"context"
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
// paths, as nginx URLs do. These nodes are virtual: they are not listed and
// never enter the index.

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

// Readdir is empty: FastDFS cannot list a directory's files, and the point
// of these paths is opening IDs the application already has.
func (d *byIDDir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	return fusefs.NewListDirStream(nil), 0
}

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
	size, err := d.fs.be.FileSize(ctx, path)
	if err != nil {
		return nil, d.fs.toErrno("lookup by id "+path, err)
	}
	n := &byIDFile{fs: d.fs, fileID: path, size: size}
	n.fill(&out.Attr)
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFREG, Ino: byIDIno(path)}), 0
}

// byIDFile is an existing FastDFS file opened by its ID, read-only.
type byIDFile struct {
	fusefs.Inode
	fs     *FS
	fileID string
	size   int64
}

func (n *byIDFile) fill(out *fuse.Attr) {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(n.size)
	out.Nlink = 1
	out.Blocks = (out.Size + 511) / 512
	t := time.Unix(0, 0)
	out.SetTimes(&t, &t, &t)
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
