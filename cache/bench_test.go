package cache

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
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

// storeAsWorker stores a block the way a store worker does after a fetch:
// the write counted as under way, then written, indexed, and evicting what
// no longer fits.
func storeAsWorker(c *Cache, bid blockID, data []byte) error {
	c.index.mu.Lock()
	c.index.startWriteLocked(bid)
	c.index.mu.Unlock()
	return c.storeBlock(bid, data)
}

// BenchmarkMemoryHitsDuringEviction reads 128 KiB at a time from an object
// held in the memory tier. In "evicting", one goroutine per store worker
// meanwhile stores blocks into the full disk tier as the workers do, so that
// every store evicts a block: an open and a punched hole, or an unlink.
// No lock a hit takes is held across those syscalls, so "evicting" should
// run at the speed of "idle", less what sharing the CPUs costs: compare the
// two from one run. p99-ns and max-ns are the slowest hits.
func BenchmarkMemoryHitsDuringEviction(b *testing.B) {
	const hotSize = 4 * DefaultBlockSize
	for _, evicting := range []bool{false, true} {
		name := "idle"
		if evicting {
			name = "evicting"
		}
		b.Run(name, func(b *testing.B) {
			c := openBench(b, Options{MaxBytes: 8 * DefaultBlockSize, MemBytes: 2 * hotSize, ReadaheadBlocks: -1})
			f := newFakeFetcher(b, hotSize)
			f.data = content(0, hotSize)
			hot := f.object("hot")
			ctx := context.Background()
			p := make([]byte, benchRead)
			for off := int64(0); off < hotSize; off += benchRead {
				if _, err := c.ReadAt(ctx, hot, p, off); err != nil {
					b.Fatal(err)
				}
			}
			for c.Stats().InFlight != 0 {
				time.Sleep(time.Millisecond)
			}

			stop := make(chan struct{})
			var churn sync.WaitGroup
			if evicting {
				data := alignedBuffer(DefaultBlockSize)
				copy(data, content(0, DefaultBlockSize))
				for w := range storeWorkers {
					churn.Go(func() {
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							// 64 blocks per object: most evictions
							// punch a hole, some unlink a file.
							key := "churn" + strconv.Itoa(w) + "#" + strconv.Itoa(i/64)
							bid := blockID{obj: objectID(key), idx: int64(i % 64)}
							if err := storeAsWorker(c, bid, data); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				for c.Stats().Evictions == 0 {
					time.Sleep(time.Millisecond)
				}
			}

			lat := make([]time.Duration, 0, 1<<16)
			evictionsBefore := c.Stats().Evictions
			start := time.Now()
			b.SetBytes(benchRead)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				off := int64(i) * benchRead % hotSize
				t0 := time.Now()
				if _, err := c.ReadAt(ctx, hot, p, off); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			elapsed := time.Since(start)
			evictions := c.Stats().Evictions - evictionsBefore
			close(stop)
			churn.Wait()
			if evicting && evictions == 0 {
				b.Fatal("no eviction ran while the hits were timed")
			}
			if f.Count() != hotSize/DefaultBlockSize {
				b.Fatalf("%d fetches; the hot object should have stayed in memory", f.Count())
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
			b.ReportMetric(float64(evictions)/elapsed.Seconds(), "evictions/s")
		})
	}
}
