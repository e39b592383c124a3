package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fdfsfs/cache"
	"fdfsfs/index"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// memBackend is an in-memory FastDFS for the write path's unit tests. It
// answers as a storage does where that matters to the writer: modify and
// truncate only on appender files, no modify that would leave a hole, no
// truncate to the current size (EINVAL, as V6.16.1 answers). Each call can
// be made to fail (failNext) or to wait until the test lets it go on
// (blockNext).
type memBackend struct {
	mu     sync.Mutex
	files  map[string]*memFile // guarded by mu
	seq    int                 // guarded by mu
	calls  map[string]int      // per method (guarded by mu)
	fails  map[string][]error  // per method, the errors of the next calls (guarded by mu)
	blocks map[string]*gate    // per method, a gate for the next call (guarded by mu)
}

type memFile struct {
	data     []byte
	appender bool
	meta     map[string]string
}

// gate holds one call: entered is closed when the call arrives, and the
// call goes on once release is closed.
type gate struct{ entered, release chan struct{} }

func newMemBackend() *memBackend {
	return &memBackend{
		files:  make(map[string]*memFile),
		calls:  make(map[string]int),
		fails:  make(map[string][]error),
		blocks: make(map[string]*gate),
	}
}

// failNext makes the next call of method fail with err (queued: several
// calls fail in turn).
func (b *memBackend) failNext(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails[method] = append(b.fails[method], err)
}

// blockNext holds the next call of method until the gate is released.
func (b *memBackend) blockNext(method string) *gate {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	b.mu.Lock()
	b.blocks[method] = g
	b.mu.Unlock()
	return g
}

// enter counts a call and returns the error it must fail with, after
// waiting at its gate if it has one.
func (b *memBackend) enter(method string) error {
	b.mu.Lock()
	b.calls[method]++
	g := b.blocks[method]
	delete(b.blocks, method)
	var err error
	if q := b.fails[method]; len(q) > 0 {
		err, b.fails[method] = q[0], q[1:]
	}
	b.mu.Unlock()
	if g != nil {
		close(g.entered)
		<-g.release
	}
	return err
}

func (b *memBackend) count(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[method]
}

