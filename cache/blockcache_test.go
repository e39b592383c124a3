package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const testBlock = 4096

func openTest(t *testing.T, dir string, opts Options) *Cache {
	t.Helper()
	if opts.BlockSize == 0 {
		opts.BlockSize = testBlock
	}
	c, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// diskBlocks walks the object directories and returns the bytes of data (not
// holes) in every object file, by name.
func diskBlocks(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	found := make(map[string]int64)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.Type().IsRegular() && strings.HasPrefix(rel, "objects-") {
			n, err := dataBytes(path)
			if err != nil {
				return err
			}
			found[d.Name()] = n
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// dataBytes counts the bytes of path that lie in data extents.
func dataBytes(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var n int64
	for off := int64(0); off < info.Size(); {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break
		}
		if err != nil {
			return 0, err
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return 0, err
		}
		n += hole - data
		off = hole
	}
	return n, nil
}

func diskBytes(t *testing.T, dir string) int64 {
	var sum int64
	for _, n := range diskBlocks(t, dir) {
		sum += n
	}
	return sum
}

// settle waits until every fetch has stored its block: a read returns as
// soon as its bytes are fetched, a moment before they are on disk.
func settle(t *testing.T, c *Cache) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatal("fetches never settled")
		}
		time.Sleep(time.Millisecond)
	}
}

func mustRead(t *testing.T, c *Cache, obj Object, off, length int64) {
	t.Helper()
	p := make([]byte, length)
	n, err := c.ReadAt(context.Background(), obj, p, off)
	if err != nil && err != io.EOF {
		t.Fatalf("ReadAt(%d, %d): %v", off, length, err)
	}
	if !bytes.Equal(p[:n], content(off, int64(n))) {
		t.Fatalf("ReadAt(%d, %d): wrong bytes", off, length)
	}
}

func TestReadAtMatchesObject(t *testing.T) {
	const size = 5*testBlock + 1000 // the last block is short
	tests := []struct {
		name      string
		off, len  int64
		wantN     int
		wantEOF   bool
		wantFetch []fetchCall
	}{
		{"inside first block", 10, 100, 100, false, []fetchCall{{0, testBlock}}},
		{"whole block", testBlock, testBlock, testBlock, false, []fetchCall{{testBlock, testBlock}}},
		{"across a boundary", testBlock - 5, 10, 10, false, []fetchCall{{0, testBlock}, {testBlock, testBlock}}},
		{"three blocks", 1, 2 * testBlock, 2 * testBlock, false,
			[]fetchCall{{0, testBlock}, {testBlock, testBlock}, {2 * testBlock, testBlock}}},
		{"short last block", 5 * testBlock, 1000, 1000, false, []fetchCall{{5 * testBlock, 1000}}},
		{"past the end", size - 10, 100, 10, true, []fetchCall{{5 * testBlock, 1000}}},
		{"at the end", size, 100, 0, true, nil},
		{"far past the end", 10 * size, 100, 0, true, nil},
		{"empty read", 100, 0, 0, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openTest(t, t.TempDir(), Options{})
			f := newFakeFetcher(t, size)
			p := make([]byte, tt.len)
			n, err := c.ReadAt(context.Background(), f.object("k"), p, tt.off)
			if n != tt.wantN || (err == io.EOF) != tt.wantEOF || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt = %d, %v; want %d, EOF %v", n, err, tt.wantN, tt.wantEOF)
			}
			if !bytes.Equal(p[:n], content(tt.off, int64(n))) {
				t.Fatal("wrong bytes")
			}
			calls := f.Calls()
			if len(calls) != len(tt.wantFetch) {
				t.Fatalf("fetches %v, want %v", calls, tt.wantFetch)
			}
			for _, want := range tt.wantFetch {
				found := false
				for _, got := range calls {
					found = found || got == want
				}
				if !found {
					t.Fatalf("fetches %v, want %v", calls, tt.wantFetch)
				}
			}
			// The same read again comes from disk.
			n2, err2 := c.ReadAt(context.Background(), f.object("k"), p, tt.off)
			if n2 != n || err2 != err || f.Count() != len(calls) {
				t.Fatalf("second ReadAt = %d, %v after %d fetches; want %d, %v from disk", n2, err2, f.Count(), n, err)
			}
		})
	}
}

