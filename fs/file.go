package fs

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/cache"
	"fdfsfs/index"
)

// fileNode is a regular file. Its committed content is one FastDFS file
// (index.Attr.FileID); content being written lives in a writer until close
// or fsync commits it.
type fileNode struct {
	fusefs.Inode
	fs    *FS
	ino   index.Ino
	group string

	// wmu orders this file's content changes (writes, truncates, commits).
	// It is the one lock held across network I/O: it orders the file's own
	// uploads and nothing else waits on it.
	wmu sync.Mutex

	mu sync.Mutex
	// w is the file's write state, made by its first write or truncate
	// and kept (guarded by wmu; the writer's state and shown size and
	// mtime are also guarded by mu, under which readers look at them).
	w *writer
	// keepGen is the content generation the kernel's page cache was filled
	// from (guarded by mu); an open that sees the same one keeps the cache.
	keepGen   uint64
	keepValid bool
	// Open modes, for FUSE passthrough (passthrough.go), guarded by mu:
	// pt is the cached copy the kernel reads for this inode's passthrough
	// opens (the kernel takes one per inode), ptKey its content's cache
	// key, ptOpens the handles opened while it is set (every one of them
	// a passthrough open, as the kernel wants); plainOpens counts the other
	// handles, whose page-cache or direct I/O mode forbids a passthrough
	// open while any is open. ptBad is set once pt may be written through
	// a map (an open for writing joined it; passthrough.go): pt has left
	// the block cache, and later opens no longer read it.
	pt         *cache.Backing
	ptKey      string
	ptBad      bool
	ptOpens    int
	plainOpens int
	// commits counts the content commits made through this node. On an
	// index no other host writes, a handle's attributes read at open
	// describe the committed content for as long as it is unchanged, and
	// its reads skip the index (see fileHandle.committed).
	commits atomic.Uint64
	// userXattrs is set once a user.* attribute is changed through this
	// node, so that a commit of new content mirrors them (a file that had
	// content before always does).
	userXattrs atomic.Bool
}

// overlay shows uncommitted size and mtime over the index attributes.
func (n *fileNode) overlay(a index.Attr) index.Attr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dirtyLocked() {
		a.Size = n.w.shownSize
		a.Mtime = n.w.shownMtime
	}
	return a
}

// dirtyLocked reports whether the file has uncommitted content (its
// writer is in any state but clean). Call with mu held.
func (n *fileNode) dirtyLocked() bool { return n.w != nil && n.w.state != clean }

var _ = (fusefs.NodeGetattrer)((*fileNode)(nil))

func (n *fileNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := n.fs.idx.GetAttr(ctx, n.ino)
	if err != nil {
		return n.fs.toErrno("getattr", err)
	}
	fillAttr(n.overlay(a), &out.Attr)
	return 0
}

var _ = (fusefs.NodeSetattrer)((*fileNode)(nil))

func (n *fileNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterrupted(ctx)
	if size, ok := in.GetSize(); ok {
		if n.fs.opts.ReadOnly {
			return syscall.EROFS
		}
		if errno := n.truncate(ctx, int64(size)); errno != 0 {
			return errno
		}
	}
	if errno := n.fs.setattr(ctx, n.ino, in, out); errno != 0 {
		return errno
	}
	if t, ok := in.GetMTime(); ok {
		n.setWriterMtime(t)
	}
	a, err := n.fs.idx.GetAttr(ctx, n.ino)
	if err != nil {
		return n.fs.toErrno("setattr", err)
	}
	fillAttr(n.overlay(a), &out.Attr)
	return 0
}

// setWriterMtime makes an explicit mtime (utimensat on a file still being
// written, as cp -p and rsync do before close) the one the commit stores;
// without it the commit would store the time of the last write.
func (n *fileNode) setWriterMtime(t time.Time) {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dirtyLocked() {
		n.w.mtime, n.w.shownMtime = t, t
	}
}

// truncate changes the size. With no handle open it commits at once, as
// truncate(2) promises; otherwise close or fsync does.
func (n *fileNode) truncate(ctx context.Context, size int64) syscall.Errno {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	w := n.writer()
	err := w.truncate(ctx, size)
	w.publish()
	if err != nil {
		return n.fs.toErrno("truncate", err)
	}
	n.fs.mu.Lock()
	open := n.fs.open[n.ino]
	n.fs.mu.Unlock()
	if open == 0 {
		return n.commitLocked(ctx)
	}
	return 0
}

