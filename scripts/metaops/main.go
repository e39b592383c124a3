// Command metaops times metadata operations in one directory, for
// scripts/bench-meta.sh: it creates N empty files (open O_CREAT|O_EXCL,
// close), stats each by name, lists the directory with an lstat per entry
// (what ls -l does), and removes them. It prints one line: the operations
// per second of each phase, in that order.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// interrupted counts the calls a signal cut short (EINTR): Go's runtime
// signals its own threads, and a FUSE request that a signal interrupts
// fails with EINTR. Such a call is retried, as package os does.
var interrupted int

// retry runs call until it is not cut short by a signal. done is the error
// that means an interrupted earlier attempt did the work anyway (EEXIST
// for a create, ENOENT for an unlink).
func retry(call func() error, done syscall.Errno) error {
	err := call()
	for err == syscall.EINTR {
		interrupted++
		if err = call(); err == done {
			return nil
		}
	}
	return err
}

func main() {
	dir := flag.String("dir", "", "an empty directory to work in")
	n := flag.Int("n", 10000, "number of entries")
	flag.Parse()
	if *dir == "" || *n <= 0 {
		fmt.Fprintln(os.Stderr, "usage: metaops -dir DIR [-n N]")
		os.Exit(2)
	}
	names := make([]string, *n)
	for i := range names {
		names[i] = filepath.Join(*dir, fmt.Sprintf("f%06d", i))
	}
	phases := []struct {
		name string
		run  func() error
	}{
		{"create", func() error {
			for _, p := range names {
				fd := -1
				err := retry(func() (err error) {
					fd, err = syscall.Open(p, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o644)
					return err
				}, syscall.EEXIST)
				if err != nil {
					return fmt.Errorf("create %s: %w", p, err)
				}
				if fd < 0 {
					continue // an interrupted attempt created it
				}
				if err := syscall.Close(fd); err != nil && err != syscall.EINTR {
					return fmt.Errorf("close %s: %w", p, err)
				}
			}
			return nil
		}},
		{"stat", func() error {
			var st syscall.Stat_t
			for _, p := range names {
				if err := retry(func() error { return syscall.Stat(p, &st) }, 0); err != nil {
					return fmt.Errorf("stat %s: %w", p, err)
				}
			}
			return nil
		}},
		{"readdir+lstat", func() error {
			f, err := os.Open(*dir)
			if err != nil {
				return err
			}
			defer f.Close()
			list, err := f.Readdirnames(-1)
			if err != nil {
				return err
			}
			if len(list) != *n {
				return fmt.Errorf("readdir: %d entries, want %d", len(list), *n)
			}
			var st syscall.Stat_t
			for _, name := range list {
				if err := retry(func() error { return syscall.Lstat(filepath.Join(*dir, name), &st) }, 0); err != nil {
					return fmt.Errorf("lstat %s: %w", name, err)
				}
			}
			return nil
		}},
		{"unlink", func() error {
			for _, p := range names {
				if err := retry(func() error { return syscall.Unlink(p) }, syscall.ENOENT); err != nil {
					return fmt.Errorf("unlink %s: %w", p, err)
				}
			}
			return nil
		}},
	}
	for i, ph := range phases {
		start := time.Now()
		if err := ph.run(); err != nil {
			fmt.Fprintln(os.Stderr, ph.name+":", err)
			os.Exit(1)
		}
		if i > 0 {
			fmt.Print(" ")
		}
		fmt.Printf("%.0f", float64(*n)/time.Since(start).Seconds())
	}
	fmt.Println()
	if interrupted > 0 {
		fmt.Fprintf(os.Stderr, "metaops: %d calls interrupted by a signal (EINTR) and retried\n", interrupted)
	}
}