func TestEmptyObjectNeverFetches(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	obj := Object{Key: "empty", Size: 0, Fetch: FetcherFunc(func(context.Context, int64, int64, io.Writer) (int64, error) {
		t.Error("fetch of an empty object")
		return 0, errInvalid
	})}
	for _, off := range []int64{0, 1, 4096} {
		n, err := c.ReadAt(context.Background(), obj, make([]byte, 10), off)
		if n != 0 || err != io.EOF {
			t.Fatalf("ReadAt(%d) = %d, %v; want 0, EOF", off, n, err)
		}
	}
	// No fetcher is needed for an empty object at all.
	if n, err := c.ReadAt(context.Background(), Object{Key: "nil"}, make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt of empty object without fetcher = %d, %v", n, err)
	}
	r := c.NewReader(obj)
	defer r.Close()
	if n, err := r.ReadAt(context.Background(), make([]byte, 10), 0); n != 0 || err != io.EOF {
		t.Fatalf("Reader.ReadAt = %d, %v; want 0, EOF", n, err)
	}
}

func TestConcurrentReadersFetchOnce(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	f := newFakeFetcher(t, 3*testBlock)
	f.delay = 20 * time.Millisecond
	obj := f.object("shared")
	const readers = 16
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range readers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			off := int64(testBlock + i*100) // all inside block 1
			p := make([]byte, 100)
			if _, err := c.ReadAt(context.Background(), obj, p, off); err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(p, content(off, 100)) {
				t.Error("wrong bytes")
			}
		}()
	}
	start.Done()
	done.Wait()
	settle(t, c)
	if calls := f.Calls(); len(calls) != 1 || calls[0] != (fetchCall{testBlock, testBlock}) {
		t.Fatalf("fetches %v, want one of block 1", calls)
	}
	st := c.Stats()
	if st.Hits+st.Misses != readers || st.Misses < 1 || st.Fetches != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEvictionKeepsDiskUnderMaxBytes(t *testing.T) {
	dir := t.TempDir()
	const keep = 10
	// The memory tier would answer for evicted blocks; this is about disk.
	c := openTest(t, dir, Options{MaxBytes: keep * testBlock, MemBytes: -1})
	f := newFakeFetcher(t, 30*testBlock)
	obj := f.object("big")
	for idx := range int64(30) {
		mustRead(t, c, obj, idx*testBlock, testBlock)
		settle(t, c)
		if got := diskBytes(t, dir); got > keep*testBlock {
			t.Fatalf("after block %d: %d bytes on disk, max %d", idx, got, keep*testBlock)
		}
	}
	st := c.Stats()
	if st.Bytes != keep*testBlock || st.Blocks != keep || st.Evictions != 20 {
		t.Fatalf("stats %+v", st)
	}
	if got := diskBytes(t, dir); got != st.Bytes {
		t.Fatalf("%d bytes on disk, stats say %d", got, st.Bytes)
	}
	// Touch block 20 so that it is the most recent, then bring in block 0:
	// the least recently used, block 21, goes.
	mustRead(t, c, obj, 20*testBlock, 1)
	mustRead(t, c, obj, 0, 1)
	settle(t, c)
	before := f.Count()
	mustRead(t, c, obj, 20*testBlock, 1)
	mustRead(t, c, obj, 22*testBlock, 29*testBlock-22*testBlock)
	if f.Count() != before {
		t.Fatalf("recently used blocks were evicted: %v", f.Calls()[before:])
	}
	mustRead(t, c, obj, 21*testBlock, 1)
	if f.Count() != before+1 {
		t.Fatal("block 21 should have been evicted")
	}
}

func TestBlockLargerThanCacheStillServed(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{MaxBytes: testBlock / 2})
	f := newFakeFetcher(t, 2*testBlock)
	mustRead(t, c, f.object("x"), 0, 2*testBlock)
	settle(t, c)
	if got := diskBytes(t, dir); got != 0 {
		t.Fatalf("%d bytes on disk, cache holds %d", got, testBlock/2)
	}
}

