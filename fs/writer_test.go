package fs

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/index"
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

// The transition table: every pair of states not in it is refused by
// move, and leaves the state as it was.
func TestWriterMoveChecksTransitions(t *testing.T) {
	allowed := map[[2]writeState]bool{
		{clean, buffered}: true, {clean, staged}: true,
		{buffered, buffered}: true, {buffered, streaming}: true, {buffered, staged}: true, {buffered, committing}: true,
		{streaming, buffered}: true, {streaming, staged}: true, {streaming, committing}: true, {streaming, failed}: true,
		{staged, buffered}: true, {staged, committing}: true,
		{committing, clean}: true, {failed, clean}: true,
	}
	all := []writeState{clean, buffered, streaming, staged, committing, failed}
	for _, from := range all {
		for _, to := range all {
			w := &writer{n: &fileNode{ino: 9}, state: from}
			err := w.move(to)
			if want := allowed[[2]writeState{from, to}]; want != (err == nil) {
				t.Errorf("move %v -> %v: %v, want allowed=%v", from, to, err, want)
			}
			if err != nil && (!errors.Is(err, errWrongState) || w.state != from) {
				t.Errorf("refused move %v -> %v: %v, state now %v", from, to, err, w.state)
			}
		}
	}
}

// An operation in a state that has no transition for it fails with
// errWrongState (EIO to the application) and changes nothing.
func TestWriterWrongStateFails(t *testing.T) {
	tf := newTestFS(t)
	n := tf.committed(t, "a.txt", []byte("committed"))
	w := n.writer()
	w.state = committing // as if a commit were under way without wmu
	ctx := context.Background()
	for name, op := range map[string]func() error{
		"write":    func() error { return w.writeAt(ctx, []byte("x"), 0) },
		"read":     func() error { _, err := w.readAt(ctx, make([]byte, 4), 0); return err },
		"truncate": func() error { return w.truncate(ctx, 3) },
		"commit":   func() error { return w.commit(ctx) },
	} {
		if err := op(); !errors.Is(err, errWrongState) {
			t.Errorf("%s while committing: %v, want errWrongState", name, err)
		}
		if w.state != committing {
			t.Errorf("%s while committing moved to %v", name, w.state)
		}
	}
	if ups := tf.be.count("Upload"); ups != 1 {
		t.Errorf("%d uploads, want only the first commit's", ups)
	}
}

// clean -> buffered -> committing -> clean: a small new file is one plain
// upload at close, claimed without a journal entry.
func TestWriterBufferedCommit(t *testing.T) {
	tf := newTestFS(t)
	n := tf.create(t, "small.txt")
	h := openFile(t, n, syscall.O_WRONLY)
	write(t, h, []byte("small"), 0)
	if s := state(n); s != buffered {
		t.Fatalf("after a write at 0 of an empty file: %v, want buffered", s)
	}
	if got := n.overlay(tf.attr(t, n)).Size; got != 5 {
		t.Errorf("getattr size while buffered: %d, want 5", got)
	}
	if ups := tf.be.count("Upload"); ups != 0 {
		t.Fatalf("%d uploads before the close", ups)
	}
	flush(t, h)
	if s := state(n); s != clean {
		t.Fatalf("after flush: %v, want clean", s)
	}
	if got := tf.content(t, n); string(got) != "small" {
		t.Fatalf("content %q", got)
	}
	if ups, pend := tf.be.count("Upload"), tf.be.count("AddPending"); ups != 1 || pend != 0 {
		t.Errorf("%d uploads, %d journal calls; want 1 and none", ups, pend)
	}
	tf.checkSwept(t)
}

