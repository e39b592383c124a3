package fdfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fixture37Lines are the two lines fixture 37 carries (its README: a .jpg
// and an appender .txt remain; a deleted .txt is absent).
var fixture37Lines = []BinlogLine{
	{Timestamp: 1796226660, Op: 'C', Filename: "M00/00/00/fwAAAWsQPmSAMBhdAAALuCOqFv4748.jpg"},
	{Timestamp: 1796226660, Op: 'C', Filename: "M00/00/00/fwAAAWsQPmSEDkjNAAAAAOQ2tIA256.txt"},
}

// streamOf builds a stream body: the lines, then the 8-byte length.
func streamOf(lines ...BinlogLine) []byte {
	var b []byte
	for _, l := range lines {
		b = l.Append(b)
	}
	return appendInt64(b, int64(len(b)))
}

func readAllLines(r io.Reader) ([]BinlogLine, error) {
	br := NewBinlogReader(r)
	var out []BinlogLine
	for {
		l, err := br.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
}

func TestBinlogFixture37Decodes(t *testing.T) {
	fx := loadFixture(t, "37")
	if fx.response.header.Length != InfiniteFileSize || fx.response.header.Status != 0 {
		t.Fatalf("fixture header %v", fx.response.header)
	}
	lines, err := readAllLines(bytes.NewReader(fx.response.body))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lines, fixture37Lines) {
		t.Fatalf("lines %+v\nwant %+v", lines, fixture37Lines)
	}
	if got := streamOf(lines...); !bytes.Equal(got, fx.response.body) {
		t.Fatalf("re-encoded stream differs from the capture:\n% x\n% x", got, fx.response.body)
	}
	req, err := DecodeFetchOnePathBinlogRequest(fx.request.body)
	if err != nil || req != (FetchOnePathBinlogRequest{Group: "group3", StorePathIndex: 0}) {
		t.Fatalf("request %+v, %v", req, err)
	}
}

func TestBinlogLinks(t *testing.T) {
	l := BinlogLine{Timestamp: 5, Op: 'l', Filename: "M01/00/00/fwAAAWsQPmSAMBhdAAALuCOqFv4748.jpg", Target: "M01/00/01/fwAAAWsQPmSEDkjNAAAAAOQ2tIA256.txt"}
	got, err := readAllLines(bytes.NewReader(streamOf(l)))
	if err != nil || len(got) != 1 || got[0] != l || !got[0].IsLink() || got[0].IsSource() {
		t.Fatalf("%+v, %v", got, err)
	}
	empty, err := readAllLines(bytes.NewReader(streamOf()))
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty stream: %+v, %v", empty, err)
	}
}

// TestBinlogMalformed: every way a stream can be wrong is an error, after
// whatever lines came before it; none ends as a success.
func TestBinlogMalformed(t *testing.T) {
	good := streamOf(fixture37Lines...)
	lines := good[:len(good)-8]
	withTrailer := func(b []byte, n int64) []byte { return appendInt64(append([]byte(nil), b...), n) }
	tests := []struct {
		name     string
		body     []byte
		protocol bool // wraps ErrProtocol; otherwise io.ErrUnexpectedEOF
	}{
		{"trailer too small", withTrailer(lines, int64(len(lines))-1), true},
		{"trailer too large", withTrailer(lines, int64(len(lines))+1), true},
		{"cut in the trailer", good[:len(good)-3], false},
		{"no trailer", lines, false},
		{"cut in a line", good[:40], false},
		{"empty", nil, false},
		{"bad operation", streamOf(BinlogLine{Timestamp: 1, Op: 'D', Filename: fixture37Lines[0].Filename}), true},
		{"bad name", streamOf(BinlogLine{Timestamp: 1, Op: 'C', Filename: "M00/00/00/nope"}), true},
		{"link without target", withTrailer([]byte("1 L "+fixture37Lines[0].Filename+"\n"), int64(len(fixture37Lines[0].Filename)+5)), true},
		{"file with a target", withTrailer([]byte("1 C "+fixture37Lines[0].Filename+" x\n"), int64(len(fixture37Lines[0].Filename)+7)), true},
		{"timestamp not decimal", withTrailer([]byte("1x C "+fixture37Lines[0].Filename+"\n"), int64(len(fixture37Lines[0].Filename)+6)), true},
		{"empty line", withTrailer([]byte("\n"), 1), true},
		{"line too long", withTrailer(bytes.Repeat([]byte("1"), 4096), 4096), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAllLines(bytes.NewReader(tt.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.protocol != errors.Is(err, ErrProtocol) || !tt.protocol && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v: protocol=%v, want %v", err, errors.Is(err, ErrProtocol), tt.protocol)
			}
		})
	}
}

