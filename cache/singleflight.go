package cache

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// flight is one fetch of a block; every reader wanting the block while it is
// under way waits on the same flight.
type flight struct {
	id     blockID
	done   chan struct{} // closed once data or err is set
	cancel context.CancelFunc

	// Set by the fetch before done is closed, and never changed after.
	data []byte
	err  error
	// buf holds data; the flight has a reference to it until released.
	// The fetch sets it under flightGroup.mu, before done is closed.
	buf *buffer

	waiters  int  // flightGroup.mu; the fetch is cancelled when it drops to 0
	unhooked bool // flightGroup.mu; gone from flightGroup.m, so nobody joins
	released bool // flightGroup.mu; the flight's reference to buf is dropped
}

// flightGroup is the set of fetches under way, at most one per block. A
// flight stays in it until its block is on disk (or will not be), so that
// nobody fetches a block again while it is being stored.
type flightGroup struct {
	mu sync.Mutex
	m  map[blockID]*flight // mu
}

func (g *flightGroup) init() { g.m = make(map[blockID]*flight) }

// join returns the flight fetching bid, starting one if there is none. When
// mayBeCached is set and the block is on disk by now, it returns nil so the
// caller reads it from there.
func (c *Cache) join(obj Object, bid blockID, length int64, mayBeCached bool) (*flight, error) {
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if f := c.flights.m[bid]; f != nil {
		f.waiters++
		return f, nil
	}
	if mayBeCached && c.index.has(bid) {
		return nil, nil
	}
	return c.startLocked(obj, bid, length), nil
}

// startLocked starts fetching a block, with one waiter. The caller holds
// flightGroup.mu and has seen closed unset under it.
func (c *Cache) startLocked(obj Object, bid blockID, length int64) *flight {
	ctx, cancel := context.WithCancel(c.ctx)
	f := &flight{id: bid, done: make(chan struct{}), cancel: cancel, waiters: 1}
	c.flights.m[bid] = f
	c.wg.Add(1)
	go c.fetch(ctx, obj, bid, length, f)
	return f
}

// leave drops one waiter from f. The last waiter to leave a fetch that is
// still under way cancels it and unhooks it, so that a later reader starts
// afresh instead of joining a doomed fetch.
func (c *Cache) leave(f *flight) {
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	select {
	case <-f.done:
		if f.unhooked {
			c.releaseFlightLocked(f)
		}
		return
	default:
	}
	f.cancel()
	c.unhookLocked(f)
}

// unhook is unhookLocked for a caller without the lock.
func (c *Cache) unhook(f *flight) {
	c.flights.mu.Lock()
	c.unhookLocked(f)
	c.flights.mu.Unlock()
}

// unhookLocked takes f out of the group, so that later readers start a
// fetch of their own, and drops its buffer once no waiter is left to read it.
func (c *Cache) unhookLocked(f *flight) {
	if c.flights.m[f.id] == f {
		delete(c.flights.m, f.id)
	}
	f.unhooked = true
	if f.waiters == 0 {
		c.releaseFlightLocked(f)
	}
}

// releaseFlightLocked drops the flight's reference to its buffer, or, when
// the fetch has not made the buffer yet, tells it not to take one.
func (c *Cache) releaseFlightLocked(f *flight) {
	if !f.released {
		f.released = true
		if f.buf != nil {
			c.bufs.release(f.buf)
		}
	}
}

// fetch runs one flight: fetch the block into a buffer, give it to the
// memory tier and the waiters, then queue it for the disk tier, which
// unhooks the flight once the block is stored.
func (c *Cache) fetch(ctx context.Context, obj Object, bid blockID, length int64, f *flight) {
	defer c.wg.Done()
	defer f.cancel()
	off := bid.idx * c.blockSize
	buf := c.bufs.get(length) // the fetch's reference, the store job's later
	c.flights.mu.Lock()
	if !f.released {
		buf.refs.Add(1) // the flight's
	}
	f.buf = buf
	c.flights.mu.Unlock()

	w := &blockWriter{buf: buf.data}
	n, err := obj.Fetch.FetchRange(ctx, off, length, w)
	if err == nil && (n != length || w.n != int(length)) {
		err = fmt.Errorf("fetched %d bytes, want %d: %w", w.n, length, io.ErrUnexpectedEOF)
	}
	if err != nil {
		f.err = fmt.Errorf("cache: fetch %q at %d: %w", obj.Key, off, err)
		c.flights.mu.Lock()
		close(f.done)
		c.unhookLocked(f)
		c.flights.mu.Unlock()
		c.bufs.release(buf)
		c.log.Debug("block fetch failed", "key", obj.Key, "block", bid.idx, "err", err)
		return
	}
	c.fetches.Add(1)
	c.fetchedBytes.Add(length)
	f.data = w.buf
	c.mem.put(bid, buf, &c.bufs)
	// Readers of this block keep finding the flight (and its data) until
	// the block is in the disk tier's index, so nobody fetches it again
	// meanwhile. The waiters leave once the block is queued or skipped,
	// so a read that returns has its block's fate decided.
	c.flights.mu.Lock()
	close(f.done)
	queued, discarded := c.queueStore(storeJob{f: f, obj: obj, bid: bid, buf: buf})
	if !queued {
		if !discarded {
			c.storeSkips.Add(1)
		}
		c.unhookLocked(f)
	}
	c.flights.mu.Unlock()
	if !queued {
		c.bufs.release(buf)
	}
}
