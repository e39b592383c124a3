package localcluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"fdfsfs/fdfs"
)

// server is one listening socket with its connections: a tracker or a
// storage. It reads frames, hands them to handle and writes the answers,
// applying the cluster's fault knobs in between.
//
// Lock order: server.mu, then Cluster.mu. Neither is held across I/O.
type server struct {
	c      *Cluster
	name   string // for logs: "tracker 0", "group1 storage 0"
	log    *slog.Logger
	handle func(req *request) (response, error)

	// Connection counters, reported in the stat records like upstream's
	// connection.alloc_count/current_count/max_count.
	accepted atomic.Int64
	current  atomic.Int64
	peak     atomic.Int64

	mu      sync.Mutex // guards the fields below
	port    int        // fixed by the first listen, reused by restarts
	ln      net.Listener
	conns   map[net.Conn]struct{}
	running bool
	stopped chan struct{} // closed by stop; wakes delayed responses
	upSince time.Time
	wg      sync.WaitGroup // the accept loop and every connection
}

// maxSmallBody bounds requests that are read whole (everything but the
// content of uploads and appends). A longer one closes the connection, as
// upstream does for a package over its buffer size.
const maxSmallBody = 1 << 20

// request is one frame a server received. body yields exactly the bytes the
// header announced; whatever a handler leaves unread is drained afterwards.
type request struct {
	hdr  fdfs.Header
	body *io.LimitedReader
	peer net.Addr
}

// readAll reads the whole body, refusing one longer than maxSmallBody.
func (r *request) readAll() ([]byte, error) {
	if r.hdr.Length > maxSmallBody {
		return nil, fmt.Errorf("%w: cmd %d body of %d bytes is over %d", errTooLarge, r.hdr.Cmd, r.hdr.Length, maxSmallBody)
	}
	b := make([]byte, r.hdr.Length)
	_, err := io.ReadFull(r.body, b)
	return b, err
}

// readPrefix reads the first n bytes of the body.
func (r *request) readPrefix(n int) ([]byte, error) {
	if int64(n) > r.hdr.Length {
		return nil, syscall.EINVAL
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r.body, b)
	return b, err
}

var errTooLarge = errors.New("request too large")

// response is a handler's answer: a status, a small body, and optionally a
// stream of streamLen more bytes that stream writes (downloads).
type response struct {
	status    byte
	body      []byte
	streamLen int64
	stream    func(w io.Writer) error
	cleanup   func() // releases what stream would have used; always called
	// closeAfter closes the connection once the stream is sent: its end
	// is the end of the connection (FETCH_ONE_PATH_BINLOG).
	closeAfter bool
}

// ok answers success with a body.
func ok(body []byte) response { return response{body: body} }

// fail answers the errno an error stands for, with an empty body.
func fail(err error) response { return response{status: statusOf(err)} }

// statusOf maps an error to the errno a FastDFS server would put in the
// status byte.
func statusOf(err error) byte {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno) && errno > 0 && errno < 256:
		return byte(errno)
	case errors.Is(err, fs.ErrNotExist):
		return byte(syscall.ENOENT)
	case errors.Is(err, fs.ErrExist):
		return byte(syscall.EEXIST)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return byte(syscall.EINVAL)
	}
	return byte(syscall.EIO)
}

func newServer(c *Cluster, name string, port int, handle func(*request) (response, error)) *server {
	return &server{
		c:      c,
		name:   name,
		log:    c.log.With("server", name),
		handle: handle,
		port:   port,
		conns:  make(map[net.Conn]struct{}),
	}
}

// start listens (on the remembered port after the first time) and serves.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		return fmt.Errorf("localcluster: %s: %w", s.name, err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.ln = ln
	s.running = true
	s.stopped = make(chan struct{})
	s.upSince = time.Now()
	s.wg.Add(1)
	go s.acceptLoop(ln)
	s.log.Debug("listening", "addr", ln.Addr().String())
	return nil
}

// stop closes the listener and every connection, then waits for them.
func (s *server) stop() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	close(s.stopped)
	s.ln.Close()
	for cn := range s.conns {
		cn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.log.Debug("stopped")
}

func (s *server) isRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

func (s *server) addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("127.0.0.1:%d", s.port)
}

func (s *server) listenPort() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

func (s *server) startTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.upSince
}

// dropConnections closes every open connection but keeps listening.
func (s *server) dropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cn := range s.conns {
		cn.Close()
	}
}

func (s *server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		cn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if !s.running {
			s.mu.Unlock()
			cn.Close()
			return
		}
		s.conns[cn] = struct{}{}
		s.wg.Add(1)
		stopped := s.stopped
		s.mu.Unlock()
		s.accepted.Add(1)
		if n := s.current.Add(1); n > s.peak.Load() {
			s.peak.Store(n)
		}
		go s.serveConn(cn, stopped)
	}
}

func (s *server) serveConn(cn net.Conn, stopped chan struct{}) {
	defer func() {
		cn.Close()
		s.current.Add(-1)
		s.mu.Lock()
		delete(s.conns, cn)
		s.mu.Unlock()
		s.wg.Done()
	}()
	br := bufio.NewReaderSize(cn, 64<<10)
	var out []byte
	for {
		// Bodies that carry file content are streamed, so no limit here;
		// handlers that read a body whole apply maxSmallBody themselves.
		h, err := fdfs.ReadHeader(br, math.MaxInt64)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("read header", "err", err)
			}
			return
		}
		if h.Cmd == fdfs.FdfsProtoCmdQuit {
			return
		}
		req := &request{hdr: h, body: &io.LimitedReader{R: br, N: h.Length}, peer: cn.RemoteAddr()}
		var resp response
		if status, injected := s.c.takeFailure(h.Cmd); injected {
			resp = response{status: status}
		} else {
			resp, err = s.handle(req)
			if err != nil {
				s.log.Debug("request dropped", "cmd", fdfs.CmdName(h.Cmd), "err", err)
				return
			}
		}
		if req.body.N > 0 {
			if _, err := io.Copy(io.Discard, req.body); err != nil {
				return
			}
		}
		if !s.respond(cn, h, resp, stopped, &out) {
			return
		}
	}
}

// respond writes one answer, after the configured delay. It reports false
// when the connection must close.
func (s *server) respond(cn net.Conn, h fdfs.Header, resp response, stopped chan struct{}, outp *[]byte) bool {
	if resp.cleanup != nil {
		defer resp.cleanup()
	}
	if d := s.c.responseDelay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-stopped:
			t.Stop()
			return false
		}
	}
	if resp.status != 0 {
		resp.body, resp.stream, resp.streamLen = nil, nil, 0
	}
	out := fdfs.Header{Length: int64(len(resp.body)) + resp.streamLen, Cmd: fdfs.TrackerProtoCmdResp, Status: resp.status}.Append((*outp)[:0])
	out = append(out, resp.body...)
	if cap(out) <= 64<<10 {
		*outp = out
	}
	if _, err := cn.Write(out); err != nil {
		return false
	}
	if resp.stream != nil {
		if err := resp.stream(cn); err != nil {
			// The header promised bytes that will not come: the only
			// honest thing left is to close, as upstream does.
			s.log.Debug("stream", "cmd", fdfs.CmdName(h.Cmd), "err", err)
			return false
		}
	}
	return !resp.closeAfter
}
