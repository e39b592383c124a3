// Command loadmix is the load case of scripts/bench.sh: writers and
// readers on a directory at once for a while, files of random sizes, every
// read checked against what was written. It prints the files written and
// read and exits non-zero on the first difference or error.
//
//	loadmix -dir DIR [-writers 16] [-readers 16] [-duration 30s] [-min 1024] [-max 4194304]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// content is the bytes of a file of size n made from seed: the same seed
// and size always give the same bytes, so a reader can check a file
// without keeping a copy.
func content(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

type file struct {
	seed uint64
	size int
}

func main() {
	dir := flag.String("dir", "", "directory to write in (on the mount)")
	writers := flag.Int("writers", 16, "writers")
	readers := flag.Int("readers", 16, "readers")
	duration := flag.Duration("duration", 30*time.Second, "how long")
	minSize := flag.Int("min", 1<<10, "smallest file")
	maxSize := flag.Int("max", 4<<20, "largest file")
	keep := flag.Int("keep", 8, "files each writer keeps; older ones are removed")
	flag.Parse()
	if *dir == "" || *minSize <= 0 || *maxSize < *minSize {
		fmt.Fprintln(os.Stderr, "loadmix: want -dir and 0 < -min <= -max")
		os.Exit(2)
	}
	var (
		mu    sync.Mutex
		files = map[string]file{}
		names []string
	)
	var written, read atomic.Int64
	errc := make(chan error, *writers+*readers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range *writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			sub := filepath.Join(*dir, fmt.Sprintf("w%02d", w))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				errc <- err
				return
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f := file{seed: rng.Uint64(), size: *minSize + rng.IntN(*maxSize-*minSize+1)}
				p := filepath.Join(sub, fmt.Sprintf("f%06d", i))
				if err := os.WriteFile(p, content(f.seed, f.size), 0o644); err != nil {
					errc <- fmt.Errorf("writing %s: %w", p, err)
					return
				}
				written.Add(1)
				old := filepath.Join(sub, fmt.Sprintf("f%06d", i-*keep))
				mu.Lock()
				files[p] = f
				names = append(names, p)
				_, had := files[old]
				delete(files, old)
				mu.Unlock()
				if had {
					if err := os.Remove(old); err != nil {
						errc <- fmt.Errorf("removing %s: %w", old, err)
						return
					}
				}
			}
		}()
	}
	for r := range *readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				if len(names) == 0 {
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				p := names[rng.IntN(len(names))]
				f, ok := files[p]
				mu.Unlock()
				if !ok {
					continue
				}
				b, err := os.ReadFile(p)
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed since
				}
				if err != nil {
					errc <- fmt.Errorf("reading %s: %w", p, err)
					return
				}
				if !bytes.Equal(b, content(f.seed, f.size)) {
					errc <- fmt.Errorf("%s: %d bytes read back differ from the %d written", p, len(b), f.size)
					return
				}
				read.Add(1)
			}
		}()
	}
	var err error
	select {
	case err = <-errc:
	case <-time.After(*duration):
	}
	close(stop)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadmix:", err)
		os.Exit(1)
	}
	fmt.Printf("%d written, %d read back\n", written.Load(), read.Load())
}
