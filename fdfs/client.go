package fdfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Client talks to a FastDFS cluster: it asks the trackers where a file lives
// or where a new one goes, then talks to that storage. It is safe for
// concurrent use; connections are pooled per address.
type Client struct {
	cfg      Config
	pools    *pools
	trackers []string
	next     atomic.Int64 // index of the tracker that answered last

	layoutMu sync.Mutex
	layout   StatLayout // the stat layout seen last, a hint for 105-byte records

	// where remembers the tracker's answers to QUERY_FETCH_ONE and
	// QUERY_UPDATE for a short while. A file's storages do not change
	// under its ID, and a 1 GiB read in 1 MiB blocks would otherwise ask
	// the tracker 1,024 times. An entry is dropped when its storage fails.
	whereMu sync.Mutex
	where   map[whereKey]whereEntry

	// stores holds the tracker's last QUERY_STORE answer per group, for
	// Config.StoreReuse.
	storesMu sync.Mutex
	stores   map[string]storeEntry

	// views holds each group's storage list for Config.StorageListTTL,
	// and down the storages that could not be reached lately (direct.go).
	viewsMu  sync.Mutex
	views    map[string]*groupView
	down     map[string]time.Time
	readTurn atomic.Uint64
}

type storeEntry struct {
	addr    StorageAddr
	expires time.Time
}

type whereKey struct {
	cmd    byte
	fileID string
}

type whereEntry struct {
	addr    ServerAddr
	expires time.Time
}

// Bounds of the location cache.
const (
	whereTTL     = 10 * time.Second
	whereEntries = 4096
)

// NewClient checks cfg and returns a client. It does not connect.
func NewClient(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Trackers) == 0 {
		return nil, errors.New("fdfs: no tracker address")
	}
	for _, t := range cfg.Trackers {
		if _, _, err := net.SplitHostPort(t); err != nil {
			return nil, fmt.Errorf("fdfs: tracker %q: %w", t, err)
		}
	}
	return &Client{cfg: cfg, pools: newPools(cfg), trackers: append([]string(nil), cfg.Trackers...), layout: cfg.StatLayout}, nil
}

// Close closes the idle connections. Calls after Close fail.
func (c *Client) Close() error {
	c.pools.close()
	return nil
}

// OpenConns is the number of connections open now, idle or in use.
func (c *Client) OpenConns() int64 { return c.pools.open.Load() }

// Trackers returns the tracker addresses in the order they are tried.
func (c *Client) Trackers() []string { return append([]string(nil), c.trackers...) }

// request is one exchange: a header, a body held in memory, optionally
// content streamed after it, and a handler for the response body.
type request struct {
	cmd        byte
	status     byte // QUERY_FILE_INFO puts its flags in the status byte
	body       []byte
	content    io.Reader
	contentLen int64
	// maxResp bounds the response body; 0 means Config.MaxBodySize.
	maxResp int64
	// handle reads exactly h.Length bytes from r. Nil expects an empty body.
	handle func(h Header, r io.Reader) error
}

// exchange runs one request on a pooled connection to addr. A pooled
// connection the peer has closed meanwhile (a restart, its idle timeout)
// fails before any answer arrives; the request is then sent again on
// another connection, so callers never see the error of a connection they
// didn't know was stale. Streamed content is sent again only when its
// source seeks back to where it started. This is the one place a request is
// repeated on the same server; moving on to another server is tracker's
// (for trackers) and upload's and fetchServers' (for storages). A server that
// took a whole upload and closed before answering gets it again: at worst
// one unreferenced copy, as a crash of the mount would leave.
func (c *Client) exchange(ctx context.Context, addr string, req request) error {
	rewind := rewinder(req)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		cn, err := c.pools.get(ctx, addr)
		if err != nil {
			c.observe(req.cmd, addr, start, nil, err)
			return err
		}
		// A cancelled context ends the I/O at once rather than at the timeout.
		stop := cn.watch(ctx)
		cn.sent, cn.received = 0, 0
		err = c.roundTrip(cn, req)
		c.observe(req.cmd, addr, start, cn, err)
		// Once put, cn may be in another call's hands: read it first.
		stale := cn.reused && cn.received == 0 && brokenConn(err) && rewind != nil
		if !stop() {
			// The deadline was forced into the past; the connection is no
			// longer usable even if the exchange happened to finish.
			if err == nil {
				err = ctx.Err()
			}
			c.pools.discard(cn)
		} else {
			c.pools.put(cn, err)
		}
		if err != nil && !isStatus(err) {
			if cerr := contextErr(ctx); cerr != nil {
				return fmt.Errorf("fdfs: %s to %s: %w", CmdName(req.cmd), addr, cerr)
			}
		}
		if stale && rewind() == nil {
			c.cfg.Logger.Debug("fdfs: pooled connection was closed by the peer; retrying on a new one",
				"cmd", CmdName(req.cmd), "addr", addr, "err", err)
			continue
		}
		return err
	}
}

