package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"fdfsfs/cache"
	"fdfsfs/fdfs"
	"fdfsfs/index"
)

// writer owns a file's uncommitted content and the state it is in. Each
// fileNode gets one with its first write or truncate and keeps it; its
// zero state is clean. Every change of state goes through move, which
// checks it against canMove: a method that finds a state it has no
// transition from returns an error instead of guessing.
//
//	clean      nothing uncommitted: reads and getattr go to the index
//	buffered   written from empty, in order, all of it in one chunk buffer;
//	           nothing uploaded yet
//	streaming  written from empty, in order: full chunks went (or are
//	           going) to one appender file through the pipeline, the tail
//	           is in the buffer; memory stays at a few chunks whatever the
//	           size
//	staged     written ranges in a sparse local stage (cache.Stage) over a
//	           base: the committed content, or this writer's own streamed
//	           appender file
//	committing commit is making the content durable
//	failed     a streamed upload failed: every write, read and truncate
//	           returns that error until a commit reports it
//
// The transitions (the method that makes each):
//
//	clean      -> buffered   begin: the first change of an empty file
//	clean      -> staged     begin: the first change of any other file
//	buffered   -> streaming  stream: the first chunk is full
//	buffered   -> staged     toStaged: a write out of order, a read, a
//	                         truncate; the buffer becomes staged data
//	streaming  -> staged     toStaged: the same; what was uploaded becomes
//	                         the base
//	streaming  -> failed     fail: the pipeline reports an upload error
//	buffered, streaming, staged -> buffered
//	                         restart: truncate to 0 (O_TRUNC, then cp)
//	buffered, streaming, staged -> committing -> clean
//	                         commit, whatever the outcome
//	failed     -> clean      commit, which returns the error
//
// A commit of a clean writer does nothing. Readers look at the state; they
// never make a writer or leave clean.
//
// Everything but state (and the shown copies) is guarded by the node's
// wmu, which every method needs held.
type writer struct {
	n *fileNode

	// state is changed with both wmu and the node's mu held, so that
	// getattr and open read it under mu alone.
	state writeState
	// shownSize and shownMtime are size and mtime as getattr reports them
	// while the state is not clean, copied after each change; guarded by
	// the node's mu, since getattr must not wait for wmu, which a write
	// holds across its upload.
	shownSize  int64
	shownMtime time.Time

	// base is the content the writer changes; only [0, baseLimit) of it
	// is still visible (a truncate down hides the rest).
	base      index.Attr
	baseLimit int64
	size      int64
	mtime     time.Time

	buf   []byte       // buffered, streaming: bytes not yet sent
	pipe  *pipeline    // streaming
	stage *cache.Stage // staged, from its first staged write
	dirty extents      // staged: the ranges the stage holds

	// uploads are the files this writer uploaded; each is settled by the
	// commit that claims it, or dropped when the writer lets it go.
	uploads []*upload

	err error // failed: the upload error every call returns
}

// writeState is where a file's uncommitted content is (see writer).
type writeState uint8

const (
	clean writeState = iota
	buffered
	streaming
	staged
	committing
	failed
)

