package fs

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"fdfsfs/index"
)

// A reader going through a directory's small files in the order of its
// listing has the next ones fetched ahead of it; a jump starts over, and a
// change to the directory drops the listing.
func TestPrefetchFollowsListing(t *testing.T) {
	tf := newTestFS(t)
	for i := range 20 {
		tf.committed(t, fmt.Sprintf("f%02d", i), pattern(3000, byte(i)))
	}
	tf.committed(t, "g-big", pattern(100<<10, 99)) // over the 64 KiB block: not listed
	d := &dirNode{indexedXattrs: indexedXattrs{tf.FS, tf.group}, group: "group1"}
	fh, _, errno := d.OpendirHandle(context.Background(), 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	eventually(t, "listing kept", func() bool { return d.listing.Load() != nil })
	fh.(*dirHandle).Releasedir(context.Background(), 0)
	if l := d.listing.Load(); len(l.files) != 20 {
		t.Fatalf("listing of %d small files, want 20", len(l.files))
	}

	downloads := func() int { return tf.be.count("Download") }
	start := downloads()
	want := func(n int, why string) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d downloads (%s)", n, why), func() bool { return downloads()-start == n })
	}
	tf.prefetchAfter(d, "f00") // the first open: nothing yet
	tf.prefetchAfter(d, "f01") // in order: f02 to f09
	want(8, "f02 to f09 after f01")
	tf.prefetchAfter(d, "f02") // f10
	want(9, "f10 after f02")
	tf.prefetchAfter(d, "f15") // a jump: nothing
	tf.prefetchAfter(d, "f16") // in order again: f17 to f19
	want(12, "f17 to f19 after f16")
	tf.prefetchAfter(d, "g-big")
	tf.prefetchAfter(d, "f03") // backwards: nothing
	// The prefetched content is what a read of the file gets, without
	// another download.
	a, err := tf.idx.Lookup(context.Background(), tf.group, "f05")
	if err != nil {
		t.Fatal(err)
	}
	h := openFile(t, &fileNode{fs: tf.FS, ino: a.Ino, group: "group1"}, syscall.O_RDONLY)
	if got := read(t, h, 8192, 0); string(got) != string(pattern(3000, 5)) {
		t.Fatal("prefetched file reads wrong")
	}
	h.Release(context.Background())
	if got := downloads() - start; got != 12 {
		t.Fatalf("%d downloads, want 12: f05 read from what was fetched ahead, nothing for the jump back", got)
	}

	// A new name in the directory drops its listing.
	if _, errno := d.create(context.Background(), "new", index.Attr{Kind: index.KindFile, Mode: 0o644}, 0o022); errno != 0 {
		t.Fatal(errno)
	}
	if d.listing.Load() != nil {
		t.Fatal("the listing outlived a create in its directory")
	}
}
