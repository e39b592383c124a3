package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/cache"
	"fdfsfs/index"
)

// FUSE passthrough: a read-only open of a file whose content is complete
// in the block cache hands the kernel that object's file (cache.Backing),
// and the kernel reads it itself, at the speed of a local file, without a
// FUSE request per read.
//
// The kernel's rules shape what an open may answer. An inode has at most
// one backing file at a time, and while any open of it is a passthrough
// one, every new open must be one too (FOPEN_PASSTHROUGH, else the open
// fails with EIO); a passthrough open fails as well while the inode is open
// in page-cache mode (which a shared map of a direct-I/O open enters). So,
// per inode:
//
//   - no handle open: a read-only open of complete content, which the
//     kernel holds no pages of, is a passthrough open (pt set);
//   - pt set: every open is a passthrough one on the same backing file; one
//     that may not read it (for writing, or newer content) also gets
//     FOPEN_DIRECT_IO, which makes the kernel send its reads and writes to
//     the mount as usual;
//   - other handles open: no passthrough.
//
// A passthrough open for writing has one hazard the kernel leaves: it maps
// such an open from the backing file, which it reopens for writing, so a
// shared writable map of it writes the block cache's copy instead of the
// file. Such writes cannot be refused; the handle finds them at flush
// (the backing file changed), close(2) fails with EIO, and the copy is
// dropped from the cache for good, so it is never read as the file.
//
// go-fuse registers the backing file with the kernel at the first
// passthrough open of an inode and unregisters it after the release of the
// last one, in its own code around ours; PassthroughGuard keeps an open and
// a release of one inode from running at once, so that the registration
// and our record of it (pt) never disagree.
//
// Eviction: the Backing pins the object's blocks, so the cache never
// punches a hole under the kernel's reads; its file is unlinked only when
// nothing of the object is cached any more, which an open file outlives.

// passthrough is the mount's passthrough state.
type passthrough struct {
	mu      sync.Mutex
	enabled bool // mu; set once the kernel took a backing file (EnablePassthrough)
	// filling holds a token while a background Complete runs: one at a
	// time, others are skipped.
	filling chan struct{}
}

func (p *passthrough) on() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.enabled
}

// EnablePassthrough checks, once the mount is up, that the kernel takes a
// file of the block cache as a backing file (it wants CAP_SYS_ADMIN, a
// kernel with FUSE passthrough, and a cache on a file system that is not
// itself stacked), and turns passthrough opens on if it does. If it does
// not, the mount logs why, once, and reads every file through FUSE.
func (f *FS) EnablePassthrough(server *fuse.Server) {
	if !f.opts.Passthrough {
		return
	}
	probe, err := os.Open(filepath.Join(f.cache.Dir(), "LOCK"))
	if err != nil {
		f.log.Info("FUSE passthrough is off: cannot open a file of the block cache", "err", err)
		return
	}
	defer probe.Close()
	id, errno := server.RegisterBackingFd(&fuse.BackingMap{Fd: int32(probe.Fd())})
	if errno != 0 {
		f.log.Info("FUSE passthrough is off: the kernel refused a backing file (it needs root, Linux 6.9 or later, and a cache directory not on a stacked file system such as overlayfs); files are read through the mount", "errno", errno)
		return
	}
	if errno := server.UnregisterBackingFd(id); errno != 0 {
		f.log.Warn("FUSE passthrough: unregistering the probe", "errno", errno)
	}
	f.passthrough.mu.Lock()
	f.passthrough.enabled = true
	f.passthrough.mu.Unlock()
	f.log.Debug("FUSE passthrough is on")
}

// ptHandle is an open of an inode in passthrough mode: the kernel reads
// the backing file itself, unless the open also has FOPEN_DIRECT_IO.
type ptHandle struct {
	fileHandle
	// writable is set for an open for writing. The kernel sends its
	// reads and writes to the mount (FOPEN_DIRECT_IO), but maps it from
	// the backing file, which it opens for writing for it: a shared
	// writable map of it writes the block cache's file, not the file.
	writable bool
	// first is set for the open that made the inode's backing file:
	// go-fuse asks it for the descriptor (PassthroughFd, which sets
	// fdAsked) unless it has stopped registering backing files for the
	// rest of the mount, which it does once the kernel refuses one.
	first    bool
	fdAsked  atomic.Bool
	reported bool // guarded by fileHandle.mu; mapWritten said so once
}

