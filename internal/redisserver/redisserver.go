// Package redisserver starts a redis-server of a test's own, used as
// net/http/httptest's servers are: Start on a free loopback port, URL,
// Close. It is test support: the fdfsfs binary does not link it, and it
// imports nothing of ours, so the index tests may use it too.
package redisserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// ErrNotInstalled: there is no redis-server on PATH.
var ErrNotInstalled = errors.New("redis-server is not installed (PATH)")

// Server is one running redis-server without persistence, on 127.0.0.1.
type Server struct {
	Addr string // host:port
	URL  string // redis://Addr/0, for --meta
	cmd  *exec.Cmd
	dir  string
}

// Start starts a server on a free loopback port and waits until it answers
// PING. Another process may take the port between the probe and the
// server's bind: Start then tries another, five times in all.
func Start() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	dir, err := os.MkdirTemp("", "fdfsfs-redis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = waitPing(addr, 10*time.Second); lastErr == nil {
			return &Server{Addr: addr, URL: "redis://" + addr + "/0", cmd: cmd, dir: dir}, nil
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not answer PING: %v\n%s", lastErr, log)
}

// New starts a server for t and stops it when t's cleanups run (after the
// ones registered later, such as mounts that use it). It skips the test
// where redis-server is not installed.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	os.RemoveAll(s.dir)
}

// Ping reports whether the server at addr answers PING.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// waitPing waits until the server at addr answers PING.
func waitPing(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := Ping(addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