func TestReopenKeepsBlocks(t *testing.T) {
	dir := t.TempDir()
	f := newFakeFetcher(t, 8*testBlock)
	older, newer := f.object("older"), f.object("newer")
	c := openTest(t, dir, Options{})
	mustRead(t, c, older, 0, 4*testBlock)
	mustRead(t, c, newer, 0, 4*testBlock)
	settle(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAt(context.Background(), older, make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAt after Close: %v, want ErrClosed", err)
	}

	// An object's last use is its file's mtime: make "older" an hour old.
	when := time.Now().Add(-time.Hour)
	if err := os.Chtimes(c.objectPath(objectID(older.Key)), when, when); err != nil {
		t.Fatal(err)
	}
	// A smaller cache keeps three blocks of the newer object, its first
	// three, and drops all of the older one.
	c2 := openTest(t, dir, Options{MaxBytes: 3 * testBlock})
	if st := c2.Stats(); st.Blocks != 3 || st.Bytes != 3*testBlock || st.Evictions != 5 {
		t.Fatalf("stats after reopen %+v", st)
	}
	if got := diskBytes(t, dir); got != 3*testBlock {
		t.Fatalf("%d bytes on disk after reopen, want %d", got, 3*testBlock)
	}
	fetched := f.Count()
	mustRead(t, c2, newer, 0, 3*testBlock)
	if f.Count() != fetched {
		t.Fatalf("blocks 0-2 were not kept across reopen: %v", f.Calls()[fetched:])
	}
	if st := c2.Stats(); st.Hits != 3 || st.Misses != 0 {
		t.Fatalf("stats %+v", st)
	}
	mustRead(t, c2, newer, 3*testBlock, 1)
	mustRead(t, c2, older, 0, 1)
	if f.Count() != fetched+2 {
		t.Fatal("block 3 of the newer object and the older object should have been evicted at reopen")
	}
	c2.Close()

	// Another block size discards everything.
	c3 := openTest(t, dir, Options{BlockSize: 2 * testBlock})
	if st := c3.Stats(); st.Blocks != 0 {
		t.Fatalf("blocks of another size survived: %+v", st)
	}
	if got := diskBytes(t, dir); got != 0 {
		t.Fatalf("%d bytes of old blocks left on disk", got)
	}
}

// A short last block evicted while the blocks before it stay must not come
// back after a remount: a hole punched into part of a file-system block
// would leave zeros there that look like data.
func TestEvictedShortBlockStaysGone(t *testing.T) {
	dir := t.TempDir()
	const size = 2*testBlock + 100
	f := newFakeFetcher(t, size)
	obj := f.object("short")
	c := openTest(t, dir, Options{MaxBytes: 2 * testBlock, MemBytes: -1})
	mustRead(t, c, obj, 2*testBlock, 100) // block 2, the short one, first
	settle(t, c)
	mustRead(t, c, obj, 0, 2*testBlock) // blocks 0 and 1 push it out
	settle(t, c)
	if st := c.Stats(); st.Blocks != 2 || st.Evictions != 1 {
		t.Fatalf("stats %+v", st)
	}
	c.Close()
	c2 := openTest(t, dir, Options{MaxBytes: 4 * testBlock, MemBytes: -1})
	if st := c2.Stats(); st.Blocks != 2 || st.Bytes != 2*testBlock {
		t.Fatalf("stats after reopen %+v", st)
	}
	before := f.Count()
	mustRead(t, c2, obj, 0, size)
	if f.Count() != before+1 {
		t.Fatalf("%d fetches after reopen, want only the evicted short block", f.Count()-before)
	}
}

// Readers racing evictions in a tiny cache never see the holes evictions
// punch.
func TestEvictionDuringReadsNeverServesHoles(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MaxBytes: 2 * testBlock, MemBytes: -1, ReadaheadBlocks: -1})
	const blocks = 16
	f := newFakeFetcher(t, blocks*testBlock)
	obj := f.object("busy")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				idx := int64((g*7 + i*5) % blocks)
				p := make([]byte, testBlock)
				if _, err := c.ReadAt(context.Background(), obj, p, idx*testBlock); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(p, content(idx*testBlock, testBlock)) {
					t.Errorf("block %d: wrong bytes", idx)
					return
				}
			}
		}()
	}
	wg.Wait()
	settle(t, c)
	if got, st := diskBytes(t, c.dir), c.Stats(); got != st.Bytes || st.Bytes > 2*testBlock {
		t.Fatalf("%d bytes on disk, stats %+v", got, st)
	}
}

