package fs

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// openAny opens n as the kernel would and returns the handle, whichever
// kind it is, and the open's FUSE flags.
func openAny(t *testing.T, n *fileNode, flags uint32) (fusefs.FileHandle, uint32) {
	t.Helper()
	fh, fuseFlags, errno := n.Open(context.Background(), flags)
	if errno != 0 {
		t.Fatalf("open: %v", errno)
	}
	return fh, fuseFlags
}

// handleOf is the fileHandle inside either kind of handle.
func handleOf(fh fusefs.FileHandle) *fileHandle {
	if p, ok := fh.(*ptHandle); ok {
		return &p.fileHandle
	}
	return fh.(*fileHandle)
}

func release(fh fusefs.FileHandle) { fh.(fusefs.FileReleaser).Release(context.Background()) }

// The test cache's blocks are 64 KiB.
const ptTestBlock = 64 << 10

// A read-only open of a file of at least DirectIOSize bypasses the page
// cache; a smaller file, an open for writing, and a file the kernel holds
// pages of keep it.
func TestOpenChoosesDirectIOByTheSize(t *testing.T) {
	tf := newTestFS(t, func(o *Options) { o.DirectIOSize = 4 * ptTestBlock })
	small := tf.committed(t, "small", pattern(4*ptTestBlock-1, 1))
	large := tf.committed(t, "large", pattern(4*ptTestBlock, 2))
	for _, c := range []struct {
		name   string
		n      *fileNode
		flags  uint32
		direct bool
	}{
		{"small, read-only", small, syscall.O_RDONLY, false},
		{"large, read-only", large, syscall.O_RDONLY, true},
		{"large, read-write", large, syscall.O_RDWR, false},
		{"large, write-only", large, syscall.O_WRONLY, false},
	} {
		fh, flags := openAny(t, c.n, c.flags)
		if got := flags&fuse.FOPEN_DIRECT_IO != 0; got != c.direct {
			t.Errorf("%s: direct I/O %v, want %v", c.name, got, c.direct)
		}
		if c.flags == syscall.O_RDONLY {
			h := handleOf(fh)
			if got := read(t, h, 4*ptTestBlock+10, 0); !bytes.Equal(got, tf.content(t, c.n)) {
				t.Errorf("%s: read the wrong bytes", c.name)
			}
		}
		release(fh)
	}
	// The kernel filled its pages of the large file through an open for
	// writing (page-cache mode): the next read-only open keeps them.
	large.mu.Lock()
	large.keepGen, large.keepValid = tf.attr(t, large).Gen, true
	large.mu.Unlock()
	fh, flags := openAny(t, large, syscall.O_RDONLY)
	if flags&fuse.FOPEN_DIRECT_IO != 0 || flags&fuse.FOPEN_KEEP_CACHE == 0 {
		t.Errorf("large file whose pages the kernel holds: flags %#x, want KEEP_CACHE and no DIRECT_IO", flags)
	}
	release(fh)
}

// completeInCache reads n's committed content into the block cache, every
// block of it.
func (tf *testFS) completeInCache(t *testing.T, n *fileNode) {
	t.Helper()
	if err := tf.cache.Complete(context.Background(), tf.object(tf.attr(t, n))); err != nil {
		t.Fatal(err)
	}
}

// fresh is another node of n's inode, as after a remount: the kernel holds
// no pages of it.
func fresh(n *fileNode) *fileNode { return &fileNode{fs: n.fs, ino: n.ino, group: n.group} }

func enablePassthrough(f *FS) {
	f.passthrough.mu.Lock()
	f.passthrough.enabled = true
	f.passthrough.mu.Unlock()
}