// The commit of a clean file, and a truncate of a clean file to its size,
// do nothing: no upload, no index change.
func TestWriterCleanCommitDoesNothing(t *testing.T) {
	tf := newTestFS(t)
	n := tf.committed(t, "a.txt", []byte("committed"))
	before := tf.attr(t, n)
	ups := tf.be.count("Upload")
	h := openFile(t, n, syscall.O_RDWR)
	if got := read(t, h, 100, 0); string(got) != "committed" {
		t.Fatalf("read %q", got)
	}
	if errno := n.truncate(context.Background(), 9); errno != 0 {
		t.Fatal(errno)
	}
	if s := state(n); s != clean {
		t.Fatalf("after a read and a truncate to the same size: %v, want clean", s)
	}
	flush(t, h)
	h.Release(context.Background())
	after := tf.attr(t, n)
	if tf.be.count("Upload") != ups || after.FileID != before.FileID || after.Gen != before.Gen || !after.Mtime.Equal(before.Mtime) {
		t.Errorf("a clean commit changed something: %d uploads (was %d), %+v (was %+v)", tf.be.count("Upload"), ups, after, before)
	}
}

// clean -> staged: a write inside a committed file is staged locally and
// nothing goes to FastDFS before the commit, which uploads the merged
// content as a new appender file and deletes the old one.
func TestWriterStagedCommit(t *testing.T) {
	tf := newTestFS(t)
	n := tf.committed(t, "a.txt", []byte("0123456789"))
	old := tf.attr(t, n).FileID
	h := openFile(t, n, syscall.O_RDWR)
	write(t, h, []byte("ab"), 3)
	if s := state(n); s != staged {
		t.Fatalf("after a write inside a committed file: %v, want staged", s)
	}
	write(t, h, []byte("Z"), 12) // past the end: a hole of zeros between
	if got := read(t, h, 100, 0); string(got) != "012ab56789\x00\x00Z" {
		t.Fatalf("staged read %q", got)
	}
	ups := tf.be.count("Upload")
	flush(t, h)
	if got := tf.content(t, n); string(got) != "012ab56789\x00\x00Z" {
		t.Fatalf("committed %q", got)
	}
	if a := tf.attr(t, n); a.FileID == old || !a.Appender || tf.be.count("Upload") != ups+1 {
		t.Errorf("commit: %+v after %d uploads, want one new appender file", a, tf.be.count("Upload")-ups)
	}
	if _, ok := tf.be.content(old); ok {
		t.Errorf("the old file %s is still stored", old)
	}
	tf.checkSwept(t)
}

// buffered -> streaming: a full chunk starts the appender upload, which is
// journalled, and the sweep leaves it alone while the file is written.
func TestWriterStreaming(t *testing.T) {
	tf := newTestFS(t)
	n := tf.create(t, "big.bin")
	h := openFile(t, n, syscall.O_WRONLY)
	data := pattern(5*testChunk+100, 3)
	writeInOrder(t, h, data, 0, 2*testChunk+10, 1000)
	if s := state(n); s != streaming {
		t.Fatalf("after two chunks in order: %v, want streaming", s)
	}
	var ids []string
	eventually(t, "the first chunk uploaded and journalled", func() bool {
		ids = tf.be.ids()
		return len(ids) == 1 && tf.pending(t)[ids[0]] == index.PendingUpload
	})
	tf.sweep(context.Background())
	if _, ok := tf.be.content(ids[0]); !ok {
		t.Fatal("the sweep deleted the file being streamed")
	}
	writeInOrder(t, h, data, 2*testChunk+10, len(data), 1000)
	flush(t, h)
	if got := tf.content(t, n); !bytes.Equal(got, data) {
		t.Fatalf("committed %d bytes, want %d as written", len(got), len(data))
	}
	if a := tf.attr(t, n); a.FileID != ids[0] || !a.Appender || tf.be.count("Upload") != 1 {
		t.Errorf("commit: %+v after %d uploads, want the streamed file", a, tf.be.count("Upload"))
	}
	tf.checkSwept(t)
}

// buffered -> staged: a write out of order before the first chunk is full
// turns the buffer into staged data; nothing was uploaded, and the commit
// is one upload.
func TestWriterBufferedToStaged(t *testing.T) {
	tf := newTestFS(t)
	n := tf.create(t, "a.txt")
	h := openFile(t, n, syscall.O_WRONLY)
	write(t, h, []byte("head"), 0)
	write(t, h, []byte("tail"), 8)
	if s := state(n); s != staged {
		t.Fatalf("after a write out of order: %v, want staged", s)
	}
	write(t, h, []byte("HE"), 0)
	flush(t, h)
	if got := tf.content(t, n); string(got) != "HEad\x00\x00\x00\x00tail" {
		t.Fatalf("committed %q", got)
	}
	if ups := tf.be.count("Upload"); ups != 1 {
		t.Errorf("%d uploads, want 1", ups)
	}
	tf.checkSwept(t)
}

