package cache

import (
	"container/list"
	"sync"
	"time"
)

// entry is one block on disk.
type entry struct {
	id      blockID
	size    int64
	touched time.Time     // diskIndex.mu; the mtime last written to the block's file
	elem    *list.Element // diskIndex.mu
}

// diskIndex is the disk tier's bookkeeping: which blocks are on disk, least
// recently used last, the bytes they take, and which block writes are under
// way. It picks the blocks to evict; their bytes are freed afterwards, with
// its lock let go (Cache.evict), so no hit waits behind the syscalls of an
// eviction.
type diskIndex struct {
	maxBytes int64 // set by init

	mu        sync.Mutex
	lru       list.List          // mu; *entry, most recently used first
	blocks    map[blockID]*entry // mu
	perObject map[string]int     // mu; entries, by objectID
	writes    map[string]int     // mu; block writes under way, by objectID
	writing   map[blockID]int    // mu; the same, by block
	bytes     int64              // mu; sum of entry sizes
	// pins counts the Backings open on each object (backing.go). A
	// pinned object's blocks are out of lru (their elem belongs to no
	// list, which makes MoveToFront and Remove no-ops), so no eviction
	// picks them; they still count in bytes.
	pins map[string]int // mu; by objectID
	// bad are objects whose file was written behind the cache's back
	// (Backing.Discard): their blocks are never entered again.
	bad map[string]bool // mu; by objectID
}

func (x *diskIndex) init(maxBytes int64) {
	x.maxBytes = maxBytes
	x.blocks = make(map[blockID]*entry)
	x.perObject = make(map[string]int)
	x.writes = make(map[string]int)
	x.writing = make(map[blockID]int)
	x.pins = make(map[string]int)
	x.bad = make(map[string]bool)
}

// has reports whether bid is on disk.
func (x *diskIndex) has(bid blockID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.blocks[bid] != nil
}

// insertLocked records a block on disk as most recently used.
func (x *diskIndex) insertLocked(bid blockID, size int64, touched time.Time) {
	if x.bad[bid.obj] {
		return
	}
	if e := x.blocks[bid]; e != nil {
		x.bytes += size - e.size
		e.size, e.touched = size, touched
		x.lru.MoveToFront(e.elem)
		return
	}
	e := &entry{id: bid, size: size, touched: touched}
	if x.pins[bid.obj] == 0 {
		e.elem = x.lru.PushFront(e)
	} else {
		e.elem = &list.Element{Value: e} // out of lru until unpinned
	}
	x.blocks[bid] = e
	x.perObject[bid.obj]++
	x.bytes += size
}

// removeLocked forgets a block. Its bytes stay on disk until the caller,
// with the lock let go, hands it to Cache.freeBlock.
func (x *diskIndex) removeLocked(e *entry) {
	x.lru.Remove(e.elem)
	delete(x.blocks, e.id)
	if x.perObject[e.id.obj]--; x.perObject[e.id.obj] == 0 {
		delete(x.perObject, e.id.obj)
	}
	x.bytes -= e.size
}

// evictLocked forgets least recently used blocks until the rest fit, and
// returns them for Cache.evict.
func (x *diskIndex) evictLocked() []*entry {
	var victims []*entry
	for x.bytes > x.maxBytes {
		back := x.lru.Back()
		if back == nil {
			break
		}
		e := back.Value.(*entry)
		x.removeLocked(e)
		victims = append(victims, e)
	}
	return victims
}

// startWriteLocked counts a write of bid as under way, from before its
// file is opened: a block freed meanwhile then punches a hole instead of
// unlinking the file being written, and never punches bid's own range.
func (x *diskIndex) startWriteLocked(bid blockID) {
	x.writes[bid.obj]++
	x.writing[bid]++
}

// endWriteLocked counts the write of bid as over.
func (x *diskIndex) endWriteLocked(bid blockID) {
	if x.writes[bid.obj]--; x.writes[bid.obj] == 0 {
		delete(x.writes, bid.obj)
	}
	if x.writing[bid]--; x.writing[bid] == 0 {
		delete(x.writing, bid)
	}
}

// evict frees the bytes of blocks evictLocked forgot, and counts them.
func (c *Cache) evict(victims []*entry) {
	for _, e := range victims {
		c.freeBlock(e.id, e.size)
	}
	c.evictions.Add(int64(len(victims)))
}

// freeBlock frees the bytes of a block that the index has forgotten: the
// whole file goes once nothing else of the object is cached or being
// written, otherwise the block's range becomes a hole. The range stays when
// the same block is in the index again or being written again (a fetch
// cancelled as it finished can race the one that replaced it): its bytes
// are that copy's.
//
// The object's file lock is held from the decision to the syscall, and every
// block write holds it too, so no block written after the decision is
// punched or unlinked; the index lock is held for the decision only.
func (c *Cache) freeBlock(bid blockID, size int64) {
	lock := c.fileLock(bid.obj)
	lock.Lock()
	defer lock.Unlock()
	x := &c.index
	x.mu.Lock()
	// A pinned object's file is being read by the kernel itself
	// (passthrough): its bytes stay until the last Backing closes, even
	// when the index lets go of a block (found unreadable, say).
	keep := x.blocks[bid] != nil || x.writing[bid] > 0 || x.pins[bid.obj] > 0
	wholeFile := x.perObject[bid.obj] == 0 && x.writes[bid.obj] == 0
	x.mu.Unlock()
	if c.beforeFree != nil && !keep {
		c.beforeFree()
	}
	switch {
	case keep:
	case wholeFile:
		c.removeObjectFile(bid.obj)
	default:
		c.punchBlock(bid, size)
	}
}