func TestOpenRemovesStrayFiles(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{})
	c.Close()
	if err := os.Mkdir(filepath.Join(c.objDir, "00"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The last two are the layout of earlier versions.
	if err := os.MkdirAll(filepath.Join(dir, "blocks-4096", "00"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(c.objDir, "00", "not-a-block")
	misplaced := filepath.Join(c.objDir, "00", objectID("k"))
	topLevel := filepath.Join(c.objDir, "junk")
	leftovers := []string{stray, misplaced, topLevel, filepath.Join(dir, "tmp", "block-1"),
		filepath.Join(dir, "blocks-4096", "00", objectID("k")+".0")}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c2 := openTest(t, dir, Options{})
	if st := c2.Stats(); st.Blocks != 0 {
		t.Fatalf("stray files counted as blocks: %+v", st)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s left behind: %v", p, err)
		}
	}
}

func TestSecondOpenOfADirFails(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, Options{})
	if c, err := Open(dir, Options{}); err == nil {
		c.Close()
		t.Fatal("second Open of the same dir succeeded")
	}
}

// A new generation of a file is a new key: it shares no blocks with the
// old one, which stays cached beside it.
func TestNewKeySharesNoBlocks(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	f := newFakeFetcher(t, 4*testBlock)
	gen1 := f.object("id#1")
	mustRead(t, c, gen1, 0, 4*testBlock)
	fetched := f.Count()
	mustRead(t, c, f.object("id#2"), 0, testBlock)
	if f.Count() != fetched+1 {
		t.Fatal("a new key was served from another key's blocks")
	}
	mustRead(t, c, gen1, 0, 4*testBlock)
	if f.Count() != fetched+1 {
		t.Fatal("the old key's blocks were dropped")
	}
}

func TestFetchErrorIsReturnedNotCached(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	f := newFakeFetcher(t, 2*testBlock)
	boom := errors.New("storage down")
	f.err = boom
	obj := f.object("k")
	if _, err := c.ReadAt(context.Background(), obj, make([]byte, 10), 0); !errors.Is(err, boom) {
		t.Fatalf("ReadAt: %v, want %v", err, boom)
	}
	f.err = nil
	mustRead(t, c, obj, 0, 10)
	if f.Count() != 2 {
		t.Fatalf("%d fetches, want a retry after the error", f.Count())
	}
}

func TestShortFetchIsAnError(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	obj := Object{Key: "short", Size: testBlock, Fetch: FetcherFunc(
		func(ctx context.Context, off, length int64, w io.Writer) (int64, error) {
			n, err := w.Write(make([]byte, length-1))
			return int64(n), err
		})}
	if _, err := c.ReadAt(context.Background(), obj, make([]byte, 10), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadAt: %v, want ErrUnexpectedEOF", err)
	}
	if c.Stats().Blocks != 0 {
		t.Fatal("short block cached")
	}
}

func TestCancelledReader(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	f := newFakeFetcher(t, testBlock)
	f.gate = make(chan struct{}) // the fetch waits until both readers joined it
	obj := f.object("k")

	// One of two readers gives up: the other still gets the block.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.ReadAt(ctx, obj, make([]byte, 10), 0)
		errc <- err
	}()
	for c.Stats().InFlight == 0 {
		time.Sleep(time.Millisecond)
	}
	patient := make(chan struct{})
	go func() {
		defer close(patient)
		mustRead(t, c, obj, 0, 10)
	}()
	for c.Stats().Misses < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ReadAt: %v", err)
	}
	close(f.gate)
	<-patient
	if f.Count() != 1 || f.Cancelled() != 0 {
		t.Fatalf("%d fetches, %d cancelled; want 1 fetch, not cancelled", f.Count(), f.Cancelled())
	}

	// The only reader gives up: the fetch is cancelled.
	f.delay = 100 * time.Millisecond
	obj2 := f.object("k2")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.ReadAt(ctx, obj2, make([]byte, 10), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadAt: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if f.Cancelled() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("abandoned fetch was not cancelled")
		}
		time.Sleep(time.Millisecond)
	}
	mustRead(t, c, obj2, 0, 10)
}