// rewinder returns what puts req's content back where it starts, so the
// request can be sent again, or nil when it cannot be.
func rewinder(req request) func() error {
	if req.contentLen == 0 {
		return func() error { return nil }
	}
	s, ok := req.content.(io.Seeker)
	if !ok {
		return nil
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	return func() error {
		_, err := s.Seek(start, io.SeekStart)
		return err
	}
}

// contextErr is ctx.Err(), or DeadlineExceeded once ctx's deadline has
// passed: the connection's deadline, set to the context's, can fire a
// moment before the context notices.
func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// brokenConn reports whether err means the peer had closed the connection,
// rather than answered badly or slowly.
func brokenConn(err error) bool {
	return err != nil && !isStatus(err) && !errors.Is(err, ErrProtocol) &&
		(errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

func (c *Client) observe(cmd byte, addr string, start time.Time, cn *conn, err error) {
	if c.cfg.Observe == nil {
		return
	}
	var sent, received int64
	if cn != nil {
		sent, received = cn.sent, cn.received
	}
	c.cfg.Observe(cmd, addr, time.Since(start), sent, received, err)
}

func isStatus(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

// inlineContentMax is the largest content sent in the same write as its
// request header. A small file then reaches the storage in one segment:
// one write here, and one wake-up of the storage's reader instead of one
// for the header and often another for the content.
const inlineContentMax = 64 << 10

func (c *Client) roundTrip(cn *conn, req request) error {
	hdr := Header{Length: int64(len(req.body)) + req.contentLen, Cmd: req.cmd, Status: req.status}
	content := req.contentLen
	inline := content > 0 && content <= inlineContentMax
	size := HeaderSize + len(req.body)
	if inline {
		size += int(content)
	}
	out := hdr.Append(make([]byte, 0, size))
	out = append(out, req.body...)
	if inline {
		// Nothing is sent before the content is read, so a source that
		// fails here leaves the connection as clean as it was.
		n, err := io.ReadFull(req.content, out[len(out):size])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("content source ended after %d bytes: %w", n, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return fmt.Errorf("fdfs: %s to %s: reading content (%d of %d bytes, none sent): %w", CmdName(req.cmd), cn.addr, n, content, err)
		}
		out = out[:size]
		content = 0
	}
	if _, err := cn.Write(out); err != nil {
		return fmt.Errorf("fdfs: %s to %s: %w", CmdName(req.cmd), cn.addr, err)
	}
	if content > 0 {
		n, readErr, writeErr := copyContent(cn, req.content, req.contentLen)
		if readErr != nil {
			return fmt.Errorf("fdfs: %s to %s: reading content (%d of %d bytes sent): %w", CmdName(req.cmd), cn.addr, n, req.contentLen, readErr)
		}
		if writeErr != nil {
			// A storage may refuse early (no space, a bad request), answer
			// and close without reading the rest. Its answer says more
			// than the broken pipe does; the connection is done either way.
			cn.broken = true
			if _, err := readResponseHeader(cn, req.cmd, 0); isStatus(err) {
				return err
			}
			return fmt.Errorf("fdfs: %s to %s: sending content (%d of %d bytes): %w", CmdName(req.cmd), cn.addr, n, req.contentLen, writeErr)
		}
	}
	maxResp := req.maxResp
	if maxResp == 0 {
		maxResp = c.cfg.MaxBodySize
	}
	h, err := readResponseHeader(cn, req.cmd, maxResp)
	if err != nil {
		if !isStatus(err) {
			err = fmt.Errorf("fdfs: %s from %s: %w", CmdName(req.cmd), cn.addr, err)
		}
		return err
	}
	if req.handle == nil {
		if h.Length != 0 {
			return protocolErrorf("%s: unexpected %d-byte response body", CmdName(req.cmd), h.Length)
		}
		return nil
	}
	lr := &io.LimitedReader{R: cn, N: h.Length}
	if err := req.handle(h, lr); err != nil {
		return fmt.Errorf("fdfs: %s from %s: %w", CmdName(req.cmd), cn.addr, err)
	}
	if lr.N != 0 {
		return protocolErrorf("%s: %d response bytes left unread", CmdName(req.cmd), lr.N)
	}
	return nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyContent sends exactly n bytes of r to w and tells the reader's
// errors from the writer's. A reader that ends early is an error: the
// header already promised n bytes.
func copyContent(w io.Writer, r io.Reader, n int64) (written int64, readErr, writeErr error) {
	if br, ok := r.(*bytes.Reader); ok && int64(br.Len()) == n {
		// A chunk in memory goes out in one write, with no copy.
		written, writeErr = br.WriteTo(w)
		return written, nil, writeErr
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for written < n {
		chunk := buf[:min(int64(len(buf)), n-written)]
		k, err := r.Read(chunk)
		if k > 0 {
			m, werr := w.Write(chunk[:k])
			written += int64(m)
			if werr != nil {
				return written, nil, werr
			}
		}
		if err == io.EOF {
			if written < n {
				return written, fmt.Errorf("content source ended after %d bytes: %w", written, io.ErrUnexpectedEOF), nil
			}
			break
		}
		if err != nil {
			return written, err, nil
		}
	}
	return written, nil, nil
}

// readBody returns a handler that reads the whole (bounded) body and
// decodes it while the connection is still checked out, so a body that
// does not decode gets its connection discarded like any malformed frame.
func readBody(decode func([]byte) error) func(Header, io.Reader) error {
	return func(h Header, r io.Reader) error {
		b := make([]byte, h.Length)
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		return decode(b)
	}
}

// decodeInto returns a readBody decode function that stores decode's
// result in *out.
func decodeInto[T any](out *T, decode func([]byte) (T, error)) func([]byte) error {
	return func(b []byte) error {
		v, err := decode(b)
		*out = v
		return err
	}
}

// retryable reports whether err means the server could not be reached or
// the connection broke, so another server may do better. Statuses and
// protocol errors are the server's answer and are not retried.
func retryable(err error) bool {
	var se *sinkError
	if err == nil || isStatus(err) || errors.Is(err, ErrProtocol) || errors.As(err, &se) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errPoolClosed) {
		return false
	}
	var de *dialError
	var ne net.Error
	return errors.As(err, &de) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// sinkError is a failure of the caller's writer during a download. It says
// nothing about the server, so no other server is tried.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return "writing downloaded bytes: " + e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// copyDownload copies a download's body from r to w. A w that is an
// io.ReaderFrom reads from the connection itself, into its own memory (the
// block cache's buffers do), which saves a copy through copyBufs. Either
// way w's own errors come back as *sinkError.
func copyDownload(w io.Writer, r io.Reader) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		src := &sourceReader{r: r}
		n, err := rf.ReadFrom(src)
		if err != nil && src.err == nil {
			err = &sinkError{err}
		}
		return n, err
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(sinkWriter{w}, r, *bp)
}

// sourceReader remembers the error its reader returned, other than io.EOF,
// so that an io.ReaderFrom's failure can be told from the connection's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// sinkWriter marks the errors of w as *sinkError.
type sinkWriter struct{ w io.Writer }

func (s sinkWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = &sinkError{err}
	}
	return n, err
}

// tracker runs req on the trackers in turn, starting with the one that
// answered last, until one answers. A connection failure and a malformed
// answer (ErrProtocol: a broken tracker, or no tracker at that address)
// move on to the next; a status is an answer and does not.
func (c *Client) tracker(ctx context.Context, req request) error {
	start := int(c.next.Load())
	var errs []error
	for i := range c.trackers {
		k := (start + i) % len(c.trackers)
		addr := c.trackers[k]
		err := c.exchange(ctx, addr, req)
		if !retryable(err) && !errors.Is(err, ErrProtocol) {
			// Any answer, an error status included, shows the tracker is up.
			if k != start && (err == nil || isStatus(err)) {
				c.next.Store(int64(k))
				c.cfg.Logger.Warn("fdfs: using another tracker", "tracker", addr, "after", errors.Join(errs...))
			}
			return err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("fdfs: no tracker answered: %w", errors.Join(errs...))
}

// ActiveTest checks that the server at addr answers.
func (c *Client) ActiveTest(ctx context.Context, addr string) error {
	return c.exchange(ctx, addr, request{cmd: FdfsProtoCmdActiveTest})
}

func (c *Client) statHint() StatLayout {
	c.layoutMu.Lock()
	defer c.layoutMu.Unlock()
	return c.layout
}

func (c *Client) noteLayout(l StatLayout) {
	c.layoutMu.Lock()
	if c.cfg.StatLayout == 0 {
		c.layout = l
	}
	c.layoutMu.Unlock()
}

// ListGroups asks for every group's stat record (LIST_ALL_GROUPS).
func (c *Client) ListGroups(ctx context.Context) ([]GroupStat, error) {
	var d groupsDecoder
	if err := c.tracker(ctx, request{cmd: TrackerProtoCmdServerListAllGroups, handle: readBody(c.decodeGroups(&d))}); err != nil {
		return nil, err
	}
	return c.settleGroupLayout(ctx, d), nil
}

// ListOneGroup asks for one group's record (LIST_ONE_GROUP). An unknown
// group is a *StatusError matching fs.ErrNotExist.
func (c *Client) ListOneGroup(ctx context.Context, group string) (GroupStat, error) {
	if err := checkGroup(group); err != nil {
		return GroupStat{}, err
	}
	var d groupsDecoder
	decode := c.decodeGroups(&d)
	err := c.tracker(ctx, request{cmd: TrackerProtoCmdServerListOneGroup, body: GroupRequest{group}.Append(nil),
		handle: readBody(func(b []byte) error {
			if err := decode(b); err != nil {
				return err
			}
			if len(d.groups) != 1 {
				return protocolErrorf("list one group answered with %d records", len(d.groups))
			}
			return nil
		})})
	if err != nil {
		return GroupStat{}, err
	}
	return c.settleGroupLayout(ctx, d)[0], nil
}

// ListStorages lists the storages of a group (LIST_STORAGE), or only the
// one with storageID when it is not empty.
func (c *Client) ListStorages(ctx context.Context, group, storageID string) ([]StorageStat, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	ss, _, err := c.listStorages(ctx, group, storageID)
	return ss, err
}

// listStorages is ListStorages that also says which layout the records had.
func (c *Client) listStorages(ctx context.Context, group, storageID string) ([]StorageStat, StatLayout, error) {
	var ss []StorageStat
	var l StatLayout
	req := request{cmd: TrackerProtoCmdServerListStorage, body: ListStoragesRequest{Group: group, StorageID: storageID}.Append(nil),
		handle: readBody(func(b []byte) error {
			var err error
			if ss, l, err = DecodeStorageStats(b, c.statHint()); err == nil {
				c.noteLayout(l)
			}
			return err
		})}
	if err := c.tracker(ctx, req); err != nil {
		return nil, 0, err
	}
	return ss, l, nil
}

// groupsDecoder holds a group-records body and how it was read.
type groupsDecoder struct {
	body   []byte
	groups []GroupStat
	layout StatLayout
	hinted bool // a 105-byte layout came from the config or storage records
}

// decodeGroups decodes group records into d. It does not note the layout:
// the record size alone cannot tell the 105-byte layouts apart, so only
// storage records (or the config) teach the client which release it faces.
func (c *Client) decodeGroups(d *groupsDecoder) func([]byte) error {
	return func(b []byte) error {
		hint := c.statHint()
		gs, l, err := DecodeGroupStats(b, hint)
		if err == nil {
			*d = groupsDecoder{body: b, groups: gs, layout: l, hinted: hint.GroupStatSize() == 105}
		}
		return err
	}
}

// settleGroupLayout returns d's groups, decoded again if need be: V6.13.0
// has 105-byte group records like the classic releases but with other
// fields (readable and writable counts instead of the HTTP port and the
// active count). When a 105-byte body came with nothing to tell which,
// the storage records of its first group decide, once: their sizes differ.
func (c *Client) settleGroupLayout(ctx context.Context, d groupsDecoder) []GroupStat {
	if d.layout.GroupStatSize() != 105 || d.hinted || len(d.groups) == 0 {
		return d.groups
	}
	if _, err := c.ListStorages(ctx, d.groups[0].Name, ""); err != nil {
		c.cfg.Logger.Debug("fdfs: cannot tell the 105-byte group layout apart; reading it as classic", "err", err)
		return d.groups
	}
	hint := c.statHint()
	if hint.GroupStatSize() != 105 || hint == d.layout {
		return d.groups
	}
	gs, _, err := DecodeGroupStats(d.body, hint)
	if err != nil {
		return d.groups
	}
	return gs
}

func checkGroup(group string) error {
	if !ValidGroupName(group) {
		return fmt.Errorf("fdfs: bad group name %q (1 to %d letters, digits, '-' or '_')", group, FdfsGroupNameMaxLen)
	}
	return nil
}

// QueryStore asks where a new file goes: QUERY_STORE_WITH_GROUP_ONE for a
// named group, QUERY_STORE_WITHOUT_GROUP_ONE for "".
func (c *Client) QueryStore(ctx context.Context, group string) (StorageAddr, error) {
	req := request{cmd: TrackerProtoCmdServiceQueryStoreWithoutGroupOne}
	if group != "" {
		if err := checkGroup(group); err != nil {
			return StorageAddr{}, err
		}
		req = request{cmd: TrackerProtoCmdServiceQueryStoreWithGroupOne, body: GroupRequest{group}.Append(nil)}
	}
	var m QueryStoreResponse
	req.handle = readBody(decodeInto(&m, DecodeQueryStoreResponse))
	if err := c.tracker(ctx, req); err != nil {
		return StorageAddr{}, err
	}
	return m.Storage(), nil
}

// QueryStoreAll lists every storage a new file may go to (…_ALL).
func (c *Client) QueryStoreAll(ctx context.Context, group string) ([]StorageAddr, error) {
	req := request{cmd: TrackerProtoCmdServiceQueryStoreWithoutGroupAll}
	if group != "" {
		if err := checkGroup(group); err != nil {
			return nil, err
		}
		req = request{cmd: TrackerProtoCmdServiceQueryStoreWithGroupAll, body: GroupRequest{group}.Append(nil)}
	}
	var m QueryStoreAllResponse
	req.handle = readBody(decodeInto(&m, DecodeQueryStoreAllResponse))
	if err := c.tracker(ctx, req); err != nil {
		return nil, err
	}
	return m.Storages(), nil
}

// queryFile asks the trackers cmd about id and decodes the answer.
func (c *Client) queryFile(ctx context.Context, cmd byte, id FileID, decode func([]byte) error) error {
	return c.tracker(ctx, request{cmd: cmd, body: FileRequest{Group: id.Group, Filename: id.Remote}.Append(nil), handle: readBody(decode)})
}

// QueryFetch names a storage to read fileID from (QUERY_FETCH_ONE).
func (c *Client) QueryFetch(ctx context.Context, fileID string) (ServerAddr, error) {
	return c.queryOne(ctx, TrackerProtoCmdServiceQueryFetchOne, fileID)
}

// QueryUpdate names the storage to change or delete fileID on
// (QUERY_UPDATE): its source storage.
func (c *Client) QueryUpdate(ctx context.Context, fileID string) (ServerAddr, error) {
	return c.queryOne(ctx, TrackerProtoCmdServiceQueryUpdate, fileID)
}

func (c *Client) queryOne(ctx context.Context, cmd byte, fileID string) (ServerAddr, error) {
	id, err := ParseFileID(fileID)
	if err != nil {
		return ServerAddr{}, err
	}
	key := whereKey{cmd, id.String()}
	c.whereMu.Lock()
	e, ok := c.where[key]
	c.whereMu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.addr, nil
	}
	var m QueryFetchResponse
	if err := c.queryFile(ctx, cmd, id, decodeInto(&m, DecodeQueryFetchResponse)); err != nil {
		return ServerAddr{}, err
	}
	c.whereMu.Lock()
	if c.where == nil || len(c.where) >= whereEntries {
		c.where = make(map[whereKey]whereEntry)
	}
	c.where[key] = whereEntry{addr: m.Server, expires: time.Now().Add(whereTTL)}
	c.whereMu.Unlock()
	return m.Server, nil
}

// forget drops what the location cache says about fileID, after its
// storage failed or the file was deleted.
func (c *Client) forget(fileID string) {
	c.whereMu.Lock()
	delete(c.where, whereKey{TrackerProtoCmdServiceQueryFetchOne, fileID})
	delete(c.where, whereKey{TrackerProtoCmdServiceQueryUpdate, fileID})
	c.whereMu.Unlock()
}

// QueryFetchAll lists every storage that holds fileID (QUERY_FETCH_ALL).
func (c *Client) QueryFetchAll(ctx context.Context, fileID string) ([]ServerAddr, error) {
	id, err := ParseFileID(fileID)
	if err != nil {
		return nil, err
	}
	var m QueryFetchAllResponse
	if err := c.queryFile(ctx, TrackerProtoCmdServiceQueryFetchAll, id, decodeInto(&m, DecodeQueryFetchAllResponse)); err != nil {
		return nil, err
	}
	return m.Servers, nil
}

// Upload stores size bytes from r as a new file in group ("" lets the
// tracker choose) and returns its file ID. ext, without the dot, goes into
// the new name; one longer than 6 bytes is refused.
func (c *Client) Upload(ctx context.Context, group, ext string, r io.Reader, size int64) (string, error) {
	return c.upload(ctx, StorageProtoCmdUploadFile, group, ext, r, size)
}

// UploadAppender is Upload for an appender file, which Append, Modify and
// Truncate can change later.
func (c *Client) UploadAppender(ctx context.Context, group, ext string, r io.Reader, size int64) (string, error) {
	return c.upload(ctx, StorageProtoCmdUploadAppenderFile, group, ext, r, size)
}

func (c *Client) upload(ctx context.Context, cmd byte, group, ext string, r io.Reader, size int64) (string, error) {
	if size < 0 {
		return "", fmt.Errorf("fdfs: negative upload size %d", size)
	}
	if ext != "" && !ValidExt(ext) {
		return "", fmt.Errorf("fdfs: extension %q: want at most %d bytes of letters, digits, '-', '_' and '.'", ext, FdfsFileExtNameMaxLen)
	}
	st, reused, err := c.storeFor(ctx, group)
	if err != nil {
		return "", err
	}
	send := func(st StorageAddr) (string, error) {
		prefix := UploadFileRequest{StorePathIndex: st.StorePathIndex, FileSize: size, Ext: ext}.Append(nil)
		var m FileIDResponse
		err := c.exchange(ctx, st.ServerAddr.String(), request{cmd: cmd, body: prefix, content: r, contentLen: size,
			handle: readBody(decodeInto(&m, DecodeFileIDResponse))})
		return m.FileID(), err
	}
	id, err := send(st)
	if err != nil && reused {
		c.forgetStore(group, st)
		// The storage may be full or gone since the tracker named it.
		// An upload it refused (a status: nothing was stored) whose
		// content can be read again from the start goes to where the
		// tracker says now; an unreachable one takes the path below.
		if seeker, ok := r.(io.Seeker); ok && isStatus(err) {
			if _, serr := seeker.Seek(0, io.SeekStart); serr == nil {
				if fresh, qerr := c.QueryStore(ctx, group); qerr == nil {
					st = fresh
					id, err = send(st)
				}
			}
		}
	}
	if !isDialError(err) {
		return id, err
	}
	// The storage named cannot be reached (the tracker has not noticed
	// yet). Nothing of r was read, so another writable storage can take it.
	all, qerr := c.QueryStoreAll(ctx, group)
	if qerr != nil {
		return "", err
	}
	for _, other := range all {
		if other.ServerAddr == st.ServerAddr {
			continue
		}
		c.cfg.Logger.Warn("fdfs: uploading to another storage", "storage", other.ServerAddr.String(), "after", err)
		id, err = send(other)
		if !isDialError(err) {
			return id, err
		}
	}
	return "", err
}

// storeFor names the storage a new file of group goes to: the tracker's
// answer, or within Config.StoreReuse one it gave before (reused is then
// set).
func (c *Client) storeFor(ctx context.Context, group string) (st StorageAddr, reused bool, err error) {
	if c.cfg.StoreReuse <= 0 {
		st, err = c.QueryStore(ctx, group)
		return st, false, err
	}
	c.storesMu.Lock()
	e, ok := c.stores[group]
	c.storesMu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.addr, true, nil
	}
	st, err = c.QueryStore(ctx, group)
	if err != nil {
		return st, false, err
	}
	c.storesMu.Lock()
	if c.stores == nil {
		c.stores = make(map[string]storeEntry)
	}
	c.stores[group] = storeEntry{addr: st, expires: time.Now().Add(c.cfg.StoreReuse)}
	c.storesMu.Unlock()
	return st, false, nil
}

// forgetStore drops a reused QUERY_STORE answer after an upload to it failed.
func (c *Client) forgetStore(group string, st StorageAddr) {
	c.storesMu.Lock()
	if e, ok := c.stores[group]; ok && e.addr == st {
		delete(c.stores, group)
	}
	c.storesMu.Unlock()
}

func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

// updateTarget parses fileID and finds the storage that may change it.
func (c *Client) updateTarget(ctx context.Context, fileID string) (FileID, string, error) {
	id, err := ParseFileID(fileID)
	if err != nil {
		return FileID{}, "", err
	}
	if a, ok := c.directUpdate(ctx, id); ok {
		return id, a.String(), nil
	}
	s, err := c.QueryUpdate(ctx, fileID)
	if err != nil {
		return FileID{}, "", err
	}
	return id, s.String(), nil
}

// updateExchange runs a change on the storage QUERY_UPDATE named and forgets
// that answer when the storage could not be reached.
func (c *Client) updateExchange(ctx context.Context, id FileID, addr string, req request) error {
	err := c.exchange(ctx, addr, req)
	if retryable(err) {
		c.forget(id.String())
		c.markDown(addr)
	}
	return err
}

// Append adds size bytes from r to the end of an appender file.
func (c *Client) Append(ctx context.Context, fileID string, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("fdfs: append of negative size %d", size)
	}
	id, addr, err := c.updateTarget(ctx, fileID)
	if err != nil {
		return err
	}
	prefix := AppendFileRequest{Filename: id.Remote, Size: size}.Append(nil)
	return c.updateExchange(ctx, id, addr, request{cmd: StorageProtoCmdAppendFile, body: prefix, content: r, contentLen: size})
}

// Modify overwrites size bytes of an appender file at off with bytes from
// r. off may be the file's size (then it appends), not beyond.
func (c *Client) Modify(ctx context.Context, fileID string, off int64, r io.Reader, size int64) error {
	if off < 0 || size < 0 {
		return fmt.Errorf("fdfs: modify at %d, %d bytes: negative", off, size)
	}
	id, addr, err := c.updateTarget(ctx, fileID)
	if err != nil {
		return err
	}
	prefix := ModifyFileRequest{Filename: id.Remote, Offset: off, Size: size}.Append(nil)
	return c.updateExchange(ctx, id, addr, request{cmd: StorageProtoCmdModifyFile, body: prefix, content: r, contentLen: size})
}

// Truncate sets the size of an appender file.
func (c *Client) Truncate(ctx context.Context, fileID string, size int64) error {
	if size < 0 {
		return fmt.Errorf("fdfs: truncate to negative size %d", size)
	}
	id, addr, err := c.updateTarget(ctx, fileID)
	if err != nil {
		return err
	}
	return c.updateExchange(ctx, id, addr, request{cmd: StorageProtoCmdTruncateFile, body: TruncateFileRequest{Filename: id.Remote, Size: size}.Append(nil)})
}

// RegenerateAppenderFilename turns an appender file into a normal one with
// a new name (V6.02+) and returns the new file ID.
func (c *Client) RegenerateAppenderFilename(ctx context.Context, fileID string) (string, error) {
	id, addr, err := c.updateTarget(ctx, fileID)
	if err != nil {
		return "", err
	}
	var m FileIDResponse
	err = c.updateExchange(ctx, id, addr, request{cmd: StorageProtoCmdRegenerateAppenderFilename,
		body: RegenerateAppenderFilenameRequest{Filename: id.Remote}.Append(nil), handle: readBody(decodeInto(&m, DecodeFileIDResponse))})
	if err != nil {
		return "", err
	}
	return m.FileID(), nil
}

// Delete removes a file.
func (c *Client) Delete(ctx context.Context, fileID string) error {
	id, addr, err := c.updateTarget(ctx, fileID)
	if err != nil {
		return err
	}
	err = c.updateExchange(ctx, id, addr, request{cmd: StorageProtoCmdDeleteFile, body: FileRequest{Group: id.Group, Filename: id.Remote}.Append(nil)})
	c.forget(id.String())
	return err
}

// SetMetadata replaces (MetaOverwrite) or merges into (MetaMerge) the
// metadata of a file. The entries go out sorted by name.
func (c *Client) SetMetadata(ctx context.Context, fileID string, meta map[string]string, flag byte) error {
	return c.SetMetadataEntries(ctx, fileID, MetaFromMap(meta), flag)
}

// SetMetadataEntries is SetMetadata with the entries sent in the order
// given, as upstream's tools send them.
func (c *Client) SetMetadataEntries(ctx context.Context, fileID string, meta []MetaEntry, flag byte) error {
	if flag != MetaOverwrite && flag != MetaMerge {
		return fmt.Errorf("fdfs: metadata flag %q is neither 'O' nor 'M'", flag)
	}
	for _, e := range meta {
		if e.Name == "" || len(e.Name) > FdfsMaxMetaNameLen || len(e.Value) > FdfsMaxMetaValueLen ||
			strings.ContainsAny(e.Name+e.Value, string([]byte{FdfsRecordSeparator, FdfsFieldSeparator})) {
			return fmt.Errorf("fdfs: metadata %q: names are 1 to %d bytes, values up to %d, without bytes 0x01 and 0x02",
				e.Name, FdfsMaxMetaNameLen, FdfsMaxMetaValueLen)
		}
	}
	id, addr, err := c.updateTarget(ctx, fileID)
	if err != nil {
		return err
	}
	body := SetMetadataRequest{Flag: flag, Group: id.Group, Filename: id.Remote, Meta: meta}.Append(nil)
	return c.updateExchange(ctx, id, addr, request{cmd: StorageProtoCmdSetMetadata, body: body})
}

// fetchServers runs op on a storage the group's list names for reading
// id (direct.go) or else the one the tracker names and, when that storage
// cannot be reached, on the others that hold it. A storage tried already
// is not tried again.
func (c *Client) fetchServers(ctx context.Context, id FileID, op func(addr string) error) error {
	fileID := id.String()
	var tried ServerAddr
	var triedErr error
	if a, ok := c.directRead(ctx, id); ok {
		err := op(a.String())
		if !c.directFailed(a.String(), err) {
			return err
		}
		c.cfg.Logger.Debug("fdfs: asking the tracker after a direct read failed", "file", fileID, "storage", a.String(), "err", err)
		tried, triedErr = a, err
	}
	first, err := c.QueryFetch(ctx, fileID)
	if err != nil {
		return err
	}
	if first == tried {
		err = triedErr
	} else {
		err = op(first.String())
	}
	if !retryable(err) {
		return err
	}
	c.forget(fileID)
	all, qerr := c.QueryFetchAll(ctx, fileID)
	if qerr != nil {
		return err
	}
	for _, s := range all {
		if s == first || s == tried {
			continue
		}
		c.cfg.Logger.Warn("fdfs: reading from another storage", "file", fileID, "storage", s.String(), "after", err)
		err = op(s.String())
		if !retryable(err) {
			return err
		}
	}
	return err
}

// GetMetadata returns the metadata of a file. Like upstream, a storage
// answers ENOENT both for a missing file and for one that never had any.
func (c *Client) GetMetadata(ctx context.Context, fileID string) (map[string]string, error) {
	id, err := ParseFileID(fileID)
	if err != nil {
		return nil, err
	}
	var entries []MetaEntry
	err = c.fetchServers(ctx, id, func(addr string) error {
		return c.exchange(ctx, addr, request{cmd: StorageProtoCmdGetMetadata, body: FileRequest{Group: id.Group, Filename: id.Remote}.Append(nil),
			handle: readBody(decodeInto(&entries, DecodeMetadata))})
	})
	if err != nil {
		return nil, err
	}
	return MetaToMap(entries), nil
}

// QueryFileInfo asks a storage for a file's size, creation time, CRC32 and
// source address.
func (c *Client) QueryFileInfo(ctx context.Context, fileID string) (QueryFileInfoResponse, error) {
	id, err := ParseFileID(fileID)
	if err != nil {
		return QueryFileInfoResponse{}, err
	}
	var m QueryFileInfoResponse
	err = c.fetchServers(ctx, id, func(addr string) error {
		return c.exchange(ctx, addr, request{cmd: StorageProtoCmdQueryFileInfo, body: FileRequest{Group: id.Group, Filename: id.Remote}.Append(nil),
			handle: readBody(decodeInto(&m, DecodeQueryFileInfoResponse))})
	})
	if err != nil {
		return QueryFileInfoResponse{}, err
	}
	return m, nil
}

// Download streams length bytes of fileID from off (length 0: to the end)
// into w and returns how many it wrote. If the storage fails part way, the
// rest comes from another storage that holds the file, so w sees each byte
// once. Nothing is buffered beyond a copy buffer.
func (c *Client) Download(ctx context.Context, fileID string, off, length int64, w io.Writer) (int64, error) {
	if off < 0 || length < 0 {
		return 0, fmt.Errorf("fdfs: download at %d, %d bytes: negative", off, length)
	}
	id, err := ParseFileID(fileID)
	if err != nil {
		return 0, err
	}
	var total int64
	err = c.fetchServers(ctx, id, func(addr string) error {
		if length > 0 && total == length {
			return nil
		}
		rest := int64(0)
		if length > 0 {
			rest = length - total
		}
		req := DownloadFileRequest{Offset: off + total, Length: rest, Group: id.Group, Filename: id.Remote}.Append(nil)
		maxResp := int64(math.MaxInt64)
		if rest > 0 {
			maxResp = rest
		}
		return c.exchange(ctx, addr, request{cmd: StorageProtoCmdDownloadFile, body: req, maxResp: maxResp,
			handle: func(h Header, r io.Reader) error {
				n, err := copyDownload(w, r)
				total += n
				if err == nil && n < h.Length {
					err = io.ErrUnexpectedEOF
				}
				if err != nil {
					return fmt.Errorf("%s at %d: %w", fileID, off+total, err)
				}
				return nil
			}})
	})
	return total, err
}
