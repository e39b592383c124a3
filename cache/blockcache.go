// Package cache owns fdfsfs's local data: a block cache that reads objects
// through a caller-supplied Fetcher and keeps their blocks in memory and on
// disk, per-handle readahead, and sparse staging files for writes that arrive
// out of order.
//
// A read of an object asks for the blocks it covers and looks for each in
// the memory tier, then on disk, then among the fetches under way, starting
// one if none has it. The parts live in files of their own, each with a lock
// of its own, as in JuiceFS's pkg/chunk:
//
//   - memtier.go: the memory tier, the blocks fetched lately, and the pool of
//     block buffers fetches fill. A hit takes memTier.mu for one map lookup
//     and copies or lends the bytes after letting it go.
//   - evict.go: the disk tier's index, which blocks are on disk in LRU order
//     and which are being written. It picks the blocks to evict and frees
//     their bytes after letting its lock go.
//   - disktier.go: the disk tier itself, one sparse file per object (layout at
//     Cache), and the workers that store fetched blocks. Every write, punch
//     and unlink of a file holds that file's lock, one of fileLocks.
//   - pack.go: small objects, kept as records in shared pack files instead
//     of a file each; its lock covers bookkeeping only.
//   - singleflight.go: fetches under way. Every reader of a block waits on
//     one fetch, which gives the block to the memory tier and queues it for
//     the disk tier.
//   - backing.go: complete objects for FUSE passthrough. OpenBacking opens
//     an object's file once every block is on disk and pins its blocks out
//     of the LRU while it is open; Complete writes the blocks a read left
//     out.
//
// Only the file locks are held across a syscall, so an eviction punching
// holes never makes a memory hit, or a disk hit, wait. readahead.go watches
// each handle's offsets and fetches ahead of sequential readers; staging.go
// holds files being written.
//
// It never talks to FastDFS and never imports other fdfsfs packages: the only
// way in is the Fetcher interface. It keeps file contents in memory only in
// a bounded set of block buffers (see Cache), and it never exits the
// process.
package cache

