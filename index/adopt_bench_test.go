package index_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"fdfsfs/index"
)

// benchAdoptFiles is how many files one adopt of the benchmark lists
// (FDFSFS_BENCH_ADOPT_N, default 100,000; the README's figures use
// 1,000,000).
func benchAdoptFiles() int {
	if n, err := strconv.Atoi(os.Getenv("FDFSFS_BENCH_ADOPT_N")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// syntheticListing yields n IDs of group in the order a storage lists them:
// a directory at a time, 100 files to a directory.
func syntheticListing(group string, n int) func(yield func(index.ByIDEntry) error) error {
	return func(yield func(index.ByIDEntry) error) error {
		for i := range n {
			leaf := i / 100
			id := fmt.Sprintf("%s/M00/%02X/%02X/fwAAAWqy%019d.jpg", group, leaf/256%256, leaf%256, i)
			if err := yield(index.ByIDEntry{FileID: id, Size: int64(i), Mtime: time.Unix(1790000000, 0)}); err != nil {
				return err
			}
		}
		return nil
	}
}

// BenchmarkAdoptBadger adopts n files into an empty Badger index on disk
// ("first"), then again ("again": all unchanged), and reports files/s and
// the Go heap in use at the end. The listing is synthetic: it measures the
// index side of `fdfsfs index adopt` (scripts/bench-adopt.sh measures the
// whole command against a local cluster).
func BenchmarkAdoptBadger(b *testing.B) {
	n := benchAdoptFiles()
	for _, run := range []string{"first", "again"} {
		b.Run(run, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				idx, err := index.OpenBadger(b.TempDir(), index.BadgerOptions{Session: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				if run == "again" {
					if _, err := index.Adopt(context.Background(), idx, "group1", syntheticListing("group1", n), index.AdoptOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				st, err := index.Adopt(context.Background(), idx, "group1", syntheticListing("group1", n), index.AdoptOptions{})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if st.Listed != n {
					b.Fatalf("listed %d of %d", st.Listed, n)
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(n)/st.Took.Seconds(), "files/s")
				b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMB")
				idx.Close()
			}
		})
	}
}