func TestDamagedBlockIsRefetched(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MemBytes: -1})
	f := newFakeFetcher(t, 2*testBlock)
	obj := f.object("k")
	mustRead(t, c, obj, 0, 2*testBlock)
	settle(t, c)
	// Cut the file inside block 0: both blocks are short now.
	if err := os.Truncate(c.objectPath(objectID(obj.Key)), 10); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, obj, 0, 2*testBlock)
	if f.Count() != 4 {
		t.Fatalf("%d fetches, want both damaged blocks fetched again", f.Count())
	}
	settle(t, c)
	// A removed file reads as missing too.
	if err := os.Remove(c.objectPath(objectID(obj.Key))); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, obj, 0, 2*testBlock)
	if f.Count() != 6 {
		t.Fatalf("%d fetches, want both removed blocks fetched again", f.Count())
	}
	settle(t, c)
	if got := diskBytes(t, c.dir); got != 2*testBlock {
		t.Fatalf("%d bytes on disk", got)
	}
}

func TestParseObjectName(t *testing.T) {
	id := objectID("x")
	if got, ok := parseObjectName(id); !ok || got != id {
		t.Fatalf("round trip: %v %v", got, ok)
	}
	for _, bad := range []string{"", "x", id + ".1", id[:31], id + "0", strings.ToUpper(id), "block-123", "direct-probe-1"} {
		if _, ok := parseObjectName(bad); ok {
			t.Errorf("parseObjectName(%q) accepted", bad)
		}
	}
}

func FuzzParseObjectName(f *testing.F) {
	f.Add(objectID("seed"))
	f.Add("block-123")
	f.Add(objectID("a") + ".9223372036854775807")
	f.Fuzz(func(t *testing.T, name string) {
		obj, ok := parseObjectName(name)
		want := len(name) == 32 && strings.Trim(name, "0123456789abcdef") == ""
		if ok != want || ok && obj != name {
			t.Fatalf("parseObjectName(%q) = %q, %v", name, obj, ok)
		}
	})
}

func TestMemoryTierServesRecentBlocks(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{MemBytes: 2 * testBlock})
	f := newFakeFetcher(t, 4*testBlock)
	obj := f.object("mem")
	for idx := range int64(4) { // one at a time, so memory keeps 2 and 3
		mustRead(t, c, obj, idx*testBlock, testBlock)
	}
	settle(t, c)
	// Take the disk copies away: the last two blocks still read from
	// memory, the first two, pushed out of it, are fetched again.
	os.Remove(c.objectPath(objectID(obj.Key)))
	before := f.Count()
	mustRead(t, c, obj, 2*testBlock, 2*testBlock)
	if f.Count() != before {
		t.Fatalf("blocks in the memory tier were fetched again: %v", f.Calls()[before:])
	}
	mustRead(t, c, obj, 0, testBlock)
	if f.Count() != before+1 {
		t.Fatalf("%d fetches for a block beyond MemBytes, want 1", f.Count()-before)
	}
}

