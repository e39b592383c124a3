package fs

import (
	"bytes"
	"context"
	"sync"
)

// pipeline uploads one file's chunks in order in the background: the
// first as a new appender file (through uploads.put, which journals it),
// the rest as modifies at their offset.
type pipeline struct {
	n    *fileNode
	ch   chan []byte
	done chan struct{}

	mu       sync.Mutex
	up       *upload // the appender file, once uploaded (guarded by mu)
	uploaded int64   // guarded by mu
	err      error   // guarded by mu
	held     int     // chunks sent and not yet given back (guarded by mu)
}

func (n *fileNode) startPipeline() *pipeline {
	p := &pipeline{n: n, ch: make(chan []byte, n.fs.opts.WriteInflight), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *pipeline) run() {
	defer close(p.done)
	f := p.n.fs
	// No deadline of its own: each request is bounded by the client's
	// network timeout.
	ctx := context.Background()
	for chunk := range p.ch {
		p.mu.Lock()
		failed, up, off := p.err != nil, p.up, p.uploaded
		p.mu.Unlock()
		if failed {
			p.giveBack(chunk)
			continue
		}
		var err error
		size := int64(len(chunk))
		if up == nil {
			up, err = f.uploads.put(ctx, p.n.group, p.n.ext(), bytes.NewReader(chunk), size, true, true)
		} else {
			err = f.be.Modify(ctx, up.id, off, bytes.NewReader(chunk), size)
		}
		p.giveBack(chunk)
		p.mu.Lock()
		if err != nil {
			p.err = err
			fileID := ""
			if up != nil {
				fileID = up.id
			}
			f.log.Error("streamed upload failed", "ino", p.n.ino, "file_id", fileID, "offset", off, "err", err)
		} else {
			p.up = up
			p.uploaded += size
		}
		p.mu.Unlock()
	}
}

// send queues a full chunk; it blocks while WriteInflight chunks are queued,
// which is the back-pressure that bounds memory.
func (p *pipeline) send(chunk []byte) error {
	p.mu.Lock()
	err := p.err
	if err == nil {
		p.held++
	}
	p.mu.Unlock()
	if err != nil {
		p.n.fs.putChunk(chunk)
		return err
	}
	p.ch <- chunk
	return nil
}

// giveBack returns a chunk sent: counted out of held first, so that a
// writer that saw holding() true is sure to see the budget's give after.
func (p *pipeline) giveBack(chunk []byte) {
	p.mu.Lock()
	p.held--
	p.mu.Unlock()
	p.n.fs.putChunk(chunk)
}

// holding reports whether chunks sent are still queued or uploading: their
// memory comes back when they are done.
func (p *pipeline) holding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held > 0
}

// finish waits for the queued chunks and hands over the appender file (nil
// when none was uploaded), which the caller then settles.
func (p *pipeline) finish() (up *upload, uploaded int64, err error) {
	select {
	case <-p.done:
	default:
		close(p.ch)
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up, p.uploaded, p.err
}

// getChunk returns an empty buffer of WriteChunk capacity, or nil when
// the write budget has no room for one.
func (f *FS) getChunk() []byte {
	if !f.budget.take(int64(f.opts.WriteChunk)) {
		return nil
	}
	if b, ok := f.chunks.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, f.opts.WriteChunk)
}

// putChunk gives a buffer from getChunk back for reuse, and its memory to
// the budget.
func (f *FS) putChunk(b []byte) {
	if cap(b) != f.opts.WriteChunk {
		return
	}
	b = b[:0]
	f.chunks.Put(&b)
	f.budget.give(int64(f.opts.WriteChunk))
}
