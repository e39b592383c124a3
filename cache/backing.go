package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Backing is the disk tier's file of a complete object, open read-only and
// pinned: while it is open none of the object's blocks is evicted, punched
// or unlinked, so the file holds exactly the object's bytes. A FUSE server
// hands its descriptor to the kernel (passthrough), which then reads the
// file itself, never asking the server.
//
// Pinned blocks stay counted in the cache's size but are out of its LRU;
// the cache may so exceed MaxBytes by what open Backings hold, and evicts
// down to it again as they close.
type Backing struct {
	c      *Cache
	obj    string // objectID
	blocks int64
	file   *os.File
	once   sync.Once
	// statMu guards the file's stat as opened, for Changed; Discard
	// takes in the ctime its own unlink gives the file.
	statMu       sync.Mutex
	size         int64
	mtime, ctime unix.Timespec
}

// OpenBacking opens obj's file when the object is complete on disk: every
// block in the index at its full length and in the object's own file (a
// small object's record in a pack backs nothing), none being written, and
// the file exactly obj.Size bytes long. ok is false (and err nil) for an
// object that is not, or is empty; err reports a failure to open or check
// the file.
func (c *Cache) OpenBacking(obj Object) (b *Backing, ok bool, err error) {
	if err := obj.validate(); err != nil || obj.Size == 0 || c.closed.Load() {
		return nil, false, err
	}
	id := objectID(obj.Key)
	blocks := (obj.Size + c.blockSize - 1) / c.blockSize
	// The file lock, from the pin to the stat, keeps readCached from
	// touching the file's times in between (see Changed).
	lock := c.fileLock(id)
	lock.Lock()
	x := &c.index
	x.mu.Lock()
	if x.bad[id] {
		x.mu.Unlock()
		lock.Unlock()
		return nil, false, nil
	}
	for idx := range blocks {
		bid := blockID{obj: id, idx: idx}
		if e := x.blocks[bid]; e == nil || e.pack != nil || e.size != c.blockLen(obj.Size, idx) || x.writing[bid] > 0 {
			x.mu.Unlock()
			lock.Unlock()
			return nil, false, nil
		}
	}
	first := x.pinLocked(id, blocks)
	x.mu.Unlock()

	b = &Backing{c: c, obj: id, blocks: blocks}
	if first {
		if err = os.WriteFile(c.pinMarker(id), nil, 0o600); err != nil {
			// Unpinned under the file lock, so that no other
			// OpenBacking pins it meanwhile as not the first, unmarked.
			x.mu.Lock()
			x.unpinLocked(id, blocks)
			x.mu.Unlock()
			lock.Unlock()
			return nil, false, fmt.Errorf("cache: marking %s pinned: %w", id, err)
		}
	}
	b.file, err = os.Open(c.objectPath(id))
	if err == nil {
		var st unix.Stat_t
		if err = unix.Fstat(int(b.file.Fd()), &st); err == nil && st.Size != obj.Size {
			err = fmt.Errorf("cache: %s holds %d bytes, want %d", c.objectPath(id), st.Size, obj.Size)
		}
		b.size, b.mtime, b.ctime = st.Size, st.Mtim, st.Ctim
	}
	if err == nil {
		x.mu.Lock()
		_, before := x.handed[id]
		x.handed[id] = blocks
		x.mu.Unlock()
		if !before {
			c.writeHandMarker(id)
		}
	}
	lock.Unlock() // before Close, whose evictions take file locks
	if err != nil {
		b.Close()
		return nil, false, err
	}
	return b, true, nil
}

// Fd is the open file's descriptor, valid until Close.
func (b *Backing) Fd() int { return int(b.file.Fd()) }

// Changed reports whether the file was written since OpenBacking: the
// cache itself never writes a pinned object's file, but the kernel opens
// it for writing for a passthrough open made for writing, and a shared
// writable map of such an open writes it.
func (b *Backing) Changed() bool {
	var st unix.Stat_t
	if err := unix.Fstat(b.Fd(), &st); err != nil {
		return true
	}
	b.statMu.Lock()
	defer b.statMu.Unlock()
	return st.Size != b.size || st.Mtim != b.mtime || st.Ctim != b.ctime
}