// passthroughLost turns passthrough opens off, and says so once.
func (f *FS) passthroughLost() {
	f.passthrough.mu.Lock()
	was := f.passthrough.enabled
	f.passthrough.enabled = false
	f.passthrough.mu.Unlock()
	if was {
		f.log.Warn("FUSE passthrough is off: go-fuse stopped registering backing files (the kernel refused one after the mount started); files are read through the mount")
	}
}

var _ = (fusefs.FilePassthroughFder)((*ptHandle)(nil))

// PassthroughFd gives go-fuse the inode's backing file, which it registers
// with the kernel for this and the following passthrough opens.
func (h *ptHandle) PassthroughFd() (int, bool) {
	h.fdAsked.Store(true)
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pt == nil {
		return 0, false
	}
	return n.pt.Fd(), true
}

var _ = (fusefs.FileReleaser)((*ptHandle)(nil))

func (h *ptHandle) Release(ctx context.Context) syscall.Errno {
	if h.first && !h.fdAsked.Load() {
		// The kernel read this open through the mount, as a page-cache
		// one: go-fuse registers no backing files any more.
		h.n.fs.passthroughLost()
	}
	if h.mapWritten() {
		h.n.fs.log.Error("a shared writable map of a file open for writing while it was also open through passthrough wrote the local cached copy, not the file: those writes are lost", "ino", h.n.ino)
	}
	return h.release(ctx, true)
}

var _ = (fusefs.FileFlusher)((*ptHandle)(nil))

// Flush commits as for any handle, and fails with EIO where writes through
// a shared map of this open went to the backing file instead (see
// writable): close(2) is where an application learns that its writes
// were not saved.
func (h *ptHandle) Flush(ctx context.Context) syscall.Errno {
	errno := h.fileHandle.Flush(ctx)
	if h.mapWritten() {
		h.n.fs.log.Error("a shared writable map of a file open for writing while it was also open through passthrough wrote the local cached copy, not the file: those writes are lost", "ino", h.n.ino)
		return syscall.EIO
	}
	return errno
}

var _ = (fusefs.FileFsyncer)((*ptHandle)(nil))

func (h *ptHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return h.Flush(ctx) }

// mapWritten reports whether the inode's backing file was written since it
// was opened, for an open for writing; it then drops that copy from the
// block cache, so that it is never read as the file's content.
func (h *ptHandle) mapWritten() bool {
	if !h.writable {
		return false
	}
	n := h.n
	n.mu.Lock()
	b := n.pt
	n.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reported || b == nil || !b.Changed() {
		return false
	}
	h.reported = true
	b.Discard()
	n.mu.Lock()
	if n.pt == b {
		n.ptBad = true
	}
	n.mu.Unlock()
	return true
}

// openPassthrough answers an open of n in passthrough mode when it must
// (the inode has a backing file) or may (see the top of this file); ok is
// false otherwise. flags are the open's.
func (n *fileNode) openPassthrough(flags uint32, a index.Attr) (h *ptHandle, fuseFlags uint32, ok bool) {
	readOnly := flags&syscall.O_ACCMODE == syscall.O_RDONLY && flags&syscall.O_DIRECT == 0
	var key string
	if a.FileID != "" {
		key = n.fs.object(a).Key
	}
	writable := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if h, fuseFlags, ok := n.joinPassthrough(readOnly, writable, key); ok {
		return h, fuseFlags, true
	}
	n.mu.Lock()
	want := readOnly && key != "" && a.Size > int64(n.fs.cache.BlockSize()) &&
		n.plainOpens == 0 && !n.dirtyLocked() &&
		// Pages the kernel holds of this content serve it faster still.
		!(n.keepValid && n.keepGen == a.Gen)
	n.mu.Unlock()
	if !want || !n.fs.passthrough.on() {
		return nil, 0, false
	}
	b, ok, err := n.fs.cache.OpenBacking(n.fs.object(a))
	if err != nil {
		n.fs.log.Warn("cannot open a cached file for passthrough", "ino", n.ino, "err", err)
	}
	if !ok {
		return nil, 0, false
	}
	n.mu.Lock()
	if n.pt != nil || n.plainOpens > 0 || n.dirtyLocked() {
		// Another open or a write got here first (PassthroughGuard
		// keeps opens apart in a mount; not so in every caller).
		n.mu.Unlock()
		b.Close()
		if h, fuseFlags, ok := n.joinPassthrough(readOnly, writable, key); ok {
			return h, fuseFlags, true
		}
		return nil, 0, false
	}
	n.pt, n.ptKey, n.ptOpens = b, key, 1
	n.mu.Unlock()
	return &ptHandle{fileHandle: fileHandle{n: n}, first: true}, 0, true
}

