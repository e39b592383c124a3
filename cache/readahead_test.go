package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// fetchedBlocks returns the block indexes fetched so far, sorted, failing the
// test if any block was fetched twice or at an offset that is not a block's
// start.
func fetchedBlocks(t *testing.T, f *fakeFetcher, blockSize int64) []int64 {
	t.Helper()
	seen := make(map[int64]bool)
	var idxs []int64
	for _, call := range f.Calls() {
		if call.off%blockSize != 0 {
			t.Fatalf("fetch at %d, not a block start", call.off)
		}
		idx := call.off / blockSize
		if seen[idx] {
			t.Fatalf("block %d fetched twice: %v", idx, f.Calls())
		}
		seen[idx] = true
		idxs = append(idxs, idx)
	}
	sort.Slice(idxs, func(i, j int) bool { return idxs[i] < idxs[j] })
	return idxs
}

// quiesce waits for a Reader's readahead and every fetch to finish.
func quiesce(t *testing.T, c *Cache, r *Reader) {
	t.Helper()
	r.wg.Wait()
	settle(t, c)
}

func readerRead(t *testing.T, r *Reader, off, length int64) {
	t.Helper()
	p := make([]byte, length)
	n, err := r.ReadAt(context.Background(), p, off)
	if err != nil || n != int(length) {
		t.Fatalf("ReadAt(%d, %d) = %d, %v", off, length, n, err)
	}
	for i := range p {
		if p[i] != byteAt(off+int64(i)) {
			t.Fatalf("ReadAt(%d, %d): wrong byte at %d", off, length, off+int64(i))
		}
	}
}

func TestSequentialReadGrowsWindow(t *testing.T) {
	const blocks, limit = 40, 8
	tests := []struct {
		name  string
		chunk int64 // read size
		swap  bool  // deliver each pair of reads in reverse order, as async FUSE reads may
	}{
		{"whole blocks", testBlock, false},
		{"small reads", 1000, false},
		{"pairs out of order", 1024, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openTest(t, t.TempDir(), Options{ReadaheadBlocks: limit})
			f := newFakeFetcher(t, blocks*testBlock)
			r := c.NewReader(f.object("seq"))
			defer r.Close()

			var offs []int64
			for off := int64(0); off < blocks*testBlock; off += tt.chunk {
				offs = append(offs, off)
			}
			if tt.swap {
				for i := 0; i+1 < len(offs); i += 2 {
					offs[i], offs[i+1] = offs[i+1], offs[i]
				}
			}
			window, lastBlock := int64(0), int64(-1)
			for i, off := range offs {
				length := min(tt.chunk, blocks*testBlock-off)
				readerRead(t, r, off, length)
				quiesce(t, c, r)
				if tt.swap && i%2 == 0 {
					continue // the window is checked once the pair is complete
				}
				end := off + length
				if tt.swap {
					end = max(end, offs[i-1]+tt.chunk)
				}
				if b := (end - 1) / testBlock; b > lastBlock {
					lastBlock = b
					window = min(max(1, 2*window), limit)
				}
				got := fetchedBlocks(t, f, testBlock)
				want := min(lastBlock+window, blocks-1)
				if int64(len(got)) != want+1 || got[len(got)-1] != want {
					t.Fatalf("after reading to %d (window %d): fetched %v, want 0..%d", end, window, got, want)
				}
			}
			if st := c.Stats(); st.Prefetches != blocks-1 || st.Fetches != blocks {
				t.Fatalf("stats %+v; want every block but the first prefetched", st)
			}
		})
	}
}