// writer returns the file's write state, making it (clean) on first use.
// Only changes (write, truncate) call it; readers look at n.w. Call with
// wmu held.
func (n *fileNode) writer() *writer {
	if n.w == nil {
		w := &writer{n: n}
		n.mu.Lock()
		n.w = w
		n.mu.Unlock()
	}
	return n.w
}

// commitLocked makes uncommitted content durable; the file is clean
// afterwards. On failure the committed content stays as it was and the
// error is returned (from close or fsync). Call with wmu held.
func (n *fileNode) commitLocked(ctx context.Context) syscall.Errno {
	if n.w == nil {
		return 0
	}
	if err := n.w.commit(ctx); err != nil {
		return n.fs.uploadErrno("commit", err)
	}
	return 0
}

// uploadErrno is toErrno for the errors of saving content. A storage that
// says the file being uploaded does not exist means the upload was deleted
// under us (on a shared index, by another host that took this mount's
// session for dead): that is an I/O error of this file, not ENOENT, which
// would say the file itself is missing.
func (f *FS) uploadErrno(op string, err error) syscall.Errno {
	if errors.Is(err, syscall.ENOENT) && !errors.Is(err, index.ErrNotFound) {
		f.log.Error("the file being uploaded is gone from the storage", "op", op, "err", err)
		return syscall.EIO
	}
	return f.toErrno(op, err)
}

var _ = (fusefs.NodeOpener)((*fileNode)(nil))

func (n *fileNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	seq := n.commits.Load() // before the read, so a commit after it shows
	a, err := n.fs.idx.GetAttr(ctx, n.ino)
	if err != nil {
		return nil, 0, n.fs.toErrno("open", err)
	}
	fh, fuseFlags, errno := n.open(ctx, flags, a)
	var h *fileHandle
	switch fh := fh.(type) {
	case *fileHandle:
		h = fh
	case *ptHandle:
		h = &fh.fileHandle
	}
	if h != nil && !n.fs.opts.Shared {
		h.mu.Lock()
		h.attr, h.attrSeq, h.attrOK = a, seq, true
		h.mu.Unlock()
	}
	return fh, fuseFlags, errno
}

func (n *fileNode) open(ctx context.Context, flags uint32, a index.Attr) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY && n.fs.opts.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	n.fs.mu.Lock()
	n.fs.open[n.ino]++
	n.fs.mu.Unlock()

	var fuseFlags uint32
	readOnly := flags&syscall.O_ACCMODE == syscall.O_RDONLY
	if readOnly {
		// Nothing written through this handle needs saving at its
		// close (writes by other handles are saved at theirs), and the
		// kernel keeps file locks itself: one FUSE request less per
		// close. fsync(2) still commits.
		fuseFlags |= fuse.FOPEN_NOFLUSH
	}
	if h, ptFlags, ok := n.openPassthrough(flags, a); ok {
		return h, fuseFlags | ptFlags, 0
	}
	n.mu.Lock()
	n.plainOpens++
	dirty := n.dirtyLocked()
	keep := !dirty && n.keepValid && n.keepGen == a.Gen
	if readOnly && (n.fs.opts.DirectIO || !dirty && !keep && n.fs.directIOFor(a.Size)) {
		// The kernel's pages of this file are neither used nor filled,
		// so what it may hold of them (keepGen) stays as it was.
		n.mu.Unlock()
		return &fileHandle{n: n}, fuseFlags | fuse.FOPEN_DIRECT_IO, 0
	}
	if keep {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	n.keepGen, n.keepValid = a.Gen, !dirty
	n.mu.Unlock()
	h := &fileHandle{n: n}
	if !dirty && fuseFlags&fuse.FOPEN_KEEP_CACHE == 0 && readOnly && h.preload(a) {
		n.fs.prefetchOpened(n)
	}
	return h, fuseFlags, 0
}

// preload starts downloading a small file's whole content as it is opened
// for reading (see cache.Reader.Preload), so that the first read finds it
// in memory or on its way. A file the kernel still has pages of
// (FOPEN_KEEP_CACHE) may never be read through the mount, and is left.
// It reports whether the file is small enough.
func (h *fileHandle) preload(a index.Attr) bool {
	if a.FileID == "" || a.Size <= 0 || a.Size > int64(h.n.fs.cache.BlockSize()) {
		return false
	}
	obj := h.n.fs.object(a)
	rd := h.n.fs.cache.NewReader(obj)
	rd.Preload()
	h.mu.Lock()
	h.rd, h.rdKey = rd, obj.Key
	h.mu.Unlock()
	return true
}