// ids lists the files stored, sorted.
func (b *memBackend) ids() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id := range b.files {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (b *memBackend) content(id string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[id]
	if !ok {
		return nil, false
	}
	return bytes.Clone(f.data), true
}

func (b *memBackend) Groups(ctx context.Context) ([]GroupInfo, error) {
	if err := b.enter("Groups"); err != nil {
		return nil, err
	}
	return []GroupInfo{{Name: "group1", TotalMB: 1024, FreeMB: 512, StorePaths: 1}}, nil
}

func (b *memBackend) Upload(ctx context.Context, group, ext string, r io.Reader, size int64, appender bool) (string, error) {
	if err := b.enter("Upload"); err != nil {
		return "", err
	}
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return "", err
	}
	if int64(len(data)) != size {
		return "", fmt.Errorf("upload: %d bytes for a size of %d", len(data), size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	id := fmt.Sprintf("%s/M00/00/00/file%04d", group, b.seq)
	if ext != "" {
		id += "." + ext
	}
	b.files[id] = &memFile{data: data, appender: appender}
	return id, nil
}

// appenderFile is the appender file id; call with mu held.
func (b *memBackend) appenderFile(id string) (*memFile, error) {
	f, ok := b.files[id]
	if !ok {
		return nil, syscall.ENOENT
	}
	if !f.appender {
		return nil, syscall.EINVAL
	}
	return f, nil
}

func (b *memBackend) Modify(ctx context.Context, fileID string, off int64, r io.Reader, size int64) error {
	if err := b.enter("Modify"); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.appenderFile(fileID)
	if err != nil {
		return err
	}
	if off > int64(len(f.data)) {
		return syscall.EINVAL
	}
	if end := off + int64(len(data)); end > int64(len(f.data)) {
		f.data = append(f.data, make([]byte, end-int64(len(f.data)))...)
	}
	copy(f.data[off:], data)
	return nil
}

func (b *memBackend) Truncate(ctx context.Context, fileID string, size int64) error {
	if err := b.enter("Truncate"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.appenderFile(fileID)
	if err != nil {
		return err
	}
	if size == int64(len(f.data)) {
		return syscall.EINVAL
	}
	if size < int64(len(f.data)) {
		f.data = f.data[:size]
	} else {
		f.data = append(f.data, make([]byte, size-int64(len(f.data)))...)
	}
	return nil
}

func (b *memBackend) Download(ctx context.Context, fileID string, off, length int64, w io.Writer) (int64, error) {
	if err := b.enter("Download"); err != nil {
		return 0, err
	}
	b.mu.Lock()
	f, ok := b.files[fileID]
	var data []byte
	if ok && off < int64(len(f.data)) {
		data = bytes.Clone(f.data[off:min(off+length, int64(len(f.data)))])
	}
	b.mu.Unlock()
	if !ok {
		return 0, syscall.ENOENT
	}
	n, err := w.Write(data)
	return int64(n), err
}

func (b *memBackend) Delete(ctx context.Context, fileID string) error {
	if err := b.enter("Delete"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[fileID]; !ok {
		return syscall.ENOENT
	}
	delete(b.files, fileID)
	return nil
}

func (b *memBackend) FileSize(ctx context.Context, fileID string) (int64, error) {
	if err := b.enter("FileSize"); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[fileID]
	if !ok {
		return 0, syscall.ENOENT
	}
	return int64(len(f.data)), nil
}

func (b *memBackend) GetMetadata(ctx context.Context, fileID string) (map[string]string, error) {
	if err := b.enter("GetMetadata"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[fileID]
	if !ok {
		return nil, syscall.ENOENT
	}
	m := make(map[string]string, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m, nil
}

func (b *memBackend) SetMetadata(ctx context.Context, fileID string, meta map[string]string, merge bool) error {
	if err := b.enter("SetMetadata"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[fileID]
	if !ok {
		return syscall.ENOENT
	}
	if !merge || f.meta == nil {
		f.meta = make(map[string]string, len(meta))
	}
	for k, v := range meta {
		f.meta[k] = v
	}
	return nil
}

// faultIndex is an index whose journal and content commits can be made to
// fail.
type faultIndex struct {
	index.Index
	mu    sync.Mutex
	fails map[string][]error // per method (guarded by mu)
	// then runs once the next injected failure of a method is taken
	// (guarded by mu).
	then map[string]func()
}

func (x *faultIndex) failNext(method string, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.fails[method] = append(x.fails[method], err)
}

// failNextThen is failNext, and then runs once that failure is taken (to
// fail another call from that point on).
func (x *faultIndex) failNextThen(method string, err error, then func()) {
	x.failNext(method, err)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.then[method] = then
}

func (x *faultIndex) next(method string) error {
	x.mu.Lock()
	q := x.fails[method]
	if len(q) == 0 {
		x.mu.Unlock()
		return nil
	}
	x.fails[method] = q[1:]
	then := x.then[method]
	delete(x.then, method)
	x.mu.Unlock()
	if then != nil {
		then()
	}
	return q[0]
}

func (x *faultIndex) AddPending(ctx context.Context, p index.Pending) error {
	if err := x.next("AddPending"); err != nil {
		return err
	}
	return x.Index.AddPending(ctx, p)
}

func (x *faultIndex) RemovePending(ctx context.Context, fileID string) error {
	if err := x.next("RemovePending"); err != nil {
		return err
	}
	return x.Index.RemovePending(ctx, fileID)
}

func (x *faultIndex) SetContent(ctx context.Context, ino index.Ino, c index.Content) (index.Attr, error) {
	if err := x.next("SetContent"); err != nil {
		return index.Attr{}, err
	}
	return x.Index.SetContent(ctx, ino, c)
}

func (x *faultIndex) GetAttr(ctx context.Context, ino index.Ino) (index.Attr, error) {
	if err := x.next("GetAttr"); err != nil {
		return index.Attr{}, err
	}
	return x.Index.GetAttr(ctx, ino)
}

// testFS is an FS over memBackend and an in-memory index, without FUSE.
type testFS struct {
	*FS
	be    *memBackend
	idx   *faultIndex
	group index.Ino
}

// testChunk is the streamed chunk size of testFS: small, so that a few
// writes fill several chunks.
const testChunk = 4096

// errInjected is what the fault knobs make calls fail with.
var errInjected = errors.New("injected failure")

// newTestFS builds a testFS; each option may change the FS's options.
func newTestFS(t testing.TB, options ...func(*Options)) *testFS {
	t.Helper()
	ctx := context.Background()
	badger, err := index.OpenBadger("", index.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { badger.Close() })
	blocks, err := cache.Open(t.TempDir(), cache.Options{BlockSize: 64 << 10, MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blocks.Close() })
	be := newMemBackend()
	idx := &faultIndex{Index: badger, fails: make(map[string][]error), then: make(map[string]func())}
	opts := Options{
		Backend: be, Index: idx, Cache: blocks,
		WriteChunk: testChunk, WriteInflight: 2, GroupRefresh: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range options {
		o(&opts)
	}
	f, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	g, err := idx.Lookup(ctx, index.RootIno, "group1")
	if err != nil {
		t.Fatal(err)
	}
	return &testFS{FS: f, be: be, idx: idx, group: g.Ino}
}

// create makes an empty file in the group directory.
func (tf *testFS) create(t testing.TB, name string) *fileNode {
	t.Helper()
	now := time.Now()
	a, err := tf.idx.Create(context.Background(), tf.group, name, index.Attr{
		Kind: index.KindFile, Mode: 0o644, Atime: now, Mtime: now, Ctime: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fileNode{fs: tf.FS, ino: a.Ino, group: "group1"}
}

func (tf *testFS) attr(t *testing.T, n *fileNode) index.Attr {
	t.Helper()
	a, err := tf.idx.Index.GetAttr(context.Background(), n.ino)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// pending lists the journal's file IDs.
func (tf *testFS) pending(t *testing.T) map[string]index.PendingReason {
	t.Helper()
	ps, err := tf.idx.ListPending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]index.PendingReason, len(ps))
	for _, p := range ps {
		m[p.FileID] = p.Reason
	}
	return m
}

func openFile(t testing.TB, n *fileNode, flags uint32) *fileHandle {
	t.Helper()
	a, err := n.fs.idx.GetAttr(context.Background(), n.ino)
	if err != nil {
		t.Fatal(err)
	}
	fh, _, errno := n.open(context.Background(), flags, a)
	if errno != 0 {
		t.Fatalf("open: %v", errno)
	}
	return fh.(*fileHandle)
}

func write(t *testing.T, h *fileHandle, data []byte, off int64) {
	t.Helper()
	if n, errno := h.Write(context.Background(), data, off); errno != 0 || int(n) != len(data) {
		t.Fatalf("write of %d bytes at %d: %d, %v", len(data), off, n, errno)
	}
}

func read(t *testing.T, h fusefs.FileReader, size int, off int64) []byte {
	t.Helper()
	res, errno := h.Read(context.Background(), make([]byte, size), off)
	if errno != 0 {
		t.Fatalf("read of %d bytes at %d: %v", size, off, errno)
	}
	got, st := res.Bytes(make([]byte, size))
	if !st.Ok() {
		t.Fatalf("read result: %v", st)
	}
	out := bytes.Clone(got)
	res.Done()
	return out
}

func flush(t *testing.T, h *fileHandle) {
	t.Helper()
	if errno := h.Flush(context.Background()); errno != 0 {
		t.Fatalf("flush: %v", errno)
	}
}

// waitBlockedIn waits until a goroutine waits for a mutex inside fn (a
// function name as a stack trace shows it), so that a test can order a
// race without sleeping.
func waitBlockedIn(t *testing.T, fn string) {
	t.Helper()
	waitForGoroutine(t, fn, "sync.(*Mutex).Lock")
}

// waitForGoroutine waits until one goroutine's stack trace holds both fn
// and wait (what it waits on, as the trace says it).
func waitForGoroutine(t *testing.T, fn, wait string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(g, wait) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine in %s waits on %s", fn, wait)
}

// pattern is n bytes that differ from one offset to the next.
func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return p
}

// state is the file's write state as readers see it.
func state(n *fileNode) writeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.w == nil {
		return clean
	}
	return n.w.state
}

// referenced lists the FastDFS files inodes point at.
func (tf *testFS) referenced(t *testing.T) map[string]bool {
	t.Helper()
	m := make(map[string]bool)
	err := tf.idx.Inodes(context.Background(), func(a index.Attr) error {
		if a.FileID != "" {
			m[a.FileID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkNoOrphans fails the test if a stored file is neither pointed at
// nor in the journal: a file nothing would ever delete.
func (tf *testFS) checkNoOrphans(t *testing.T) {
	t.Helper()
	ref, pend := tf.referenced(t), tf.pending(t)
	for _, id := range tf.be.ids() {
		if !ref[id] && pend[id] == 0 {
			t.Errorf("%s is stored, and neither pointed at nor journalled", id)
		}
	}
}

// checkSwept runs a sweep and fails the test unless storage then holds
// exactly the files inodes point at, and the journal is empty.
func (tf *testFS) checkSwept(t *testing.T) {
	t.Helper()
	tf.sweep(context.Background())
	ref := tf.referenced(t)
	ids := tf.be.ids()
	for _, id := range ids {
		if !ref[id] {
			t.Errorf("%s is still stored after the sweep, and nothing points at it", id)
		}
	}
	if len(ids) != len(ref) {
		t.Errorf("storage holds %v; inodes point at %v", ids, ref)
	}
	if p := tf.pending(t); len(p) != 0 {
		t.Errorf("journal after the sweep: %v", p)
	}
}

// content reads the file's committed content from storage, checking the
// index's size.
func (tf *testFS) content(t *testing.T, n *fileNode) []byte {
	t.Helper()
	a := tf.attr(t, n)
	if a.FileID == "" {
		if a.Size != 0 {
			t.Fatalf("size %d with no FastDFS file", a.Size)
		}
		return nil
	}
	b, ok := tf.be.content(a.FileID)
	if !ok {
		t.Fatalf("the index points at %s, which is not stored", a.FileID)
	}
	if int64(len(b)) != a.Size {
		t.Fatalf("%s holds %d bytes; the index says %d", a.FileID, len(b), a.Size)
	}
	return b
}

// writeInOrder writes data[from:to] in pieces of step bytes, in order, at
// their offsets in data.
func writeInOrder(t *testing.T, h *fileHandle, data []byte, from, to, step int) {
	t.Helper()
	for off := from; off < to; off += step {
		write(t, h, data[off:min(off+step, to)], int64(off))
	}
}

// committed makes a file holding data, committed and closed.
func (tf *testFS) committed(t *testing.T, name string, data []byte) *fileNode {
	t.Helper()
	n := tf.create(t, name)
	h := openFile(t, n, syscall.O_WRONLY)
	writeInOrder(t, h, data, 0, len(data), 1000)
	flush(t, h)
	h.Release(context.Background())
	return n
}

// eventually waits for cond, which background work makes true.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s", what)
		}
	}
}

// faultsLeft lists the injected failures no call has taken yet.
func (tf *testFS) faultsLeft() []string {
	var left []string
	tf.be.mu.Lock()
	for m, q := range tf.be.fails {
		for _, err := range q {
			left = append(left, fmt.Sprintf("backend %s: %v", m, err))
		}
	}
	tf.be.mu.Unlock()
	tf.idx.mu.Lock()
	for m, q := range tf.idx.fails {
		for _, err := range q {
			left = append(left, fmt.Sprintf("index %s: %v", m, err))
		}
	}
	tf.idx.mu.Unlock()
	return left
}