// A disk slower than the fetches fills the store queue: blocks beyond it are
// served but not stored, and the buffers waiting to be written stay bounded.
func TestSlowDiskSkipsStores(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MemBytes: -1, ReadaheadBlocks: -1})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before c.Close, which waits for the workers
	c.beforeStore = func() { <-release }
	const blocks = 3 * storeQueue
	f := newFakeFetcher(t, blocks*testBlock)
	obj := f.object("slow")
	for idx := range int64(blocks) {
		mustRead(t, c, obj, idx*testBlock, testBlock)
	}
	st := c.Stats()
	// At most the queue and one block per (blocked) worker wait.
	if max := int64(blocks - storeQueue - storeWorkers); st.StoreSkips < max {
		t.Fatalf("%d blocks skipped with the disk stuck, want at least %d", st.StoreSkips, max)
	}
	if st.InFlight > storeQueue+storeWorkers {
		t.Fatalf("%d blocks waiting for the disk, want at most %d", st.InFlight, storeQueue+storeWorkers)
	}
	unblock()
	settle(t, c)
	st = c.Stats()
	if st.Blocks+st.StoreSkips != blocks || st.Fetches != blocks {
		t.Fatalf("stats %+v: every block fetched once, and stored or skipped", st)
	}
	if got := diskBytes(t, c.dir); got != st.Blocks*testBlock {
		t.Fatalf("%d bytes on disk, %d blocks stored", got, st.Blocks)
	}
	// Skipped blocks are fetched again when read again; stored ones not.
	before := f.Count()
	mustRead(t, c, obj, 0, blocks*testBlock)
	if got := int64(f.Count() - before); got != st.StoreSkips {
		t.Fatalf("%d fetches on a second read, want %d (the skipped blocks)", got, st.StoreSkips)
	}
}

// An eviction never punches the range of a block that another copy is
// being written into: a fetch cancelled as it finished can race the fetch
// that replaced it, and the second write may land before the first copy's
// entry is evicted. Punching then would leave a current entry over a hole.
func TestEvictionSparesABlockBeingWrittenAgain(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MaxBytes: testBlock, MemBytes: -1, ReadaheadBlocks: -1})
	f := newFakeFetcher(t, 2*testBlock)
	obj := f.object("twice")
	mustRead(t, c, obj, 0, testBlock)
	settle(t, c)
	bid := blockID{obj: objectID(obj.Key), idx: 0}
	path := c.objectPath(bid.obj)
	// Another copy of block 0 is on its way to disk.
	c.index.mu.Lock()
	c.index.startWriteLocked(bid)
	c.index.mu.Unlock()
	mustRead(t, c, obj, testBlock, testBlock) // evicts block 0
	settle(t, c)
	if n, err := dataBytes(path); err != nil || n != 2*testBlock {
		t.Fatalf("%d bytes of data, %v: block 0's range was freed under a write", n, err)
	}
	// That write ends and fails: now its range goes.
	c.index.mu.Lock()
	c.index.endWriteLocked(bid)
	c.index.mu.Unlock()
	c.freeBlock(bid, testBlock)
	if n, err := dataBytes(path); err != nil || n != testBlock {
		t.Fatalf("%d bytes of data, %v, want block 1's only", n, err)
	}
	mustRead(t, c, obj, 0, 2*testBlock)
}

// An eviction stuck in its punch or unlink holds up no hit: not one from
// memory, not one from disk, and not the counters.
func TestHitsDoNotWaitForEviction(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MaxBytes: 2 * testBlock, MemBytes: testBlock, ReadaheadBlocks: -1})
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before c.Close, which waits for the store workers
	c.beforeFree = func() {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}
	f := newFakeFetcher(t, 3*testBlock)
	obj := f.object("k")
	mustRead(t, c, obj, 0, testBlock)
	settle(t, c)
	mustRead(t, c, obj, testBlock, testBlock)
	settle(t, c)
	// Block 2 leaves blocks 1 (on disk) and 2 (in memory too), and block
	// 0's eviction hangs in freeBlock.
	mustRead(t, c, obj, 2*testBlock, testBlock)
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatalf("no eviction began: %+v", c.Stats())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fetched := f.Count()
		mustRead(t, c, obj, 2*testBlock, testBlock) // memory
		mustRead(t, c, obj, testBlock, testBlock)   // disk
		if f.Count() != fetched {
			t.Errorf("hits fetched %v", f.Calls()[fetched:])
		}
		c.Stats()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("hits waited for an eviction's syscall")
	}
	unblock()
	settle(t, c)
	if st := c.Stats(); st.Evictions != 1 || st.Blocks != 2 || st.Hits != 2 {
		t.Fatalf("stats %+v", st)
	}
	if got := diskBytes(t, c.dir); got != 2*testBlock {
		t.Fatalf("%d bytes on disk, want 2 blocks", got)
	}
}
