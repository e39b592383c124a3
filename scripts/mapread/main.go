// Command mapread times reading a file through a shared read-only map,
// one byte per page in order, for scripts/bench.sh. It prints the
// elapsed seconds.
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	file := flag.String("file", "", "file to map")
	flag.Parse()
	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		fmt.Fprintln(os.Stderr, "empty or unreadable file:", err)
		os.Exit(1)
	}
	start := time.Now()
	b, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmap:", err)
		os.Exit(1)
	}
	var sum byte
	for i := 0; i < len(b); i += os.Getpagesize() {
		sum += b[i]
	}
	syscall.Munmap(b)
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
	if sum == 1 { // keeps the loop from being optimized away
		fmt.Fprintln(os.Stderr, "")
	}
}
