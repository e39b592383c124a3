package cache

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// buffer is the memory of one fetched block. The flight (for its waiters),
// the memory tier, the fetch and then its store job, and every Span lent the
// block each hold a reference; the last to let go hands a full-size buffer
// back to the pool for the next fetch, so a stream reuses a few megabytes
// instead of faulting in and zeroing fresh pages for every block.
//
// A reference is only ever taken from a holder that keeps its own meanwhile
// (the memory tier under memTier.mu, a flight while its taker waits on it),
// so refs never rises again from zero and needs no lock.
type buffer struct {
	data []byte // from alignedBuffer; nil once the last reference is gone
	refs atomic.Int32
}

// maxFreeBuffers bounds the idle block buffers kept for reuse.
const maxFreeBuffers = 8

// bufferPool keeps a few idle full-size block buffers.
type bufferPool struct {
	blockSize int64 // set by init

	mu   sync.Mutex
	free [][]byte // mu
}

func (p *bufferPool) init(blockSize int64) { p.blockSize = blockSize }

// get returns a buffer of length bytes with one reference, reusing an idle
// one when the length is the full block size.
func (p *bufferPool) get(length int64) *buffer {
	var data []byte
	if length == p.blockSize {
		p.mu.Lock()
		if n := len(p.free); n > 0 {
			data = p.free[n-1]
			p.free = p.free[:n-1]
		}
		p.mu.Unlock()
	}
	if data == nil {
		data = alignedBuffer(length)
	}
	b := &buffer{data: data}
	b.refs.Store(1)
	return b
}

// release drops one reference to b.
func (p *bufferPool) release(b *buffer) {
	if b.refs.Add(-1) > 0 {
		return
	}
	data := b.data
	b.data = nil
	if int64(len(data)) != p.blockSize {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxFreeBuffers {
		p.free = append(p.free, data)
	}
	p.mu.Unlock()
}

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

// memTier keeps the blocks fetched lately, so that a sequential reader,
// which asks for a block in many small FUSE reads, is served from RAM
// rather than by a file open and read each time. Content never changes
// under a key, so its blocks are never stale. It drops blocks in the order
// they were fetched; the LRU is the disk tier's.
//
// Its lock is held for map and slice updates only: no syscall, no copy of
// block bytes, and no other lock while holding it.
type memTier struct {
	max int64 // bytes; set by init; 0 or less keeps nothing

	mu     sync.Mutex
	blocks map[blockID]*buffer // mu; each holds a reference to its buffer
	order  []blockID           // mu; the keys of blocks, oldest first
	bytes  int64               // mu; sum of the blocks' lengths
}

func (m *memTier) init(max int64) {
	m.max = max
	m.blocks = make(map[blockID]*buffer)
}

// get returns the block with a reference for the caller, who releases it
// once done with the bytes, or nil if the tier does not hold the block
// whole.
func (m *memTier) get(bid blockID, length int64) *buffer {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.blocks[bid]
	if b == nil || int64(len(b.data)) != length {
		return nil
	}
	b.refs.Add(1)
	return b
}

// put keeps b, with a reference of its own, dropping the oldest blocks
// beyond max; their references go back to pool.
func (m *memTier) put(bid blockID, b *buffer, pool *bufferPool) {
	if m.max <= 0 || int64(len(b.data)) > m.max {
		return
	}
	b.refs.Add(1)
	var dropped []*buffer
	m.mu.Lock()
	if old := m.blocks[bid]; old != nil {
		m.bytes -= int64(len(old.data))
		dropped = append(dropped, old)
	} else {
		m.order = append(m.order, bid)
	}
	m.blocks[bid] = b
	m.bytes += int64(len(b.data))
	for m.bytes > m.max {
		id := m.order[0]
		m.order = m.order[1:]
		old := m.blocks[id]
		m.bytes -= int64(len(old.data))
		delete(m.blocks, id)
		dropped = append(dropped, old)
	}
	m.mu.Unlock()
	for _, old := range dropped {
		pool.release(old)
	}
}
