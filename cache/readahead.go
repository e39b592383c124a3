package cache

// Lock order: Reader.mu, then flightGroup.mu (taken by startPrefetch); the
// whole order is at Cache.

import (
	"context"
	"io"
	"sync"
)

// sequentialSlack is how far a read may start from where the previous one
// ended and still count as sequential (but never more than a block, unless
// the reads themselves are large). The
// kernel issues FUSE reads of up to 128 KiB and may deliver a few of them out
// of order, so an exact match would mistake a plain `cat` for random access.
const sequentialSlack = 256 << 10

// Reader reads one object for one open file handle. It watches the offsets
// it is asked for: while they run sequentially it keeps a window of blocks
// fetched ahead, doubling the window at each new block up to the Cache's
// ReadaheadBlocks; a jump elsewhere closes the window, so random reads fetch
// only the blocks they touch.
//
// Readahead fetches run in the background under a semaphore shared by all
// Readers of the Cache. Close stops them. A Reader is safe for concurrent use.
type Reader struct {
	c      *Cache
	obj    Object
	ctx    context.Context // cancelled by Close; parent of readahead
	cancel context.CancelFunc
	wg     sync.WaitGroup // readahead goroutines

	mu      sync.Mutex
	closed  bool  // mu
	nextOff int64 // mu; where a sequential read would start
	block   int64 // mu; block holding the end of the last sequential read
	window  int64 // mu; blocks to keep fetched past block
	ahead   int64 // mu; first block not yet handed to readahead

	preload *flight // mu; the fetch Preload started, one waiter of it ours
}

// NewReader returns a Reader of obj through c.
func (c *Cache) NewReader(obj Object) *Reader {
	ctx, cancel := context.WithCancel(c.ctx)
	return &Reader{c: c, obj: obj, ctx: ctx, cancel: cancel, block: -1}
}

// ReadAt reads like Cache.ReadAt and schedules readahead when the reads run
// sequentially.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	_, n, err := r.read(ctx, p, off, false)
	return n, err
}

// Span is bytes of up to two blocks lent without a copy: they stay valid
// and unchanged until Release, which must be called exactly once. Data is
// the bytes, or for a read across a block boundary the part in the first
// block, and Rest the part in the next one.
type Span struct {
	Data []byte
	Rest []byte
	c    *Cache
	b    *buffer
	rb   *buffer // Rest's block
}

// Len is the number of bytes lent.
func (s Span) Len() int { return len(s.Data) + len(s.Rest) }

// Release gives the bytes back.
func (s Span) Release() {
	if s.b == nil {
		return
	}
	s.c.bufs.release(s.b)
	if s.rb != nil {
		s.c.bufs.release(s.rb)
	}
}

// ReadShared reads like ReadAt, but where it can it lends the bytes instead
// of copying them into p: when they lie in one block, or two neighbours,
// each of which is in the memory tier, being fetched, or in neither place
// (then it fetches the block), it returns them as a Span and leaves p
// alone. Otherwise it fills p and returns a zero Span with n: reads of a
// block on disk (read straight into place), and small random reads (which
// fetch only their bytes). A FUSE server hands the Span to the kernel and
// releases it once the reply is written, saving a copy of every byte.
func (r *Reader) ReadShared(ctx context.Context, p []byte, off int64) (s Span, n int, err error) {
	return r.read(ctx, p, off, true)
}

// read judges the access pattern once, then reads a small random read's
// bytes alone, lends a block when share allows and it can, or copies.
func (r *Reader) read(ctx context.Context, p []byte, off int64, share bool) (Span, int, error) {
	want := int64(len(p))
	if want > 0 && r.plan(off, want) && want <= r.c.blockSize/4 {
		n, err := r.c.readDirect(ctx, r.obj, p, off)
		return Span{}, n, err
	}
	if share && want > 0 && off >= 0 && off+want <= r.obj.Size && r.obj.validate() == nil {
		if s, ok, err := r.lend(ctx, off, want); err != nil || ok {
			return s, s.Len(), err
		}
	}
	n, err := r.c.ReadAt(ctx, r.obj, p, off)
	return Span{}, n, err
}

// lend returns the n bytes at off (inside the object) as a Span when they
// lie in one block, or in two neighbouring blocks, that are or will be in
// memory; ok is false otherwise. The kernel's readahead asks for 1 MiB at
// offsets that are seldom block-aligned, so most sequential reads cross a
// boundary: lending both parts saves a copy of every byte they read.
func (r *Reader) lend(ctx context.Context, off, n int64) (s Span, ok bool, err error) {
	bs := r.c.blockSize
	boundary := (off/bs + 1) * bs
	if off+n <= boundary {
		return r.lendBlock(ctx, off, n)
	}
	if off+n > boundary+bs {
		return Span{}, false, nil
	}
	first, ok, err := r.lendBlock(ctx, off, boundary-off)
	if err != nil || !ok {
		return Span{}, false, err
	}
	second, ok, err := r.lendBlock(ctx, boundary, off+n-boundary)
	if err != nil || !ok {
		first.Release()
		return Span{}, false, err
	}
	first.Rest, first.rb = second.Data, second.b
	return first, true, nil
}

