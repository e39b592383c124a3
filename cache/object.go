package cache

import (
	"context"
	"fmt"
	"io"
)

// Fetcher reads a byte range of an object from where it really lives (for
// fdfsfs, a FastDFS storage). FetchRange writes exactly length bytes starting
// at off to w and returns how many it wrote. The cache never asks for a range
// that starts at or past the object's size, nor for an empty range.
type Fetcher interface {
	FetchRange(ctx context.Context, off, length int64, w io.Writer) (int64, error)
}

// FetcherFunc lets a plain function serve as a Fetcher.
type FetcherFunc func(ctx context.Context, off, length int64, w io.Writer) (int64, error)

// FetchRange calls f.
func (f FetcherFunc) FetchRange(ctx context.Context, off, length int64, w io.Writer) (int64, error) {
	return f(ctx, off, length, w)
}

// Object is one immutable piece of content read through the cache.
//
// Key must change whenever the content does: fdfsfs builds it from the
// FastDFS file ID and a content generation, so a rewritten file never meets
// blocks cached for its previous content. The cache stores only a hash of the
// key, never the key itself.
type Object struct {
	Key   string
	Size  int64
	Fetch Fetcher
}

func (o Object) validate() error {
	if o.Size < 0 {
		return fmt.Errorf("cache: object %q has negative size %d", o.Key, o.Size)
	}
	if o.Size > 0 && o.Fetch == nil {
		return fmt.Errorf("cache: object %q has no fetcher", o.Key)
	}
	return nil
}

// blockWriter is the io.Writer a fetch fills: a fixed buffer that refuses to
// grow, so a misbehaving fetcher cannot make a block bigger than planned.
type blockWriter struct {
	buf []byte
	n   int
}

func (w *blockWriter) Write(p []byte) (int, error) {
	room := len(w.buf) - w.n
	if len(p) > room {
		copy(w.buf[w.n:], p[:room])
		w.n = len(w.buf)
		return room, fmt.Errorf("cache: fetcher wrote more than the %d bytes asked for", len(w.buf))
	}
	copy(w.buf[w.n:], p)
	w.n += len(p)
	return len(p), nil
}

// ReadFrom reads straight into the buffer, so a download needs no copy on
// the way in. More bytes than the buffer holds is an error, as in Write.
func (w *blockWriter) ReadFrom(r io.Reader) (int64, error) {
	start := w.n
	for w.n < len(w.buf) {
		k, err := r.Read(w.buf[w.n:])
		w.n += k
		if err == io.EOF {
			return int64(w.n - start), nil
		}
		if err != nil {
			return int64(w.n - start), err
		}
	}
	var probe [1]byte
	for range 100 { // readers may return 0, nil now and then, not forever
		k, err := r.Read(probe[:])
		if k > 0 {
			return int64(w.n - start), fmt.Errorf("cache: fetcher wrote more than the %d bytes asked for", len(w.buf))
		}
		if err == io.EOF {
			return int64(w.n - start), nil
		}
		if err != nil {
			return int64(w.n - start), err
		}
	}
	return int64(w.n - start), io.ErrNoProgress
}
