package fdfs_test

// Benchmarks of the client against the in-process localcluster cluster. The
// cluster runs in this process, so memory figures cover client and servers
// together. Run them once with
//
//	go test -run xxx -bench . -benchtime 1x ./fdfs/

import (
	"context"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
)

// genReader yields n bytes of a pattern computed on the fly, so a big
// upload never exists in memory as a whole.
type genReader struct{ off, n int64 }

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n-g.off {
		p = p[:g.n-g.off]
	}
	for i := range p {
		x := g.off + int64(i)
		p[i] = byte(x ^ x>>8 ^ x>>16)
	}
	g.off += int64(len(p))
	return len(p), nil
}

// heapPeak samples runtime HeapInuse until stop is called and returns the
// highest value seen, starting from a collected heap.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

func benchCluster(b *testing.B) (*localcluster.Cluster, *fdfs.Client) {
	b.Helper()
	cluster := startCluster(b, localcluster.Options{Groups: []string{"group1"}})
	cl, err := fdfs.NewClient(fdfs.Config{Trackers: []string{cluster.TrackerAddr()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	return cluster, cl
}

func BenchmarkUpload(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int64
	}{{"32MiB", 32 << 20}, {"256MiB", 256 << 20}} {
		b.Run(size.name, func(b *testing.B) {
			_, cl := benchCluster(b)
			ctx := context.Background()
			b.SetBytes(size.n)
			stop := heapPeak()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id, err := cl.Upload(ctx, "group1", "bin", &genReader{n: size.n}, size.n)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cl.Delete(ctx, id)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
		})
	}
}

func BenchmarkDownload(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int64
	}{{"32MiB", 32 << 20}, {"256MiB", 256 << 20}} {
		b.Run(size.name, func(b *testing.B) {
			_, cl := benchCluster(b)
			ctx := context.Background()
			id, err := cl.Upload(ctx, "group1", "bin", &genReader{n: size.n}, size.n)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size.n)
			stop := heapPeak()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n, err := cl.Download(ctx, id, 0, 0, io.Discard)
				if err != nil || n != size.n {
					b.Fatalf("downloaded %d bytes: %v", n, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
		})
	}
}

// BenchmarkSmallUploads uploads 1,000 files of 4 KiB per iteration, one
// after another and from 8 goroutines.
func BenchmarkSmallUploads(b *testing.B) {
	const files, size = 1000, 4 << 10
	for _, workers := range []int{1, 8} {
		b.Run(map[int]string{1: "sequential", 8: "parallel8"}[workers], func(b *testing.B) {
			_, cl := benchCluster(b)
			ctx := context.Background()
			b.SetBytes(files * size)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				var next atomic.Int64
				var wg sync.WaitGroup
				errs := make(chan error, workers)
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= files {
							if _, err := cl.Upload(ctx, "group1", "txt", &genReader{n: size}, size); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(files*b.N)/time.Since(start).Seconds(), "files/s")
			b.ReportMetric(float64(cl.OpenConns()), "conns")
		})
	}
}
