// Command randread times random reads of a file, for scripts/bench.sh
// where fio is not installed. It prints the elapsed seconds.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

func main() {
	file := flag.String("file", "", "file to read")
	n := flag.Int("n", 1000, "number of reads")
	size := flag.Int("size", 4096, "bytes per read")
	flag.Parse()
	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < int64(*size) {
		fmt.Fprintln(os.Stderr, "file too small or unreadable:", err)
		os.Exit(1)
	}
	buf := make([]byte, *size)
	rng := rand.New(rand.NewPCG(1, 2))
	blocks := st.Size() / int64(*size)
	start := time.Now()
	for i := 0; i < *n; i++ {
		off := rng.Int64N(blocks) * int64(*size)
		if _, err := f.ReadAt(buf, off); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
}