// TestBinlogReaderManyLines reads a stream far larger than the reader's
// buffer, arriving in odd-sized pieces, so lines and the trailer straddle
// every read boundary.
func TestBinlogReaderManyLines(t *testing.T) {
	const n = 20000
	var want []BinlogLine
	for i := range n {
		l := fixture37Lines[i%2]
		l.Timestamp = int64(i)
		if i%7 == 0 {
			l.Op, l.Target = 'L', fixture37Lines[1].Filename
		}
		want = append(want, l)
	}
	got, err := readAllLines(&choppyReader{b: streamOf(want...)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d lines, want %d (or they differ)", len(got), len(want))
	}
}

// choppyReader hands out 1 to 97 bytes per Read.
type choppyReader struct {
	b []byte
	n uint
}

func (r *choppyReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	r.n = r.n*31 + 7
	k := min(len(p), len(r.b), int(r.n%97)+1)
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

// streamServer answers FETCH_ONE_PATH_BINLOG with head then body, then
// closes the connection as a storage does.
func streamServer(t *testing.T, resp []byte) *fakeServer {
	return newFakeServer(t, func(fc *fakeConn) {
		if _, err := fc.readRequest(); err != nil {
			return
		}
		fc.Write(resp)
	})
}

func collect(c *Client, addr string, index int) ([]BinlogLine, error) {
	var got []BinlogLine
	err := c.FetchOnePathBinlog(context.Background(), addr, "group3", index, func(l BinlogLine) error {
		got = append(got, l)
		return nil
	})
	return got, err
}

// TestFetchOnePathBinlogCaptured runs the call against the captured
// answers: the request goes out byte for byte as captured, the lines come
// back, and the connection is closed, never pooled.
func TestFetchOnePathBinlogCaptured(t *testing.T) {
	fx := loadFixture(t, "37")
	s := streamServer(t, fx.response.raw)
	c := testClient(t, Config{Trackers: []string{s.Addr()}})
	got, err := collect(c, s.Addr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fixture37Lines) {
		t.Fatalf("lines %+v", got)
	}
	if reqs := s.Requests(); len(reqs) != 1 || !bytes.Equal(reqs[0].raw, fx.request.raw) {
		t.Fatalf("request % x, want % x", reqs[0].raw, fx.request.raw)
	}
	if n := c.OpenConns(); n != 0 {
		t.Fatalf("%d connections open after the stream", n)
	}

	bad := loadFixture(t, "38")
	s38 := streamServer(t, bad.response.raw)
	_, err = collect(c, s38.Addr(), 7)
	var se *StatusError
	if !errors.As(err, &se) || !errors.Is(err, syscall.EINVAL) || se.Cmd != StorageProtoCmdFetchOnePathBinlog {
		t.Fatalf("bad index: %v", err)
	}
	if reqs := s38.Requests(); len(reqs) != 1 || !bytes.Equal(reqs[0].raw, bad.request.raw) {
		t.Fatalf("request % x, want % x", reqs[0].raw, bad.request.raw)
	}
	if n := c.OpenConns(); n != 0 {
		t.Fatalf("%d connections open after a status", n)
	}
}

func TestFetchOnePathBinlogFailures(t *testing.T) {
	fx := loadFixture(t, "37")
	head := fx.response.raw[:HeaderSize]
	t.Run("short stream", func(t *testing.T) {
		s := streamServer(t, fx.response.raw[:len(fx.response.raw)-5])
		c := testClient(t, Config{Trackers: []string{s.Addr()}})
		got, err := collect(c, s.Addr(), 0)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 1 {
			t.Fatalf("%d lines, %v", len(got), err)
		}
	})
	t.Run("finite length", func(t *testing.T) {
		s := streamServer(t, respFrame(0, fx.response.body))
		c := testClient(t, Config{Trackers: []string{s.Addr()}})
		if _, err := collect(c, s.Addr(), 0); !errors.Is(err, ErrProtocol) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("caller error", func(t *testing.T) {
		s := streamServer(t, fx.response.raw)
		c := testClient(t, Config{Trackers: []string{s.Addr()}})
		stop := errors.New("enough")
		err := c.FetchOnePathBinlog(context.Background(), s.Addr(), "group3", 0, func(BinlogLine) error { return stop })
		if err != stop {
			t.Fatalf("%v", err)
		}
	})
	t.Run("silent storage times out", func(t *testing.T) {
		s := newFakeServer(t, func(fc *fakeConn) {
			fc.readRequest()
			fc.Write(head)
			fc.Write([]byte("1796226660 C "))
			io.Copy(io.Discard, fc) // until the client gives up
		})
		c := testClient(t, Config{Trackers: []string{s.Addr()}, NetworkTimeout: 200 * time.Millisecond})
		err := callWithin(t, 3*time.Second, func() error { _, err := collect(c, s.Addr(), 0); return err })
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		s := newFakeServer(t, func(fc *fakeConn) {
			fc.readRequest()
			fc.Write(head)
			io.Copy(io.Discard, fc)
		})
		c := testClient(t, Config{Trackers: []string{s.Addr()}, NetworkTimeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		err := callWithin(t, 3*time.Second, func() error {
			return c.FetchOnePathBinlog(ctx, s.Addr(), "group3", 0, func(BinlogLine) error { return nil })
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		c := testClient(t, Config{Trackers: []string{"127.0.0.1:1"}})
		if err := c.FetchOnePathBinlog(context.Background(), "127.0.0.1:1", "no/group", 0, nil); err == nil || !strings.Contains(err.Error(), "group") {
			t.Fatalf("%v", err)
		}
		if err := c.FetchOnePathBinlog(context.Background(), "127.0.0.1:1", "g", 256, nil); err == nil {
			t.Fatal("index 256 accepted")
		}
	})
}

func FuzzDecodeFetchOnePathBinlogRequest(f *testing.F) {
	fuzzDecoder(f, DecodeFetchOnePathBinlogRequest, enc[FetchOnePathBinlogRequest])
}

func FuzzDecodeBinlogLine(f *testing.F) {
	for _, l := range fixture37Lines {
		f.Add(bytes.TrimSuffix(l.Append(nil), []byte("\n")))
	}
	fuzzDecoder(f, DecodeBinlogLine, func(l BinlogLine) []byte { return bytes.TrimSuffix(l.Append(nil), []byte("\n")) })
}

// FuzzBinlogReader: a stream the reader accepts re-encodes to the same
// bytes, and no input makes it panic or loop.
func FuzzBinlogReader(f *testing.F) {
	seedFromFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, err := readAllLines(&choppyReader{b: b})
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v wraps neither ErrProtocol nor io.ErrUnexpectedEOF", err)
			}
			return
		}
		if again := streamOf(lines...); !bytes.Equal(again, b) {
			t.Fatalf("accepted % x, re-encodes to % x", b, again)
		}
	})
}
