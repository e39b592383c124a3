package cache

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

func newTestStage(t *testing.T) (*Stage, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := newStage(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func readAll(t *testing.T, s *Stage) []byte {
	t.Helper()
	got, err := io.ReadAll(io.NewSectionReader(s, 0, s.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestStageHoles(t *testing.T) {
	s, dir := newTestStage(t)
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("stage left a name in its dir: %v", names)
	}
	const far = 8 << 20
	for _, w := range []struct {
		off  int64
		data string
	}{{far, "tail"}, {0, "head"}, {1 << 20, "middle"}} {
		if n, err := s.WriteAt([]byte(w.data), w.off); n != len(w.data) || err != nil {
			t.Fatalf("WriteAt(%d) = %d, %v", w.off, n, err)
		}
	}
	if s.Size() != far+4 {
		t.Fatalf("Size = %d, want %d", s.Size(), far+4)
	}
	want := make([]byte, far+4)
	copy(want, "head")
	copy(want[1<<20:], "middle")
	copy(want[far:], "tail")
	if !bytes.Equal(readAll(t, s), want) {
		t.Fatal("contents differ")
	}
	// The holes take no space: the data lives on disk, sparsely.
	var st syscall.Stat_t
	if err := syscall.Fstat(int(s.file.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if allocated := st.Blocks * 512; allocated >= 1<<20 {
		t.Fatalf("%d bytes allocated for %d bytes of data in a %d-byte stage", allocated, 14, s.Size())
	}

	p := make([]byte, 10)
	if n, err := s.ReadAt(p, far); n != 4 || err != io.EOF || string(p[:4]) != "tail" {
		t.Fatalf("ReadAt across the end = %d, %v, %q", n, err, p[:n])
	}
	if n, err := s.ReadAt(p, far+4); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v", n, err)
	}

	if err := s.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s); string(got) != "he" {
		t.Fatalf("after Truncate(2): %q", got)
	}
	if err := s.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s); !bytes.Equal(got, append([]byte("he"), make([]byte, 98)...)) {
		t.Fatalf("after Truncate(100): %q", got)
	}
}

// TestStageMatchesModel applies random writes, truncates and reads to a Stage
// and to a byte slice, and compares them.
func TestStageMatchesModel(t *testing.T) {
	s, _ := newTestStage(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var model []byte
	for range 300 {
		switch rng.IntN(4) {
		case 0, 1:
			off := rng.Int64N(1 << 20)
			data := make([]byte, rng.IntN(64<<10))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			if n, err := s.WriteAt(data, off); n != len(data) || err != nil {
				t.Fatalf("WriteAt = %d, %v", n, err)
			}
			if end := off + int64(len(data)); end > int64(len(model)) {
				model = append(model, make([]byte, end-int64(len(model)))...)
			}
			copy(model[off:], data)
		case 2:
			size := rng.Int64N(1 << 20)
			if err := s.Truncate(size); err != nil {
				t.Fatal(err)
			}
			if size < int64(len(model)) {
				model = model[:size]
			} else {
				model = append(model, make([]byte, size-int64(len(model)))...)
			}
		case 3:
			off := rng.Int64N(int64(len(model)) + 1000)
			p := make([]byte, rng.IntN(32<<10))
			n, err := s.ReadAt(p, off)
			var want []byte
			if off < int64(len(model)) {
				want = model[off:min(off+int64(len(p)), int64(len(model)))]
			}
			wantErr := error(nil)
			if len(want) < len(p) {
				wantErr = io.EOF
			}
			if n != len(want) || err != wantErr || !bytes.Equal(p[:n], want) {
				t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d, %v", off, len(p), n, err, len(want), wantErr)
			}
		}
		if s.Size() != int64(len(model)) {
			t.Fatalf("Size = %d, want %d", s.Size(), len(model))
		}
	}
	if !bytes.Equal(readAll(t, s), model) {
		t.Fatal("final contents differ")
	}
}

func TestStageConcurrentWrites(t *testing.T) {
	s, _ := newTestStage(t)
	const writers, chunk = 8, 32 << 10
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer fills every writers-th chunk, from the far end down.
			for c := 15; c >= 0; c-- {
				idx := c*writers + i
				data := bytes.Repeat([]byte{byte(idx)}, chunk)
				if _, err := s.WriteAt(data, int64(idx*chunk)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got := readAll(t, s)
	if len(got) != 16*writers*chunk {
		t.Fatalf("size %d", len(got))
	}
	for i, b := range got {
		if b != byte(i/chunk) {
			t.Fatalf("byte %d is %d, want %d", i, b, byte(i/chunk))
		}
	}
}

func TestStageClosed(t *testing.T) {
	s, _ := newTestStage(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.WriteAt([]byte("x"), 0); !errors.Is(err, ErrStageClosed) {
		t.Fatalf("WriteAt after Close: %v", err)
	}
	if _, err := s.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrStageClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if err := s.Truncate(0); !errors.Is(err, ErrStageClosed) {
		t.Fatalf("Truncate after Close: %v", err)
	}
}

func TestStageNegativeOffsets(t *testing.T) {
	s, _ := newTestStage(t)
	if _, err := s.WriteAt([]byte("x"), -1); err == nil {
		t.Fatal("WriteAt(-1) succeeded")
	}
	if _, err := s.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatal("ReadAt(-1) succeeded")
	}
	if err := s.Truncate(-1); err == nil {
		t.Fatal("Truncate(-1) succeeded")
	}
}

func TestCacheStageLivesInCacheDir(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{})
	s, err := c.NewStage()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteAt([]byte("staged"), 1<<20); err != nil {
		t.Fatal(err)
	}
	var stage, stagingDir syscall.Stat_t
	if err := syscall.Fstat(int(s.file.Fd()), &stage); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(c.stageDir, &stagingDir); err != nil {
		t.Fatal(err)
	}
	if stage.Dev != stagingDir.Dev || stage.Nlink != 0 {
		t.Fatalf("stage on device %d with %d links; want device %d, unlinked", stage.Dev, stage.Nlink, stagingDir.Dev)
	}
	if c.Stats().Bytes != 0 {
		t.Fatal("staged bytes counted as cached blocks")
	}
}

// A staging file a crash left with its name (between create and unlink) is
// gone once the cache opens again.
func TestOpenEmptiesStaging(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{})
	left := filepath.Join(c.stageDir, "stage-left-by-a-crash")
	if err := os.WriteFile(left, []byte("staged"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = openTest(t, dir, Options{})
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after a reopen, the leftover staging file: %v", err)
	}
	s, err := c.NewStage()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