// joinPassthrough opens n in passthrough mode if it has a backing file:
// reading it where the open is read-only and the content is the backing
// file's, else with FOPEN_DIRECT_IO, so the mount serves its reads and
// writes. ok is false when n has no backing file.
func (n *fileNode) joinPassthrough(readOnly, writable bool, key string) (*ptHandle, uint32, bool) {
	n.mu.Lock()
	if n.pt == nil {
		n.mu.Unlock()
		return nil, 0, false
	}
	n.ptOpens++
	h := &ptHandle{fileHandle: fileHandle{n: n}, writable: writable}
	if readOnly && key == n.ptKey && !n.ptBad && !n.dirtyLocked() {
		n.mu.Unlock()
		return h, 0, true
	}
	var drop *cache.Backing
	if writable && !n.ptBad {
		// The kernel opens the backing file for writing for this open,
		// and a shared map of it writes there, even after close(2),
		// where no flush can see it. The copy leaves the block cache
		// now, so that nothing written through such a map is ever read
		// from the cache as the file; the opens reading it keep it, as
		// a local file's readers see a map's writes.
		n.ptBad, drop = true, n.pt
	}
	n.mu.Unlock()
	if drop != nil {
		drop.Discard()
	}
	return h, fuse.FOPEN_DIRECT_IO, true
}

// releaseMode counts a handle of n as closed; the last passthrough one
// closes the backing file.
func (n *fileNode) releaseMode(pt bool) {
	var done *cache.Backing
	n.mu.Lock()
	if pt {
		if n.ptOpens--; n.ptOpens == 0 {
			done, n.pt, n.ptKey, n.ptBad = n.pt, nil, "", false
		}
	} else {
		n.plainOpens--
	}
	n.mu.Unlock()
	if done != nil {
		done.Close()
	}
}

// completeLater writes the blocks of obj the cache lacks, in the
// background, so that the next open of it can be a passthrough one. One
// runs at a time; an object larger than a quarter of the cache is left.
func (f *FS) completeLater(obj cache.Object) {
	if !f.passthrough.on() || obj.Size > f.cache.MaxBytes()/4 {
		return
	}
	select {
	case <-f.stop:
		return
	case f.passthrough.filling <- struct{}{}:
	default:
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() { <-f.passthrough.filling }()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-f.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := f.cache.Complete(ctx, obj); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, cache.ErrClosed) {
			f.log.Debug("completing a cached file for passthrough", "key", obj.Key, "err", err)
		}
	}()
}

// PassthroughGuard wraps a FUSE file system so that an open and a release
// of one inode never run at the same time. go-fuse registers a backing
// file in its Open after the file system's, and unregisters it in its
// Release after the file system's; between the two, a concurrent open
// could be handed a registration that the file system has already let go
// of (the previous content's file), or go-fuse could count a plain handle
// against a passthrough one. Each inode has a lock of its own while an
// open or release of it runs: a release may commit (an upload) or purge
// an unlinked file, and only that inode's opens wait for it.
func PassthroughGuard(raw fuse.RawFileSystem) fuse.RawFileSystem {
	return &passthroughGuard{RawFileSystem: raw, locks: make(map[uint64]*guardLock)}
}

type passthroughGuard struct {
	fuse.RawFileSystem
	mu    sync.Mutex
	locks map[uint64]*guardLock // mu; by node ID, while in use
}

type guardLock struct {
	sync.Mutex
	users int // passthroughGuard.mu
}

// lock takes node's lock; the returned func lets it go.
func (g *passthroughGuard) lock(node uint64) (unlock func()) {
	g.mu.Lock()
	l := g.locks[node]
	if l == nil {
		l = &guardLock{}
		g.locks[node] = l
	}
	l.users++
	g.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		g.mu.Lock()
		if l.users--; l.users == 0 {
			delete(g.locks, node)
		}
		g.mu.Unlock()
	}
}

func (g *passthroughGuard) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	defer g.lock(in.NodeId)()
	return g.RawFileSystem.Open(cancel, in, out)
}

func (g *passthroughGuard) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	defer g.lock(in.NodeId)()
	g.RawFileSystem.Release(cancel, in)
}

// directIOFor reports whether a read-only open of a file of size bytes
// goes without the page cache (Options.DirectIOSize).
func (f *FS) directIOFor(size int64) bool {
	return f.opts.DirectIOSize > 0 && size >= f.opts.DirectIOSize
}