import (
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
	Hits         int64 // block lookups by reads answered from memory or disk
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

// Cache is an on-disk block cache with a memory tier in front. It is safe for
// concurrent use.
//
// Layout of dir:
//
//	LOCK                         flock held while open; one process per dir
//	objects-<blocksize>/<hh>/<objectID>   one sparse file per object
//	packs-<blocksize>/pack-<n>   records of small objects (pack.go)
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
// Locks, each named beside the fields it guards:
//
//	Reader.mu        a Reader's access pattern (readahead.go)
//	flightGroup.mu   fetches under way; Cache.closed changes under it (singleflight.go)
//	fileLocks[i]     the object files whose objectID hashes to i (disktier.go)
//	diskIndex.mu     the disk tier's LRU and its writes under way (evict.go)
//	packStore.mu     the pack files and their live records (pack.go)
//	memTier.mu       the memory tier (memtier.go)
//	bufferPool.mu    idle block buffers (memtier.go)
//
// Lock order: Reader.mu, then flightGroup.mu, then diskIndex.mu; a file
// lock, then diskIndex.mu. packStore.mu is taken with no other lock held.
// memTier.mu is taken with no other lock held, and
// bufferPool.mu last of all. Of these, only a file lock is ever held across
// a syscall (the write, punch or unlink of that file), and it is held from the
// decision to free a block to the punch or unlink, so a hole is never
// punched into a block written after the decision. Block reads take no file
// lock: they check afterwards that the block was not evicted meanwhile.
// Buffer references are atomic and need no lock.
type Cache struct {
	dir      string
	objDir   string
	stageDir string
	// pinDir holds a marker per object pinned by a Backing (backing.go):
	// the kernel may write such a file through a map, and one still
	// marked when the cache opens is not trusted.
	pinDir string
	// handDir holds a marker per object whose file was handed to the
	// kernel (diskIndex.handed), for the next run.
	handDir         string
	blockSize       int64
	readaheadBlocks int
	prefetchSlots   chan struct{} // a semaphore bounding readahead fetches
	log             *slog.Logger
	lock            *os.File

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetch and prefetch goroutines; Add under flightGroup.mu, with closed unset
	// closed is set by Close under flightGroup.mu; anybody may load it, and
	// whoever starts a goroutine tracked by wg loads it under that lock.
	closed atomic.Bool

	hits, misses, fetches, fetchedBytes, prefetches, evictions, storeSkips atomic.Int64

	flights flightGroup // singleflight.go
	mem     memTier     // memtier.go
	bufs    bufferPool  // memtier.go
	index   diskIndex   // evict.go

	// The disk tier (disktier.go), and its packs of small objects (pack.go).
	packs     packStore
	fileLocks [fileLockCount]sync.Mutex
	direct    atomic.Bool // full blocks are written with O_DIRECT
	stores    chan storeJob
	storeWG   sync.WaitGroup // store workers
	// beforeStore, when set (by tests, before any read), runs before
	// each block write: it stands in for a slow disk.
	beforeStore func()
	// beforeFree, when set (by tests, before any read), runs in freeBlock
	// with the file lock held, before the punch or unlink.
	beforeFree func()
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
		readaheadBlocks: opts.ReadaheadBlocks,
		log:             opts.Logger,
	}
	if c.blockSize == 0 {
		c.blockSize = DefaultBlockSize
	}
	maxBytes := opts.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	if c.readaheadBlocks == 0 {
		c.readaheadBlocks = DefaultReadaheadBlocks
	}
	memMax := opts.MemBytes
	if memMax == 0 {
		memMax = DefaultMemBytes
	}
	c.flights.init()
	c.mem.init(memMax)
	c.bufs.init(c.blockSize)
	c.index.init(maxBytes)
	maxPrefetch := opts.MaxPrefetch
	if maxPrefetch == 0 {
		maxPrefetch = DefaultMaxPrefetch
	}
	c.prefetchSlots = make(chan struct{}, maxPrefetch)
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.objDir = filepath.Join(dir, "objects-"+strconv.FormatInt(c.blockSize, 10))
	c.packs.init(filepath.Join(dir, "packs-"+strconv.FormatInt(c.blockSize, 10)))
	c.stageDir = filepath.Join(dir, "staging")
	c.pinDir = filepath.Join(dir, "pinned")
	c.handDir = filepath.Join(dir, "handed")

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
	if err := c.loadHanded(); err != nil {
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
	st := c.Stats()
	c.log.Info("block cache opened", "dir", dir, "blocks", st.Blocks, "bytes", st.Bytes,
		"max_bytes", maxBytes, "block_size", c.blockSize)
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
			strings.HasPrefix(d.Name(), "packs-") && path != c.packs.dir ||
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
	if err := os.MkdirAll(c.packs.dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return c.dropPinned()
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
	packed, err := c.packs.load(c.log.Warn)
	if err != nil {
		return err
	}
	found = append(found, packed...)
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if !a.touched.Equal(b.touched) {
			return a.touched.Before(b.touched)
		}
		return a.id.idx > b.id.idx
	})
	c.index.mu.Lock()
	var replaced []*entry
	for _, e := range found {
		if old := c.index.insertEntryLocked(e); old != nil {
			replaced = append(replaced, old)
		}
	}
	victims := c.index.evictLocked()
	c.index.mu.Unlock()
	for _, e := range replaced {
		c.freeEntry(e)
	}
	c.evict(victims)
	return nil
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

// BlockSize is the size of every block but an object's last.
func (c *Cache) BlockSize() int { return int(c.blockSize) }

// blockLen is the length of block idx of an object of the given size.
func (c *Cache) blockLen(size, idx int64) int64 {
	return min(c.blockSize, size-idx*c.blockSize)
}

// Close stops every fetch, waits for their goroutines, and releases the
// directory. Blocks stay on disk for the next Open.
func (c *Cache) Close() error {
	c.flights.mu.Lock()
	if c.closed.Load() {
		c.flights.mu.Unlock()
		return nil
	}
	c.closed.Store(true)
	c.flights.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	// No fetch is left to queue a block; write what is queued.
	close(c.stores)
	c.storeWG.Wait()
	c.packs.close()
	return c.lock.Close()
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	c.index.mu.Lock()
	bytes, blocks := c.index.bytes, int64(len(c.index.blocks))
	c.index.mu.Unlock()
	c.flights.mu.Lock()
	inFlight := len(c.flights.m)
	c.flights.mu.Unlock()
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

// touchInterval is how stale a block's mtime may get before a hit rewrites
// it. The mtime only matters for rebuilding the LRU order at the next Open, so
// touching at most once a minute keeps a syscall off most hits.
const touchInterval = time.Minute

// readCached fills dst from the block at offset if it is in the memory tier,
// or on disk and whole. A vanished or short block on disk is dropped.
func (c *Cache) readCached(bid blockID, length int64, dst []byte, offset int64) bool {
	if c.closed.Load() {
		return false
	}
	if b := c.mem.get(bid, length); b != nil {
		copy(dst, b.data[offset:])
		c.bufs.release(b)
		return true
	}
	x := &c.index
	x.mu.Lock()
	e := x.blocks[bid]
	if e == nil {
		x.mu.Unlock()
		return false
	}
	if e.size != length {
		x.removeLocked(e)
		x.mu.Unlock()
		c.log.Warn("dropping cached block of unexpected size", "block", blockName(bid), "size", e.size, "want", length)
		c.freeEntry(e)
		return false
	}
	x.lru.MoveToFront(e.elem)
	now := time.Now()
	// A pinned object's file is left as it is (Backing.Changed); a packed
	// record's time is kept in memory only.
	touch := now.Sub(e.touched) > touchInterval && e.pack == nil && x.pins[bid.obj] == 0
	if touch {
		e.touched = now
	}
	x.mu.Unlock()

	var err error
	if e.pack != nil {
		err = c.packs.read(e.pack, length, dst, offset)
	} else {
		err = c.readBlock(bid, dst, offset)
	}
	x.mu.Lock()
	// Evicted while being read: the bytes may have come from the hole
	// the eviction punched. Treat it as a miss.
	current := x.blocks[bid] == e
	drop := err != nil && current
	if drop {
		x.removeLocked(e)
	}
	x.mu.Unlock()
	if drop {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("dropping unreadable cached block", "block", blockName(bid), "err", err)
		}
		c.freeEntry(e)
	}
	if err != nil || !current {
		return false
	}
	if touch {
		// Under the file lock, which OpenBacking holds from its pin to its
		// stat: a file pinned meanwhile keeps the times Backing.Changed
		// compares against.
		lock := c.fileLock(bid.obj)
		lock.Lock()
		x.mu.Lock()
		pinned := x.pins[bid.obj] > 0
		x.mu.Unlock()
		if !pinned {
			os.Chtimes(c.objectPath(bid.obj), now, now)
		}
		lock.Unlock()
	}
	return true
}