// Discard drops the object from the cache while a Backing of it is open:
// its blocks leave the index, its file is unlinked (open descriptors and
// maps keep reading it), and no block of it is entered again until the
// last Backing of it is closed, so nothing written into the file behind
// the cache's back is ever served. After that it may be cached afresh,
// in a new file.
func (b *Backing) Discard() {
	c := b.c
	lock := c.fileLock(b.obj)
	lock.Lock()
	defer lock.Unlock()
	x := &c.index
	x.mu.Lock()
	x.bad[b.obj] = true // bad now keeps blocks out, as unhanding did
	delete(x.handed, b.obj)
	delete(x.unhanding, b.obj)
	for idx := range b.blocks {
		if e := x.blocks[blockID{obj: b.obj, idx: idx}]; e != nil {
			x.removeLocked(e)
		}
	}
	x.mu.Unlock()
	defer c.removeHandMarker(b.obj) // after the unlink, as in freeBlock
	var before, after unix.Stat_t
	if unix.Fstat(b.Fd(), &before) != nil {
		c.removeObjectFile(b.obj)
		return
	}
	c.removeObjectFile(b.obj)
	// The unlink changes the file's ctime, which is not a write: taken
	// in, unless something else changed it too.
	b.statMu.Lock()
	if unix.Fstat(b.Fd(), &after) == nil && before.Ctim == b.ctime {
		b.ctime = after.Ctim
	}
	b.statMu.Unlock()
}

// Close closes the file and lets the object's blocks be evicted again, as
// the most recently used ones. It may be called more than once.
func (b *Backing) Close() error {
	var err error
	b.once.Do(func() {
		if b.file != nil {
			err = b.file.Close()
		}
		lock := b.c.fileLock(b.obj)
		lock.Lock()
		x := &b.c.index
		x.mu.Lock()
		last := x.unpinLocked(b.obj, b.blocks)
		if last && x.writes[b.obj] == 0 {
			// The discarded file is unlinked and, with no Backing
			// left, no longer the kernel's backing file: what maps of
			// it write can no more reach the path, so the object may
			// be cached afresh, in a new file. Not while a block write
			// is under way: written into the unlinked file, it would
			// be entered with nothing behind it.
			delete(x.bad, b.obj)
		}
		victims := x.evictLocked()
		x.mu.Unlock()
		if last {
			if rerr := os.Remove(b.c.pinMarker(b.obj)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				b.c.log.Warn("cannot remove a passthrough pin marker; the object will be fetched again after a restart", "err", rerr)
			}
		}
		lock.Unlock()
		b.c.evict(victims)
	})
	return err
}

// pinLocked takes a pin on obj (blocks long); the first takes its blocks out
// of the LRU and reports first.
func (x *diskIndex) pinLocked(obj string, blocks int64) (first bool) {
	x.pins[obj]++
	if x.pins[obj] > 1 {
		return false
	}
	for idx := range blocks {
		if e := x.blocks[blockID{obj: obj, idx: idx}]; e != nil {
			x.lru.Remove(e.elem)
		}
	}
	return true
}

// unpinLocked drops a pin; the last puts the object's blocks back at the
// LRU's front and reports last.
func (x *diskIndex) unpinLocked(obj string, blocks int64) (last bool) {
	if x.pins[obj]--; x.pins[obj] > 0 {
		return false
	}
	delete(x.pins, obj)
	for idx := blocks - 1; idx >= 0; idx-- {
		if e := x.blocks[blockID{obj: obj, idx: idx}]; e != nil {
			x.lru.Remove(e.elem) // a no-op: it is in no list
			e.elem = x.lru.PushFront(e)
		}
	}
	return true
}

// pinMarker is the file that marks obj as pinned (Cache.pinDir). It is
// made before the kernel is handed the object's file and removed after
// the last Backing of it is closed, both under the object's file lock.
func (c *Cache) pinMarker(obj string) string {
	return filepath.Join(c.pinDir, obj)
}

// handMarker is the file that marks obj as handed to the kernel
// (Cache.handDir): a map of it may outlive the process, so a later run
// must not punch it either. It stays until the object's file is unlinked.
func (c *Cache) handMarker(obj string) string {
	return filepath.Join(c.handDir, obj)
}

// writeHandMarker marks obj as handed; the caller holds its file lock. A
// marker that cannot be written costs only that protection after a
// restart.
func (c *Cache) writeHandMarker(obj string) {
	if err := os.WriteFile(c.handMarker(obj), nil, 0o600); err != nil {
		c.log.Warn("cannot mark a cached file as handed to the kernel; after a restart the cache may punch holes in it under a map", "object", obj, "err", err)
	}
}

