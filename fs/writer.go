package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"fdfsfs/index"
)

// writer holds a file's uncommitted content. It starts in one of two modes:
//
//   - streaming, for a file written from empty in order (cp, a fresh
//     create, O_TRUNC): bytes collect in a chunk-sized buffer and each full
//     chunk goes to FastDFS in the background (the first as an appender
//     upload, the rest as modifies at their offset), so memory stays at a
//     few chunks whatever the file size. A file that never fills one chunk
//     becomes one plain upload at commit.
//   - staged, for anything else: written ranges go to a sparse local file,
//     and the rest is read from the committed content. At commit, an
//     appender file is changed in place (modify and truncate of just the
//     dirty ranges); any other file is uploaded whole as a new appender file.
//
// A streaming writer that sees a write out of order, a read or a truncate
// turns into a staged one over what it has uploaded so far.
//
// All methods are called with the file's wmu held.
type writer struct {
	n *fileNode

	// base is the content the writer changes; only [0, baseLimit) of it is
	// still visible (a truncate down hides the rest).
	base      index.Attr
	baseLimit int64
	size      int64
	mtime     time.Time

	streaming bool
	buf       []byte
	pipe      *pipeline

	stage *os.File
	dirty extents

	// streamed are the appender files this writer's pipelines made. They
	// stay marked as in progress until discard, after the commit that
	// claims them, so that the sweeper never takes one for abandoned.
	streamed []string

	err error // sticky: a failed upload fails every later call

	// shownSize and shownMtime are size and mtime as getattr reports them,
	// copied after each change; guarded by the node's mu, since getattr
	// must not wait for wmu, which a write holds across its upload.
	shownSize  int64
	shownMtime time.Time
}

// publish copies size and mtime to where getattr reads them. Call with wmu
// held.
func (w *writer) publish() {
	w.n.mu.Lock()
	w.shownSize, w.shownMtime = w.size, w.mtime
	w.n.mu.Unlock()
}

func newWriter(n *fileNode, a index.Attr) *writer {
	w := &writer{n: n, base: a, baseLimit: a.Size, size: a.Size, mtime: time.Now()}
	if a.Size == 0 {
		w.streaming = true
	}
	return w
}

func (w *writer) writeAt(ctx context.Context, p []byte, off int64) error {
	if w.err != nil {
		return w.err
	}
	w.mtime = time.Now()
	if w.streaming && off == w.size {
		return w.stream(p)
	}
	if err := w.toStaged(ctx); err != nil {
		return err
	}
	if _, err := w.stage.WriteAt(p, off); err != nil {
		return err
	}
	w.dirty.add(off, off+int64(len(p)))
	if end := off + int64(len(p)); end > w.size {
		w.size = end
	}
	return nil
}

func (w *writer) stream(p []byte) error {
	chunk := w.n.fs.opts.WriteChunk
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = getChunk(chunk)
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		w.size += int64(k)
		if len(w.buf) == cap(w.buf) {
			if w.pipe == nil {
				w.pipe = w.n.startPipeline()
			}
			if err := w.pipe.send(w.buf); err != nil {
				w.buf = nil
				w.err = err
				return err
			}
			w.buf = nil
		}
	}
	return nil
}

func (w *writer) truncate(ctx context.Context, size int64) error {
	if w.err != nil {
		return w.err
	}
	w.mtime = time.Now()
	if size == 0 {
		// Everything goes: start over as a fresh stream (O_TRUNC, then cp).
		w.discard()
		*w = writer{n: w.n, base: w.base, mtime: w.mtime, streaming: true}
		return nil
	}
	if size == w.size {
		return nil
	}
	if err := w.toStaged(ctx); err != nil {
		return err
	}
	if err := w.stage.Truncate(size); err != nil {
		return err
	}
	if size < w.baseLimit {
		w.baseLimit = size
	}
	w.dirty.truncate(size)
	w.size = size
	return nil
}

// toStaged turns a streaming writer into a staged one.
func (w *writer) toStaged(ctx context.Context) error {
	if w.stage == nil {
		f, err := os.CreateTemp(w.n.fs.opts.StageDir, "stage-")
		if err != nil {
			return fmt.Errorf("staging file: %w", err)
		}
		os.Remove(f.Name()) // lives as long as the descriptor
		w.stage = f
	}
	if !w.streaming {
		return nil
	}
	w.streaming = false
	if w.pipe == nil {
		// Nothing uploaded yet: the buffer becomes staged data over an
		// empty base.
		if len(w.buf) > 0 {
			if _, err := w.stage.WriteAt(w.buf, 0); err != nil {
				return err
			}
			w.dirty.add(0, int64(len(w.buf)))
		}
		putChunk(w.buf)
		w.buf = nil
		w.baseLimit = 0
		return nil
	}
	// The uploaded prefix becomes the base: an appender file of our own,
	// changed in place at commit.
	fileID, uploaded, err := w.finishPipe()
	if err != nil {
		return err
	}
	w.base = index.Attr{Ino: w.base.Ino, FileID: fileID, Appender: true, Size: uploaded}
	w.baseLimit = uploaded
	return nil
}

