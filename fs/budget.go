package fs

import "sync"

// writeBudget bounds the bytes of write chunks handed out across every
// file being written (Options.WriteBudget, --buffer-size): the buffer a
// file fills and the chunks its pipeline has queued or is uploading. A
// writer that finds it spent waits while chunks of its own are in flight
// (their uploads give memory back), else it spills to the staging
// directory (writer.chunk); it never fails for it.
type writeBudget struct {
	max int64 // <= 0: no bound

	mu      sync.Mutex
	used    int64         // mu
	changed chan struct{} // mu; closed and replaced when memory comes back
}

func newWriteBudget(max int64) *writeBudget {
	return &writeBudget{max: max, changed: make(chan struct{})}
}

// take reserves n bytes if they fit, and reports whether they did.
func (b *writeBudget) take(n int64) bool {
	if b.max <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// give returns n bytes and wakes the writers waiting for memory.
func (b *writeBudget) give(n int64) {
	if b.max <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// freed is closed the next time memory comes back. Take it before trying
// take, so that a give in between is not missed.
func (b *writeBudget) freed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// inUse is the bytes reserved now.
func (b *writeBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
