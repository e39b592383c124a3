// Package cache owns fdfsfs's local data: an on-disk block cache that reads
// objects through a caller-supplied Fetcher, per-handle readahead, and sparse
// staging files for writes that arrive out of order.
//
// It never talks to FastDFS and never imports other fdfsfs packages: the only
// way in is the Fetcher interface. It keeps file contents in memory only in
// a bounded set of block buffers (see Cache), and it never exits the
// process.
package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Defaults for zero Options fields.
const (
	DefaultBlockSize       = 1 << 20
	DefaultMaxBytes        = 1 << 30
	DefaultReadaheadBlocks = 16
	DefaultMemBytes        = 32 << 20
	DefaultMaxPrefetch     = 8
)

// touchInterval is how stale a block's mtime may get before a hit rewrites
// it. The mtime only matters for rebuilding the LRU order at the next Open, so
// touching at most once a minute keeps a syscall off most hits.
const touchInterval = time.Minute

// ErrClosed is returned by reads on a closed Cache.
var ErrClosed = errors.New("cache: closed")

// Options configure a Cache. The zero value of each field picks its default.
type Options struct {
	// MaxBytes bounds the bytes of cached blocks on disk (--cache-size).
	// Staging files are not counted.
	MaxBytes int64
	// BlockSize is the unit of fetching and caching. Blocks cached with
	// another block size are discarded at Open.
	BlockSize int
	// ReadaheadBlocks is the largest window a sequential Reader keeps fetched
	// ahead of itself. Negative turns readahead off.
	ReadaheadBlocks int
	// MaxPrefetch bounds the readahead fetches running at once, across all
	// Readers of the Cache.
	MaxPrefetch int
	// MemBytes bounds the recently fetched blocks also kept in memory, so
	// that a sequential reader, which asks for a block in many small FUSE
	// reads, is served from RAM rather than by a file open and read each
	// time. Negative keeps none.
	MemBytes int64
	// Logger receives debug and warning records; nil discards them.
	Logger *slog.Logger
}

// Stats is a snapshot of a Cache's counters.
type Stats struct {
	Hits         int64 // block lookups by reads answered from disk
	Misses       int64 // block lookups by reads that needed a fetch (or joined one)
	Fetches      int64 // blocks fetched, by reads or readahead
	FetchedBytes int64 // bytes those fetches brought in
	Prefetches   int64 // fetches started by readahead
	Evictions    int64 // blocks dropped to stay under MaxBytes
	StoreSkips   int64 // fetched blocks not stored because the store queue was full
	Bytes        int64 // bytes of blocks on disk now
	Blocks       int64 // blocks on disk now
	InFlight     int   // fetches under way, or fetched and being stored
}

// blockID names one block: the hash of its object's key and its index.
type blockID struct {
	obj string // objectID of the key
	idx int64
}

// entry is one block on disk.
type entry struct {
	id      blockID
	size    int64
	touched time.Time // the mtime last written to the block's file
	elem    *list.Element
}

// flight is one fetch of a block; every reader wanting the block while it is
// under way waits on the same flight.
type flight struct {
	id     blockID
	done   chan struct{} // closed once data or err is set
	buf    *buffer       // holds data; the flight has a reference until released
	data   []byte
	err    error
	cancel context.CancelFunc

	waiters  int  // guarded by Cache.mu; the fetch is cancelled when it drops to 0
	dropped  bool // guarded by Cache.mu; set by Invalidate so the result is not kept
	unhooked bool // guarded by Cache.mu; gone from Cache.flights, so nobody joins
	released bool // guarded by Cache.mu; the flight's reference to buf is dropped
}

// buffer is the memory of one fetched block. The flight (for its waiters),
// the memory tier and the fetch goroutine (until the block is stored) each
// hold a reference; the last to let go hands a full-size buffer back for the
// next fetch, so a stream reuses a few megabytes instead of faulting in and
// zeroing fresh pages for every block.
type buffer struct {
	data []byte // from alignedBuffer
	refs int    // guarded by Cache.mu
}

