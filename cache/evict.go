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
	pack    *packLoc      // set once: the record of a small object (pack.go); nil for a block in its object's file
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
	// handed are the objects whose file a Backing has handed to the
	// kernel, with their block counts. A map of a passthrough open reads
	// that file for as long as it lasts, close(2) and the last Backing's
	// Close notwithstanding, so no block of it is punched again: freeing
	// one unlinks the file and forgets the object's other blocks with it,
	// and a map keeps reading the unlinked file whole.
	handed map[string]int64 // mu; by objectID
	// unhanding are handed objects whose unlink waits for block writes
	// under way: their blocks are not entered, and freeing the refused
	// block unlinks the file once the last write is over.
	unhanding map[string]bool // mu; by objectID
}

func (x *diskIndex) init(maxBytes int64) {
	x.maxBytes = maxBytes
	x.blocks = make(map[blockID]*entry)
	x.perObject = make(map[string]int)
	x.writes = make(map[string]int)
	x.writing = make(map[blockID]int)
	x.pins = make(map[string]int)
	x.bad = make(map[string]bool)
	x.handed = make(map[string]int64)
	x.unhanding = make(map[string]bool)
}

// has reports whether bid is on disk.
func (x *diskIndex) has(bid blockID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.blocks[bid] != nil
}

// insertLocked records a block in its object's file as most recently
// used; see insertEntryLocked.
func (x *diskIndex) insertLocked(bid blockID, size int64, touched time.Time) (replaced *entry) {
	return x.insertEntryLocked(&entry{id: bid, size: size, touched: touched})
}

// insertEntryLocked records e as most recently used. A block in its
// object's file that is in the index already takes e's size and time
// instead. A packed block is a record of its own: the entry it replaces
// is returned, for Cache.freeEntry once the lock is let go. A block of a
// discarded object (Backing.Discard), stored while it was discarded, is
// not entered but returned, to be freed the same way. A pinned object's
// new block stays out of the LRU until the object is unpinned.
func (x *diskIndex) insertEntryLocked(e *entry) (replaced *entry) {
	if x.bad[e.id.obj] || x.unhanding[e.id.obj] && e.pack == nil {
		return e
	}
	if old := x.blocks[e.id]; old != nil {
		if old.pack == nil && e.pack == nil {
			x.bytes += e.size - old.size
			old.size, old.touched = e.size, e.touched
			x.lru.MoveToFront(old.elem) // no-op while pinned: not in lru
			return nil
		}
		x.removeLocked(old)
		replaced = old
	}
	if x.pins[e.id.obj] == 0 {
		e.elem = x.lru.PushFront(e)
	} else {
		e.elem = &list.Element{Value: e} // out of lru until unpinned
	}
	x.blocks[e.id] = e
	x.perObject[e.id.obj]++
	x.bytes += e.size
	return replaced
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
		c.freeEntry(e)
	}
	c.evictions.Add(int64(len(victims)))
}

// freeEntry frees the bytes of a block the index has forgotten. A packed
// record is its own and nobody else's, so it goes at once.
func (c *Cache) freeEntry(e *entry) {
	if e.pack == nil {
		c.freeBlock(e.id, e.size)
		return
	}
	if c.beforeFree != nil {
		c.beforeFree()
	}
	if err := c.packs.free(e.pack); err != nil {
		c.log.Warn("cannot free an evicted small object", "path", e.pack.seg.path, "offset", e.pack.off, "err", err)
	}
}

// freeBlock frees the bytes of a block that the index has forgotten: the
// whole file goes once nothing else of the object is cached or being
// written, otherwise the block's range becomes a hole. The range stays when
// the same block is in the file again or being written again (a fetch
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
	// when the index lets go of a block (found unreadable, say). A packed
	// copy of the block does not keep its range in the file.
	// A discarded object's file at the path is a new one (stored after
	// the discard), which no Backing holds.
	cur := x.blocks[bid]
	pinned := x.pins[bid.obj] > 0 && !x.bad[bid.obj]
	keep := cur != nil && cur.pack == nil || x.writing[bid] > 0 || pinned
	wholeFile := x.perObject[bid.obj] == 0 && x.writes[bid.obj] == 0
	unhand := false
	if blocks := x.handed[bid.obj]; !keep && blocks > 0 {
		if x.writes[bid.obj] > 0 {
			// A block written into the file and not yet entered would
			// be entered with nothing behind it: the file stays, and
			// the next free of the object unlinks it.
			keep = true
			x.unhanding[bid.obj] = true
		} else {
			delete(x.handed, bid.obj)
			delete(x.unhanding, bid.obj)
			for idx := range blocks {
				if e := x.blocks[blockID{obj: bid.obj, idx: idx}]; e != nil && e.pack == nil {
					x.removeLocked(e)
				}
			}
			wholeFile, unhand = true, true
		}
	}
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
	if unhand {
		// After the unlink: a crash between the two leaves a marker
		// without a file, which the next Open drops, never a handed
		// file without its marker.
		c.removeHandMarker(bid.obj)
	}
}
