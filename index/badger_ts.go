package index

import (
	"errors"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// The Badger store runs in Badger's managed mode: this engine hands out the
// read and commit timestamps itself instead of Badger's oracle.
//
// Why: the oracle tracks every read timestamp through a channel to a
// background goroutine, two sends per read transaction and four more per
// commit. When the mount is otherwise idle between requests, which is what
// a serial workload (cp of small files) looks like, each send wakes a
// sleeping thread, and one small file's lookups, create and commit made
// about twenty such wake-ups. Here a read transaction costs a mutex.
//
// The rules that keep it as safe as the oracle:
//   - Commits run one at a time (commitMu), each at the timestamp after the
//     last applied one, and applied moves only once Badger has written it.
//     So timestamps, conflict checks and writes are in one order, and
//     everything at or below applied is readable.
//   - A transaction reads at applied, registered in readers until it ends;
//     Badger's conflict check then sees every commit after it.
//   - The discard timestamp (below which Badger may drop old versions and
//     forget committed transactions) never passes the oldest registered
//     reader.
type tsClock struct {
	mu      sync.Mutex
	applied uint64         // guarded by mu: every commit at or below is readable
	readers map[uint64]int // guarded by mu: read timestamps of open transactions

	// commitMu is held across one commit, from picking its timestamp to
	// publishing it.
	commitMu sync.Mutex
}

func newTSClock(applied uint64) *tsClock {
	return &tsClock{applied: applied, readers: make(map[uint64]int)}
}

// begin registers a transaction and returns its read timestamp.
func (c *tsClock) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.applied
	c.readers[ts]++
	return ts
}

// end unregisters a transaction that began at ts.
func (c *tsClock) end(ts uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readers[ts]--; c.readers[ts] <= 0 {
		delete(c.readers, ts)
	}
}

// commit runs write, which must write everything at the timestamp it is
// given, as the next commit, and publishes it. A conflict wrote nothing, so
// its timestamp is used again; any other failure may have written part, and
// the timestamp is used up (as Badger's own oracle does).
func (c *tsClock) commit(db *badger.DB, write func(ts uint64) error) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	ts := c.applied + 1
	c.mu.Unlock()
	err := write(ts)
	if errors.Is(err, badger.ErrConflict) {
		return err
	}
	c.mu.Lock()
	c.applied = ts
	discard := ts
	for r := range c.readers {
		discard = min(discard, r)
	}
	c.mu.Unlock()
	db.SetDiscardTs(discard)
	return err
}

// readTxn starts a read-only transaction; call done when finished with it.
func (b *Badger) readTxn() (t *badger.Txn, done func()) {
	ts := b.clock.begin()
	t = b.db.NewTransactionAt(ts, false)
	return t, func() {
		t.Discard()
		b.clock.end(ts)
	}
}

// updateOnce runs fn in one read-write transaction and commits it, once;
// the error is badger.ErrConflict when a concurrent commit got in first.
func (b *Badger) updateOnce(fn func(t *badger.Txn) error) error {
	ts := b.clock.begin()
	defer b.clock.end(ts)
	t := b.db.NewTransactionAt(ts, true)
	defer t.Discard()
	if err := fn(t); err != nil {
		return err
	}
	return b.clock.commit(b.db, func(commitTs uint64) error { return t.CommitAt(commitTs, nil) })
}

// updateDirect is updateOnce, run again on conflict: for the engine's own
// bookkeeping (schema, counters), which is small and may simply retry.
func (b *Badger) updateDirect(fn func(t *badger.Txn) error) error {
	for {
		err := b.updateOnce(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
}