// maxFreeBuffers bounds the idle block buffers kept for reuse.
const maxFreeBuffers = 8

// Fetched blocks wait in a queue of storeQueue for storeWorkers goroutines
// that write them to disk. A block that finds the queue full is not stored
// (it is served from memory while it lasts): a cache disk slower than the
// network then costs cache coverage, never read speed, and the buffers
// waiting to be written stay bounded. Writes into one object's file
// serialize in the file system anyway, so a few workers suffice.
const (
	storeQueue   = 16
	storeWorkers = 2
)

// storeJob is a fetched block waiting to be written.
type storeJob struct {
	f   *flight
	obj Object
	bid blockID
	buf *buffer // the fetch's reference, now the job's
}

// Cache is an on-disk block cache. It is safe for concurrent use.
//
// Layout of dir:
//
//	LOCK                         flock held while open; one process per dir
//	objects-<blocksize>/<hh>/<objectID>   one sparse file per object
//	staging/                     unlinked staging files (see Stage)
//
// objectID is the first 128 bits of SHA-256 of the object key in hex; hh is
// its first two digits. An object's file holds each cached block at the
// block's own offset and holes elsewhere: caching a block is one write into a
// file that usually exists already, and evicting one punches a hole, so a
// stream of blocks through a full cache creates and deletes no inodes (on
// ext4, allocating inodes beside many just deleted ones costs more than the
// data copy). The file's mtime is (roughly) its last use, which orders the
// LRU after a remount; a remount finds the blocks again from the file's data
// extents (SEEK_DATA), and a block only partly written is not among them.
// Full blocks are written with O_DIRECT where the file system allows it,
// which keeps a cold stream from copying every block into the page cache
// a second time. Files are opened only for the length of one read, write or
// punch, so open descriptors are bounded by the operations under way.
//
// Memory: block buffers are held by fetches under way (MaxPrefetch plus the
// blocks reads under way want), by the memory tier (MemBytes), by blocks
// waiting for the disk (storeQueue + storeWorkers) and by reads lent a
// block until their reply is written; up to maxFreeBuffers more wait for
// reuse. None of it grows with the size of an object.
//
// Lock order: Reader.mu, then Cache.mu. Cache.mu is never held across a
// fetch or a block write; it is held across the punch or unlink of an evicted
// block (see removeLocked), so that a hole is never punched into a block
// written after the eviction.
type Cache struct {
	dir             string
	objDir          string
	stageDir        string
	blockSize       int64
	maxBytes        int64
	readaheadBlocks int
	prefetchSlots   chan struct{} // a semaphore bounding readahead fetches
	log             *slog.Logger
	lock            *os.File
	direct          atomic.Bool // full blocks are written with O_DIRECT

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetch and prefetch goroutines

	hits, misses, fetches, fetchedBytes, prefetches, evictions, storeSkips atomic.Int64

	stores  chan storeJob
	storeWG sync.WaitGroup // store workers
	// beforeStore, when set (by tests, before any read), runs before
	// each block write: it stands in for a slow disk.
	beforeStore func()

	mu      sync.Mutex
	closed  bool                        // mu
	lru     list.List                   // mu; *entry, most recently used first
	blocks  map[blockID]*entry          // mu
	objects map[string]map[int64]*entry // mu; by objectID, for Invalidate
	flights map[blockID]*flight         // mu
	writes  map[string]int              // mu; block writes under way, by objectID
	writing map[blockID]int             // mu; the same, by block
	bytes   int64                       // mu; sum of entry sizes

	// The memory tier: blocks fetched lately, oldest first in memOrder.
	// Content never changes under a key, so these are never stale.
	memMax   int64
	mem      map[blockID]*buffer // mu
	memOrder []blockID           // mu
	memBytes int64               // mu

	free [][]byte // mu; full-size block buffers no longer referenced
}