func (w *writer) finishPipe() (string, int64, error) {
	if len(w.buf) > 0 {
		if err := w.pipe.send(w.buf); err != nil {
			w.err = err
		}
	}
	w.buf = nil
	fileID, uploaded, err := w.pipe.finish()
	w.pipe = nil
	if fileID != "" {
		w.streamed = append(w.streamed, fileID)
	}
	if err != nil {
		w.err = err
		return "", 0, err
	}
	return fileID, uploaded, nil
}

// readAt reads uncommitted content.
func (w *writer) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if err := w.toStaged(ctx); err != nil {
		return 0, err
	}
	if off >= w.size {
		return 0, nil
	}
	if rest := w.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	return len(p), w.mergedRead(ctx, p, off)
}

// mergedRead fills p from dirty ranges, the visible base, and zeros.
func (w *writer) mergedRead(ctx context.Context, p []byte, off int64) error {
	end := off + int64(len(p))
	for pos := off; pos < end; {
		seg := p[pos-off:]
		if e, ok := w.dirty.at(pos); ok {
			seg = seg[:min(int64(len(seg)), e.end-pos)]
			if _, err := w.stage.ReadAt(seg, pos); err != nil && err != io.EOF {
				return err
			}
		} else {
			next := w.dirty.next(pos, end)
			seg = seg[:next-pos]
			if pos < w.baseLimit {
				seg = seg[:min(int64(len(seg)), w.baseLimit-pos)]
				got, err := w.n.fs.cache.ReadAt(ctx, w.n.fs.object(w.base), seg, pos)
				if err != nil && got < len(seg) {
					return err
				}
			} else {
				clear(seg)
			}
		}
		pos += int64(len(seg))
	}
	return nil
}

// commit makes the content durable and points the index at it.
func (w *writer) commit(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	f := w.n.fs
	c := index.Content{Size: w.size, Mtime: w.mtime}
	unjournalled := false // an upload no journal entry names, so none to claim
	switch {
	case w.streaming && w.pipe == nil:
		if len(w.buf) > 0 {
			id, journalled, done, err := w.uploadSmall(ctx)
			if err != nil {
				return err
			}
			defer done()
			c.FileID = id
			unjournalled = !journalled
		}
	case w.streaming:
		id, _, err := w.finishPipe()
		if err != nil {
			return err
		}
		c.FileID, c.Appender = id, true
	case w.size == 0:
		// Nothing left: the index forgets the old file, which is deleted.
	case w.base.Appender && w.base.FileID != "" && w.baseLimit > 0:
		if err := w.applyInPlace(ctx); err != nil {
			return err
		}
		c.FileID, c.Appender = w.base.FileID, true
	default:
		// Upload up to the last byte that holds data; a tail of zeros
		// (truncate -s 10G) is made by the storage, not sent.
		dataEnd := w.baseLimit
		if len(w.dirty) > 0 {
			dataEnd = max(dataEnd, w.dirty[len(w.dirty)-1].end)
		}
		dataEnd = min(dataEnd, w.size)
		id, done, err := f.uploadJournalled(ctx, w.n.group, w.n.ext(), &mergedReader{ctx: ctx, w: w, limit: dataEnd}, dataEnd, true)
		if err != nil {
			return err
		}
		defer done()
		if w.size > dataEnd {
			if err := f.be.Truncate(ctx, id, w.size); err != nil {
				f.deleteRemote(ctx, id)
				return err
			}
		}
		c.FileID, c.Appender = id, true
	}
	old, err := f.idx.GetAttr(ctx, w.n.ino)
	if err != nil {
		return err
	}
	if old.FileID != "" && c.FileID == "" {
		// Emptied (O_TRUNC, then a close before the new content comes):
		// an empty file has no FastDFS file, so metadata would be lost
		// with the old one. Keep it on an empty upload instead.
		id, done, err := f.metadataCarrier(ctx, w.n, old.FileID)
		if err != nil {
			return err
		}
		defer done()
		c.FileID = id
	} else if old.FileID != "" && c.FileID != "" && old.FileID != c.FileID {
		// Metadata (user.* attributes) lives on the FastDFS file: carry
		// it over to the new one.
		if err := f.copyMetadata(ctx, old.FileID, c.FileID); err != nil {
			f.deleteRemote(ctx, c.FileID)
			return err
		}
	}
	// A new upload must still be journalled when it is claimed: on a
	// shared index another host may have taken it as abandoned.
	c.Claim = c.FileID != "" && c.FileID != old.FileID && !unjournalled
	if _, err := f.idx.SetContent(ctx, w.n.ino, c); err != nil {
		return err
	}
	if old.FileID != "" && old.FileID != c.FileID {
		f.deleteRemote(ctx, old.FileID)
	}
	return nil
}

