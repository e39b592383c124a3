package cache

// Preload starts fetching r's object when it fits in one block and is
// neither in memory, on disk nor on its way, and returns at once. An open
// of a small file calls it, so that the download (one exchange for the
// whole file) runs while the kernel answers the open and sends the first
// read, which then finds the block in memory or joins the fetch. The
// fetched block is kept in memory and queued for the disk like any other;
// nobody waits for the disk write. Close drops the fetch if no read wanted
// it by then.
func (r *Reader) Preload() {
	c := r.c
	if r.obj.Size <= 0 || r.obj.Size > c.blockSize || r.obj.validate() != nil {
		return
	}
	bid := blockID{obj: objectID(r.obj.Key), idx: 0}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.preload != nil {
		return
	}
	if b := c.mem.get(bid, r.obj.Size); b != nil {
		c.bufs.release(b)
		return
	}
	c.flights.mu.Lock()
	if c.closed.Load() || c.flights.m[bid] != nil || c.index.has(bid) {
		c.flights.mu.Unlock()
		return
	}
	r.preload = c.startLocked(r.obj, bid, r.obj.Size)
	c.flights.mu.Unlock()
	c.prefetches.Add(1)
}

// dropPreload lets go of the fetch Preload started; a fetch nobody else
// waits for is cancelled if it is still under way.
func (r *Reader) dropPreload() {
	r.mu.Lock()
	f := r.preload
	r.preload = nil
	r.mu.Unlock()
	if f != nil {
		r.c.leave(f)
	}
}

// Prefetch starts fetching a small object (one block at most) in the
// background, unless it is in memory, on disk or on its way, and returns
// at once. A caller that expects the object to be read soon (the next
// files of a directory being read in order) calls it; the fetch holds a
// readahead slot, so it waits behind MaxPrefetch others, and its block
// goes to the memory tier and the disk like any other. It reports whether
// the object is small enough.
func (c *Cache) Prefetch(obj Object) bool {
	if obj.Size <= 0 || obj.Size > c.blockSize || obj.validate() != nil {
		return false
	}
	bid := blockID{obj: objectID(obj.Key), idx: 0}
	if b := c.mem.get(bid, obj.Size); b != nil {
		c.bufs.release(b)
		return true
	}
	c.startPrefetch(c.ctx, nil, obj, 0)
	return true
}