// fileHandle is one open file description.
type fileHandle struct {
	n *fileNode

	mu sync.Mutex
	// rd reads committed content with readahead; rdKey is the content it
	// was made for (guarded by mu).
	rd    *cache.Reader
	rdKey string
	// attr is the file's attributes as open read them, while the node's
	// commits count is still attrSeq (guarded by mu; attrOK says it is set).
	attr    index.Attr
	attrSeq uint64
	attrOK  bool
	// readObj is the content rd reads and readBytes the bytes read from
	// it; sawEnd is set once a read reached its end (guarded by mu). A
	// handle that read most of a file to its end has the cache complete
	// it at release, for passthrough opens later.
	readObj   cache.Object
	readBytes int64
	sawEnd    bool
}

// committed returns the committed content's attributes: those read at
// open if no commit went through the node since (an index no other host
// changes), else the index's.
func (h *fileHandle) committed(ctx context.Context) (index.Attr, error) {
	h.mu.Lock()
	a, ok := h.attr, h.attrOK && h.attrSeq == h.n.commits.Load()
	h.mu.Unlock()
	if ok {
		return a, nil
	}
	return h.n.fs.idx.GetAttr(ctx, h.n.ino)
}

var _ = (fusefs.FileReader)((*fileHandle)(nil))

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := h.n
	if got, dirty, err := n.readUncommitted(ctx, dest, off); err != nil {
		return nil, n.fs.toErrno("read", err)
	} else if dirty {
		return readResult(dest[:got]), 0
	}
	a, err := h.committed(ctx)
	if err != nil {
		return nil, n.fs.toErrno("read", err)
	}
	if off >= a.Size || a.FileID == "" {
		return fuse.ReadResultData(nil), 0
	}
	if rest := a.Size - off; int64(len(dest)) > rest {
		dest = dest[:rest]
	}
	obj := n.fs.object(a)
	h.mu.Lock()
	if h.rd == nil || h.rdKey != obj.Key {
		if h.rd != nil {
			h.rd.Close()
		}
		h.rd, h.rdKey = n.fs.cache.NewReader(obj), obj.Key
	}
	rd := h.rd
	h.mu.Unlock()
	res, errno := n.fs.readShared(ctx, "read", rd, dest, off)
	if errno == 0 {
		h.mu.Lock()
		if h.readObj.Key != obj.Key {
			h.readObj, h.readBytes, h.sawEnd = obj, 0, false
		}
		h.readBytes += int64(res.Size())
		h.sawEnd = h.sawEnd || off+int64(res.Size()) >= obj.Size
		h.mu.Unlock()
	}
	return res, errno
}

// readUncommitted reads from the writer when the file has uncommitted
// content. A file found dirty may be committed while the read waits for
// wmu: it is clean then, and the read goes to the committed content
// (dirty false), which the commit has just written.
func (n *fileNode) readUncommitted(ctx context.Context, dest []byte, off int64) (got int, dirty bool, err error) {
	n.mu.Lock()
	dirty = n.dirtyLocked()
	n.mu.Unlock()
	if !dirty {
		return 0, false, nil
	}
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.w.state == clean {
		return 0, false, nil
	}
	got, err = n.w.readAt(ctx, dest, off)
	return got, true, err
}

// readShared answers a read of committed content through rd: with the
// cache's blocks themselves where it lends them, else with the bytes it
// copied into dest.
func (f *FS) readShared(ctx context.Context, op string, rd *cache.Reader, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	span, got, err := rd.ReadShared(ctx, dest, off)
	if span.Data != nil {
		return spanResult{span}, 0
	}
	if err != nil && got < len(dest) {
		return nil, f.toErrno(op, err)
	}
	return readResult(dest[:got]), 0
}

// Read replies carry Slices, which go-fuse writes with writev before it
// calls Done. Without it go-fuse first tries to splice the reply through a
// pipe, which for a 1 MiB read needs a pipe larger than the default limit:
// the attempt fails, costs syscalls and logs a line per read, and only then
// falls back to the same writev.

// readResult replies with bytes read into go-fuse's buffer.
func readResult(b []byte) fuse.ReadResult { return fuse.ReadResultVector([][]byte{b}) }

// spanResult replies to a read with the blocks' memory itself (one block,
// or the two a read across a boundary touches); go-fuse calls Done once the
// reply is written to the kernel.
type spanResult struct{ span cache.Span }

