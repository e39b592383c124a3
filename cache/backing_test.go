package cache

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readBacking reads the whole file behind b as the kernel would, through
// its descriptor.
func readBacking(t *testing.T, b *Backing, size int64) []byte {
	t.Helper()
	got := make([]byte, size+1)
	var n int
	for n < len(got) {
		k, err := unix.Pread(b.Fd(), got[n:], int64(n))
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
		n += k
	}
	return got[:n]
}

// Only an object whose every block is on disk, at its length and not being
// written, can back an open; an empty one never does.
func TestOpenBackingOnlyWhenComplete(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MemBytes: -1, ReadaheadBlocks: -1})
	const size = 3*testBlock + 100 // a short last block
	f := newFakeFetcher(t, size)
	obj := f.object("complete")
	check := func(want bool, what string) {
		t.Helper()
		b, ok, err := c.OpenBacking(obj)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok != want {
			t.Fatalf("%s: OpenBacking ok = %v, want %v", what, ok, want)
		}
		if ok {
			if got := readBacking(t, b, size); !bytes.Equal(got, content(0, size)) {
				t.Fatalf("%s: the backing file holds %d bytes, not the object's %d", what, len(got), size)
			}
			b.Close()
		}
	}
	check(false, "nothing cached")
	mustRead(t, c, obj, 0, 2*testBlock)
	settle(t, c)
	check(false, "two blocks of four")
	mustRead(t, c, obj, 3*testBlock, 100)
	settle(t, c)
	check(false, "the last block but not the third")
	mustRead(t, c, obj, 2*testBlock, testBlock)
	settle(t, c)
	check(true, "every block")

	// A block being written again does not count as there.
	bid := blockID{obj: objectID(obj.Key), idx: 1}
	c.index.mu.Lock()
	c.index.startWriteLocked(bid)
	c.index.mu.Unlock()
	check(false, "a block being written")
	c.index.mu.Lock()
	c.index.endWriteLocked(bid)
	c.index.mu.Unlock()
	check(true, "the write over")

	// Another generation of the content is another key.
	check2 := Object{Key: "complete#2", Size: size, Fetch: f}
	if _, ok, _ := c.OpenBacking(check2); ok {
		t.Fatal("another key is backed by this object's file")
	}
	empty := Object{Key: "empty", Size: 0}
	if _, ok, err := c.OpenBacking(empty); ok || err != nil {
		t.Fatalf("an empty object: ok %v, err %v", ok, err)
	}
}

// While a Backing is open no block of its object is evicted or punched,
// however far the cache goes past its size; once it closes, the cache
// evicts down to its size again, the pinned blocks last.
func TestBackingPinsAgainstEviction(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MaxBytes: 4 * testBlock, MemBytes: -1, ReadaheadBlocks: -1})
	const size = 3 * testBlock
	f := newFakeFetcher(t, size)
	obj := f.object("pinned")
	mustRead(t, c, obj, 0, size)
	settle(t, c)
	b, ok, err := c.OpenBacking(obj)
	if !ok || err != nil {
		t.Fatalf("OpenBacking: %v, %v", ok, err)
	}
	// Twice the cache's size of other blocks goes through.
	other := newFakeFetcher(t, 8*testBlock)
	for idx := range int64(8) {
		mustRead(t, c, other.object("other"), idx*testBlock, testBlock)
		settle(t, c)
	}
	if got := readBacking(t, b, size); !bytes.Equal(got, content(0, size)) {
		t.Fatal("a pinned object's file changed under its Backing")
	}
	if n, err := dataBytes(c.objectPath(objectID(obj.Key))); err != nil || n != size {
		t.Fatalf("%d bytes of data in the pinned file, %v, want %d", n, err, size)
	}
	if st := c.Stats(); st.Bytes > 4*testBlock+size {
		t.Fatalf("%d bytes cached: more than the size and the pinned object", st.Bytes)
	}
	// A second Backing of the same object is a second pin: closing the
	// first keeps it.
	b2, ok, _ := c.OpenBacking(obj)
	if !ok {
		t.Fatal("a second OpenBacking of a pinned complete object failed")
	}
	b.Close()
	b.Close() // again: a no-op
	mustRead(t, c, other.object("other2"), 0, 4*testBlock)
	settle(t, c)
	if got := readBacking(t, b2, size); !bytes.Equal(got, content(0, size)) {
		t.Fatal("the object's file changed while a second Backing was open")
	}
	b2.Close()
	if st := c.Stats(); st.Bytes > 4*testBlock {
		t.Fatalf("%d bytes cached after the last Backing closed, want at most %d", st.Bytes, 4*testBlock)
	}
	// The object's blocks are back in the LRU: more reads evict them.
	mustRead(t, c, other.object("other3"), 0, 8*testBlock)
	settle(t, c)
	if _, ok, _ := c.OpenBacking(obj); ok {
		t.Fatal("the object is still complete after its Backings closed and the cache turned over")
	}
}

