package fs

import (
	"bytes"
	"context"
	"strings"
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
	return read(t, h, size, off)
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

// The kernel keeps a by-ID inode between lookups, and go-fuse then keeps
// the node of the first lookup: an open after a named appender file was
// changed in place reads the new content, and getattr shows its new size.
func TestByIDNodeFollowsChangeInPlace(t *testing.T) {
	tf := newTestFS(t, func(o *Options) { o.Index = o.Index.(*faultIndex).Index })
	data := pattern(3*testChunk+100, 1)
	n := tf.committed(t, "big.bin", data)
	id := tf.attr(t, n).FileID
	dir, name := id[:strings.LastIndexByte(id, '/')], id[strings.LastIndexByte(id, '/')+1:]
	parts := strings.Split(dir, "/")
	raw := fusefs.NewNodeFS(&byIDDir{fs: tf.FS, group: parts[0], parts: parts[1:]}, &fusefs.Options{})
	cancel := make(chan struct{})
	readAll := func(size int) []byte {
		t.Helper()
		var entry fuse.EntryOut
		if st := raw.Lookup(cancel, &fuse.InHeader{NodeId: 1}, name, &entry); !st.Ok() {
			t.Fatalf("lookup: %v", st)
		}
		var attr fuse.AttrOut
		if st := raw.GetAttr(cancel, &fuse.GetAttrIn{InHeader: fuse.InHeader{NodeId: entry.NodeId}}, &attr); !st.Ok() || attr.Size != uint64(size) {
			t.Fatalf("getattr: size %d, %v; want %d", attr.Size, st, size)
		}
		var open fuse.OpenOut
		if st := raw.Open(cancel, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: entry.NodeId}, Flags: syscall.O_RDONLY}, &open); !st.Ok() {
			t.Fatalf("open: %v", st)
		}
		defer raw.Release(cancel, &fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: entry.NodeId}, Fh: open.Fh})
		buf := make([]byte, size+100)
		res, st := raw.Read(cancel, &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: entry.NodeId}, Fh: open.Fh, Size: uint32(len(buf))}, buf)
		if !st.Ok() {
			t.Fatalf("read: %v", st)
		}
		got, _ := res.Bytes(buf)
		out := bytes.Clone(got)
		res.Done()
		return out
	}
	if got := readAll(len(data)); !bytes.Equal(got, data) {
		t.Fatalf("by-ID read: %d bytes, want the %d written", len(got), len(data))
	}
	h := openFile(t, n, syscall.O_RDWR)
	write(t, h, []byte("changed"), 0)
	write(t, h, []byte("appended"), int64(len(data)))
	flush(t, h)
	h.Release(context.Background())
	if a := tf.attr(t, n); a.FileID != id {
		t.Fatalf("the change was not made in place: %s, then %s", id, a.FileID)
	}
	copy(data, "changed")
	data = append(data, "appended"...)
	if got := readAll(len(data)); !bytes.Equal(got, data) {
		t.Fatalf("by-ID read after the change: %d bytes starting %q, want %d starting %q", len(got), got[:min(10, len(got))], len(data), data[:10])
	}
}