func (r spanResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	if len(r.span.Rest) == 0 {
		return r.span.Data, fuse.OK
	}
	return append(append(buf[:0], r.span.Data...), r.span.Rest...), fuse.OK
}

func (r spanResult) Slices() ([][]byte, fuse.Status) {
	if len(r.span.Rest) == 0 {
		return [][]byte{r.span.Data}, fuse.OK
	}
	return [][]byte{r.span.Data, r.span.Rest}, fuse.OK
}

func (r spanResult) Size() int { return r.span.Len() }
func (r spanResult) Done()     { r.span.Release() }

var _ = (fusefs.FileWriter)((*fileHandle)(nil))

func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n := h.n
	n.wmu.Lock()
	defer n.wmu.Unlock()
	w := n.writer()
	err := w.writeAt(ctx, data, off)
	w.publish()
	if err != nil {
		return 0, n.fs.uploadErrno("write", err)
	}
	return uint32(len(data)), 0
}

var _ = (fusefs.FileFlusher)((*fileHandle)(nil))

// Flush runs on every close(): what was written is committed before close
// returns, so close's result says whether the data is safe.
//
// A signal to the closing thread (Go's runtime preempts with SIGURG; any
// program may get SIGCHLD) makes the kernel interrupt the request. The
// commit goes on regardless, bounded by the network timeout of each
// request: an EINTR from close() would leave the data unsaved, and nobody
// retries a close.
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno {
	ctx = context.WithoutCancel(ctx)
	h.n.wmu.Lock()
	defer h.n.wmu.Unlock()
	return h.n.commitLocked(ctx)
}

var _ = (fusefs.FileFsyncer)((*fileHandle)(nil))

func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.Flush(ctx)
}

var _ = (fusefs.FileReleaser)((*fileHandle)(nil))

func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	return h.release(ctx, false)
}

// release closes a handle; pt says it was opened in passthrough mode.
func (h *fileHandle) release(ctx context.Context, pt bool) syscall.Errno {
	n := h.n
	h.mu.Lock()
	if h.rd != nil {
		h.rd.Close()
		h.rd = nil
	}
	readMost := h.sawEnd && h.readBytes >= h.readObj.Size/2 && h.readObj.Size > int64(n.fs.cache.BlockSize())
	obj := h.readObj
	h.mu.Unlock()
	n.releaseMode(pt)
	if readMost {
		n.fs.completeLater(obj)
	}

	n.fs.mu.Lock()
	n.fs.open[n.ino]--
	last := n.fs.open[n.ino] <= 0
	recheck := false
	if last {
		delete(n.fs.open, n.ino)
		recheck = n.fs.recheck[n.ino] || n.fs.held[n.ino]
		delete(n.fs.recheck, n.ino)
	}
	n.fs.mu.Unlock()
	if !last {
		return 0
	}
	// Release has no caller waiting for its result; a bounded context keeps
	// a dead storage from pinning the handle forever.
	bg, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n.wmu.Lock()
	errno := n.commitLocked(bg)
	n.wmu.Unlock()
	if errno != 0 {
		n.fs.log.Warn("content written after the last flush was not saved", "ino", n.ino, "errno", errno)
	}
	if !recheck {
		// No name went here while it was open. One that went on another
		// host was purged there (this mount held nothing), or is left to
		// the orphan sweep.
		return 0
	}
	if a, err := n.fs.idx.GetAttr(bg, n.ino); err == nil {
		n.fs.purgeIfUnused(bg, a)
	} else if errors.Is(err, index.ErrNotFound) {
		n.fs.dropHeld(n.ino) // purged already, and its holds with it
	}
	return 0
}

var _ = (fusefs.FileGetattrer)((*fileHandle)(nil))

func (h *fileHandle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.n.Getattr(ctx, h, out)
}

// object is committed content as the block cache sees it. The key carries
// the generation: an appender file changed in place keeps its file ID, and
// must not be served from blocks of its old content.
func (f *FS) object(a index.Attr) cache.Object {
	fileID := a.FileID
	return cache.Object{
		Key:  fileID + "#" + strconv.FormatUint(a.Gen, 10),
		Size: a.Size,
		Fetch: cache.FetcherFunc(func(ctx context.Context, off, length int64, w io.Writer) (int64, error) {
			return f.be.Download(ctx, fileID, off, length, w)
		}),
	}
}