// streaming -> staged: a read of a file being streamed stages it over what
// was uploaded, which the commit then changes in place: one upload in all.
func TestWriterStreamingToStaged(t *testing.T) {
	tf := newTestFS(t)
	n := tf.create(t, "big.bin")
	h := openFile(t, n, syscall.O_RDWR)
	data := pattern(3*testChunk+500, 5)
	writeInOrder(t, h, data, 0, len(data), 1000)
	if s := state(n); s != streaming {
		t.Fatalf("after three chunks in order: %v, want streaming", s)
	}
	if got := read(t, h, 2000, testChunk-1000); !bytes.Equal(got, data[testChunk-1000:testChunk+1000]) {
		t.Fatal("read while streaming differs from what was written")
	}
	if s := state(n); s != staged {
		t.Fatalf("after a read: %v, want staged", s)
	}
	copy(data[10:], "changed")
	write(t, h, []byte("changed"), 10)
	data = append(data, "appended"...)
	write(t, h, []byte("appended"), int64(len(data)-8))
	flush(t, h)
	if got := tf.content(t, n); !bytes.Equal(got, data) {
		t.Fatal("committed content differs from what was written")
	}
	if ups := tf.be.count("Upload"); ups != 1 {
		t.Errorf("%d uploads, want the streamed one alone (changed in place)", ups)
	}
	tf.checkSwept(t)
}

// streaming -> failed -> clean: a failed chunk fails the next write and
// the close with EIO, the file keeps its content (empty), and the part
// uploaded is journalled, then swept.
func TestWriterStreamingFails(t *testing.T) {
	tf := newTestFS(t)
	n := tf.create(t, "big.bin")
	h := openFile(t, n, syscall.O_WRONLY)
	tf.be.failNext("Modify", syscall.EIO)
	data := pattern(6*testChunk, 7)
	var errno syscall.Errno
	for off := 0; off < len(data) && errno == 0; off += 1000 {
		_, errno = h.Write(context.Background(), data[off:min(off+1000, len(data))], int64(off))
	}
	if errno == 0 {
		t.Fatal("every write succeeded after a failed chunk")
	}
	if errno != syscall.EIO || state(n) != failed {
		t.Fatalf("write after the failed chunk: %v in state %v, want EIO in failed", errno, state(n))
	}
	if _, errno := h.Read(context.Background(), make([]byte, 10), 0); errno != syscall.EIO {
		t.Errorf("read of a failed file: %v, want EIO", errno)
	}
	if errno := h.Flush(context.Background()); errno != syscall.EIO {
		t.Errorf("flush: %v, want EIO", errno)
	}
	if s := state(n); s != clean {
		t.Fatalf("after the failed commit: %v, want clean", s)
	}
	if a := tf.attr(t, n); a.FileID != "" || a.Size != 0 {
		t.Errorf("the file points at %q (%d bytes) after a failed write", a.FileID, a.Size)
	}
	tf.checkNoOrphans(t)
	tf.checkSwept(t)
	// Clean again: the next write starts over.
	write(t, h, []byte("again"), 0)
	flush(t, h)
	if got := tf.content(t, n); string(got) != "again" {
		t.Fatalf("after a new write: %q", got)
	}
}