// Complete writes the blocks a read left out (here: all but one, skipped
// while the disk was stuck), fetching only those, and the object can then
// back an open.
func TestCompleteFillsSkippedBlocks(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MemBytes: -1, ReadaheadBlocks: -1})
	const blocks = 3 * storeQueue
	f := newFakeFetcher(t, blocks*testBlock-1)
	obj := f.object("skipped")
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	c.beforeStore = func() { <-release }
	mustRead(t, c, obj, 0, obj.Size)
	unblock()
	settle(t, c)
	st := c.Stats()
	if st.StoreSkips == 0 {
		t.Fatal("no block was skipped; the test needs some")
	}
	if _, ok, _ := c.OpenBacking(obj); ok {
		t.Fatal("complete although blocks were skipped")
	}
	before := f.Count()
	if err := c.Complete(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	if got := int64(f.Count() - before); got != st.StoreSkips {
		t.Fatalf("Complete fetched %d blocks, want the %d skipped", got, st.StoreSkips)
	}
	b, ok, err := c.OpenBacking(obj)
	if !ok || err != nil {
		t.Fatalf("not complete after Complete: %v, %v", ok, err)
	}
	defer b.Close()
	if got := readBacking(t, b, obj.Size); !bytes.Equal(got, content(0, obj.Size)) {
		t.Fatal("the completed file is not the object")
	}
	// Nothing left to do: no fetch.
	before = f.Count()
	if err := c.Complete(context.Background(), obj); err != nil || f.Count() != before {
		t.Fatalf("Complete of a complete object: %v, %d fetches", err, f.Count()-before)
	}
}

// A fetch failing stops Complete with its error, and Close stops it.
func TestCompleteErrors(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MemBytes: -1, ReadaheadBlocks: -1})
	f := newFakeFetcher(t, 4*testBlock)
	f.err = errInvalid
	if err := c.Complete(context.Background(), f.object("failing")); err == nil {
		t.Fatal("Complete of an object whose fetches fail returned nil")
	}
	ok := newFakeFetcher(t, 4*testBlock)
	c.Close()
	if err := c.Complete(context.Background(), ok.object("closed")); err != ErrClosed {
		t.Fatalf("Complete on a closed cache: %v, want ErrClosed", err)
	}
}

// completeBacking caches an object of three blocks whole and opens it as
// a Backing.
func completeBacking(t *testing.T) (*Cache, *fakeFetcher, Object, *Backing) {
	t.Helper()
	c := openTest(t, t.TempDir(), Options{MemBytes: -1, ReadaheadBlocks: -1})
	f := newFakeFetcher(t, 3*testBlock)
	obj := f.object("changed")
	mustRead(t, c, obj, 0, obj.Size)
	settle(t, c)
	b, ok, err := c.OpenBacking(obj)
	if err != nil || !ok {
		t.Fatalf("the complete object backs no open: %v", err)
	}
	return c, f, obj, b
}