func TestRandomReadsDoNotReadAhead(t *testing.T) {
	// 10 GiB, default 1 MiB blocks: 4 KiB here and there fetch just those
	// 4 KiB each, uncached (reading 4 KiB of a huge file must not cost a
	// block on the wire).
	const size = 10 << 30
	c := openTest(t, t.TempDir(), Options{BlockSize: DefaultBlockSize})
	f := newFakeFetcher(t, size)
	r := c.NewReader(f.object("huge"))
	defer r.Close()
	const reads = 20
	for i := range int64(reads) {
		off := (1<<30+i*(487<<20))%(size-1<<20) + 12345
		readerRead(t, r, off, 4096)
	}
	quiesce(t, c, r)
	calls := f.Calls()
	if len(calls) != reads {
		t.Fatalf("%d fetches for %d random reads: %v", len(calls), reads, calls)
	}
	for _, call := range calls {
		if call.length != 4096 {
			t.Fatalf("fetch %v, want the 4096 bytes read", call)
		}
	}
	if st := c.Stats(); st.FetchedBytes != reads*4096 || st.Prefetches != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJumpClosesTheWindow(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{ReadaheadBlocks: 8})
	f := newFakeFetcher(t, 100*testBlock)
	r := c.NewReader(f.object("jump"))
	defer r.Close()
	for idx := range int64(4) {
		readerRead(t, r, idx*testBlock, testBlock)
	}
	quiesce(t, c, r)
	before := len(f.Calls())

	readerRead(t, r, 50*testBlock, 100)
	quiesce(t, c, r)
	if calls := f.Calls()[before:]; len(calls) != 1 || calls[0].off != 50*testBlock || calls[0].length != 100 {
		t.Fatalf("a jump fetched %v, want the 100 bytes read at block 50 alone", calls)
	}
	// Reading on from there is sequential again: blocks 50 and 51 are read
	// through the cache and the window starts at one (block 52).
	readerRead(t, r, 50*testBlock+100, testBlock)
	quiesce(t, c, r)
	calls := f.Calls()[before+1:]
	var sum int64
	for _, c := range calls {
		sum += c.off
	}
	if len(calls) != 3 || sum != (50+51+52)*testBlock {
		t.Fatalf("resuming fetched %v, want blocks 50, 51 and 52", calls)
	}
}

func TestReadaheadOff(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{ReadaheadBlocks: -1})
	f := newFakeFetcher(t, 10*testBlock)
	r := c.NewReader(f.object("k"))
	defer r.Close()
	for idx := range int64(10) {
		readerRead(t, r, idx*testBlock, testBlock)
	}
	quiesce(t, c, r)
	if st := c.Stats(); st.Prefetches != 0 || st.Fetches != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPrefetchConcurrencyIsShared(t *testing.T) {
	const slots, readers = 2, 3
	c := openTest(t, t.TempDir(), Options{ReadaheadBlocks: 8, MaxPrefetch: slots})
	f := newFakeFetcher(t, 12*testBlock)
	f.delay = 5 * time.Millisecond
	var rs []*Reader
	for i := range readers {
		obj := f.object(string(rune('a' + i)))
		// Warm the first four blocks so the readers below fetch nothing
		// themselves: every fetch after this is readahead.
		mustRead(t, c, obj, 0, 4*testBlock)
		rs = append(rs, c.NewReader(obj))
	}
	settle(t, c)
	f.mu.Lock()
	f.maxActive = 0
	f.mu.Unlock()
	for _, r := range rs {
		for idx := range int64(4) {
			readerRead(t, r, idx*testBlock, testBlock)
		}
	}
	for _, r := range rs {
		quiesce(t, c, r)
		r.Close()
	}
	st := c.Stats()
	if st.Prefetches != readers*8 {
		t.Fatalf("stats %+v; want %d prefetches", st, readers*8)
	}
	if got := f.MaxActive(); got != slots {
		t.Fatalf("%d readahead fetches ran at once, want the limit of %d", got, slots)
	}
}

func TestCloseStopsReadahead(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{ReadaheadBlocks: 8})
	f := newFakeFetcher(t, 100*testBlock)
	f.hold = func(off int64) bool { return off >= 4*testBlock }
	baseline := runtime.NumGoroutine()

	r := c.NewReader(f.object("k"))
	for idx := range int64(4) {
		readerRead(t, r, idx*testBlock, testBlock)
	}
	// The window is 8 by now: blocks 4..11 are being fetched, and hang.
	deadline := time.Now().Add(5 * time.Second)
	for f.Running() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("readahead never started: %+v", c.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() {
		r.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop readahead")
	}
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
	if got := f.Cancelled(); got != 8 {
		t.Fatalf("%d fetches cancelled, want 8", got)
	}
	settle(t, c) // the blocks fetched go to disk in the background
	if st := c.Stats(); st.InFlight != 0 || st.Blocks != 4 {
		t.Fatalf("stats after Close %+v", st)
	}
	// Reads after Close still work, without readahead.
	readerRead(t, r, 0, 10)
}