// The per-inode rules of passthrough opens (passthrough.go): complete
// content and no other handle open make a passthrough open; while one is
// open every open is a passthrough one, those that may not read the
// backing file (writers, newer content) with direct I/O; other handles
// open, or a kernel unwilling, make none.
func TestOpenPassthroughRules(t *testing.T) {
	tf := newTestFS(t, func(o *Options) { o.Passthrough = true; o.DirectIOSize = 4 * ptTestBlock })
	data := pattern(5*ptTestBlock+7, 3)
	n := tf.committed(t, "f", data)

	// Not complete in the cache: a plain open (direct I/O, by its size).
	enablePassthrough(tf.FS)
	fh, flags := openAny(t, n, syscall.O_RDONLY)
	if _, ok := fh.(*ptHandle); ok || flags&fuse.FOPEN_DIRECT_IO == 0 {
		t.Fatalf("open of content not cached: %T, flags %#x", fh, flags)
	}
	release(fh)

	tf.completeInCache(t, n)
	// The kernel refused passthrough at mount: no passthrough open.
	tf.passthrough.mu.Lock()
	tf.passthrough.enabled = false
	tf.passthrough.mu.Unlock()
	fh, _ = openAny(t, n, syscall.O_RDONLY)
	if _, ok := fh.(*ptHandle); ok {
		t.Fatal("a passthrough open although the kernel refused passthrough")
	}
	release(fh)
	enablePassthrough(tf.FS)

	// Another handle open (page cache or direct I/O in the kernel): none.
	w, _ := openAny(t, n, syscall.O_WRONLY)
	fh, _ = openAny(t, n, syscall.O_RDONLY)
	if _, ok := fh.(*ptHandle); ok {
		t.Fatal("a passthrough open while a plain handle is open")
	}
	release(fh)
	release(w)

	// Complete, nothing else open, and (the writer's open above put the
	// kernel in page-cache mode, so it may hold pages; a remount drops
	// them) no pages in the kernel: passthrough, reading the cache's file.
	if _, flags := openAny(t, n, syscall.O_RDONLY); flags&fuse.FOPEN_KEEP_CACHE == 0 {
		t.Fatal("no KEEP_CACHE for content the kernel may hold pages of")
	} else {
		n.plainOpens-- // that open, released without a handle
	}
	n = fresh(n)
	pt, flags := openAny(t, n, syscall.O_RDONLY)
	p, ok := pt.(*ptHandle)
	if !ok || flags&(fuse.FOPEN_DIRECT_IO|fuse.FOPEN_KEEP_CACHE) != 0 {
		t.Fatalf("open of complete content: %T, flags %#x", pt, flags)
	}
	fd, ok := p.PassthroughFd()
	if !ok {
		t.Fatal("no backing file for a passthrough open")
	}
	got := make([]byte, len(data)+1)
	if k, err := syscall.Pread(fd, got, 0); err != nil || !bytes.Equal(got[:k], data) {
		t.Fatalf("the backing file holds %d bytes (%v), not the file's %d", k, err, len(data))
	}

	// A second reader shares it; a writer is a passthrough open too (the
	// kernel wants it), with direct I/O so its writes reach the mount.
	r2, flags := openAny(t, n, syscall.O_RDONLY)
	if _, ok := r2.(*ptHandle); !ok || flags&fuse.FOPEN_DIRECT_IO != 0 {
		t.Fatalf("second reader: %T, flags %#x", r2, flags)
	}
	wr, flags := openAny(t, n, syscall.O_RDWR)
	if _, ok := wr.(*ptHandle); !ok || flags&fuse.FOPEN_DIRECT_IO == 0 {
		t.Fatalf("writer while a passthrough open is open: %T, flags %#x, want a passthrough open with direct I/O", wr, flags)
	}
	fresh := pattern(6*ptTestBlock, 4)
	write(t, handleOf(wr), fresh, 0)
	if got := read(t, handleOf(wr), len(fresh)+1, 0); !bytes.Equal(got, fresh) {
		t.Fatal("the writer does not read what it wrote")
	}
	flush(t, handleOf(wr))
	// Newer content than the backing file's: direct I/O, read by the mount.
	r3, flags := openAny(t, n, syscall.O_RDONLY)
	if _, ok := r3.(*ptHandle); !ok || flags&fuse.FOPEN_DIRECT_IO == 0 {
		t.Fatalf("reader of newer content: %T, flags %#x", r3, flags)
	}
	if got := read(t, handleOf(r3), len(fresh)+1, 0); !bytes.Equal(got, fresh) {
		t.Fatal("a reader opened after the commit reads the old content")
	}
	for _, fh := range []fusefs.FileHandle{r3, wr, r2} {
		release(fh)
	}
	if n.pt == nil {
		t.Fatal("the backing file went while a passthrough open is still open")
	}
	release(pt)
	if n.pt != nil || n.ptOpens != 0 || n.plainOpens != 0 {
		t.Fatalf("after the last release: pt %v, %d passthrough and %d plain opens", n.pt != nil, n.ptOpens, n.plainOpens)
	}
	// Once the new content is whole in the cache, the next open reads it
	// through its own backing file.
	tf.completeInCache(t, n)
	fh, _ = openAny(t, n, syscall.O_RDONLY)
	p, ok = fh.(*ptHandle)
	if !ok {
		t.Fatalf("open of the new content, complete in the cache: %T", fh)
	}
	fd, _ = p.PassthroughFd()
	got = make([]byte, len(fresh)+1)
	if k, err := syscall.Pread(fd, got, 0); err != nil || !bytes.Equal(got[:k], fresh) {
		t.Fatalf("the new backing file holds %d bytes (%v), not the new content's %d", k, err, len(fresh))
	}
	release(fh)
}

