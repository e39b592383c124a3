package cache

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

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

// fileLockCount is the number of file locks; objects share them by hash.
// Two store workers and the evictions they cause contend for few of them.
const fileLockCount = 64

// fileLock returns the lock held across every write, punch and unlink of
// obj's file.
func (c *Cache) fileLock(obj string) *sync.Mutex {
	h := 0
	for _, ch := range []byte(obj[:2]) { // obj is lower-case hex
		h <<= 4
		if ch >= 'a' {
			h |= int(ch-'a') + 10
		} else {
			h |= int(ch - '0')
		}
	}
	return &c.fileLocks[h%fileLockCount]
}

// queueStore hands a fetched block to the store workers, or reports that
// their queue is full (queued false) or that the object was discarded
// (Backing.Discard), which nothing stores again. The write counts as under
// way from here on. The
// fetch calls it with flightGroup.mu held; the send never blocks.
func (c *Cache) queueStore(job storeJob) (queued, discarded bool) {
	c.index.mu.Lock()
	defer c.index.mu.Unlock()
	if c.index.bad[job.bid.obj] {
		// Backing.Discard: the object is never cached again.
		return false, true
	}
	select {
	case c.stores <- job:
		c.index.startWriteLocked(job.bid)
		return true, false
	default:
		return false, false
	}
}

// storeLoop writes queued blocks to disk until Close.
func (c *Cache) storeLoop() {
	defer c.storeWG.Done()
	for job := range c.stores {
		c.store(job)
	}
}

// store writes one fetched block and only then lets its flight go: a
// reader that finds neither the flight nor the block has to fetch it.
func (c *Cache) store(job storeJob) {
	if err := c.storeBlock(job.bid, job.f.data); err != nil {
		c.log.Warn("cannot store fetched block", "key", job.obj.Key, "block", job.bid.idx, "err", err)
	}
	c.unhook(job.f)
	c.bufs.release(job.buf)
}

// storeBlock writes a block whose write queueStore counted, enters it in
// the index and evicts what no longer fits.
func (c *Cache) storeBlock(bid blockID, data []byte) error {
	if c.beforeStore != nil {
		c.beforeStore()
	}
	if c.packable(bid, len(data)) {
		return c.storePacked(bid, data)
	}
	lock := c.fileLock(bid.obj)
	lock.Lock()
	err := c.writeBlock(bid, data)
	lock.Unlock()

	length := int64(len(data))
	c.index.mu.Lock()
	c.index.endWriteLocked(bid)
	var victims []*entry
	var replaced *entry
	if err == nil {
		replaced = c.index.insertLocked(bid, length, time.Now())
		victims = c.index.evictLocked()
	}
	// The last write of a discarded object that outlived its last
	// Backing: refused above, so the object may be cached afresh now.
	if x := &c.index; x.bad[bid.obj] && x.pins[bid.obj] == 0 && x.writes[bid.obj] == 0 {
		delete(x.bad, bid.obj)
	}
	c.index.mu.Unlock()
	if err != nil {
		c.freeBlock(bid, length)
	}
	if replaced != nil {
		c.freeEntry(replaced)
	}
	c.evict(victims)
	return err
}

// storePacked is storeBlock for a small object: one record appended to a
// pack (pack.go), no file of its own.
func (c *Cache) storePacked(bid blockID, data []byte) error {
	now := time.Now()
	loc, err := c.packs.append(bid.obj, data, now)
	c.index.mu.Lock()
	c.index.endWriteLocked(bid)
	var victims []*entry
	var replaced *entry
	if err == nil {
		replaced = c.index.insertEntryLocked(&entry{id: bid, size: int64(len(data)), touched: now, pack: loc})
		victims = c.index.evictLocked()
	}
	c.index.mu.Unlock()
	if replaced != nil {
		c.freeEntry(replaced)
	}
	c.evict(victims)
	return err
}

func (c *Cache) objectPath(obj string) string {
	return filepath.Join(c.objDir, obj[:2], obj)
}

// readBlock reads dst from the block's file at offset within the block.
func (c *Cache) readBlock(bid blockID, dst []byte, offset int64) error {
	file, err := os.Open(c.objectPath(bid.obj))
	if err != nil {
		return err
	}
	n, err := file.ReadAt(dst, bid.idx*c.blockSize+offset)
	file.Close()
	if err == io.EOF && n == len(dst) {
		err = nil
	}
	return err
}

// directAlign is the alignment O_DIRECT asks of offsets, lengths and memory
// on the file systems a cache lives on.
const directAlign = 4096

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

// writeBlock writes a block into its object's file at the block's offset;
// the caller holds the file's lock.
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

// removeObjectFile removes an object's file; the caller holds its lock.
func (c *Cache) removeObjectFile(obj string) {
	path := c.objectPath(obj)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("cannot remove cached object", "path", path, "err", err)
	}
}

// punchBlock frees a block's range in its object's file; the caller holds
// the file's lock.
func (c *Cache) punchBlock(bid blockID, size int64) {
	path := c.objectPath(bid.obj)
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