// buffered, streaming, staged -> buffered: a truncate to 0 drops what was
// written (a streamed upload is left to the sweep) and the file starts
// over as a fresh stream.
func TestWriterRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, h *fileHandle)
		want  writeState
	}{
		{"buffered", func(t *testing.T, h *fileHandle) { write(t, h, []byte("abc"), 0) }, buffered},
		{"streaming", func(t *testing.T, h *fileHandle) {
			writeInOrder(t, h, pattern(2*testChunk, 1), 0, 2*testChunk, 1000)
		}, streaming},
		{"staged", func(t *testing.T, h *fileHandle) { write(t, h, []byte("abc"), 5) }, staged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := newTestFS(t)
			n := tf.committed(t, "a.txt", []byte("committed"))
			h := openFile(t, n, syscall.O_RDWR)
			if tc.want != staged {
				if errno := n.truncate(context.Background(), 0); errno != 0 {
					t.Fatal(errno)
				}
			}
			tc.write(t, h)
			if s := state(n); s != tc.want {
				t.Fatalf("state %v, want %v", s, tc.want)
			}
			if errno := n.truncate(context.Background(), 0); errno != 0 {
				t.Fatal(errno)
			}
			if s := state(n); s != buffered {
				t.Fatalf("after truncate to 0: %v, want buffered", s)
			}
			write(t, h, []byte("new"), 0)
			flush(t, h)
			if got := tf.content(t, n); string(got) != "new" {
				t.Fatalf("committed %q", got)
			}
			tf.checkSwept(t)
		})
	}
}

// A truncate with no handle open commits at once, as truncate(2) does.
func TestWriterTruncateWithoutHandleCommits(t *testing.T) {
	tf := newTestFS(t)
	n := tf.committed(t, "a.txt", []byte("0123456789"))
	if errno := n.truncate(context.Background(), 4); errno != 0 {
		t.Fatal(errno)
	}
	if s := state(n); s != clean {
		t.Fatalf("after truncate with no handle: %v, want clean", s)
	}
	if got := tf.content(t, n); string(got) != "0123" {
		t.Fatalf("committed %q", got)
	}
	// Growing: the storage makes the zeros.
	if errno := n.truncate(context.Background(), 1<<20); errno != 0 {
		t.Fatal(errno)
	}
	if got := tf.content(t, n); len(got) != 1<<20 || string(got[:4]) != "0123" || !bytes.Equal(got[4:], make([]byte, 1<<20-4)) {
		t.Fatalf("after growing: %d bytes", len(got))
	}
	tf.checkSwept(t)
}

