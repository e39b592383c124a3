package cache

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Small objects (at most packMaxBytes, so one block, shorter than a full
// one) are kept in pack files rather than a file each: creating an inode
// per object cost more than the object's bytes on the file systems
// measured (on ext4 without a journal, every inode allocated soon after
// many were freed scans the ones just freed), and a cold read of many
// small files spent most of the mount's CPU there. A pack is written
// append-only, one record per object; evicting a record punches a hole in
// its range, and a pack with no record left is removed. Large objects keep
// their file each (disktier.go), which a reader of the whole object can be
// handed.
//
// Layout of a pack (packs-<blocksize>/pack-<n>): records at multiples of
// packAlign, each
//
//	magic    8 bytes  "fdfsPK1\n"
//	object  16 bytes  the objectID, raw
//	length   4 bytes  big-endian, the object's bytes
//	crc      4 bytes  big-endian, CRC-32C of the object's bytes
//	stored   8 bytes  big-endian, Unix seconds of the write (LRU order at Open)
//	data     length bytes, then zeros to the next multiple of packAlign
//
// A record is written with one pwrite and checked against its CRC when
// read, so one half written before a crash is dropped at its first read
// rather than served. Open finds the records again by walking each pack's
// data extents (SEEK_DATA) from header to header.
const (
	packMaxBytes     = 128 << 10
	packAlign        = 4096
	packSegmentBytes = 64 << 20
	packHeaderLen    = 40
	packMagic        = "fdfsPK1\n"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// packLoc is where a small object's record lies. It never changes: a
// record is written once, and an object stored again gets a new one.
type packLoc struct {
	seg    *packSegment
	off    int64 // of the record's header
	recLen int64 // the record's bytes on disk, a multiple of packAlign
}

// packSegment is one pack file, open for as long as records live in it.
type packSegment struct {
	n    int
	path string
	f    *os.File

	// packStore.mu
	size int64 // where the next record goes; a multiple of packAlign
	live int   // records in the index or being written
}

// packStore holds the pack files. Its lock is held for bookkeeping only,
// never across a read, write or punch: records never overlap, so those
// need no lock, and a segment is closed only once no record in it is
// left to read or free.
type packStore struct {
	dir          string // set by init
	segmentBytes int64  // set by init (tests lower it before any read)

	mu   sync.Mutex
	cur  *packSegment         // mu; where new records go (nil until the first)
	segs map[int]*packSegment // mu; by number
	next int                  // mu; the number of the next segment made
}

func (p *packStore) init(dir string) {
	p.dir = dir
	p.segmentBytes = packSegmentBytes
	p.segs = make(map[int]*packSegment)
}

// packable reports whether a block is kept in a pack: it is a whole object
// (block 0, shorter than a full block) of at most packMaxBytes.
func (c *Cache) packable(bid blockID, length int) bool {
	return bid.idx == 0 && int64(length) < c.blockSize && length <= packMaxBytes && length > 0
}

func packRecordLen(length int) int64 {
	return (int64(packHeaderLen+length) + packAlign - 1) &^ (packAlign - 1)
}

// append writes one object's record and returns where it lies.
func (p *packStore) append(obj string, data []byte, now time.Time) (*packLoc, error) {
	raw, err := hex.DecodeString(obj)
	if err != nil || len(raw) != 16 {
		return nil, fmt.Errorf("cache: bad object id %q", obj)
	}
	recLen := packRecordLen(len(data))
	rec := make([]byte, recLen)
	copy(rec, packMagic)
	copy(rec[8:24], raw)
	binary.BigEndian.PutUint32(rec[24:], uint32(len(data)))
	binary.BigEndian.PutUint32(rec[28:], crc32.Checksum(data, crcTable))
	binary.BigEndian.PutUint64(rec[32:], uint64(now.Unix()))
	copy(rec[packHeaderLen:], data)

	loc, err := p.reserve(recLen)
	if err != nil {
		return nil, err
	}
	if _, err := loc.seg.f.WriteAt(rec, loc.off); err != nil {
		p.free(loc)
		return nil, err
	}
	return loc, nil
}

// reserve takes the next recLen bytes of the current segment, starting a
// new one when it is full, and counts the record as live.
func (p *packStore) reserve(recLen int64) (*packLoc, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.size+recLen > p.segmentBytes {
		seg, err := p.createLocked()
		if err != nil {
			return nil, err
		}
		old := p.cur
		p.cur = seg
		if old != nil && old.live == 0 {
			p.dropLocked(old)
		}
	}
	seg := p.cur
	loc := &packLoc{seg: seg, off: seg.size, recLen: recLen}
	seg.size += recLen
	seg.live++
	return loc, nil
}

func (p *packStore) createLocked() (*packSegment, error) {
	n := p.next
	path := filepath.Join(p.dir, "pack-"+strconv.Itoa(n))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	p.next++
	seg := &packSegment{n: n, path: path, f: f}
	p.segs[n] = seg
	return seg, nil
}

// dropLocked closes and removes a segment with no record left.
func (p *packStore) dropLocked(seg *packSegment) {
	delete(p.segs, seg.n)
	seg.f.Close()
	os.Remove(seg.path)
}

// free punches a record's range out of its segment and removes the
// segment once nothing in it is left and new records go elsewhere.
func (p *packStore) free(loc *packLoc) error {
	// Through the descriptor's own reference (Control): a number taken
	// with Fd could name another file by the time of the call if Close
	// raced this.
	err := punch(loc.seg.f, loc.off, loc.recLen)
	p.mu.Lock()
	defer p.mu.Unlock()
	loc.seg.live--
	if loc.seg.live == 0 && loc.seg != p.cur {
		p.dropLocked(loc.seg)
	}
	return err
}

// punch frees [off, off+length) of f.
func punch(f *os.File, off, length int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) {
		err = unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// errBadRecord says a record is not what the index expects (a write cut
// short by a crash, or a range punched by an eviction the reader raced).
var errBadRecord = errors.New("cache: damaged pack record")

// read fills dst from the object in the record at loc, from offset within
// the object, after checking the whole object against its CRC.
func (p *packStore) read(loc *packLoc, length int64, dst []byte, offset int64) error {
	rec := make([]byte, packHeaderLen+length)
	if _, err := loc.seg.f.ReadAt(rec, loc.off); err != nil {
		if err == io.EOF {
			return errBadRecord
		}
		return err
	}
	data := rec[packHeaderLen:]
	if string(rec[:8]) != packMagic || int64(binary.BigEndian.Uint32(rec[24:])) != length ||
		binary.BigEndian.Uint32(rec[28:]) != crc32.Checksum(data, crcTable) {
		return errBadRecord
	}
	copy(dst, data[offset:])
	return nil
}

// close closes every segment; the files stay for the next Open.
func (p *packStore) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, seg := range p.segs {
		seg.f.Close()
	}
}

// load finds the records of every pack in the directory and returns them
// as entries; packs with none are removed. New records go to a new pack.
func (p *packStore) load(log func(msg string, args ...any)) ([]*entry, error) {
	names, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	var found []*entry
	var nums []int
	for _, d := range names {
		path := filepath.Join(p.dir, d.Name())
		n, err := strconv.Atoi(strings.TrimPrefix(d.Name(), "pack-"))
		if !strings.HasPrefix(d.Name(), "pack-") || err != nil || n < 0 || !d.Type().IsRegular() {
			log("removing stray file from the block cache", "path", path)
			os.RemoveAll(path)
			continue
		}
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for _, n := range nums {
		path := filepath.Join(p.dir, "pack-"+strconv.Itoa(n))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			log("removing unreadable pack from the block cache", "path", path, "err", err)
			os.Remove(path)
			continue
		}
		seg := &packSegment{n: n, path: path, f: f}
		entries, size, err := scanPack(seg)
		if err != nil {
			log("removing unreadable pack from the block cache", "path", path, "err", err)
		}
		if err != nil || len(entries) == 0 {
			f.Close()
			os.Remove(path)
			continue
		}
		seg.size, seg.live = size, len(entries)
		p.segs[n] = seg
		found = append(found, entries...)
	}
	if len(nums) > 0 {
		p.next = nums[len(nums)-1] + 1
	}
	return found, nil
}

// scanPack walks a pack's data extents from record to record and returns
// an entry for each, and the pack's size rounded up to packAlign.
func scanPack(seg *packSegment) ([]*entry, int64, error) {
	info, err := seg.f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := info.Size()
	fd := int(seg.f.Fd())
	var found []*entry
	hdr := make([]byte, packHeaderLen)
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		off = data &^ (packAlign - 1)
		if _, err := seg.f.ReadAt(hdr, off); err != nil {
			break // a header cut short ends the pack
		}
		length := int64(binary.BigEndian.Uint32(hdr[24:]))
		recLen := packRecordLen(int(length))
		if string(hdr[:8]) != packMagic || length == 0 || length > packMaxBytes || off+packHeaderLen+length > size {
			off += packAlign
			continue
		}
		found = append(found, &entry{
			id:      blockID{obj: hex.EncodeToString(hdr[8:24]), idx: 0},
			size:    length,
			touched: time.Unix(int64(binary.BigEndian.Uint64(hdr[32:])), 0),
			pack:    &packLoc{seg: seg, off: off, recLen: recLen},
		})
		off += recLen
	}
	return found, (size + packAlign - 1) &^ (packAlign - 1), nil
}
