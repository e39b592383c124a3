package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Stage holds the bytes of a file being written, on disk rather than in
// memory: a sparse temporary file in the cache's staging directory, unlinked
// as soon as it is created, so its space returns to the file system when
// the Stage is closed or the process dies (and Open empties the directory
// of a name a crash left between create and unlink). The FUSE layer writes
// the ranges of a file written out of order into a Stage and reads them
// back at close, to upload.
//
// Unwritten ranges below Size read as zeros. A Stage is safe for concurrent
// use.
type Stage struct {
	mu   sync.Mutex
	file *os.File // mu; nil once closed
	size int64    // mu
}

// ErrStageClosed is returned by every method of a closed Stage but Close.
var ErrStageClosed = errors.New("cache: stage closed")

// newStage creates an empty Stage in dir.
func newStage(dir string) (*Stage, error) {
	file, err := os.CreateTemp(dir, "stage-*")
	if err != nil {
		return nil, fmt.Errorf("cache: new stage: %w", err)
	}
	if err := os.Remove(file.Name()); err != nil {
		file.Close()
		return nil, fmt.Errorf("cache: new stage: %w", err)
	}
	return &Stage{file: file}, nil
}

// NewStage creates an empty Stage in the cache's staging directory. Staged
// bytes do not count against MaxBytes.
func (c *Cache) NewStage() (*Stage, error) {
	return newStage(c.stageDir)
}

// WriteAt writes p at off, growing the Stage if it ends past Size; any gap
// left before off reads as zeros.
func (s *Stage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("cache: stage write at negative offset %d", off)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return 0, ErrStageClosed
	}
	n, err := s.file.WriteAt(p, off)
	if n > 0 {
		s.size = max(s.size, off+int64(n))
	}
	return n, err
}

// ReadAt reads like io.ReaderAt: short reads at the end return io.EOF.
func (s *Stage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("cache: stage read at negative offset %d", off)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return 0, ErrStageClosed
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := p
	if rest := s.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n, err := s.file.ReadAt(want, off)
	if err == nil && len(want) < len(p) {
		err = io.EOF
	}
	return n, err
}

// Truncate sets the Stage's size, dropping bytes past it or extending it
// with zeros (a hole, taking no space).
func (s *Stage) Truncate(size int64) error {
	if size < 0 {
		return fmt.Errorf("cache: stage truncate to negative size %d", size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return ErrStageClosed
	}
	if err := s.file.Truncate(size); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	s.size = size
	return nil
}

// Size is the length of the staged file: the end of the furthest write or
// the last Truncate, whichever came later.
func (s *Stage) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Close releases the staged bytes. It is safe to call more than once.
func (s *Stage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}