// Every way a commit can fail after (or while) uploading: close returns
// EIO, the file keeps its committed content, and no upload is left that
// nothing points at and nothing would delete; after a sweep, storage holds
// exactly what the index points at.
func TestWriterCommitErrors(t *testing.T) {
	small := func(t *testing.T, h *fileHandle) { write(t, h, []byte("new content"), 0) }
	overwrite := func(t *testing.T, h *fileHandle) {
		if errno := h.n.truncate(context.Background(), 0); errno != 0 {
			t.Fatal(errno)
		}
		small(t, h)
	}
	patch := func(t *testing.T, h *fileHandle) { write(t, h, []byte("PATCH"), 2) }
	grow := func(t *testing.T, h *fileHandle) {
		patch(t, h)
		if errno := h.n.truncate(context.Background(), 1<<20); errno != 0 {
			t.Fatal(errno)
		}
	}
	streamed := func(t *testing.T, h *fileHandle) {
		// A chunk's failure may come back from a later write, not the
		// close, depending on when the pipeline reports it.
		data := pattern(3*testChunk, 9)
		for off := 0; off < len(data); off += 1000 {
			if _, errno := h.Write(context.Background(), data[off:min(off+1000, len(data))], int64(off)); errno != 0 {
				if errno != syscall.EIO {
					t.Fatalf("write: %v, want EIO", errno)
				}
				return
			}
		}
	}
	for _, tc := range []struct {
		name     string
		old      string // committed content before ("" for a new file)
		appender bool   // the committed content is an appender file
		// unsettled: the upload can be neither claimed, deleted nor
		// journalled until the next sweep
		unsettled bool
		fault     func(tf *testFS)
		write     func(t *testing.T, h *fileHandle)
	}{
		{name: "small upload fails", fault: func(tf *testFS) { tf.be.failNext("Upload", syscall.EIO) }, write: small},
		{name: "small claim fails", fault: func(tf *testFS) { tf.idx.failNext("SetContent", errInjected) }, write: small},
		{name: "small claim fails, its outcome unknown", fault: func(tf *testFS) {
			// The read that asks whether the failed claim went through
			// fails too.
			tf.idx.failNextThen("SetContent", errInjected, func() { tf.idx.failNext("GetAttr", errInjected) })
		}, write: small, unsettled: true},
		{name: "small claim fails, the delete too", fault: func(tf *testFS) {
			tf.idx.failNext("SetContent", errInjected)
			tf.be.failNext("Delete", syscall.EIO)
		}, write: small},
		{name: "journal fails", old: "old content", fault: func(tf *testFS) { tf.idx.failNext("AddPending", errInjected) }, write: overwrite},
		{name: "journal fails, the delete too", old: "old content", fault: func(tf *testFS) {
			tf.idx.failNext("AddPending", errInjected)
			tf.be.failNext("Delete", syscall.EIO)
		}, write: overwrite},
		{name: "journal fails, the delete and its journal too", old: "old content", fault: func(tf *testFS) {
			tf.idx.failNext("AddPending", errInjected)
			tf.idx.failNext("AddPending", errInjected)
			tf.be.failNext("Delete", syscall.EIO)
		}, write: overwrite, unsettled: true},
		{name: "stream's journal fails", fault: func(tf *testFS) { tf.idx.failNext("AddPending", errInjected) }, write: streamed},
		{name: "staged upload fails", old: "old content", fault: func(tf *testFS) { tf.be.failNext("Upload", syscall.EIO) }, write: patch},
		{name: "staged claim fails", old: "old content", fault: func(tf *testFS) { tf.idx.failNext("SetContent", errInjected) }, write: patch},
		{name: "staged claim lost", old: "old content", fault: func(tf *testFS) { tf.idx.failNext("SetContent", index.ErrLost) }, write: patch},
		{name: "tail truncate fails", old: "old content", fault: func(tf *testFS) { tf.be.failNext("Truncate", syscall.EIO) }, write: grow},
		{name: "in-place modify fails", old: "old content", appender: true, fault: func(tf *testFS) { tf.be.failNext("Modify", syscall.EIO) }, write: patch},
		{name: "streamed claim fails", fault: func(tf *testFS) { tf.idx.failNext("SetContent", errInjected) }, write: streamed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := newTestFS(t)
			n := tf.create(t, "a.txt")
			if tc.old != "" {
				h := openFile(t, n, syscall.O_WRONLY)
				if tc.appender {
					// A staged commit makes an appender file.
					write(t, h, []byte(tc.old[:1]), 0)
					flush(t, h)
					write(t, h, []byte(tc.old[1:]), 1)
				} else {
					write(t, h, []byte(tc.old), 0)
				}
				flush(t, h)
				h.Release(context.Background())
			}
			before := tf.attr(t, n)
			if before.Appender != tc.appender {
				t.Fatalf("setup: appender %v, want %v", before.Appender, tc.appender)
			}
			h := openFile(t, n, syscall.O_RDWR)
			tc.fault(tf)
			tc.write(t, h)
			errno := h.Flush(context.Background())
			h.Release(context.Background())
			if left := tf.faultsLeft(); len(left) != 0 {
				t.Fatalf("injected faults never reached: %v", left)
			}
			if errno != syscall.EIO {
				t.Errorf("flush: %v, want EIO", errno)
			}
			if s := state(n); s != clean {
				t.Errorf("after the failed commit: %v, want clean", s)
			}
			after := tf.attr(t, n)
			if after.FileID != before.FileID || after.Size != before.Size || after.Gen != before.Gen {
				t.Errorf("a failed commit changed the file: %+v, was %+v", after, before)
			}
			if tc.old != "" && !tc.appender {
				if got := tf.content(t, n); string(got) != tc.old {
					t.Errorf("content after a failed commit: %q, want %q", got, tc.old)
				}
			}
			if tc.unsettled != (len(tf.uploads.left) != 0) {
				t.Errorf("uploads left to the sweep: %v", tf.uploads.left)
			}
			if !tc.unsettled {
				tf.checkNoOrphans(t)
			}
			tf.checkSwept(t)
			if len(tf.uploads.left) != 0 {
				t.Errorf("uploads still unsettled after the sweep: %v", tf.uploads.left)
			}
		})
	}
}