// Open opens (creating if needed) the cache in dir and rebuilds its LRU from
// the blocks already there, oldest mtime first, evicting down to MaxBytes.
func Open(dir string, opts Options) (*Cache, error) {
	if opts.BlockSize < 0 || opts.MaxBytes < 0 || opts.MaxPrefetch < 0 {
		return nil, fmt.Errorf("cache: negative option in %+v", opts)
	}
	c := &Cache{
		dir:             dir,
		blockSize:       int64(opts.BlockSize),
		maxBytes:        opts.MaxBytes,
		readaheadBlocks: opts.ReadaheadBlocks,
		log:             opts.Logger,
		blocks:          make(map[blockID]*entry),
		objects:         make(map[string]map[int64]*entry),
		flights:         make(map[blockID]*flight),
		writes:          make(map[string]int),
		writing:         make(map[blockID]int),
	}
	if c.blockSize == 0 {
		c.blockSize = DefaultBlockSize
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.readaheadBlocks == 0 {
		c.readaheadBlocks = DefaultReadaheadBlocks
	}
	c.memMax = opts.MemBytes
	if c.memMax == 0 {
		c.memMax = DefaultMemBytes
	}
	c.mem = make(map[blockID]*buffer)
	maxPrefetch := opts.MaxPrefetch
	if maxPrefetch == 0 {
		maxPrefetch = DefaultMaxPrefetch
	}
	c.prefetchSlots = make(chan struct{}, maxPrefetch)
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.objDir = filepath.Join(dir, "objects-"+strconv.FormatInt(c.blockSize, 10))
	c.stageDir = filepath.Join(dir, "staging")

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	c.lock = lock
	if err := c.prepareDirs(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := c.checkBlockSize(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := c.rebuild(); err != nil {
		lock.Close()
		return nil, err
	}
	c.direct.Store(c.blockSize%directAlign == 0 && directWorks(c.objDir))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.stores = make(chan storeJob, storeQueue)
	for range storeWorkers {
		c.storeWG.Add(1)
		go c.storeLoop()
	}
	c.log.Info("block cache opened", "dir", dir, "blocks", len(c.blocks), "bytes", c.bytes,
		"max_bytes", c.maxBytes, "block_size", c.blockSize)
	return c, nil
}

// lockDir takes an exclusive flock on dir/LOCK: two processes sharing a cache
// dir would each believe they alone account for its size.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("cache: %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("cache: lock %s: %w", dir, err)
	}
	return f, nil
}

// prepareDirs clears what a previous run may have left half done and drops
// blocks cut with a different block size.
func (c *Cache) prepareDirs() error {
	names, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, d := range names {
		path := filepath.Join(c.dir, d.Name())
		// blocks-* and tmp are the layout of earlier versions, one file
		// per block.
		stale := strings.HasPrefix(d.Name(), "objects-") && path != c.objDir ||
			strings.HasPrefix(d.Name(), "blocks-") || d.Name() == "tmp"
		if stale {
			c.log.Info("dropping blocks cached with another block size or layout", "dir", path)
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("cache: %w", err)
			}
		}
	}
	if err := os.RemoveAll(c.stageDir); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.Mkdir(c.stageDir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	// The 256 subdirectories appear as blocks land in them: making them all
	// up front costs a noticeable part of a second on some file systems.
	if err := os.MkdirAll(c.objDir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// checkBlockSize refuses a block size that is not a whole number of the file
// system's blocks: evicting a block punches a hole in its range, and only
// whole file-system blocks become holes (the rest is zero-filled and would
// be found again as data after a remount).
func (c *Cache) checkBlockSize() error {
	var st unix.Statfs_t
	if err := unix.Statfs(c.objDir, &st); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if bs := st.Bsize; bs > 0 && c.blockSize%bs != 0 {
		return fmt.Errorf("cache: block size %d is not a multiple of the file system block size %d of %s", c.blockSize, bs, c.objDir)
	}
	return nil
}

// rebuild loads the blocks on disk into the LRU, least recently used last.
// Blocks of one object share the file's mtime; among them the lower indexes
// count as more recent, since readers start at the front.
func (c *Cache) rebuild() error {
	var found []*entry
	subs, err := os.ReadDir(c.objDir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, s := range subs {
		sub := filepath.Join(c.objDir, s.Name())
		if !s.IsDir() || !isBlockSubdir(s.Name()) {
			c.log.Warn("removing stray file from the block cache", "path", sub)
			os.RemoveAll(sub)
			continue
		}
		names, err := os.ReadDir(sub)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		for _, d := range names {
			path := filepath.Join(sub, d.Name())
			obj, ok := parseObjectName(d.Name())
			if !ok || obj[:2] != s.Name() || !d.Type().IsRegular() {
				c.log.Warn("removing stray file from the block cache", "path", path)
				os.RemoveAll(path)
				continue
			}
			blocks, err := c.blocksInFile(obj, path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				c.log.Warn("removing unreadable object from the block cache", "path", path, "err", err)
				os.Remove(path)
				continue
			}
			if len(blocks) == 0 {
				os.Remove(path)
			}
			found = append(found, blocks...)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if !a.touched.Equal(b.touched) {
			return a.touched.Before(b.touched)
		}
		return a.id.idx > b.id.idx
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range found {
		c.insertLocked(e.id, e.size, e.touched)
	}
	c.evictLocked()
	return nil
}

// blocksInFile lists the whole blocks in an object's file: those whose every
// byte lies in a data extent. The last block of a file may be short (it ends
// the object); any other short one is not a block.
func (c *Cache) blocksInFile(obj, path string) ([]*entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := info.Size()
	var blocks []*entry
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break
		}
		if err != nil {
			return nil, err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		// Blocks lying wholly in [data, hole).
		for idx := (data + c.blockSize - 1) / c.blockSize; idx*c.blockSize < hole; idx++ {
			end := min((idx+1)*c.blockSize, size)
			if end > hole {
				break
			}
			blocks = append(blocks, &entry{id: blockID{obj: obj, idx: idx}, size: end - idx*c.blockSize, touched: info.ModTime()})
		}
		off = hole
	}
	return blocks, nil
}

func isBlockSubdir(name string) bool {
	return len(name) == 2 && isLowerHex(name)
}

func isLowerHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// objectID is the name a key's blocks are stored under.
func objectID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// blockName names a block in log lines.
func blockName(id blockID) string {
	return id.obj + "." + strconv.FormatInt(id.idx, 10)
}

// parseObjectName reports whether name is an objectID.
func parseObjectName(name string) (string, bool) {
	if len(name) != 32 || !isLowerHex(name) {
		return "", false
	}
	return name, true
}

func (c *Cache) objectPath(obj string) string {
	return filepath.Join(c.objDir, obj[:2], obj)
}

// BlockSize is the size of every block but an object's last.
func (c *Cache) BlockSize() int { return int(c.blockSize) }

// blockLen is the length of block idx of an object of the given size.
func (c *Cache) blockLen(size, idx int64) int64 {
	return min(c.blockSize, size-idx*c.blockSize)
}

// Close stops every fetch, waits for their goroutines, and releases the
// directory. Blocks stay on disk for the next Open.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	// No fetch is left to queue a block; write what is queued.
	close(c.stores)
	c.storeWG.Wait()
	return c.lock.Close()
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	bytes, blocks, inFlight := c.bytes, int64(len(c.blocks)), len(c.flights)
	c.mu.Unlock()
	return Stats{
		Hits:         c.hits.Load(),
		Misses:       c.misses.Load(),
		Fetches:      c.fetches.Load(),
		FetchedBytes: c.fetchedBytes.Load(),
		Prefetches:   c.prefetches.Load(),
		Evictions:    c.evictions.Load(),
		StoreSkips:   c.storeSkips.Load(),
		Bytes:        bytes,
		Blocks:       blocks,
		InFlight:     inFlight,
	}
}

// Invalidate drops every cached block of the object with this key, and makes
// fetches of it under way forget their result once their readers have it.
func (c *Cache) Invalidate(key string) {
	obj := objectID(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.objects[obj] {
		c.removeLocked(e)
	}
	for id, b := range c.mem {
		if id.obj == obj {
			c.memBytes -= int64(len(b.data))
			delete(c.mem, id)
			c.releaseLocked(b)
		}
	}
	for id, f := range c.flights {
		if id.obj == obj {
			f.dropped = true
		}
	}
}

// ReadAt reads len(p) bytes of obj at off through the cache, fetching the
// blocks that are missing (in parallel when p spans several). Like
// io.ReaderAt it returns io.EOF when the read reaches past obj.Size; an empty
// object is answered without fetching anything.
func (c *Cache) ReadAt(ctx context.Context, obj Object, p []byte, off int64) (int, error) {
	if err := obj.validate(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("cache: read of %q at negative offset %d", obj.Key, off)
	}
	if off >= obj.Size {
		return 0, io.EOF
	}
	want := p
	if rest := obj.Size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	if len(want) == 0 {
		return 0, nil
	}
	if err := c.readBlocks(ctx, obj, want, off); err != nil {
		return 0, err
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

// pendingCopy is a part of a read waiting for a block's fetch.
type pendingCopy struct {
	f      *flight
	dst    []byte
	offset int64 // of dst[0] within the block
}

// readBlocks fills want (non-empty, inside the object) from off.
func (c *Cache) readBlocks(ctx context.Context, obj Object, want []byte, off int64) error {
	id := objectID(obj.Key)
	end := off + int64(len(want))
	var pending []pendingCopy
	defer func() {
		for _, pc := range pending {
			c.leave(pc.f)
		}
	}()
	for idx := off / c.blockSize; idx*c.blockSize < end; idx++ {
		start := idx * c.blockSize
		length := c.blockLen(obj.Size, idx)
		lo, hi := max(off, start), min(end, start+length)
		dst := want[lo-off : hi-off]
		bid := blockID{obj: id, idx: idx}
		f, err := c.lookup(obj, bid, length, dst, lo-start)
		if err != nil {
			return err
		}
		if f != nil {
			pending = append(pending, pendingCopy{f: f, dst: dst, offset: lo - start})
		}
	}
	for _, pc := range pending {
		select {
		case <-pc.f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if pc.f.err != nil {
			return pc.f.err
		}
		copy(pc.dst, pc.f.data[pc.offset:])
	}
	return nil
}

// lookup fills dst from the cached block, or returns the flight that will
// bring the block in (joined, so the caller must leave it).
func (c *Cache) lookup(obj Object, bid blockID, length int64, dst []byte, offset int64) (*flight, error) {
	// A block can land on disk between the miss and the join; look again
	// then rather than fetch it twice. Each retry follows a real change, so
	// a few suffice; the last attempt fetches regardless.
	for attempt := 0; ; attempt++ {
		if c.readCached(bid, length, dst, offset) {
			c.hits.Add(1)
			return nil, nil
		}
		f, err := c.join(obj, bid, length, attempt < 2)
		if err != nil {
			return nil, err
		}
		if f != nil {
			c.misses.Add(1)
			return f, nil
		}
	}
}

// readCached fills dst from the block's file at offset if it is cached and
// whole. A vanished or short file is dropped from the index.
func (c *Cache) readCached(bid blockID, length int64, dst []byte, offset int64) bool {
	c.mu.Lock()
	if b, ok := c.mem[bid]; ok && int64(len(b.data)) == length && !c.closed {
		copy(dst, b.data[offset:])
		c.mu.Unlock()
		return true
	}
	e := c.blocks[bid]
	if e == nil || c.closed {
		c.mu.Unlock()
		return false
	}
	if e.size != length {
		c.log.Warn("dropping cached block of unexpected size", "block", blockName(bid), "size", e.size, "want", length)
		c.removeLocked(e)
		c.mu.Unlock()
		return false
	}
	c.lru.MoveToFront(e.elem)
	now := time.Now()
	touch := now.Sub(e.touched) > touchInterval
	if touch {
		e.touched = now
	}
	c.mu.Unlock()

	path := c.objectPath(bid.obj)
	file, err := os.Open(path)
	if err == nil {
		var n int
		n, err = file.ReadAt(dst, bid.idx*c.blockSize+offset)
		file.Close()
		if err == io.EOF && n == len(dst) {
			err = nil
		}
	}
	c.mu.Lock()
	// Evicted while being read: the bytes may have come from the hole
	// the eviction punched. Treat it as a miss.
	current := c.blocks[bid] == e
	if err != nil && current {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("dropping unreadable cached block", "path", path, "block", bid.idx, "err", err)
		}
		c.removeLocked(e)
	}
	c.mu.Unlock()
	if err != nil || !current {
		return false
	}
	if touch {
		os.Chtimes(path, now, now)
	}
	return true
}

// join returns the flight fetching bid, starting one if there is none. When
// mayBeCached is set and the block is on disk by now, it returns nil so the
// caller reads it from there.
func (c *Cache) join(obj Object, bid blockID, length int64, mayBeCached bool) (*flight, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if f := c.flights[bid]; f != nil {
		f.waiters++
		return f, nil
	}
	if mayBeCached && c.blocks[bid] != nil {
		return nil, nil
	}
	return c.startLocked(obj, bid, length), nil
}

// startLocked starts fetching a block, with one waiter.
func (c *Cache) startLocked(obj Object, bid blockID, length int64) *flight {
	ctx, cancel := context.WithCancel(c.ctx)
	f := &flight{id: bid, done: make(chan struct{}), cancel: cancel, waiters: 1}
	c.flights[bid] = f
	c.wg.Add(1)
	go c.fetch(ctx, obj, bid, length, f)
	return f
}

// leave drops one waiter from f. The last waiter to leave a fetch that is
// still under way cancels it and unhooks it, so that a later reader starts
// afresh instead of joining a doomed fetch.
func (c *Cache) leave(f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
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

// unhookLocked takes f out of Cache.flights, so that later readers start a
// fetch of their own, and drops its buffer once no waiter is left to read it.
func (c *Cache) unhookLocked(f *flight) {
	if c.flights[f.id] == f {
		delete(c.flights, f.id)
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
			c.releaseLocked(f.buf)
		}
	}
}

// newBuffer gives f a buffer of length bytes, reusing a free one when the
// length is the full block size. It holds a reference for the caller and,
// unless every waiter has left already, one for the flight.
func (c *Cache) newBuffer(f *flight, length int64) *buffer {
	c.mu.Lock()
	var data []byte
	if length == c.blockSize && len(c.free) > 0 {
		data = c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
	}
	c.mu.Unlock()
	if data == nil {
		data = alignedBuffer(length)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &buffer{data: data, refs: 1}
	if !f.released {
		b.refs++
	}
	f.buf = b
	return b
}

// releaseLocked drops one reference to b.
func (c *Cache) releaseLocked(b *buffer) {
	if b.refs--; b.refs > 0 {
		return
	}
	if int64(len(b.data)) == c.blockSize && len(c.free) < maxFreeBuffers {
		c.free = append(c.free, b.data)
	}
	b.data = nil
}

// fetch runs one flight: fetch the block, hand it to the waiters, then store
// it on disk and in the LRU.
func (c *Cache) fetch(ctx context.Context, obj Object, bid blockID, length int64, f *flight) {
	defer c.wg.Done()
	defer f.cancel()
	off := bid.idx * c.blockSize
	buf := c.newBuffer(f, length)
	queued := false
	defer func() {
		if !queued {
			c.mu.Lock()
			c.releaseLocked(buf)
			c.mu.Unlock()
		}
	}()
	w := &blockWriter{buf: buf.data}
	n, err := obj.Fetch.FetchRange(ctx, off, length, w)
	if err == nil && (n != length || w.n != int(length)) {
		err = fmt.Errorf("fetched %d bytes, want %d: %w", w.n, length, io.ErrUnexpectedEOF)
	}
	if err != nil {
		f.err = fmt.Errorf("cache: fetch %q at %d: %w", obj.Key, off, err)
		c.mu.Lock()
		close(f.done)
		c.unhookLocked(f)
		c.mu.Unlock()
		c.log.Debug("block fetch failed", "key", obj.Key, "block", bid.idx, "err", err)
		return
	}
	c.fetches.Add(1)
	c.fetchedBytes.Add(length)
	f.data = w.buf
	c.mu.Lock()
	defer c.mu.Unlock()
	if !f.dropped {
		c.rememberLocked(bid, buf)
	}
	close(f.done)
	// Readers of this block keep finding the flight (and its data) until
	// the block is in the LRU, so nobody fetches it again meanwhile.
	select {
	case c.stores <- storeJob{f: f, obj: obj, bid: bid, buf: buf}:
		queued = true
		// Counted before the file is opened, so that an eviction
		// meanwhile punches a hole instead of unlinking the file being
		// written, and never punches this block's range.
		c.writes[bid.obj]++
		c.writing[bid]++
	default:
		c.storeSkips.Add(1)
		c.unhookLocked(f)
	}
}

// storeLoop writes queued blocks to disk until Close.
func (c *Cache) storeLoop() {
	defer c.storeWG.Done()
	for job := range c.stores {
		c.store(job)
	}
}

// store writes one fetched block and enters it in the LRU.
func (c *Cache) store(job storeJob) {
	bid, length := job.bid, int64(len(job.f.data))
	if c.beforeStore != nil {
		c.beforeStore()
	}
	storeErr := c.writeBlock(bid, job.f.data)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unhookLocked(job.f)
	c.releaseLocked(job.buf)
	if c.writes[bid.obj]--; c.writes[bid.obj] == 0 {
		delete(c.writes, bid.obj)
	}
	if c.writing[bid]--; c.writing[bid] == 0 {
		delete(c.writing, bid)
	}
	if storeErr != nil {
		c.log.Warn("cannot store fetched block", "key", job.obj.Key, "block", bid.idx, "err", storeErr)
	}
	if storeErr != nil || job.f.dropped {
		c.discardLocked(bid, length)
		return
	}
	c.insertLocked(bid, length, time.Now())
	c.evictLocked()
}

// rememberLocked keeps b in the memory tier, with a reference of its own,
// dropping the oldest blocks beyond memMax.
func (c *Cache) rememberLocked(bid blockID, b *buffer) {
	if c.memMax <= 0 || int64(len(b.data)) > c.memMax {
		return
	}
	b.refs++
	if old, ok := c.mem[bid]; ok {
		c.memBytes -= int64(len(old.data))
		c.releaseLocked(old)
	} else {
		c.memOrder = append(c.memOrder, bid)
	}
	c.mem[bid] = b
	c.memBytes += int64(len(b.data))
	for c.memBytes > c.memMax && len(c.memOrder) > 0 {
		id := c.memOrder[0]
		c.memOrder = c.memOrder[1:]
		if old, ok := c.mem[id]; ok {
			c.memBytes -= int64(len(old.data))
			delete(c.mem, id)
			c.releaseLocked(old)
		}
	}
	// Entries dropped by Invalidate leave their ids behind in memOrder;
	// compact once it is mostly such ids.
	if len(c.memOrder) > 4*len(c.mem)+64 {
		live := c.memOrder[:0]
		for _, id := range c.memOrder {
			if _, ok := c.mem[id]; ok {
				live = append(live, id)
			}
		}
		c.memOrder = live
	}
}

// directAlign is the alignment O_DIRECT asks of offsets, lengths and memory
// on the file systems a cache lives on.
const directAlign = 4096

// alignedBuffer returns a buffer of n bytes whose start is aligned for
// O_DIRECT and whose capacity runs to the next aligned length.
func alignedBuffer(n int64) []byte {
	padded := (n + directAlign - 1) &^ (directAlign - 1)
	b := make([]byte, padded+directAlign)
	skip := int64(0)
	if rem := int64(uintptr(unsafe.Pointer(&b[0])) % directAlign); rem != 0 {
		skip = directAlign - rem
	}
	return b[skip : skip+n : skip+padded]
}

// directWorks reports whether files in dir accept O_DIRECT writes (tmpfs,
// for one, refuses them).
func directWorks(dir string) bool {
	f, err := os.CreateTemp(dir, "direct-probe-*")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	_, err = unix.Pwrite(fd, alignedBuffer(directAlign), 0)
	return err == nil
}

// writeBlock writes a block into its object's file at the block's offset.
// data comes from alignedBuffer, so a full block can go with O_DIRECT: no
// second copy into the page cache. The object's last block, shorter than
// the rest, is written padded to the alignment and the file cut back to the
// object's end.
func (c *Cache) writeBlock(bid blockID, data []byte) error {
	path := c.objectPath(bid.obj)
	off := bid.idx * c.blockSize
	if c.direct.Load() && uintptr(unsafe.Pointer(unsafe.SliceData(data)))%directAlign == 0 {
		err := c.writeDirect(path, data, off)
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		c.log.Info("block cache falls back to buffered writes", "err", err)
		c.direct.Store(false)
	}
	f, err := openCreating(path, os.O_WRONLY)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, off)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (c *Cache) writeDirect(path string, data []byte, off int64) error {
	f, err := openCreating(path, os.O_WRONLY|syscall.O_DIRECT)
	if err != nil {
		return err
	}
	padded := data[:cap(data)]
	_, err = f.WriteAt(padded, off)
	if err == nil && len(padded) > len(data) {
		err = f.Truncate(off + int64(len(data)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openCreating opens path, creating it and its directory if needed.
func openCreating(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.Mkdir(filepath.Dir(path), 0o700); err == nil || errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(path, flag|os.O_CREATE, 0o600)
		}
	}
	return f, err
}

// insertLocked records a block on disk as most recently used.
func (c *Cache) insertLocked(bid blockID, size int64, touched time.Time) {
	if e := c.blocks[bid]; e != nil {
		c.bytes += size - e.size
		e.size, e.touched = size, touched
		c.lru.MoveToFront(e.elem)
		return
	}
	e := &entry{id: bid, size: size, touched: touched}
	e.elem = c.lru.PushFront(e)
	c.blocks[bid] = e
	byIdx := c.objects[bid.obj]
	if byIdx == nil {
		byIdx = make(map[int64]*entry)
		c.objects[bid.obj] = byIdx
	}
	byIdx[bid.idx] = e
	c.bytes += size
}

// removeLocked forgets a block and frees its bytes on disk.
func (c *Cache) removeLocked(e *entry) {
	c.lru.Remove(e.elem)
	delete(c.blocks, e.id)
	if byIdx := c.objects[e.id.obj]; byIdx != nil {
		delete(byIdx, e.id.idx)
		if len(byIdx) == 0 {
			delete(c.objects, e.id.obj)
		}
	}
	c.bytes -= e.size
	c.discardLocked(e.id, e.size)
}

// discardLocked frees the bytes of a block that is in no entry: the whole
// file goes once nothing else of the object is cached or being written,
// otherwise the block's range becomes a hole. Both happen under the lock so
// that they never touch a block written after this call. The range stays
// when the same block is in an entry again or being written again (a fetch
// cancelled as it finished can race the one that replaced it): its bytes
// are that copy's.
func (c *Cache) discardLocked(bid blockID, size int64) {
	path := c.objectPath(bid.obj)
	if c.blocks[bid] != nil || c.writing[bid] > 0 {
		return
	}
	if len(c.objects[bid.obj]) == 0 && c.writes[bid.obj] == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cannot remove cached object", "path", path, "err", err)
		}
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		if size < c.blockSize {
			// The object's last block: cut the file short. A hole
			// punched into part of a file-system block would leave
			// it allocated, zero-filled, and a remount would take
			// those zeros for the block.
			err = f.Truncate(bid.idx * c.blockSize)
		} else {
			err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, bid.idx*c.blockSize, size)
		}
		f.Close()
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("cannot free an evicted block", "path", path, "block", bid.idx, "err", err)
	}
}

// evictLocked drops least recently used blocks until the cache fits.
func (c *Cache) evictLocked() {
	for c.bytes > c.maxBytes {
		back := c.lru.Back()
		if back == nil {
			return
		}
		c.removeLocked(back.Value.(*entry))
		c.evictions.Add(1)
	}
}