// A handle that read most of a file to its end has the cache complete the
// file in the background, so that the next open is a passthrough one; a
// handle that read only its start does not.
func TestReleaseCompletesAFileReadThrough(t *testing.T) {
	tf := newTestFS(t, func(o *Options) { o.Passthrough = true; o.DirectIOSize = ptTestBlock })
	enablePassthrough(tf.FS)
	data := pattern(8*ptTestBlock, 5)
	n := fresh(tf.committed(t, "f", data))
	obj := tf.object(tf.attr(t, n))

	fh, _ := openAny(t, n, syscall.O_RDONLY)
	read(t, handleOf(fh), ptTestBlock, 0)
	release(fh)
	if b, ok, _ := tf.cache.OpenBacking(obj); ok {
		b.Close()
		t.Fatal("a file read only at its start was completed")
	}

	fh, _ = openAny(t, n, syscall.O_RDONLY)
	h := handleOf(fh)
	for off := 0; off < len(data); off += ptTestBlock {
		read(t, h, ptTestBlock, int64(off))
	}
	release(fh)
	eventually(t, "complete in the cache", func() bool {
		b, ok, _ := tf.cache.OpenBacking(obj)
		if ok {
			b.Close()
		}
		return ok
	})
	fh, _ = openAny(t, n, syscall.O_RDONLY)
	if _, ok := fh.(*ptHandle); !ok {
		t.Fatalf("open after the file was completed: %T, want a passthrough open", fh)
	}
	release(fh)
}

// A shared writable map of an open for writing made while the file is open
// through passthrough writes the backing file (the kernel maps such opens
// from it). The copy leaves the cache as the writer opens, the handle's
// flush finds the file changed and fails with EIO, and later opens read
// the file from the mount.
func TestWritesToTheBackingFileFailTheClose(t *testing.T) {
	tf := newTestFS(t, func(o *Options) { o.Passthrough = true })
	enablePassthrough(tf.FS)
	data := pattern(3*ptTestBlock, 6)
	n := fresh(tf.committed(t, "f", data))
	tf.completeInCache(t, n)
	reader, _ := openAny(t, n, syscall.O_RDONLY)
	p, ok := reader.(*ptHandle)
	if !ok {
		t.Fatalf("open of complete content: %T", reader)
	}
	writer, _ := openAny(t, n, syscall.O_RDWR)
	// What the kernel does for a write through the writer's shared map:
	// it opens the backing file it was given (which the writer's open
	// took out of the cache, so by its inode, not its name).
	fd, _ := p.PassthroughFd()
	backing, err := syscall.Open(fmt.Sprintf("/proc/self/fd/%d", fd), syscall.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Pwrite(backing, []byte("MAPPED"), 0)
	syscall.Close(backing)
	if errno := writer.(fusefs.FileFlusher).Flush(context.Background()); errno != syscall.EIO {
		t.Fatalf("flush of the writer whose map wrote the backing file: %v, want EIO", errno)
	}
	// A reader opened now reads through the mount, the file's own bytes.
	r2, flags := openAny(t, n, syscall.O_RDONLY)
	if flags&fuse.FOPEN_DIRECT_IO == 0 {
		t.Fatalf("open after the backing file was written: flags %#x, want direct I/O", flags)
	}
	if got := read(t, handleOf(r2), len(data)+1, 0); !bytes.Equal(got, data) {
		t.Fatal("a reader got the bytes written into the backing file")
	}
	for _, fh := range []fusefs.FileHandle{r2, writer, reader} {
		release(fh)
	}
	if b, ok, _ := tf.cache.OpenBacking(tf.object(tf.attr(t, n))); ok {
		b.Close()
		t.Fatal("the written copy can still back an open")
	}
	r3, _ := openAny(t, n, syscall.O_RDONLY)
	defer release(r3)
	if _, ok := r3.(*ptHandle); ok {
		t.Fatal("a passthrough open after the copy was dropped")
	}
	if got := read(t, handleOf(r3), len(data)+1, 0); !bytes.Equal(got, data) {
		t.Fatal("after the last close, a read returned the bytes written into the backing file")
	}
}

// blockingRaw is a raw file system whose Release waits for a signal.
type blockingRaw struct {
	fuse.RawFileSystem
	inRelease chan struct{}
	finish    chan struct{}
	opened    chan uint64
}

func (b *blockingRaw) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	b.inRelease <- struct{}{}
	<-b.finish
}

