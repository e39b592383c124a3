package fdfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one TCP connection to a tracker or storage. Every read and write
// gets its own deadline of NetworkTimeout (cut short by the context's), so a
// long streamed upload never times out while bytes keep moving, and a
// silent peer never hangs a caller for longer than the timeout.
type conn struct {
	nc       net.Conn
	br       *bufio.Reader
	addr     string
	timeout  time.Duration
	deadline time.Time // the context's, or zero
	lastUsed time.Time
	reused   bool // came out of the pool rather than from a dial
	broken   bool // out of step with its peer even if the call ended in a status
	// sent and received count bytes of the current exchange.
	sent, received int64

	// mu orders deadline changes: without it a cancellation that forces
	// the deadline into the past could be undone by the refresh of the
	// next read or write, and the call would run on until the timeout.
	mu      sync.Mutex
	aborted bool // guarded by mu; set once, the conn is then discarded
}

// errAborted is what I/O on a connection returns after its call's context
// was cancelled; callers report the context's error instead.
var errAborted = errors.New("fdfs: call aborted")

func (c *conn) refresh() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		return errAborted
	}
	d := time.Now().Add(c.timeout)
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		d = c.deadline
	}
	return c.nc.SetDeadline(d)
}

// abort makes the I/O in progress return at once and any later I/O fail.
func (c *conn) abort() {
	c.mu.Lock()
	c.aborted = true
	c.nc.SetDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

// watch aborts c when ctx is done. The returned stop reports false when
// that has happened (or is happening): c must then be discarded.
func (c *conn) watch(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, c.abort)
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.refresh(); err != nil {
		return 0, err
	}
	n, err := c.br.Read(p)
	c.received += int64(n)
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.refresh(); err != nil {
		return 0, err
	}
	n, err := c.nc.Write(p)
	c.sent += int64(n)
	return n, err
}

// pool keeps idle connections to one address, newest last.
type pool struct {
	mu     sync.Mutex
	idle   []*conn // guarded by mu
	closed bool    // guarded by mu; a put after close discards
}

// pools holds one pool per address and the counters the leak tests read.
type pools struct {
	cfg    Config
	dialer net.Dialer
	open   atomic.Int64 // connections open now, idle or in use

	mu     sync.Mutex
	byAddr map[string]*pool
	closed bool
}

func newPools(cfg Config) *pools {
	return &pools{cfg: cfg, dialer: net.Dialer{Timeout: cfg.ConnectTimeout}, byAddr: map[string]*pool{}}
}

// errPoolClosed is returned after Close.
var errPoolClosed = errors.New("fdfs: client closed")

// dialError marks a failure to connect, which callers may answer by trying
// another server: no request reached the peer.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (p *pools) pool(addr string) (*pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolClosed
	}
	pl := p.byAddr[addr]
	if pl == nil {
		pl = &pool{}
		p.byAddr[addr] = pl
	}
	return pl, nil
}

// get returns a healthy connection to addr: a pooled one (tested with
// ACTIVE_TEST first if it sat idle for a while) or a new one.
func (p *pools) get(ctx context.Context, addr string) (*conn, error) {
	pl, err := p.pool(addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	for {
		pl.mu.Lock()
		n := len(pl.idle)
		if n == 0 {
			pl.mu.Unlock()
			break
		}
		c := pl.idle[n-1]
		pl.idle = pl.idle[:n-1]
		pl.mu.Unlock()
		idle := time.Since(c.lastUsed)
		if idle > p.cfg.MaxIdleTime {
			p.discard(c)
			continue
		}
		c.deadline = deadline
		c.reused = true
		if idle > p.cfg.IdleTestAge {
			stop := c.watch(ctx)
			err := activeTest(c, p.cfg.MaxBodySize)
			if !stop() || err != nil {
				p.discard(c)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				continue
			}
		}
		return c, nil
	}
	nc, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &dialError{fmt.Errorf("fdfs: connect %s: %w", addr, err)}
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	p.open.Add(1)
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), addr: addr, timeout: p.cfg.NetworkTimeout, deadline: deadline}, nil
}

// put returns c to its pool, or closes it when the exchange that used it
// failed in any way but a clean error status: such a connection may be out
// of step with its peer.
func (p *pools) put(c *conn, err error) {
	var se *StatusError
	if c.broken || err != nil && !errors.As(err, &se) {
		p.discard(c)
		return
	}
	c.lastUsed = time.Now()
	c.deadline = time.Time{}
	pl, perr := p.pool(c.addr)
	if perr != nil {
		p.discard(c)
		return
	}
	pl.mu.Lock()
	if pl.closed || len(pl.idle) >= p.cfg.MaxIdlePerServer {
		pl.mu.Unlock()
		p.discard(c)
		return
	}
	pl.idle = append(pl.idle, c)
	pl.mu.Unlock()
}

func (p *pools) discard(c *conn) {
	c.nc.Close()
	p.open.Add(-1)
}

// close closes every idle connection; connections in use close when they
// come back.
func (p *pools) close() {
	p.mu.Lock()
	p.closed = true
	all := p.byAddr
	p.byAddr = map[string]*pool{}
	p.mu.Unlock()
	for _, pl := range all {
		pl.mu.Lock()
		idle := pl.idle
		pl.idle = nil
		pl.closed = true
		pl.mu.Unlock()
		for _, c := range idle {
			// Say goodbye as upstream's pooled clients do; errors don't matter.
			c.nc.SetDeadline(time.Now().Add(100 * time.Millisecond))
			c.nc.Write(Header{Cmd: FdfsProtoCmdQuit}.Append(nil))
			p.discard(c)
		}
	}
}

// activeTest sends ACTIVE_TEST and expects an empty success.
func activeTest(c *conn, maxBody int64) error {
	if _, err := c.Write(Header{Cmd: FdfsProtoCmdActiveTest}.Append(nil)); err != nil {
		return err
	}
	h, err := readResponseHeader(c, FdfsProtoCmdActiveTest, maxBody)
	if err != nil {
		return err
	}
	if h.Length != 0 {
		return protocolErrorf("ACTIVE_TEST answered with a %d-byte body", h.Length)
	}
	return nil
}

// readResponseHeader reads a response header, checks its command byte and
// turns a non-zero status into a *StatusError after draining the (small)
// body that may come with it, so the connection stays usable. A success
// with a body over maxBody is refused before anything is allocated for it
// (maxBody 0: any body).
func readResponseHeader(r io.Reader, cmd byte, maxBody int64) (Header, error) {
	if maxBody <= 0 {
		maxBody = math.MaxInt64
	}
	h, err := ReadHeader(r, math.MaxInt64)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("fdfs: %s: connection closed by peer: %w", CmdName(cmd), io.ErrUnexpectedEOF)
		}
		return Header{}, err
	}
	if h.Cmd != TrackerProtoCmdResp {
		return Header{}, protocolErrorf("%s: response cmd %d, want %d", CmdName(cmd), h.Cmd, TrackerProtoCmdResp)
	}
	if h.Status != 0 {
		if h.Length > 0 {
			if h.Length > 4096 {
				return Header{}, protocolErrorf("%s: error status %d with a %d-byte body", CmdName(cmd), h.Status, h.Length)
			}
			if _, err := io.CopyN(io.Discard, r, h.Length); err != nil {
				return Header{}, err
			}
		}
		return Header{}, &StatusError{Cmd: cmd, Status: h.Status}
	}
	if h.Length > maxBody {
		return Header{}, protocolErrorf("%s: body length %d over the limit of %d", CmdName(cmd), h.Length, maxBody)
	}
	return h, nil
}
