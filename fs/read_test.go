package fs

import (
	"bytes"
	"context"
	"syscall"
	"testing"
)

// A handle's reads use the attributes its open read, without the index,
// until a commit through the node changes the content: the next read then
// reads the new content.
func TestReadUsesAttrsFromOpenUntilACommit(t *testing.T) {
	tf := newTestFS(t)
	old := pattern(3000, 1)
	n := tf.committed(t, "a.txt", old)
	fh, _, errno := n.Open(context.Background(), syscall.O_RDONLY)
	if errno != 0 {
		t.Fatal(errno)
	}
	r := fh.(*fileHandle)
	defer r.Release(context.Background())
	tf.idx.failNext("GetAttr", errInjected)
	if got := read(t, r, 4096, 0); !bytes.Equal(got, old) {
		t.Fatal("first read differs from the committed content")
	}
	if left := tf.faultsLeft(); len(left) != 1 {
		t.Fatalf("the read asked the index for the attributes open had read (faults left: %v)", left)
	}
	tf.idx.next("GetAttr") // clear the unused fault

	fresh := pattern(5000, 2)
	w := openFile(t, n, syscall.O_WRONLY)
	write(t, w, fresh, 0)
	flush(t, w)
	w.Release(context.Background())
	if got := read(t, r, 8192, 0); !bytes.Equal(got, fresh) {
		t.Fatalf("after another handle's commit: read %d bytes, want the new %d", len(got), len(fresh))
	}
}
