package cache

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const (
	benchSize = 16 << 20
	benchRead = 128 << 10 // the largest FUSE read
)

func openBench(b *testing.B, opts Options) *Cache {
	b.Helper()
	c, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkCachedRead reads a fully cached object in FUSE-sized pieces; its
// MB/s is to be set against BenchmarkPlainFileRead.
func BenchmarkCachedRead(b *testing.B) {
	c := openBench(b, Options{})
	f := newFakeFetcher(b, benchSize)
	f.data = content(0, benchSize)
	obj := f.object("warm")
	ctx := context.Background()
	p := make([]byte, benchRead)
	for off := int64(0); off < benchSize; off += benchRead {
		if _, err := c.ReadAt(ctx, obj, p, off); err != nil {
			b.Fatal(err)
		}
	}
	for c.Stats().InFlight != 0 {
		time.Sleep(time.Millisecond)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		for off := int64(0); off < benchSize; off += benchRead {
			if _, err := c.ReadAt(ctx, obj, p, off); err != nil {
				b.Fatal(err)
			}
		}
	}
	if f.Count() != benchSize/DefaultBlockSize {
		b.Fatalf("%d fetches; the object should have stayed cached", f.Count())
	}
}

// BenchmarkPlainFileRead reads the same bytes from one local file.
func BenchmarkPlainFileRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "plain")
	if err := os.WriteFile(path, content(0, benchSize), 0o600); err != nil {
		b.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	p := make([]byte, benchRead)
	b.SetBytes(benchSize)
	for b.Loop() {
		for off := int64(0); off < benchSize; off += benchRead {
			if _, err := file.ReadAt(p, off); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkColdRead reads an uncached 64 MiB object sequentially through a
// Reader from a fetcher that takes 5 ms to answer each block, as a remote
// storage might: readahead overlaps those waits.
func BenchmarkColdRead(b *testing.B) {
	for _, bc := range []struct {
		name      string
		readahead int
	}{{"no-readahead", -1}, {"readahead-4", 4}, {"readahead-16", 16}} {
		b.Run(bc.name, func(b *testing.B) {
			const size = 4 * benchSize
			c := openBench(b, Options{MaxBytes: 2 * size, ReadaheadBlocks: bc.readahead})
			f := newFakeFetcher(b, size)
			f.data = content(0, size)
			f.delay = 5 * time.Millisecond
			ctx := context.Background()
			p := make([]byte, benchRead)
			b.SetBytes(size)
			i := 0
			for b.Loop() {
				i++
				r := c.NewReader(f.object("cold#" + strconv.Itoa(i)))
				for off := int64(0); off < size; off += benchRead {
					if _, err := r.ReadAt(ctx, p, off); err != nil {
						b.Fatal(err)
					}
				}
				r.Close()
			}
		})
	}
}

// BenchmarkSharedReadAcrossBlocks answers 1 MiB reads that start in the
// middle of a block, as the kernel's readahead asks them, from blocks in
// the memory tier through ReadShared: what a FUSE read of a file being
// read sequentially costs the cache before the reply is written.
func BenchmarkSharedReadAcrossBlocks(b *testing.B) {
	c := openBench(b, Options{MemBytes: 2 * benchSize})
	f := newFakeFetcher(b, benchSize)
	f.data = content(0, benchSize)
	obj := f.object("across")
	ctx := context.Background()
	r := c.NewReader(obj)
	defer r.Close()
	const read = DefaultBlockSize
	p := make([]byte, read)
	pass := func() {
		for off := int64(DefaultBlockSize / 2); off+read <= benchSize; off += read {
			s, n, err := r.ReadShared(ctx, p, off)
			if err != nil || n != read {
				b.Fatal(n, err)
			}
			s.Release()
		}
	}
	pass()
	b.SetBytes(benchSize - DefaultBlockSize)
	b.ResetTimer()
	for b.Loop() {
		pass()
	}
	if f.Count() != benchSize/DefaultBlockSize {
		b.Fatalf("%d fetches; the object should have stayed in memory", f.Count())
	}
}