// A Backing whose file was written behind the cache's back says so, and
// Discard drops the object for good: no block of it is served from disk or
// entered again, while reads still return the object's bytes.
func TestDiscardDropsAChangedObject(t *testing.T) {
	c, f, obj, b := completeBacking(t)
	defer b.Close()
	if b.Changed() {
		t.Fatal("Changed before any write")
	}
	w, err := os.OpenFile(c.objectPath(objectID(obj.Key)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("written"), 0)
	w.Close()
	if !b.Changed() {
		t.Fatal("Changed missed a write into the file")
	}
	b.Discard()
	if _, ok, _ := c.OpenBacking(obj); ok {
		t.Fatal("a discarded object backs an open")
	}
	before := f.Count()
	mustRead(t, c, obj, 0, obj.Size)
	settle(t, c)
	mustRead(t, c, obj, 0, obj.Size)
	if got := f.Count() - before; got != 6 {
		t.Fatalf("%d fetches for two reads of a discarded 3-block object, want 6: its blocks were cached again", got)
	}
}

// A small object lives as a record in a pack (pack.go): there is no file
// of its own for the kernel to read, so it backs no open, however complete.
func TestOpenBackingRefusesPackedObject(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{BlockSize: packBlock, MemBytes: -1, ReadaheadBlocks: -1})
	const size = 5000
	f := newFakeFetcher(t, size)
	obj := f.object("small")
	mustRead(t, c, obj, 0, size)
	settle(t, c)
	if len(packFiles(t, c)) != 1 {
		t.Fatal("the small object is not in a pack")
	}
	b, ok, err := c.OpenBacking(obj)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		b.Close()
		t.Fatal("a packed object backs an open")
	}
	mustRead(t, c, obj, 0, size)
	if f.Count() != 1 {
		t.Fatalf("fetched %d times, want the pack's copy read", f.Count())
	}
}

// An object whose file was open through passthrough when the cache last
// stopped (a crash: its Backing never closed) may hold bytes written
// through a shared map, so the next Open drops it; one whose Backings all
// closed is kept.
func TestObjectPinnedAtStopIsDropped(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{MemBytes: -1, ReadaheadBlocks: -1})
	const size = 3 * testBlock
	f := newFakeFetcher(t, size)
	kept, held := f.object("kept"), f.object("held")
	for _, obj := range []Object{kept, held} {
		mustRead(t, c, obj, 0, size)
	}
	settle(t, c)
	b1, ok1, _ := c.OpenBacking(kept)
	b2, ok2, _ := c.OpenBacking(held)
	if !ok1 || !ok2 {
		t.Fatal("not complete")
	}
	b1.Close()
	c.Close() // b2 never closed: the process died with it open
	b2.file.Close()

	c2 := openTest(t, dir, Options{MemBytes: -1, ReadaheadBlocks: -1})
	if _, err := os.Stat(c2.objectPath(objectID(held.Key))); !os.IsNotExist(err) {
		t.Fatalf("the file pinned at the stop is still there (stat: %v)", err)
	}
	before := f.Count()
	mustRead(t, c2, kept, 0, size)
	if f.Count() != before {
		t.Fatal("the object whose Backing closed was fetched again")
	}
	mustRead(t, c2, held, 0, size)
	if f.Count() != before+3 {
		t.Fatalf("the object pinned at the stop: %d fetches, want its 3 blocks fetched again", f.Count()-before)
	}
	if names, _ := os.ReadDir(c2.pinDir); len(names) != 0 {
		t.Fatalf("%d pin markers left after the reopen", len(names))
	}
}

