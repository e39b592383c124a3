package localcluster

import (
	"bufio"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fdfsfs/fdfs"
)

// fixtureDir holds the frames captured from a real V6.16.1 cluster.
const fixtureDir = "../testdata/wire"

// fixture is one captured exchange: the request and response frames,
// header included.
type fixture struct {
	name     string
	request  []byte
	response []byte
}

func (f fixture) reqHeader() fdfs.Header  { return mustHeader(f.request) }
func (f fixture) respHeader() fdfs.Header { return mustHeader(f.response) }
func (f fixture) respBody() []byte        { return f.response[fdfs.HeaderSize:] }

func mustHeader(frame []byte) fdfs.Header {
	h, err := fdfs.DecodeHeader(frame)
	if err != nil {
		panic(err)
	}
	return h
}

// loadFixture reads NN-name.hex: '#' comments, a "request" line and a
// "response" line each followed by hex lines.
func loadFixture(t testing.TB, prefix string) fixture {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(fixtureDir, prefix+"-*.hex"))
	if len(matches) != 1 {
		t.Fatalf("fixture %s-*.hex: %d matches in %s", prefix, len(matches), fixtureDir)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{name: strings.TrimSuffix(filepath.Base(matches[0]), ".hex")}
	var section *[]byte
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "request":
			section = &f.request
		case line == "response":
			section = &f.response
		default:
			b, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
			if err != nil || section == nil {
				t.Fatalf("%s: bad line %q", f.name, line)
			}
			*section = append(*section, b...)
		}
	}
	if len(f.request) < fdfs.HeaderSize || len(f.response) < fdfs.HeaderSize {
		t.Fatalf("%s: missing request or response", f.name)
	}
	return f
}

// wire is a raw connection to one server, for sending exact bytes.
type wire struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialWire(t testing.TB, addr string) *wire {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &wire{t: t, c: c, br: bufio.NewReader(c)}
}

// roundTrip sends one frame and reads one response frame.
func (w *wire) roundTrip(frame []byte) (fdfs.Header, []byte) {
	w.t.Helper()
	w.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.c.Write(frame); err != nil {
		w.t.Fatalf("write: %v", err)
	}
	return w.read()
}

func (w *wire) read() (fdfs.Header, []byte) {
	w.t.Helper()
	h, err := fdfs.ReadHeader(w.br, 1<<30)
	if err != nil {
		w.t.Fatalf("read header: %v", err)
	}
	body := make([]byte, h.Length)
	if _, err := io.ReadFull(w.br, body); err != nil {
		w.t.Fatalf("read body: %v", err)
	}
	if h.Cmd != fdfs.TrackerProtoCmdResp {
		w.t.Fatalf("response cmd %d, want %d", h.Cmd, fdfs.TrackerProtoCmdResp)
	}
	return h, body
}

// call sends a request built from a command, a status byte and a body.
func (w *wire) call(cmd, status byte, body []byte) (fdfs.Header, []byte) {
	w.t.Helper()
	frame := fdfs.Header{Length: int64(len(body)), Cmd: cmd, Status: status}.Append(nil)
	return w.roundTrip(append(frame, body...))
}

// startCluster starts a cluster that Close()s at the end of the test.
func startCluster(t testing.TB, opts Options) *Cluster { return ForTest(t, opts) }

// storageOf returns the first storage of a group.
func storageOf(t testing.TB, c *Cluster, group string) *Storage {
	t.Helper()
	for _, st := range c.Storages() {
		if st.Group() == group {
			return st
		}
	}
	t.Fatalf("no storage in %s", group)
	return nil
}

// upload stores content at a storage through the wire and returns the
// remote name.
func upload(t testing.TB, st *Storage, cmd byte, ext string, content []byte) string {
	t.Helper()
	w := dialWire(t, st.Addr())
	body := fdfs.UploadFileRequest{StorePathIndex: 0, FileSize: int64(len(content)), Ext: ext}.Append(nil)
	h, resp := w.call(cmd, 0, append(body, content...))
	if h.Status != 0 {
		t.Fatalf("upload: status %d", h.Status)
	}
	m, err := fdfs.DecodeFileIDResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	if m.Group != st.Group() {
		t.Fatalf("upload answered group %q, want %q", m.Group, st.Group())
	}
	return m.Filename
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
