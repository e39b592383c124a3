package fs

import (
	"bytes"
	"context"
	"reflect"
	"syscall"
	"testing"
)

func TestExtents(t *testing.T) {
	var x extents
	x.add(10, 20)
	x.add(30, 40)
	x.add(20, 25) // touches the first: merges
	x.add(0, 0)   // empty: ignored
	want := extents{{10, 25}, {30, 40}}
	if !reflect.DeepEqual(x, want) {
		t.Fatalf("after adds: %v, want %v", x, want)
	}
	x.add(5, 35) // swallows both
	if want := (extents{{5, 40}}); !reflect.DeepEqual(x, want) {
		t.Fatalf("after covering add: %v, want %v", x, want)
	}
	x.add(50, 60)
	if e, ok := x.at(39); !ok || e != (extent{5, 40}) {
		t.Fatalf("at(39) = %v %v", e, ok)
	}
	if _, ok := x.at(40); ok {
		t.Fatal("at(40) found an extent; ranges are half-open")
	}
	if n := x.next(40, 100); n != 50 {
		t.Fatalf("next(40) = %d, want 50", n)
	}
	if n := x.next(40, 45); n != 45 {
		t.Fatalf("next(40, limit 45) = %d, want 45", n)
	}
	x.truncate(55)
	if want := (extents{{5, 40}, {50, 55}}); !reflect.DeepEqual(x, want) {
		t.Fatalf("after truncate(55): %v, want %v", x, want)
	}
	x.truncate(40)
	if want := (extents{{5, 40}}); !reflect.DeepEqual(x, want) {
		t.Fatalf("after truncate(40): %v, want %v", x, want)
	}
	x.truncate(0)
	if len(x) != 0 {
		t.Fatalf("after truncate(0): %v", x)
	}
}

func TestFileExt(t *testing.T) {
	for name, want := range map[string]string{
		"a.jpg": "jpg", "a.tar.gz": "gz", "noext": "", "a.toolongx": "", "a.j-g": "", ".bashrc": "bashrc", "x.": "",
	} {
		if got := fileExt(name); got != want {
			t.Errorf("fileExt(%q) = %q, want %q", name, got, want)
		}
	}
}

// A read that waits for the write lock while another handle commits must
// find the file clean and read the committed content: it must not make a
// writer that its own close then commits, uploading the file again with a
// new ID and mtime.
func TestReadRacingCommitUploadsOnce(t *testing.T) {
	tf := newTestFS(t)
	n := tf.create(t, "a.txt")
	w := openFile(t, n, syscall.O_RDWR)
	data := []byte("hello, world")
	write(t, w, data, 0)

	g := tf.be.blockNext("Upload")
	flushed := make(chan syscall.Errno, 1)
	go func() { flushed <- w.Flush(context.Background()) }()
	<-g.entered // the commit holds the write lock

	r := openFile(t, n, syscall.O_RDONLY)
	got := make(chan []byte, 1)
	go func() { got <- read(t, r, 100, 0) }()
	waitBlockedIn(t, "(*fileHandle).Read")
	close(g.release)
	if errno := <-flushed; errno != 0 {
		t.Fatalf("flush: %v", errno)
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("read %q, want %q", b, data)
	}
	committed := tf.attr(t, n)
	flush(t, r)
	if errno := r.Release(context.Background()); errno != 0 {
		t.Fatal(errno)
	}
	flush(t, w)
	if errno := w.Release(context.Background()); errno != 0 {
		t.Fatal(errno)
	}
	after := tf.attr(t, n)
	if ups := tf.be.count("Upload"); ups != 1 {
		t.Errorf("%d uploads, want 1", ups)
	}
	if after.FileID != committed.FileID || !after.Mtime.Equal(committed.Mtime) || after.Gen != committed.Gen {
		t.Errorf("the reader's close changed the file: %s %v gen %d, was %s %v gen %d",
			after.FileID, after.Mtime, after.Gen, committed.FileID, committed.Mtime, committed.Gen)
	}
}

// A streamed upload whose journal entry cannot be written is deleted, not
// left where nothing points at it.
func TestStreamedUploadNotJournalledIsDeleted(t *testing.T) {
	tf := newTestFS(t)
	n := tf.create(t, "big.bin")
	h := openFile(t, n, syscall.O_WRONLY)
	tf.idx.failNext("AddPending", errInjected)
	data := pattern(3*testChunk, 1)
	var errno syscall.Errno
	for off := 0; off < len(data) && errno == 0; off += 1000 {
		_, errno = h.Write(context.Background(), data[off:min(off+1000, len(data))], int64(off))
	}
	if errno == 0 {
		errno = h.Flush(context.Background())
	}
	if errno != syscall.EIO {
		t.Fatalf("write or flush: %v, want EIO", errno)
	}
	h.Release(context.Background())
	if ids := tf.be.ids(); len(ids) != 0 {
		pend := tf.pending(t)
		for _, id := range ids {
			if pend[id] == 0 {
				t.Errorf("%s is stored, and neither deleted nor journalled", id)
			}
		}
	}
	if a := tf.attr(t, n); a.FileID != "" || a.Size != 0 {
		t.Errorf("the file points at %q (%d bytes) after a failed write", a.FileID, a.Size)
	}
}