// A store queued before Discard that finishes while the discarded Backing
// is still open (the fs discards at a writer's flush and closes at the
// last passthrough release) leaves no file behind: the file at the path
// is a new one, which no Backing holds.
func TestStoreAfterDiscardWhilePinnedFreesFile(t *testing.T) {
	c, _, obj, b := completeBacking(t)
	bid := blockID{obj: objectID(obj.Key), idx: 1}
	c.index.mu.Lock()
	c.index.startWriteLocked(bid) // queued before the discard
	c.index.mu.Unlock()
	b.Discard()
	if err := c.storeBlock(bid, content(testBlock, testBlock)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := os.Stat(c.objectPath(bid.obj)); !os.IsNotExist(err) {
		t.Fatalf("the discarded object's file is back after a late store (stat: %v); the cache counts %d bytes", err, c.Stats().Bytes)
	}
}

// A file once handed to the kernel may still be mapped after its last
// Backing closed (a map outlives close(2)): evicting one of its blocks
// unlinks it and forgets the whole object, never punches a hole that the
// map would read as zeros.
func TestEvictingHandedObjectUnlinksIt(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MaxBytes: 4 * testBlock, MemBytes: -1, ReadaheadBlocks: -1})
	const size = 3 * testBlock
	f := newFakeFetcher(t, size)
	obj := f.object("mapped")
	mustRead(t, c, obj, 0, size)
	settle(t, c)
	b, ok, err := c.OpenBacking(obj)
	if !ok || err != nil {
		t.Fatalf("OpenBacking: %v, %v", ok, err)
	}
	mapped, err := os.Open(c.objectPath(objectID(obj.Key))) // the kernel's map
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	b.Close()
	// Enough other blocks to evict some of the object's, not all.
	other := newFakeFetcher(t, 2*testBlock)
	mustRead(t, c, other.object("other"), 0, 2*testBlock)
	settle(t, c)
	got := make([]byte, size)
	if _, err := mapped.ReadAt(got, 0); err != nil || !bytes.Equal(got, content(0, size)) {
		t.Fatalf("the mapped file changed when the cache evicted part of it (%v)", err)
	}
	if _, err := os.Stat(c.objectPath(objectID(obj.Key))); !os.IsNotExist(err) {
		t.Fatalf("the object's file is still at its path after an eviction (stat: %v)", err)
	}
	before := f.Count()
	mustRead(t, c, obj, 0, size)
	if f.Count() != before+3 {
		t.Fatalf("%d fetches after the eviction, want all 3 blocks fetched again (none left half cached)", f.Count()-before)
	}
}

// Discard's own unlink changes the file's ctime, which is no write: a
// Backing discarded before anything wrote it (as an open for writing
// joins a passthrough one) is not Changed, and a write after the discard
// still shows.
func TestDiscardIsNoChange(t *testing.T) {
	_, _, _, b := completeBacking(t)
	defer b.Close()
	b.Discard()
	if b.Changed() {
		t.Fatal("Changed after Discard alone")
	}
	w, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", b.Fd()), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("written"), 0)
	w.Close()
	if !b.Changed() {
		t.Fatal("Changed missed a write after Discard")
	}
}