// metadataCarrier returns a new empty FastDFS file holding the metadata of
// from, or "" when from has none. Call done once the index claims it.
func (f *FS) metadataCarrier(ctx context.Context, n *fileNode, from string) (id string, done func(), err error) {
	meta, err := f.be.GetMetadata(ctx, from)
	if errors.Is(err, syscall.ENOENT) || err == nil && len(meta) == 0 {
		return "", func() {}, nil
	}
	if err != nil {
		return "", nil, err
	}
	id, done, err = f.uploadJournalled(ctx, n.group, n.ext(), bytes.NewReader(nil), 0, false)
	if err != nil {
		return "", nil, err
	}
	if err := f.be.SetMetadata(ctx, id, meta, false); err != nil {
		f.deleteRemote(ctx, id)
		done()
		return "", nil, err
	}
	return id, done, nil
}

// uploadJournalled uploads a new FastDFS file and journals it as an upload
// not yet claimed, so that a crash before the index points at it leaves it
// to the next mount's sweep instead of leaking it. Until done is called the
// sweeper of this process leaves it alone.
func (f *FS) uploadJournalled(ctx context.Context, group, ext string, r io.Reader, size int64, appender bool) (id string, done func(), err error) {
	id, err = f.be.Upload(ctx, group, ext, r, size, appender)
	if err != nil {
		return "", nil, err
	}
	markUploading(id, true)
	done = func() { markUploading(id, false) }
	if err := f.idx.AddPending(ctx, index.Pending{FileID: id, Reason: index.PendingUpload, Since: time.Now()}); err != nil {
		done()
		f.be.Delete(ctx, id)
		return "", nil, err
	}
	return id, done, nil
}

// uploadSmall uploads a file that fits in one chunk with one request. A
// new file (no content before it) is not journalled: nothing but the index
// commit that follows at once comes between learning its ID and claiming
// it, the same window as the upload's own answer, which no journal can
// cover; this spares the index a transaction per small file. A file that
// replaces content is journalled, since metadata is copied to it first.
func (w *writer) uploadSmall(ctx context.Context) (id string, journalled bool, done func(), err error) {
	f := w.n.fs
	r := bytes.NewReader(w.buf)
	if cur, err := f.idx.GetAttr(ctx, w.n.ino); err == nil && cur.FileID == "" {
		id, err := f.be.Upload(ctx, w.n.group, w.n.ext(), r, int64(len(w.buf)), false)
		if err != nil {
			return "", false, nil, err
		}
		markUploading(id, true)
		return id, false, func() { markUploading(id, false) }, nil
	}
	id, done, err = f.uploadJournalled(ctx, w.n.group, w.n.ext(), r, int64(len(w.buf)), false)
	return id, true, done, err
}

func (f *FS) copyMetadata(ctx context.Context, from, to string) error {
	meta, err := f.be.GetMetadata(ctx, from)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return err
	}
	if len(meta) == 0 {
		return nil
	}
	return f.be.SetMetadata(ctx, to, meta, false)
}

// applyInPlace changes the base appender file to the writer's content with
// as few requests as the dirty ranges need. FastDFS refuses a modify that
// would leave a hole and a truncate to the current size, so holes are made
// with truncate first and same-size truncates are never sent.
func (w *writer) applyInPlace(ctx context.Context) error {
	be := w.n.fs.be
	id := w.base.FileID
	remote := w.base.Size
	if w.baseLimit < remote {
		if err := be.Truncate(ctx, id, w.baseLimit); err != nil {
			return err
		}
		remote = w.baseLimit
	}
	for _, e := range w.dirty {
		if e.off > remote {
			if err := be.Truncate(ctx, id, e.off); err != nil {
				return err
			}
			remote = e.off
		}
		r := io.NewSectionReader(w.stage, e.off, e.end-e.off)
		if err := be.Modify(ctx, id, e.off, r, e.end-e.off); err != nil {
			return err
		}
		remote = max(remote, e.end)
	}
	if w.size > remote {
		return be.Truncate(ctx, id, w.size)
	}
	return nil
}

