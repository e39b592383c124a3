package fs

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/index"
)

// readByID reads size bytes at off of fileID through the by-ID tree.
func readByID(t *testing.T, tf *testFS, fileID string, size int, off int64) []byte {
	t.Helper()
	ctx := context.Background()
	n, err := tf.byIDFile(ctx, fileID)
	if err != nil {
		t.Fatal(err)
	}
	fh, _, errno := n.Open(ctx, syscall.O_RDONLY)
	if errno != 0 {
		t.Fatalf("open by id: %v", errno)
	}
	h := fh.(*byIDHandle)
	defer h.Release(ctx)
	res, errno := h.Read(ctx, make([]byte, size), off)
	if errno != 0 {
		t.Fatalf("read by id: %v", errno)
	}
	got, st := res.Bytes(make([]byte, size))
	if !st.Ok() {
		t.Fatalf("read result: %v", st)
	}
	out := bytes.Clone(got)
	res.Done()
	return out
}

// A named appender file changed in place keeps its file ID; a read of it
// through the by-ID tree afterwards returns the new content, not blocks
// the cache kept from a read before the change.
func TestByIDReadAfterChangeInPlace(t *testing.T) {
	// The engine itself, which offers the by-ID view (faultIndex hides it).
	tf := newTestFS(t, func(o *Options) { o.Index = o.Index.(*faultIndex).Index })
	if _, ok := tf.idx.Index.(index.ByIDIndex); !ok {
		t.Fatal("the test index has no by-ID view")
	}
	data := pattern(3*testChunk+100, 1)
	n := tf.committed(t, "big.bin", data)
	id := tf.attr(t, n).FileID
	if !tf.attr(t, n).Appender {
		t.Fatal("a streamed file is not an appender file")
	}
	if e, err := tf.idx.Index.(index.ByIDIndex).ByIDLookup(context.Background(), id); err != nil || e.Ino != n.ino {
		t.Fatalf("by-ID entry of %s: %+v, %v; want a named one of inode %d", id, e, err, n.ino)
	}
	if got := readByID(t, tf, id, 100, 0); !bytes.Equal(got, data[:100]) {
		t.Fatal("by-ID read differs from the content")
	}
	h := openFile(t, n, syscall.O_RDWR)
	write(t, h, []byte("changed"), 0)
	flush(t, h)
	h.Release(context.Background())
	if a := tf.attr(t, n); a.FileID != id {
		t.Fatalf("the change was not made in place: %s, then %s", id, a.FileID)
	}
	copy(data, "changed")
	if got := readByID(t, tf, id, 100, 0); !bytes.Equal(got, data[:100]) {
		t.Fatalf("by-ID read after the change: %q, want %q", got[:10], data[:10])
	}
}

// FastDFS names its directories in upper-case hex (%02X): a lower-case one
// in a by-ID path names no file, and is ENOENT at lookup, as README's odd
// input promises, not a directory whose listing then fails.
func TestByIDLookupLowerCaseHex(t *testing.T) {
	tf := newTestFS(t)
	d := &byIDDir{fs: tf.FS, group: "group1", parts: []string{"M00"}}
	fusefs.NewNodeFS(d, &fusefs.Options{})
	for _, name := range []string{"0a", "a0", "zz", "0", "000"} {
		var out fuse.EntryOut
		if _, errno := d.Lookup(context.Background(), name, &out); errno != syscall.ENOENT {
			t.Errorf("lookup of group1/M00/%s: %v, want ENOENT", name, errno)
		}
	}
	var out fuse.EntryOut
	if _, errno := d.Lookup(context.Background(), "0A", &out); errno != 0 {
		t.Errorf("lookup of group1/M00/0A: %v, want a directory", errno)
	}
	if isStorePath("M0a") {
		t.Error("M0a is taken for a store path; FastDFS names them M00 to MFF")
	}
}
