package fs

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// fallocate's mode 0 grows a file, never shrinks it, and commits at close;
// KEEP_SIZE changes nothing; the modes that punch or zero ranges are
// refused and leave the file as it was.
func TestAllocate(t *testing.T) {
	ctx := context.Background()
	tf := newTestFS(t)
	n := tf.committed(t, "a.bin", []byte("0123456789"))
	h := openFile(t, n, syscall.O_RDWR)

	for _, mode := range []uint32{
		unix.FALLOC_FL_KEEP_SIZE,
		unix.FALLOC_FL_KEEP_SIZE | unix.FALLOC_FL_PUNCH_HOLE,
		unix.FALLOC_FL_ZERO_RANGE,
		unix.FALLOC_FL_COLLAPSE_RANGE,
	} {
		want := syscall.Errno(syscall.EOPNOTSUPP)
		if mode == unix.FALLOC_FL_KEEP_SIZE {
			want = 0
		}
		if errno := h.Allocate(ctx, 0, 1<<20, mode); errno != want {
			t.Errorf("mode %#x: %v, want %v", mode, errno, want)
		}
	}
	// Within the file: nothing to do, the file stays clean.
	if errno := h.Allocate(ctx, 2, 8, 0); errno != 0 {
		t.Fatal(errno)
	}
	if s := state(n); s != clean {
		t.Fatalf("after an allocate within the file: %v, want clean", s)
	}
	if errno := h.Allocate(ctx, 4096, 4096, 0); errno != 0 {
		t.Fatal(errno)
	}
	if got := read(t, h, 8192, 0); len(got) != 8192 || string(got[:10]) != "0123456789" || !bytes.Equal(got[10:], make([]byte, 8192-10)) {
		t.Fatalf("read after allocate: %d bytes, %q...", len(got), got[:min(len(got), 12)])
	}
	// A later write inside the allocated range, then a smaller allocate:
	// the size stays 8192.
	write(t, h, []byte("xy"), 5000)
	if errno := h.Allocate(ctx, 0, 100, 0); errno != 0 {
		t.Fatal(errno)
	}
	flush(t, h)
	h.Release(ctx)
	got := tf.content(t, n)
	want := append([]byte("0123456789"), make([]byte, 8192-10)...)
	copy(want[5000:], "xy")
	if !bytes.Equal(got, want) {
		t.Fatalf("committed %d bytes, want %d with the write inside", len(got), len(want))
	}
	if errno := h.Allocate(ctx, 1<<63, 1<<63, 0); errno != syscall.EFBIG {
		t.Errorf("an allocate past any size: %v, want EFBIG", errno)
	}
	tf.checkSwept(t)
}

// A read-only mount refuses fallocate with EROFS.
func TestAllocateReadOnly(t *testing.T) {
	tf := newTestFS(t)
	n := tf.committed(t, "a.bin", []byte("abc"))
	tf.opts.ReadOnly = true
	h := openFile(t, n, syscall.O_RDONLY)
	if errno := h.Allocate(context.Background(), 0, 10, 0); errno != syscall.EROFS {
		t.Fatalf("fallocate on a read-only mount: %v, want EROFS", errno)
	}
}
