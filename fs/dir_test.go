package fs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"fdfsfs/index"
)

// pacedIndex lists a directory a batch at a time: the first at once, each
// next one when the test sends on next. Only ReadDirBatches is served.
type pacedIndex struct {
	index.Index
	batches [][]index.Entry
	fail    error // the scan's result after the last batch
	next    chan struct{}
	ended   chan error // what the scan returned
}

func (p *pacedIndex) ReadDirBatches(ctx context.Context, parent index.Ino, batch int, fn func([]index.Entry) error) (err error) {
	defer func() { p.ended <- err }()
	for i, b := range p.batches {
		if i > 0 {
			select {
			case <-p.next:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return p.fail
}

func pacedDir(batches [][]index.Entry, fail error) (*dirNode, *pacedIndex) {
	p := &pacedIndex{batches: batches, fail: fail, next: make(chan struct{}), ended: make(chan error, 1)}
	f := &FS{idx: p, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return &dirNode{indexedXattrs: indexedXattrs{f, 7}}, p
}

func entries(names ...string) []index.Entry {
	var es []index.Entry
	for i, n := range names {
		es = append(es, index.Entry{Name: n, Attr: index.Attr{Ino: index.Ino(100 + i), Kind: index.KindFile}})
	}
	return es
}

// readdirent reads the next entry in the background, so that a test can
// see it wait.
func readdirent(h *dirHandle) <-chan string {
	got := make(chan string, 1)
	go func() {
		e, errno := h.Readdirent(context.Background())
		switch {
		case errno != 0:
			got <- "errno " + errno.Error()
		case e == nil:
			got <- "end"
		default:
			got <- e.Name
		}
	}()
	return got
}

func expect(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case g := <-got:
		if g != want {
			t.Fatalf("got %q, want %q", g, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still waiting for %q", want)
	}
}

func expectWaiting(t *testing.T, got <-chan string) {
	t.Helper()
	select {
	case g := <-got:
		t.Fatalf("got %q before the scan had it", g)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestDirHandleServesWhileScanning: an open directory hands out what the
// scan has read so far and waits for the rest, Seekdir included.
func TestDirHandleServesWhileScanning(t *testing.T) {
	d, p := pacedDir([][]index.Entry{entries("a", "b"), entries("c", "d"), entries("e", "f")}, nil)
	fh, _, errno := d.OpendirHandle(context.Background(), 0)
	if errno != 0 {
		t.Fatalf("OpendirHandle: %v", errno)
	}
	h := fh.(*dirHandle)
	expect(t, readdirent(h), "a")
	expect(t, readdirent(h), "b")
	got := readdirent(h)
	expectWaiting(t, got)
	p.next <- struct{}{}
	expect(t, got, "c")

	seek := make(chan syscall.Errno, 1)
	go func() { seek <- h.Seekdir(context.Background(), 5) }()
	select {
	case e := <-seek:
		t.Fatalf("Seekdir(5) answered %v before the scan read entry 5", e)
	case <-time.After(50 * time.Millisecond):
	}
	p.next <- struct{}{}
	if e := <-seek; e != 0 {
		t.Fatalf("Seekdir(5) = %v", e)
	}
	expect(t, readdirent(h), "f")
	expect(t, readdirent(h), "end")
	if e := h.Seekdir(context.Background(), 7); e != syscall.EINVAL {
		t.Fatalf("Seekdir past the end = %v, want EINVAL", e)
	}
	if e := h.Seekdir(context.Background(), 0); e != 0 {
		t.Fatalf("rewind: %v", e)
	}
	expect(t, readdirent(h), "a")
	if err := <-p.ended; err != nil {
		t.Fatalf("scan ended with %v", err)
	}
}

// TestDirHandleScanErrors: a directory the scan cannot find fails the
// open; a scan failing later fails the read that reaches it.
func TestDirHandleScanErrors(t *testing.T) {
	d, _ := pacedDir(nil, index.ErrNotFound)
	if _, _, errno := d.OpendirHandle(context.Background(), 0); errno != syscall.ENOENT {
		t.Fatalf("OpendirHandle of a missing directory: %v, want ENOENT", errno)
	}

	d, _ = pacedDir([][]index.Entry{entries("a")}, errors.New("disk on fire"))
	fh, _, errno := d.OpendirHandle(context.Background(), 0)
	if errno != 0 {
		t.Fatalf("OpendirHandle: %v", errno)
	}
	h := fh.(*dirHandle)
	expect(t, readdirent(h), "a")
	expect(t, readdirent(h), "errno "+syscall.EIO.Error())
}

// TestDirHandleReleaseStopsScan: closing a directory ends a scan nobody
// will read.
func TestDirHandleReleaseStopsScan(t *testing.T) {
	d, p := pacedDir([][]index.Entry{entries("a"), entries("b")}, nil)
	fh, _, errno := d.OpendirHandle(context.Background(), 0)
	if errno != 0 {
		t.Fatalf("OpendirHandle: %v", errno)
	}
	fh.(*dirHandle).Releasedir(context.Background(), 0)
	select {
	case err := <-p.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("scan ended with %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scan goes on after Releasedir")
	}
}