func TestCacheCloseStopsReaders(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, Options{BlockSize: testBlock, ReadaheadBlocks: 4})
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeFetcher(t, 100*testBlock)
	f.hold = func(off int64) bool { return off >= 2*testBlock }
	r := c.NewReader(f.object("k"))
	readerRead(t, r, 0, testBlock)
	readerRead(t, r, testBlock, testBlock)
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Cache.Close hung on readahead")
	}
	r.Close()
}

// churnBlocks is the size, in blocks, of the object that churnCache serves.
const churnBlocks = 24

// churnCache returns a cache whose memory tier holds two blocks and disk
// six, and an object of churnBlocks blocks read through it: readers of it
// keep evicting each other's blocks and reusing freed buffers.
func churnCache(t *testing.T, name string) (*Cache, Object) {
	c := openTest(t, t.TempDir(), Options{MaxBytes: 6 * testBlock, MemBytes: 2 * testBlock, ReadaheadBlocks: 4})
	return c, newFakeFetcher(t, churnBlocks*testBlock).object(name)
}

// Block buffers go back to a pool once the flight, the memory tier and the
// store are done with them. Many readers streaming through a cache with a
// small memory tier, with prefetches cancelled as they close, must still
// read exactly the object's bytes (and -race would see a buffer reused
// while somebody still reads it).
func TestReusedBuffersKeepContent(t *testing.T) {
	c, obj := churnCache(t, "pool")
	const blocks = churnBlocks
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				r := c.NewReader(obj)
				start := int64((g*5 + round*7) % blocks)
				for idx := start; idx < min(start+8, blocks); idx++ {
					p := make([]byte, testBlock/2)
					off := idx*testBlock + int64(round%2)*testBlock/2
					if _, err := r.ReadAt(context.Background(), p, off); err != nil {
						t.Error(err)
						return
					}
					if want := content(off, int64(len(p))); !bytes.Equal(p, want) {
						first := 0
						for first < len(p) && p[first] == want[first] {
							first++
						}
						zeros := bytes.Count(p[first:], []byte{0})
						t.Errorf("block %d off %d: wrong bytes from %d: got %x want %x; zeros after %d of %d", idx, off, first, p[first:first+16], want[first:first+16], zeros, len(p)-first)
						return
					}
				}
				r.Close()
			}
		}()
	}
	wg.Wait()
}

// lent2 reads n bytes at off through ReadShared and wants them lent, in
// one part or two, and p left alone.
func lent2(t *testing.T, r *Reader, off, n int64) Span {
	t.Helper()
	p := make([]byte, n)
	s, got, err := r.ReadShared(context.Background(), p, off)
	if err != nil || s.Data == nil || got != int(n) || s.Len() != int(n) ||
		!bytes.Equal(append(slices.Clone(s.Data), s.Rest...), content(off, n)) {
		t.Fatalf("ReadShared(%d, %d): lent %v, %d bytes, %v", off, n, s.Data != nil, got, err)
	}
	if !bytes.Equal(p, make([]byte, n)) {
		t.Fatalf("ReadShared(%d, %d) lent the bytes and also wrote p", off, n)
	}
	return s
}