// discard frees what the writer holds. Its uploads that were never
// committed stay in the journal and are deleted by the sweeper.
func (w *writer) discard() {
	if w.pipe != nil {
		if fileID, _, _ := w.pipe.finish(); fileID != "" {
			w.streamed = append(w.streamed, fileID)
		}
		w.pipe = nil
	}
	for _, id := range w.streamed {
		markUploading(id, false)
	}
	w.streamed = nil
	putChunk(w.buf)
	w.buf = nil
	if w.stage != nil {
		w.stage.Close()
		w.stage = nil
	}
}

// mergedReader streams the writer's whole content, for a full upload.
type mergedReader struct {
	ctx   context.Context
	w     *writer
	off   int64
	limit int64
}

func (r *mergedReader) Read(p []byte) (int, error) {
	if r.off >= r.limit {
		return 0, io.EOF
	}
	if rest := r.limit - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	if err := r.w.mergedRead(r.ctx, p, r.off); err != nil {
		return 0, err
	}
	r.off += int64(len(p))
	return len(p), nil
}

// ext is the extension of the file's current name.
func (n *fileNode) ext() string {
	name, _ := n.Parent()
	return fileExt(name)
}

// pipeline uploads one file's chunks in order in the background.
type pipeline struct {
	n    *fileNode
	ch   chan []byte
	done chan struct{}

	mu       sync.Mutex
	fileID   string // guarded by mu
	uploaded int64  // guarded by mu
	err      error  // guarded by mu
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
		failed, fileID, off := p.err != nil, p.fileID, p.uploaded
		p.mu.Unlock()
		if failed {
			putChunk(chunk)
			continue
		}
		var err error
		size := int64(len(chunk))
		if fileID == "" {
			fileID, err = f.be.Upload(ctx, p.n.group, p.n.ext(), bytes.NewReader(chunk), size, true)
			if err == nil {
				markUploading(fileID, true)
				err = f.idx.AddPending(ctx, index.Pending{FileID: fileID, Reason: index.PendingUpload, Since: time.Now()})
			}
		} else {
			err = f.be.Modify(ctx, fileID, off, bytes.NewReader(chunk), size)
		}
		putChunk(chunk)
		p.mu.Lock()
		if err != nil {
			p.err = err
			f.log.Error("streamed upload failed", "ino", p.n.ino, "file_id", fileID, "offset", off, "err", err)
		} else {
			p.fileID = fileID
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
	p.mu.Unlock()
	if err != nil {
		putChunk(chunk)
		return err
	}
	p.ch <- chunk
	return nil
}

// finish waits for the queued chunks and reports the appender file.
func (p *pipeline) finish() (fileID string, uploaded int64, err error) {
	select {
	case <-p.done:
	default:
		close(p.ch)
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fileID, p.uploaded, p.err
}

var chunkPools sync.Map // chunk size -> *sync.Pool

func getChunk(size int) []byte {
	pl, _ := chunkPools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, 0, size); return &b }})
	return (*pl.(*sync.Pool).Get().(*[]byte))[:0]
}

func putChunk(b []byte) {
	if b == nil {
		return
	}
	if pl, ok := chunkPools.Load(cap(b)); ok {
		b = b[:0]
		pl.(*sync.Pool).Put(&b)
	}
}

// extents is a sorted set of disjoint half-open byte ranges.
type extents []extent

type extent struct{ off, end int64 }

func (x *extents) add(off, end int64) {
	if off >= end {
		return
	}
	s := *x
	i := sort.Search(len(s), func(i int) bool { return s[i].end >= off })
	j := i
	for j < len(s) && s[j].off <= end {
		off = min(off, s[j].off)
		end = max(end, s[j].end)
		j++
	}
	s = append(s[:i], append([]extent{{off, end}}, s[j:]...)...)
	*x = s
}

func (x *extents) truncate(size int64) {
	s := *x
	i := sort.Search(len(s), func(i int) bool { return s[i].end > size })
	if i < len(s) && s[i].off < size {
		s[i].end = size
		i++
	}
	*x = s[:i]
}

// at returns the extent containing pos.
func (x extents) at(pos int64) (extent, bool) {
	i := sort.Search(len(x), func(i int) bool { return x[i].end > pos })
	if i < len(x) && x[i].off <= pos {
		return x[i], true
	}
	return extent{}, false
}

// next returns the start of the first extent after pos, or limit.
func (x extents) next(pos, limit int64) int64 {
	i := sort.Search(len(x), func(i int) bool { return x[i].off > pos })
	if i < len(x) && x[i].off < limit {
		return x[i].off
	}
	return limit
}