// Reads, getattrs and commits from other handles while one handle writes
// a file in order: every read sees a prefix of what was written (or what
// a commit left), and the last commit holds all of it. Run with -race.
func TestWriterConcurrentHandles(t *testing.T) {
	tf := newTestFS(t)
	n := tf.create(t, "busy.bin")
	w := openFile(t, n, syscall.O_WRONLY)
	data := pattern(8*testChunk+123, 11)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := openFile(t, n, syscall.O_RDONLY)
			defer r.Release(context.Background())
			for {
				select {
				case <-done:
					return
				default:
				}
				res, errno := r.Read(context.Background(), make([]byte, 3000), int64(i*1000))
				if errno != 0 {
					t.Errorf("read: %v", errno)
					return
				}
				got, _ := res.Bytes(nil)
				if want := data[min(i*1000, len(data)):]; !bytes.HasPrefix(want, got) {
					t.Errorf("read at %d: %d bytes that were never written there", i*1000, len(got))
					return
				}
				res.Done()
				var out fuse.AttrOut
				if errno := n.Getattr(context.Background(), nil, &out); errno != 0 {
					t.Errorf("getattr: %v", errno)
					return
				}
				if i == 0 {
					if errno := r.Flush(context.Background()); errno != 0 {
						t.Errorf("flush of a reader: %v", errno)
						return
					}
				}
			}
		}()
	}
	writeInOrder(t, w, data, 0, len(data), 700)
	flush(t, w)
	close(done)
	wg.Wait()
	w.Release(context.Background())
	if got := tf.content(t, n); !bytes.Equal(got, data) {
		t.Fatalf("committed %d bytes that differ from the %d written", len(got), len(data))
	}
	tf.checkSwept(t)
}

// TestCommitMirrorsXattrs: a file's user.* attributes live in the index;
// new content carries their mirror in FastDFS metadata to its new file, and
// a failed mirror neither fails the commit nor loses an attribute.
func TestCommitMirrorsXattrs(t *testing.T) {
	ctx := context.Background()
	for _, failMirror := range []bool{false, true} {
		t.Run(map[bool]string{false: "mirrored", true: "mirror fails"}[failMirror], func(t *testing.T) {
			tf := newTestFS(t)
			n := tf.committed(t, "a.txt", []byte("old content"))
			for name, v := range map[string]string{"user.author": "alice", "user.bin": "a\x00b", "trusted.t": "x"} {
				if errno := n.Setxattr(ctx, name, []byte(v), 0); errno != 0 {
					t.Fatalf("setxattr %s: %v", name, errno)
				}
			}
			before := tf.attr(t, n)
			if meta, _ := tf.be.GetMetadata(ctx, before.FileID); meta["author"] != "alice" || len(meta) != 1 {
				t.Fatalf("metadata after setxattr: %v, want author=alice alone (a NUL and trusted.* are not mirrored)", meta)
			}
			h := openFile(t, n, syscall.O_WRONLY|syscall.O_TRUNC)
			if errno := n.truncate(ctx, 0); errno != 0 {
				t.Fatal(errno)
			}
			write(t, h, []byte("new content"), 0)
			if failMirror {
				tf.be.failNext("SetMetadata", syscall.EIO)
			}
			if errno := h.Flush(ctx); errno != 0 {
				t.Fatalf("flush: %v", errno)
			}
			h.Release(ctx)
			after := tf.attr(t, n)
			if after.FileID == before.FileID {
				t.Fatal("new content kept the old file")
			}
			meta, _ := tf.be.GetMetadata(ctx, after.FileID)
			if want := map[bool]string{false: "alice", true: ""}[failMirror]; meta["author"] != want {
				t.Errorf("metadata of the new file: %v, want author=%q", meta, want)
			}
			if v, err := tf.idx.GetXattr(ctx, n.ino, "user.bin"); err != nil || string(v) != "a\x00b" {
				t.Errorf("the index lost an attribute: %q, %v", v, err)
			}
			if left := tf.faultsLeft(); len(left) != 0 {
				t.Fatalf("injected faults never reached: %v", left)
			}
		})
	}
}