// Readers lending block-sized reads across block boundaries, holding each
// two-part span while others churn a small memory tier, see exactly the
// object's bytes until they release it (-race watches the buffers).
func TestReadSharedAcrossBoundariesUnderChurn(t *testing.T) {
	c, obj := churnCache(t, "churn")
	const blocks = churnBlocks
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			r := c.NewReader(obj)
			defer r.Close()
			for idx := int64(g % 3); idx < blocks-1; idx++ {
				off, n := idx*testBlock+testBlock/2, int64(testBlock)
				p := make([]byte, n)
				s, got, err := r.ReadShared(context.Background(), p, off)
				if err != nil || got != int(n) {
					t.Errorf("ReadShared(%d): %d, %v", off, got, err)
					return
				}
				churn := make([]byte, testBlock)
				if _, err := c.ReadAt(context.Background(), obj, churn, ((idx+7)%blocks)*testBlock); err != nil {
					t.Error(err)
				}
				b := p
				if s.Data != nil {
					b = append(slices.Clone(s.Data), s.Rest...)
				}
				s.Release()
				if !bytes.Equal(b, content(off, n)) {
					t.Errorf("ReadShared(%d): wrong bytes (lent %v in %d+%d)", off, s.Data != nil, len(s.Data), len(s.Rest))
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestReadShared(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, t.TempDir(), Options{MemBytes: 2 * testBlock, ReadaheadBlocks: -1})
	const blocks = 12
	f := newFakeFetcher(t, blocks*testBlock+100)
	obj := f.object("span")
	r := c.NewReader(obj)
	defer r.Close()
	lent := func(off, n int64) Span {
		t.Helper()
		s := lent2(t, r, off, n)
		if len(s.Rest) != 0 {
			t.Fatalf("ReadShared(%d, %d) inside one block lent %d bytes of another", off, n, len(s.Rest))
		}
		return s
	}

	// A block not cached anywhere is fetched and lent.
	s := lent(testBlock+10, 100)
	// Held across many more fetches that churn the memory tier and reuse
	// freed buffers, the lent bytes do not change.
	for idx := int64(2); idx < blocks; idx++ {
		mustRead(t, c, obj, idx*testBlock, testBlock)
	}
	if !bytes.Equal(s.Data, content(testBlock+10, 100)) {
		t.Fatal("lent bytes changed before Release")
	}
	s.Release()

	// In the memory tier: lent without a fetch.
	before := f.Count()
	lent((blocks-1)*testBlock, testBlock).Release()
	if f.Count() != before {
		t.Fatalf("a block in memory was fetched again")
	}
	lent(blocks*testBlock, 100).Release() // the short last block

	// Across the boundary of two blocks in memory: lent in two parts.
	two := lent2(t, r, blocks*testBlock-50, 100)
	if len(two.Data) != 50 || len(two.Rest) != 50 {
		t.Errorf("a read across a boundary was lent as %d+%d bytes, want 50+50", len(two.Data), len(two.Rest))
	}
	two.Release()

	settle(t, c)
	// On disk only, or across two blocks: copied into p.
	for _, tc := range []struct{ off, n int64 }{
		{2 * testBlock, testBlock}, // on disk, pushed out of memory
		{testBlock - 10, 20},       // across blocks 0 and 1
	} {
		p := make([]byte, tc.n)
		s, got, err := r.ReadShared(ctx, p, tc.off)
		if err != nil || s.Data != nil || got != int(tc.n) || !bytes.Equal(p, content(tc.off, tc.n)) {
			t.Errorf("ReadShared(%d, %d): lent %v, %d bytes, %v; want a copy", tc.off, tc.n, s.Data != nil, got, err)
		}
	}
	// Past the end: what ReadAt says.
	if s, got, err := r.ReadShared(ctx, make([]byte, 10), blocks*testBlock+100); s.Data != nil || got != 0 || err != io.EOF {
		t.Errorf("ReadShared at the end: %d, %v", got, err)
	}

	// A fetch that fails is the read's error.
	bad := newFakeFetcher(t, testBlock)
	bad.err = errInvalid
	br := c.NewReader(bad.object("bad"))
	defer br.Close()
	if s, _, err := br.ReadShared(ctx, make([]byte, testBlock), 0); s.Data != nil || !errors.Is(err, errInvalid) {
		t.Fatalf("failing fetch: %v", err)
	}
}

// Small random reads through ReadShared fetch only their bytes, as through
// ReadAt: the access pattern is judged once per read.
func TestReadSharedRandomReadsFetchOnlyTheirBytes(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, t.TempDir(), Options{BlockSize: 1 << 20})
	const size = 64 << 20
	f := newFakeFetcher(t, size)
	r := c.NewReader(f.object("random"))
	defer r.Close()
	offs := []int64{40 << 20, 3 << 20, 50<<20 + 7, 9 << 20, 33 << 20, 1<<20 + 5}
	for _, off := range offs {
		p := make([]byte, 4096)
		s, got, err := r.ReadShared(ctx, p, off)
		if err != nil || s.Data != nil || got != 4096 || !bytes.Equal(p, content(off, 4096)) {
			t.Fatalf("ReadShared(%d): lent %v, %d, %v", off, s.Data != nil, got, err)
		}
	}
	for _, call := range f.Calls() {
		if call.length != 4096 {
			t.Fatalf("random reads fetched %+v, want 4 KiB ranges only", f.Calls())
		}
	}
}
