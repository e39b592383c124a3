package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// errInvalid stands in for the EINVAL a FastDFS storage answers to a range
// outside the file.
var errInvalid = errors.New("fake fetcher: range outside the object")

// fakeFetcher serves an object whose byte at offset i is byteAt(i), records
// every range asked for, and can be slowed down or held.
type fakeFetcher struct {
	t     testing.TB
	size  int64
	delay time.Duration // before answering each fetch
	// hold, when set, decides per fetch whether it blocks until its context
	// is cancelled.
	hold func(off int64) bool
	// gate, when set, holds every fetch until it is closed or the fetch's
	// context is done.
	gate chan struct{}
	err  error // when set, every fetch fails with it
	// data, when set, is the object's content (saving benchmarks from
	// computing it); it must equal content(0, size).
	data []byte

	mu        sync.Mutex
	calls     []fetchCall
	running   int // fetches under way
	maxActive int // the most that were ever under way at once
	cancelled int // fetches that ended because their context did
}

type fetchCall struct{ off, length int64 }

func newFakeFetcher(t testing.TB, size int64) *fakeFetcher {
	return &fakeFetcher{t: t, size: size}
}

// byteAt is the content of every fake object: it changes within a block and
// from block to block, so a misplaced copy shows.
func byteAt(off int64) byte { return byte(off*7 + off/4093) }

func content(off, length int64) []byte {
	b := make([]byte, length)
	for i := range b {
		b[i] = byteAt(off + int64(i))
	}
	return b
}

func (f *fakeFetcher) object(key string) Object {
	return Object{Key: key, Size: f.size, Fetch: f}
}

func (f *fakeFetcher) FetchRange(ctx context.Context, off, length int64, w io.Writer) (int64, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fetchCall{off, length})
	f.running++
	f.maxActive = max(f.maxActive, f.running)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	if off < 0 || length <= 0 || off >= f.size || off+length > f.size {
		f.t.Errorf("fetch of [%d, +%d) outside an object of %d bytes", off, length, f.size)
		return 0, errInvalid
	}
	if f.hold != nil && f.hold(off) {
		<-ctx.Done()
		f.mu.Lock()
		f.cancelled++
		f.mu.Unlock()
		return 0, ctx.Err()
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			f.mu.Lock()
			f.cancelled++
			f.mu.Unlock()
			return 0, ctx.Err()
		}
	}
	if f.delay > 0 {
		timer := time.NewTimer(f.delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			f.mu.Lock()
			f.cancelled++
			f.mu.Unlock()
			return 0, ctx.Err()
		}
	}
	if f.err != nil {
		return 0, f.err
	}
	var n int
	var err error
	if f.data != nil {
		n, err = w.Write(f.data[off : off+length])
	} else {
		n, err = w.Write(content(off, length))
	}
	return int64(n), err
}

func (f *fakeFetcher) Calls() []fetchCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fetchCall(nil), f.calls...)
}

func (f *fakeFetcher) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeFetcher) Cancelled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cancelled
}

func (f *fakeFetcher) MaxActive() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxActive
}

func (f *fakeFetcher) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// chunkReader hands out its bytes a few at a time, as a socket does.
type chunkReader struct {
	data  []byte
	chunk int
	err   error // after the data, instead of io.EOF
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestBlockWriterReadFrom(t *testing.T) {
	data := content(0, 100)
	broken := errors.New("connection reset")
	for _, tc := range []struct {
		name    string
		src     []byte
		err     error
		want    int64
		wantErr bool
	}{
		{name: "exact", src: data, want: 100},
		{name: "short", src: data[:60], want: 60},
		{name: "too long", src: content(0, 101), want: 100, wantErr: true},
		{name: "reader fails", src: data[:30], err: broken, want: 30, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &blockWriter{buf: make([]byte, 100)}
			n, err := w.ReadFrom(&chunkReader{data: tc.src, chunk: 7, err: tc.err})
			if n != tc.want || (err != nil) != tc.wantErr || w.n != int(tc.want) {
				t.Fatalf("ReadFrom: %d, %v; n %d", n, err, w.n)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !bytes.Equal(w.buf[:w.n], tc.src[:w.n]) {
				t.Fatal("wrong bytes")
			}
		})
	}
}