func (b *blockingRaw) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	b.opened <- in.NodeId
	return fuse.OK
}

// PassthroughGuard holds an open of an inode while a release of it runs
// (go-fuse unregisters the backing file at the end of a release), and
// lets opens of other inodes through, whatever their numbers: a release
// may upload, and no other inode waits for it.
func TestPassthroughGuardOrdersOpenAndRelease(t *testing.T) {
	raw := &blockingRaw{RawFileSystem: fuse.NewDefaultRawFileSystem(), inRelease: make(chan struct{}), finish: make(chan struct{}), opened: make(chan uint64, 3)}
	g := PassthroughGuard(raw)
	go g.Release(nil, &fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: 7}})
	<-raw.inRelease
	go g.Open(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: 7}}, &fuse.OpenOut{})
	go g.Open(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: 8}}, &fuse.OpenOut{})
	go g.Open(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: 7 + 256}}, &fuse.OpenOut{})
	others := map[uint64]bool{}
	for range 2 {
		got := <-raw.opened
		if got == 7 {
			t.Fatal("node 7 opened while its release ran")
		}
		others[got] = true
	}
	if !others[8] || !others[7+256] {
		t.Fatalf("opened %v while node 7's release ran, want 8 and 263", others)
	}
	select {
	case got := <-raw.opened:
		t.Fatalf("node %d opened while its release ran", got)
	case <-time.After(50 * time.Millisecond):
	}
	close(raw.finish)
	if got := <-raw.opened; got != 7 {
		t.Fatalf("opened node %d, want 7 after its release", got)
	}
	pg := g.(*passthroughGuard)
	for deadline := time.Now().Add(5 * time.Second); ; {
		pg.mu.Lock()
		left := len(pg.locks)
		pg.mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d inode locks kept after every open and release ended", left)
		}
		time.Sleep(time.Millisecond)
	}
}

// go-fuse asks the open that makes an inode's backing file for its
// descriptor, unless it has stopped registering any for the rest of the
// mount (after the kernel refused one); such an open is then a page-cache
// one. Its release finds it was never asked and turns passthrough off, so
// later opens pin nothing; one that was asked changes nothing.
func TestPassthroughLostWhenNeverAskedForFd(t *testing.T) {
	tf := newTestFS(t, func(o *Options) { o.Passthrough = true })
	data := pattern(5*ptTestBlock+7, 4)
	n := tf.committed(t, "f", data)
	tf.completeInCache(t, n)
	enablePassthrough(tf.FS)
	open := func() *ptHandle {
		t.Helper()
		fh, _ := openAny(t, fresh(n), syscall.O_RDONLY)
		pt, ok := fh.(*ptHandle)
		if !ok {
			t.Fatalf("open of complete content: %T, want a passthrough handle", fh)
		}
		return pt
	}
	asked := open()
	if _, ok := asked.PassthroughFd(); !ok {
		t.Fatal("no descriptor for go-fuse")
	}
	release(asked)
	if !tf.passthrough.on() {
		t.Fatal("passthrough turned off although go-fuse took the descriptor")
	}
	notAsked := open()
	if got := read(t, &notAsked.fileHandle, len(data)+1, 0); !bytes.Equal(got, data) {
		t.Fatal("a read reaching the mount returned the wrong bytes")
	}
	release(notAsked)
	if tf.passthrough.on() {
		t.Fatal("passthrough still on after go-fuse never asked for the backing file")
	}
	fh, _ := openAny(t, fresh(n), syscall.O_RDONLY)
	if _, ok := fh.(*ptHandle); ok {
		t.Fatal("a passthrough open after passthrough was found off")
	}
	release(fh)
}