// While a discarded object's Backing is open, reads of the object are
// served and not stored, and Complete fetches nothing (the fs calls it
// after every read of most of a large file; nothing it fetched would be
// kept): its file, once unlinked, does not come back. After the last
// Close the object is cached afresh, in a new file the cache counts.
func TestDiscardedObjectCachedAgainOnlyAfterClose(t *testing.T) {
	c, f, obj, b := completeBacking(t)
	var old unix.Stat_t
	if err := unix.Fstat(b.Fd(), &old); err != nil {
		t.Fatal(err)
	}
	b.Discard()
	path := c.objectPath(objectID(obj.Key))
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Discard left the file: %v", err)
	}
	mustRead(t, c, obj, 0, obj.Size)
	settle(t, c)
	if n, err := dataBytes(path); err == nil && n > 0 {
		t.Fatalf("a discarded object's file was written again while its Backing is open: %d bytes", n)
	}
	for i := range 2 {
		before := f.Count()
		if err := c.Complete(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
		if got := f.Count() - before; got != 0 {
			t.Fatalf("Complete #%d of a discarded object fetched %d blocks for nothing", i+1, got)
		}
	}
	// The kernel's map of the discarded file outlives the Backing.
	mapped, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", b.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	b.Close()

	before := f.Count()
	if err := c.Complete(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	if got := f.Count() - before; got != 3 {
		t.Fatalf("Complete after the last Close fetched %d blocks, want the 3", got)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Ino == old.Ino {
		t.Fatalf("after the last Close the object is not in a new file (%v, inode %d, was %d)", err, st.Ino, old.Ino)
	}
	if n, _ := dataBytes(path); n != obj.Size || c.Stats().Bytes != obj.Size {
		t.Fatalf("%d bytes on disk, %d counted, want %d both", n, c.Stats().Bytes, obj.Size)
	}
	b2, ok, err := c.OpenBacking(obj)
	if err != nil || !ok {
		t.Fatalf("the object cached afresh backs no open: %v", err)
	}
	b2.Close()
	before = f.Count()
	mustRead(t, c, obj, 0, obj.Size)
	if f.Count() != before {
		t.Fatal("the object cached afresh was fetched again")
	}
}

// dropAndQueue takes the drop blocks out of the index (evicted, or found
// unreadable) and counts a block write of queued, as queueStore does.
func dropAndQueue(c *Cache, queued blockID, drop ...blockID) {
	x := &c.index
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, bid := range drop {
		x.removeLocked(x.blocks[bid])
	}
	x.startWriteLocked(queued)
}

// writeUnentered is storeBlock's first half for bid, whose write the
// caller counted: the block written into its object's file, under the
// file lock, not yet entered.
func writeUnentered(t *testing.T, c *Cache, bid blockID) {
	t.Helper()
	lock := c.fileLock(bid.obj)
	lock.Lock()
	defer lock.Unlock()
	if err := c.writeBlock(bid, content(bid.idx*testBlock, testBlock)); err != nil {
		t.Fatal(err)
	}
}

// enterWritten is storeBlock's second half: the write over, the block
// entered, and a refused entry freed.
func enterWritten(c *Cache, bid blockID) {
	c.index.mu.Lock()
	c.index.endWriteLocked(bid)
	refused := c.index.insertLocked(bid, testBlock, time.Now())
	c.index.mu.Unlock()
	if refused != nil {
		c.freeEntry(refused)
	}
}

// checkAfterRefetch has block 2 of obj fetched again (into a new file,
// where its old one was unlinked) and checks that block 1 reads right,
// not as zeros from a hole.
func checkAfterRefetch(t *testing.T, c *Cache, obj Object) {
	t.Helper()
	mustRead(t, c, obj, 2*testBlock, testBlock)
	settle(t, c)
	got := make([]byte, testBlock)
	if _, err := c.ReadAt(t.Context(), obj, got, testBlock); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content(testBlock, testBlock)) {
		t.Fatalf("block 1 read wrong bytes (zeros: %v)", bytes.Equal(got, make([]byte, testBlock)))
	}
}

// A handed object whose block 1 is being stored (written into the file,
// not yet entered) when the eviction of its block 0 would unlink the
// whole file: the file stays, or block 1 would be entered over nothing
// and, once a refetch of block 2 made a new file, read from its hole as
// zeros.
func TestHandedFileKeptWhileABlockIsStored(t *testing.T) {
	c, _, obj, b := completeBacking(t)
	b.Close() // handed stays: a map may outlive it
	id := objectID(obj.Key)
	b0, b1 := blockID{obj: id, idx: 0}, blockID{obj: id, idx: 1}
	// One eviction batch took blocks 0 and 1 (evictLocked); a reader
	// missed block 1 and its fetch queued a store (queueStore).
	dropAndQueue(c, b1, b0, b1)
	writeUnentered(t, c, b1)
	// The batch frees block 0: handed, so the whole file goes.
	c.freeBlock(b0, testBlock)
	enterWritten(c, b1)
	c.freeBlock(b1, testBlock) // the batch's second victim
	checkAfterRefetch(t, c, obj)
}

// A block written into a pinned file just before Discard unlinks it, and
// entered after the last Close: the object stays out of the cache while
// that write is under way, so the block is not entered over nothing.
func TestDiscardedObjectStaysOutWhileABlockIsStored(t *testing.T) {
	c, _, obj, b := completeBacking(t)
	id := objectID(obj.Key)
	b1 := blockID{obj: id, idx: 1}
	dropAndQueue(c, b1, b1) // dropped by readCached, say; pinned, so kept on disk
	writeUnentered(t, c, b1)
	b.Discard()
	b.Close()
	enterWritten(c, b1)
	checkAfterRefetch(t, c, obj)
}

// A discarded object whose last Close came while a block write was under
// way is let back into the cache when that write ends: otherwise it was
// never cached on disk or opened for passthrough again in this process.
func TestDiscardedObjectBackAfterItsLastWrite(t *testing.T) {
	c, f, obj, b := completeBacking(t)
	id := objectID(obj.Key)
	x := &c.index
	b1 := blockID{obj: id, idx: 1}
	dropAndQueue(c, b1, b1)
	c.beforeStore = func() { b.Discard(); b.Close() }
	c.storeBlock(b1, content(testBlock, testBlock))
	c.beforeStore = nil
	if err := c.Complete(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
	settle(t, c)
	if _, ok, _ := c.OpenBacking(obj); !ok {
		x.mu.Lock()
		bad := x.bad[id]
		x.mu.Unlock()
		t.Fatalf("no passthrough for the object ever again (bad=%v, fetches=%d)", bad, f.Count())
	}
}

// A handed object's unlink deferred by a block write takes place when the
// write ends (its block is not entered): the freed block's bytes must not
// stay on disk uncounted.
func TestDeferredHandedUnlinkFreesDisk(t *testing.T) {
	c, _, obj, b := completeBacking(t)
	b.Close()
	id := objectID(obj.Key)
	x := &c.index
	b0, b1 := blockID{obj: id, idx: 0}, blockID{obj: id, idx: 1}
	dropAndQueue(c, b1, b0, b1)
	c.beforeStore = func() { c.freeBlock(b0, testBlock) }
	c.storeBlock(b1, content(testBlock, testBlock))
	c.beforeStore = nil
	x.mu.Lock()
	accounted := x.bytes
	x.mu.Unlock()
	onDisk := diskBlocks(t, c.dir)
	var total int64
	for _, n := range onDisk {
		total += n
	}
	if total != accounted {
		t.Fatalf("disk holds %d bytes of blocks, index accounts %d", total, accounted)
	}
}

// A map of a handed file may outlive the process (the kernel maps the
// cache's file itself): after a clean restart the cache still never
// punches that file, neither when later reads evict it nor when opening
// evicts what no longer fits a smaller size.
func TestHandedFileWholeAfterReopen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxAfter int64
		reads    int64 // blocks of another object read after the reopen
	}{
		{"same size, then reads", 4 * testBlock, 2},
		{"smaller size", 2 * testBlock, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{MaxBytes: 4 * testBlock, MemBytes: -1, ReadaheadBlocks: -1}
			c := openTest(t, dir, opts)
			const size = 3 * testBlock
			f := newFakeFetcher(t, size)
			obj := f.object("mapped")
			mustRead(t, c, obj, 0, size)
			settle(t, c)
			b, ok, err := c.OpenBacking(obj)
			if !ok || err != nil {
				t.Fatalf("OpenBacking: %v, %v", ok, err)
			}
			mapped, err := os.Open(c.objectPath(objectID(obj.Key)))
			if err != nil {
				t.Fatal(err)
			}
			defer mapped.Close()
			b.Close()
			c.Close()
			opts.MaxBytes = tc.maxAfter
			c2 := openTest(t, dir, opts)
			if tc.reads > 0 {
				other := newFakeFetcher(t, tc.reads*testBlock)
				mustRead(t, c2, other.object("other"), 0, tc.reads*testBlock)
				settle(t, c2)
			}
			got := make([]byte, size)
			if _, err := mapped.ReadAt(got, 0); err != nil || !bytes.Equal(got, content(0, size)) {
				t.Fatalf("the surviving map's file was punched after a reopen (%v)", err)
			}
		})
	}
}