func (s writeState) String() string {
	switch s {
	case clean:
		return "clean"
	case buffered:
		return "buffered"
	case streaming:
		return "streaming"
	case staged:
		return "staged"
	case committing:
		return "committing"
	case failed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// canMove is the table of transitions (see writer).
func canMove(from, to writeState) bool {
	switch from {
	case clean:
		return to == buffered || to == staged
	case buffered:
		return to == buffered || to == streaming || to == staged || to == committing
	case streaming:
		return to == buffered || to == staged || to == committing || to == failed
	case staged:
		return to == buffered || to == committing
	case committing, failed:
		return to == clean
	}
	return false
}

// errWrongState: a writer method found a state it has no transition from.
var errWrongState = errors.New("fs: write state has no such transition")

// move changes the state, if the table allows it, and publishes size and
// mtime with it.
func (w *writer) move(to writeState) error {
	if !canMove(w.state, to) {
		return fmt.Errorf("%w: %v to %v (inode %d)", errWrongState, w.state, to, w.n.ino)
	}
	w.n.mu.Lock()
	w.state = to
	w.shownSize, w.shownMtime = w.size, w.mtime
	w.n.mu.Unlock()
	return nil
}

// wrong is the error of an operation called in a state that has none.
func (w *writer) wrong(op string) error {
	return fmt.Errorf("%w: %s while %v (inode %d)", errWrongState, op, w.state, w.n.ino)
}

// publish copies size and mtime to where getattr reads them.
func (w *writer) publish() {
	w.n.mu.Lock()
	w.shownSize, w.shownMtime = w.size, w.mtime
	w.n.mu.Unlock()
}

// begin leaves clean over the committed content a.
func (w *writer) begin(a index.Attr) error {
	w.base, w.baseLimit, w.size, w.mtime = a, a.Size, a.Size, time.Now()
	if a.Size == 0 {
		return w.move(buffered)
	}
	return w.move(staged)
}

// beginIfClean reads the committed content and begins over it, unless the
// writer has begun already.
func (w *writer) beginIfClean(ctx context.Context) error {
	if w.state != clean {
		return nil
	}
	a, err := w.n.fs.idx.GetAttr(ctx, w.n.ino)
	if err != nil {
		return err
	}
	return w.begin(a)
}

// fail records a streamed upload's error: the writer is failed until a
// commit reports it.
func (w *writer) fail(err error) error {
	w.err = err
	if merr := w.move(failed); merr != nil {
		return errors.Join(err, merr)
	}
	return err
}

func (w *writer) writeAt(ctx context.Context, p []byte, off int64) error {
	if err := w.beginIfClean(ctx); err != nil {
		return err
	}
	switch w.state {
	case failed:
		return w.err
	case buffered, streaming:
		w.mtime = time.Now()
		if off == w.size {
			return w.stream(p)
		}
		if err := w.toStaged(); err != nil {
			return err
		}
	case staged:
		w.mtime = time.Now()
	default:
		return w.wrong("write")
	}
	return w.stageWrite(p, off)
}

// stageWrite writes p at off into the stage (staged only).
func (w *writer) stageWrite(p []byte, off int64) error {
	if w.stage == nil {
		st, err := w.n.fs.cache.NewStage()
		if err != nil {
			return err
		}
		w.stage = st
	}
	if _, err := w.stage.WriteAt(p, off); err != nil {
		return err
	}
	w.dirty.add(off, off+int64(len(p)))
	w.size = max(w.size, off+int64(len(p)))
	return nil
}

// stream appends p to the buffer; each full chunk goes to the pipeline.
// Without memory for a buffer (the write budget) the rest goes to the
// stage instead.
func (w *writer) stream(p []byte) error {
	for len(p) > 0 {
		if w.buf == nil {
			if w.buf = w.chunk(); w.buf == nil {
				if err := w.toStaged(); err != nil {
					return err
				}
				return w.stageWrite(p, w.size)
			}
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		w.size += int64(k)
		if len(w.buf) < cap(w.buf) {
			continue
		}
		if w.state == buffered {
			w.pipe = w.n.startPipeline()
			if err := w.move(streaming); err != nil {
				return err
			}
		}
		chunk := w.buf
		w.buf = nil
		if err := w.pipe.send(chunk); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// chunk returns a buffer within the write budget: at once if there is
// room, else once a chunk of this file's pipeline has been uploaded and
// its memory is back. It returns nil when the budget is spent and none of
// this file's chunks is in flight: waiting could then last as long as
// other files stay open.
func (w *writer) chunk() []byte {
	f := w.n.fs
	for {
		freed := f.budget.freed()
		if b := f.getChunk(); b != nil {
			return b
		}
		if w.pipe == nil || !w.pipe.holding() {
			return nil
		}
		<-freed
	}
}

// toStaged leaves buffered or streaming for staged.
func (w *writer) toStaged() error {
	switch w.state {
	case staged:
		return nil
	case buffered:
		// Nothing uploaded: the buffer becomes staged data over an
		// empty base.
		if len(w.buf) > 0 {
			st, err := w.n.fs.cache.NewStage()
			if err != nil {
				return err
			}
			if _, err := st.WriteAt(w.buf, 0); err != nil {
				st.Close()
				return err
			}
			w.stage = st
			w.dirty.add(0, int64(len(w.buf)))
		}
		w.n.fs.putChunk(w.buf)
		w.buf = nil
		w.baseLimit = 0
		return w.move(staged)
	case streaming:
		// The uploaded prefix becomes the base: an appender file of our
		// own, changed in place at commit.
		up, uploaded, err := w.finishPipe()
		if err != nil {
			return w.fail(err)
		}
		w.base = index.Attr{Ino: w.n.ino, FileID: up.id, Appender: true, Size: uploaded}
		w.baseLimit = uploaded
		return w.move(staged)
	}
	return w.wrong("stage")
}

// finishPipe sends the buffer's tail and waits for the pipeline; the
// appender file it made is the writer's to settle.
func (w *writer) finishPipe() (*upload, int64, error) {
	var sendErr error
	if len(w.buf) > 0 {
		sendErr = w.pipe.send(w.buf)
	}
	w.buf = nil
	up, uploaded, err := w.pipe.finish()
	w.pipe = nil
	if up != nil {
		w.uploads = append(w.uploads, up)
	}
	switch {
	case err != nil:
		return nil, 0, err
	case sendErr != nil:
		return nil, 0, sendErr
	case up == nil:
		return nil, 0, errors.New("fs: the stream ended without an upload")
	}
	return up, uploaded, nil
}

// readAt reads uncommitted content.
func (w *writer) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	switch w.state {
	case failed:
		return 0, w.err
	case buffered, streaming:
		if err := w.toStaged(); err != nil {
			return 0, err
		}
	case staged:
	default:
		return 0, w.wrong("read")
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

// truncate changes the size. A truncate of a clean file to its size
// changes nothing and leaves it clean.
func (w *writer) truncate(ctx context.Context, size int64) error {
	if w.state == clean {
		a, err := w.n.fs.idx.GetAttr(ctx, w.n.ino)
		if err != nil {
			return err
		}
		if a.Size == size {
			return nil
		}
		if err := w.begin(a); err != nil {
			return err
		}
	}
	switch w.state {
	case failed:
		return w.err
	case buffered, streaming, staged:
	default:
		return w.wrong("truncate")
	}
	w.mtime = time.Now()
	if size == 0 {
		return w.restart(ctx)
	}
	if size == w.size {
		return nil
	}
	if err := w.toStaged(); err != nil {
		return err
	}
	if w.stage != nil {
		if err := w.stage.Truncate(size); err != nil {
			return err
		}
	}
	w.baseLimit = min(w.baseLimit, size)
	w.dirty.truncate(size)
	w.size = size
	return nil
}

// restart drops everything written: the file starts over empty, as a
// fresh stream (O_TRUNC, then cp).
func (w *writer) restart(ctx context.Context) error {
	mtime := w.mtime
	w.release(ctx)
	w.base = index.Attr{Ino: w.n.ino}
	w.mtime = mtime
	return w.move(buffered)
}

// release frees what the writer holds and lets go of its uploads that no
// commit claimed; the content fields are left as a clean writer has them
// (state and the shown copies, guarded by mu as well, are move's).
func (w *writer) release(ctx context.Context) {
	if w.pipe != nil {
		if up, _, _ := w.pipe.finish(); up != nil {
			w.uploads = append(w.uploads, up)
		}
	}
	for _, up := range w.uploads {
		w.n.fs.uploads.drop(ctx, up)
	}
	w.n.fs.putChunk(w.buf)
	if w.stage != nil {
		w.stage.Close()
	}
	w.base, w.baseLimit, w.size, w.mtime = index.Attr{}, 0, 0, time.Time{}
	w.buf, w.pipe, w.stage, w.dirty, w.uploads, w.err = nil, nil, nil, nil, nil, nil
}

// commit makes the content durable and points the index at it; the writer
// is clean afterwards whatever the outcome. On failure the committed
// content stays as it was.
func (w *writer) commit(ctx context.Context) error {
	switch w.state {
	case clean:
		return nil
	case failed:
		err := w.err
		w.release(ctx)
		if merr := w.move(clean); merr != nil {
			return errors.Join(err, merr)
		}
		return err
	case buffered, streaming, staged:
	default:
		return w.wrong("commit")
	}
	from := w.state
	if err := w.move(committing); err != nil {
		return err
	}
	err := w.save(ctx, from)
	w.release(ctx)
	if merr := w.move(clean); merr != nil {
		return errors.Join(err, merr)
	}
	return err
}

// save is commit's work, from the state the writer was in.
func (w *writer) save(ctx context.Context, from writeState) error {
	f := w.n.fs
	c := index.Content{Size: w.size, Mtime: w.mtime}
	var fresh *upload // the new upload c.FileID names, to be claimed
	switch {
	case from == buffered && len(w.buf) == 0:
		// Empty: no FastDFS file.
	case from == buffered:
		up, err := w.uploadBuffer(ctx)
		if err != nil {
			return err
		}
		fresh, c.FileID = up, up.id
	case from == streaming:
		up, _, err := w.finishPipe()
		if err != nil {
			return err
		}
		fresh, c.FileID, c.Appender = up, up.id, true
	case w.base.Appender && w.base.FileID != "" && w.baseLimit > 0:
		if err := w.applyInPlace(ctx); err != nil {
			return err
		}
		c.FileID, c.Appender = w.base.FileID, true
		fresh = w.owned(c.FileID) // our own streamed file, or nil
	default:
		// Upload up to the last byte that holds data; a tail of zeros
		// (truncate -s 10G) is made by the storage, not sent.
		dataEnd := w.baseLimit
		if len(w.dirty) > 0 {
			dataEnd = max(dataEnd, w.dirty[len(w.dirty)-1].end)
		}
		dataEnd = min(dataEnd, w.size)
		up, err := f.uploads.put(ctx, w.n.group, w.n.ext(), &mergedReader{ctx: ctx, w: w, limit: dataEnd}, dataEnd, true, true)
		if err != nil {
			return err
		}
		w.uploads = append(w.uploads, up)
		if w.size > dataEnd {
			if err := f.be.Truncate(ctx, up.id, w.size); err != nil {
				return err
			}
		}
		fresh, c.FileID, c.Appender = up, up.id, true
	}
	old, err := f.idx.GetAttr(ctx, w.n.ino)
	if err != nil {
		return err
	}
	if c.FileID != "" && c.FileID != old.FileID && (old.FileID != "" || w.n.userXattrs.Load()) {
		// The user.* attributes live in the index; their mirror in
		// FastDFS metadata goes with the content to its new file. The
		// index is what the mount reads, so a failed mirror does not
		// fail the commit.
		if err := f.mirrorMetadata(ctx, w.n.ino, c.FileID, true); err != nil {
			f.log.Warn("mirroring xattrs into FastDFS metadata", "ino", w.n.ino, "file_id", c.FileID, "err", err)
		}
	}
	// A new upload must still be journalled when it is claimed: on a
	// shared index another host may have taken it as abandoned.
	c.Claim = c.FileID != "" && c.FileID != old.FileID && (fresh == nil || fresh.journalled)
	_, err = f.idx.SetContent(ctx, w.n.ino, c)
	// Counted whatever the outcome: a failed transaction may still have
	// committed, and a handle's attributes from open are then re-read.
	w.n.commits.Add(1)
	if err != nil {
		if fresh != nil {
			f.uploads.claimFailed(ctx, fresh, w.n.ino)
		}
		return err
	}
	if fresh != nil {
		f.uploads.claimed(fresh)
	}
	if old.FileID != "" && old.FileID != c.FileID {
		f.deleteRemote(ctx, old.FileID)
	}
	return nil
}

// owned is the writer's upload of fileID, or nil.
func (w *writer) owned(fileID string) *upload {
	for _, up := range w.uploads {
		if up.id == fileID {
			return up
		}
	}
	return nil
}

// uploadBuffer uploads a file that fits in one chunk with one request. A
// new file (no content before it) is not journalled: nothing but the index
// commit that follows at once comes between learning its ID and claiming
// it, the same window as the upload's own answer, which no journal can
// cover; this spares the index a transaction per small file. A file that
// replaces content is journalled, since metadata is copied to it first.
func (w *writer) uploadBuffer(ctx context.Context) (*upload, error) {
	f := w.n.fs
	cur, err := f.idx.GetAttr(ctx, w.n.ino)
	journal := err != nil || cur.FileID != ""
	up, err := f.uploads.put(ctx, w.n.group, w.n.ext(), bytes.NewReader(w.buf), int64(len(w.buf)), false, journal)
	if err != nil {
		return nil, err
	}
	w.uploads = append(w.uploads, up)
	return up, nil
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
	return fdfs.FileExt(name)
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