// lendBlock is lend for bytes inside one block.
func (r *Reader) lendBlock(ctx context.Context, off, n int64) (s Span, ok bool, err error) {
	c := r.c
	idx := off / c.blockSize
	start := idx * c.blockSize
	if off+n > start+c.blockSize {
		return Span{}, false, nil
	}
	bid := blockID{obj: objectID(r.obj.Key), idx: idx}
	length := c.blockLen(r.obj.Size, idx)
	lo, hi := off-start, off-start+n
	if c.closed.Load() {
		return Span{}, false, ErrClosed
	}
	if b := c.mem.get(bid, length); b != nil {
		c.hits.Add(1)
		return Span{Data: b.data[lo:hi], c: c, b: b}, true, nil
	}
	c.flights.mu.Lock()
	if c.closed.Load() {
		c.flights.mu.Unlock()
		return Span{}, false, ErrClosed
	}
	f := c.flights.m[bid]
	switch {
	case f != nil:
		f.waiters++
	case c.index.has(bid):
		c.flights.mu.Unlock()
		return Span{}, false, nil
	default:
		f = c.startLocked(r.obj, bid, length)
	}
	c.flights.mu.Unlock()
	c.misses.Add(1)
	defer c.leave(f)
	select {
	case <-f.done:
	case <-ctx.Done():
		return Span{}, false, ctx.Err()
	}
	if f.err != nil {
		return Span{}, false, f.err
	}
	// As a waiter we keep the flight's reference to the buffer alive, so
	// the buffer cannot have gone back to the pool.
	b := f.buf
	b.refs.Add(1)
	return Span{Data: f.data[lo:hi], c: c, b: b}, true, nil
}

// readDirect serves a small random read: from the cache if its block is
// there, else by fetching just the bytes asked for, uncached, so that 4 KiB
// read at random from a huge object costs about 4 KiB on the wire, not a
// block.
func (c *Cache) readDirect(ctx context.Context, obj Object, p []byte, off int64) (int, error) {
	if err := obj.validate(); err != nil {
		return 0, err
	}
	if off < 0 || off >= obj.Size {
		return c.ReadAt(ctx, obj, p, off)
	}
	want := p[:min(int64(len(p)), obj.Size-off)]
	idx := off / c.blockSize
	start := idx * c.blockSize
	if off+int64(len(want)) > start+c.blockSize {
		return c.ReadAt(ctx, obj, p, off) // spans two blocks
	}
	bid := blockID{obj: objectID(obj.Key), idx: idx}
	if c.readCached(bid, c.blockLen(obj.Size, idx), want, off-start) {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
		c.fetches.Add(1)
		w := &blockWriter{buf: want}
		n, err := obj.Fetch.FetchRange(ctx, off, int64(len(want)), w)
		c.fetchedBytes.Add(n)
		if err != nil {
			return 0, err
		}
		if w.n != len(want) {
			return 0, io.ErrUnexpectedEOF
		}
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

// plan updates the access pattern with a read of length bytes at off and
// starts the readahead it calls for, before the read itself so both overlap.
// It reports whether the read jumped away from the previous one.
func (r *Reader) plan(off, length int64) (random bool) {
	limit := int64(r.c.readaheadBlocks)
	if limit <= 0 || off < 0 || off >= r.obj.Size || r.obj.validate() != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	end := min(off+length, r.obj.Size)
	last := (end - 1) / r.c.blockSize
	// Asynchronous FUSE reads arrive out of order by a few requests, so
	// the slack grows with the request size (1 MiB reads under a 4 MiB
	// kernel readahead land up to 4 MiB ahead of where the last ended).
	slack := max(min(sequentialSlack, r.c.blockSize), 8*length)
	if off < r.nextOff-slack || off > r.nextOff+slack {
		r.window, r.ahead, r.block = 0, 0, -1
		r.nextOff = end
		return true
	}
	r.nextOff = max(r.nextOff, end)
	if last > r.block {
		r.block = last
		r.window = min(max(1, 2*r.window), limit)
	}
	lastBlock := (r.obj.Size - 1) / r.c.blockSize
	from := max(r.block+1, r.ahead)
	to := min(r.block+r.window, lastBlock)
	for idx := from; idx <= to; idx++ {
		if !r.c.startPrefetch(r.ctx, &r.wg, r.obj, idx) {
			return false
		}
		r.ahead = idx + 1
	}
	return false
}

// Close stops the Reader's readahead and waits for it to finish. A fetch
// another reader is also waiting for carries on.
func (r *Reader) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.dropPreload()
	r.cancel()
	r.wg.Wait()
	return nil
}

// track counts a background job in c.wg, which Close waits for, unless
// the Cache is closed (then it reports false). flightGroup.mu orders it
// with Close's setting of closed.
func (c *Cache) track() bool {
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	return true
}

// startPrefetch runs a readahead of block idx in the background, tracked by
// wg (if not nil). It returns false once the Cache is closed.
func (c *Cache) startPrefetch(ctx context.Context, wg *sync.WaitGroup, obj Object, idx int64) bool {
	if !c.track() {
		return false
	}
	if wg != nil {
		wg.Add(1)
	}
	go func() {
		defer c.wg.Done()
		if wg != nil {
			defer wg.Done()
		}
		c.prefetch(ctx, obj, idx)
	}()
	return true
}

// prefetch brings block idx of obj into the cache unless it is there or on
// its way. It holds a prefetch slot until the fetch ends, which is what bounds
// readahead across readers; reads themselves never wait for a slot.
func (c *Cache) prefetch(ctx context.Context, obj Object, idx int64) {
	select {
	case c.prefetchSlots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-c.prefetchSlots }()

	bid := blockID{obj: objectID(obj.Key), idx: idx}
	c.flights.mu.Lock()
	if c.closed.Load() || c.flights.m[bid] != nil || c.index.has(bid) {
		c.flights.mu.Unlock()
		return
	}
	f := c.startLocked(obj, bid, c.blockLen(obj.Size, idx))
	c.flights.mu.Unlock()
	c.prefetches.Add(1)
	defer c.leave(f)
	select {
	case <-f.done:
	case <-ctx.Done():
	}
}