// removeHandMarker drops obj's hand marker as its file is unlinked; the
// caller holds its file lock.
func (c *Cache) removeHandMarker(obj string) {
	if err := os.Remove(c.handMarker(obj)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("cannot remove a cached file's hand marker", "object", obj, "err", err)
	}
}

// loadHanded reads the hand markers a previous run left into the index:
// maps of those files may have outlived it. A marker whose file is gone
// goes too. It runs before rebuild, which evicts what does not fit.
func (c *Cache) loadHanded() error {
	names, err := os.ReadDir(c.handDir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, d := range names {
		obj, ok := parseObjectName(d.Name())
		var st unix.Stat_t
		if !ok || unix.Stat(c.objectPath(obj), &st) != nil {
			os.RemoveAll(filepath.Join(c.handDir, d.Name()))
			continue
		}
		c.index.handed[obj] = max(1, (st.Size+c.blockSize-1)/c.blockSize)
	}
	return nil
}

// dropPinned removes the objects whose pin marker a previous run left (it
// stopped while the kernel had their files open through passthrough, and
// a shared writable map may have written them), and the markers.
func (c *Cache) dropPinned() error {
	for _, dir := range []string{c.pinDir, c.handDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
	}
	names, err := os.ReadDir(c.pinDir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, d := range names {
		if obj, ok := parseObjectName(d.Name()); ok {
			c.log.Info("dropping a cached file that was open through passthrough when the cache was last closed", "object", obj)
			if err := os.Remove(c.objectPath(obj)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cache: %w", err)
			}
			c.removeHandMarker(obj)
		}
		if err := os.RemoveAll(filepath.Join(c.pinDir, d.Name())); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
	}
	return nil
}

// completeWorkers is how many blocks Complete fetches at once.
const completeWorkers = 4

// Complete writes every block of obj that is neither on disk nor being
// written, so that the object can back a passthrough open (OpenBacking).
// Blocks being fetched are taken from their fetch; the rest are fetched.
// Complete writes them itself rather than through the store queue, which
// skips blocks when it is full, and returns once every block is on disk
// (or at the first error); Close stops it. A discarded object
// (Backing.Discard) is left as it is.
func (c *Cache) Complete(ctx context.Context, obj Object) error {
	if err := obj.validate(); err != nil {
		return err
	}
	if !c.track() {
		return ErrClosed
	}
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()

	id := objectID(obj.Key)
	c.index.mu.Lock()
	discarded := c.index.bad[id]
	c.index.mu.Unlock()
	if discarded {
		return nil // Backing.Discard: nothing of it is cached again
	}
	blocks := (obj.Size + c.blockSize - 1) / c.blockSize
	next := make(chan int64)
	errs := make(chan error, completeWorkers)
	var wg sync.WaitGroup
	for range completeWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range next {
				if err := c.completeBlock(ctx, obj, blockID{obj: id, idx: idx}); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for idx := range blocks {
		bid := blockID{obj: id, idx: idx}
		c.index.mu.Lock()
		there := c.index.blocks[bid] != nil || c.index.writing[bid] > 0
		c.index.mu.Unlock()
		if there {
			continue
		}
		select {
		case next <- idx:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	// Blocks whose fetch queued its own store may still be on their way
	// to disk; they are soon.
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		c.index.mu.Lock()
		writing := c.index.writes[id]
		c.index.mu.Unlock()
		if writing == 0 {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// completeBlock brings one block of obj onto disk unless it is there or on
// its way there.
func (c *Cache) completeBlock(ctx context.Context, obj Object, bid blockID) error {
	length := c.blockLen(obj.Size, bid.idx)
	f, err := c.join(obj, bid, length, true)
	if err != nil || f == nil {
		return err
	}
	defer c.leave(f)
	select {
	case <-f.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.err != nil {
		return f.err
	}
	// The fetch queues its own store (or skips it) under flightGroup.mu
	// as it finishes; taking that lock here orders this check after it.
	c.flights.mu.Lock()
	c.index.mu.Lock()
	stored := c.index.blocks[bid] != nil || c.index.writing[bid] > 0
	if !stored {
		c.index.startWriteLocked(bid)
	}
	c.index.mu.Unlock()
	c.flights.mu.Unlock()
	if stored {
		return nil
	}
	// As a waiter we hold the flight, and with it its buffer.
	return c.storeBlock(bid, f.data)
}

// Dir is the directory the cache lives in.
func (c *Cache) Dir() string { return c.dir }

// MaxBytes is the bound on the bytes of cached blocks (Options.MaxBytes).
func (c *Cache) MaxBytes() int64 { return c.index.maxBytes }
