package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// BadgerOptions configures OpenBadger.
type BadgerOptions struct {
	// Logger receives Badger's own messages (its info level as debug) and
	// the engine's warnings. Nil discards them.
	Logger *slog.Logger
	// ReadOnly opens an existing store without writing to it; every
	// mutation returns ErrReadOnly.
	ReadOnly bool
	// InMemory keeps everything in memory (tests); dir is ignored.
	InMemory bool
	// SyncWrites makes every commit wait for fsync. Without it a commit
	// survives a crash of the process but not of the machine.
	SyncWrites bool
	// Session names this mount in the pending journal entries it writes.
	Session string
	// GCInterval is how often the value-log GC runs (default 10 minutes).
	GCInterval time.Duration
}

// Badger is the single-host Index engine, a Badger store on local disk.
type Badger struct {
	engine
	db       *badger.DB
	clock    *tsClock
	log      *slog.Logger
	readOnly bool
	session  string

	// mu is held shared by every call for as long as it uses db, and
	// exclusively by Close, so Close waits for calls in flight.
	mu     sync.RWMutex
	closed bool // guarded by mu

	// Inode numbers are reserved from the "next_ino" counter in batches, so
	// that concurrent Creates do not all conflict on the counter key.
	allocMu   sync.Mutex
	allocNext Ino // guarded by allocMu: next number to hand out
	allocEnd  Ino // guarded by allocMu: end of the reserved batch

	stopGC context.CancelFunc
	gcDone chan struct{}
}

var _ Index = (*Badger)(nil)

const (
	inoBatch = 1024
	// maxDepth bounds the walk up a directory's parents; deeper is a loop.
	maxDepth = 1 << 16
)

// OpenBadger opens (or creates) the store in dir. A new store gets the root
// directory, inode 1, mode 0755, owned by the calling process's user.
func OpenBadger(dir string, opts BadgerOptions) (*Badger, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.InMemory {
		dir = ""
		if opts.ReadOnly {
			return nil, fmt.Errorf("%w: an in-memory index cannot be read-only", ErrInvalid)
		}
	}
	bo := badger.DefaultOptions(dir).
		WithInMemory(opts.InMemory).
		WithReadOnly(opts.ReadOnly).
		WithSyncWrites(opts.SyncWrites).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		WithNumCompactors(2).
		WithBlockCacheSize(64 << 20).
		WithValueLogFileSize(256 << 20).
		WithMetricsEnabled(false)
	db, err := badger.OpenManaged(bo)
	if err != nil {
		return nil, fmt.Errorf("index: open badger %q: %w", dir, err)
	}
	b := &Badger{db: db, clock: newTSClock(db.MaxVersion()), log: log, readOnly: opts.ReadOnly, session: opts.Session}
	b.engine = engine{be: b, log: log}
	if err := b.init(); err != nil {
		db.Close()
		return nil, err
	}
	if !opts.ReadOnly && !opts.InMemory {
		interval := opts.GCInterval
		if interval <= 0 {
			interval = 10 * time.Minute
		}
		ctx, cancel := context.WithCancel(context.Background())
		b.stopGC, b.gcDone = cancel, make(chan struct{})
		go b.gcLoop(ctx, interval)
	}
	return b, nil
}

// init checks the schema and creates the root of a new store.
func (b *Badger) init() error {
	check := func(tx *badger.Txn) (fresh bool, err error) {
		if _, err := tx.Get(metaKey(metaLoading)); err == nil {
			return false, corruptf("an interrupted Load left this store incomplete; remove it and load again")
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return false, err
		}
		item, err := tx.Get(metaKey(metaSchema))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return false, err
		}
		if len(v) != 1 || v[0] != schemaVersion {
			return false, corruptf("store schema %v, this build reads %d", v, schemaVersion)
		}
		return false, nil
	}
	if b.readOnly {
		tx, done := b.readTxn()
		defer done()
		fresh, err := check(tx)
		if err == nil && fresh {
			err = fmt.Errorf("%w: read-only open of an empty store", ErrNotFound)
		}
		return err
	}
	return b.updateDirect(func(tx *badger.Txn) error {
		fresh, err := check(tx)
		if err != nil || !fresh {
			return err
		}
		now := time.Now()
		root := Attr{
			Ino: RootIno, Kind: KindDir, Mode: 0o755, Nlink: 2,
			Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()),
			Atime: now, Mtime: now, Ctime: now,
		}
		for _, kv := range [][2][]byte{
			{metaKey(metaSchema), {schemaVersion}},
			{counterKey(CounterNextIno), encodeCounter(uint64(RootIno) + 1)},
			{attrKey(RootIno), encodeAttr(root, 0)},
		} {
			if err := tx.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *Badger) gcLoop(ctx context.Context, interval time.Duration) {
	defer close(b.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// One call rewrites at most one value-log file; keep going while
		// there is garbage to reclaim.
		for ctx.Err() == nil {
			err := b.db.RunValueLogGC(0.5)
			if err != nil {
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					b.log.Warn("index: value-log GC", "err", err)
				}
				break
			}
		}
	}
}

// Sync fsyncs the value log and the write-ahead state, so that commits
// made without SyncWrites survive a power loss too.
func (b *Badger) Sync(ctx context.Context) error {
	if err := b.enter(ctx, false); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	if b.readOnly {
		return nil
	}
	return b.db.Sync()
}

// Close stops the GC loop, gives back the unused part of the inode batch and
// closes the store. Calls after Close return ErrClosed.
func (b *Badger) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.closed = true
	if b.stopGC != nil {
		b.stopGC()
		<-b.gcDone
	}
	if !b.readOnly {
		b.releaseInos()
	}
	return b.db.Close()
}

// enter starts a call: it fails once closed, and for a mutation on a
// read-only store. On success the caller must call b.mu.RUnlock.
func (b *Badger) enter(ctx context.Context, write bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	switch {
	case b.closed:
		b.mu.RUnlock()
		return ErrClosed
	case write && b.readOnly:
		b.mu.RUnlock()
		return ErrReadOnly
	}
	return nil
}

// update runs fn in one read-write transaction and commits it, running it
// again from the start when the commit conflicts with a concurrent one, and
// for no other error.
func (b *Badger) update(ctx context.Context, fn func(tx *txn) error) error {
	if err := b.enter(ctx, true); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := b.updateOnce(func(t *badger.Txn) error {
			tx := newTxn(badgerKV{t}, b.session)
			if err := fn(tx); err != nil {
				return err
			}
			return tx.flush()
		})
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt >= 3 {
			// Under heavy contention let the winners get ahead.
			time.Sleep(time.Duration(rand.IntN(1000*min(attempt, 20))) * time.Microsecond)
		}
	}
}

// view runs fn in one read-only transaction.
func (b *Badger) view(ctx context.Context, fn func(tx *txn) error) error {
	if err := b.enter(ctx, false); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	t, done := b.readTxn()
	defer done()
	return fn(newTxn(badgerKV{t}, b.session))
}

// read runs fn in one read-only Badger transaction, for the scans that only
// this engine has (dump, orphans, the journal, all inodes).
func (b *Badger) read(ctx context.Context, fn func(s badgerKV) error) error {
	if err := b.enter(ctx, false); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	t, done := b.readTxn()
	defer done()
	return fn(badgerKV{t})
}

// allocIno hands out a fresh inode number, reserving a new batch from the
// counter in its own transaction when the current one is used up.
func (b *Badger) allocIno(ctx context.Context) (Ino, error) {
	if err := b.enter(ctx, true); err != nil {
		return 0, err
	}
	defer b.mu.RUnlock()
	b.allocMu.Lock()
	defer b.allocMu.Unlock()
	if b.allocNext == b.allocEnd {
		var start uint64
		err := b.updateDirect(func(tx *badger.Txn) error {
			var err error
			if start, err = readCounter(tx, CounterNextIno); err != nil {
				return err
			}
			return tx.Set(counterKey(CounterNextIno), encodeCounter(start+inoBatch))
		})
		if err != nil {
			return 0, fmt.Errorf("index: reserve inodes: %w", err)
		}
		b.allocNext, b.allocEnd = Ino(start), Ino(start+inoBatch)
	}
	ino := b.allocNext
	b.allocNext++
	return ino, nil
}

// releaseInos gives the unused rest of the batch back to the counter, if
// nothing moved the counter since, so a remount does not skip numbers.
func (b *Badger) releaseInos() {
	b.allocMu.Lock()
	defer b.allocMu.Unlock()
	if b.allocNext == b.allocEnd {
		return
	}
	err := b.updateDirect(func(tx *badger.Txn) error {
		v, err := readCounter(tx, CounterNextIno)
		if err != nil || v != uint64(b.allocEnd) {
			return err
		}
		return tx.Set(counterKey(CounterNextIno), encodeCounter(uint64(b.allocNext)))
	})
	if err != nil {
		b.log.Warn("index: give back unused inode numbers", "err", err)
	}
	b.allocNext, b.allocEnd = 0, 0
}

func readCounter(tx *badger.Txn, name string) (uint64, error) {
	item, err := tx.Get(counterKey(name))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, corruptf("counter %q missing", name)
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(val []byte) error {
		v, err = decodeCounter(val)
		return err
	})
	return v, err
}

func (b *Badger) Orphans(ctx context.Context) ([]Ino, error) {
	var inos []Ino
	err := b.read(ctx, func(s badgerKV) error {
		return s.scan(ctx, []byte{tableOrphan}, false, func(k, _ []byte) error {
			ino, ok := inoFromKey(k)
			if !ok {
				return corruptf("orphan key %x", k)
			}
			inos = append(inos, ino)
			return nil
		})
	})
	return inos, err
}

func (b *Badger) ListPending(ctx context.Context) ([]Pending, error) {
	var ps []Pending
	err := b.read(ctx, func(s badgerKV) error {
		return s.scanPending(ctx, func(p Pending) error {
			ps = append(ps, p)
			return nil
		})
	})
	return ps, err
}

// Changes returns nil: nobody else writes a Badger store.
func (b *Badger) Changes() <-chan Change { return nil }

func (b *Badger) Inodes(ctx context.Context, fn func(Attr) error) error {
	return b.read(ctx, func(s badgerKV) error {
		return s.scanInodes(ctx, func(a Attr, _ Ino) error { return fn(a) })
	})
}

func (b *Badger) LiveSessions(ctx context.Context) ([]string, error) {
	var ids []string
	err := b.read(ctx, func(s badgerKV) error {
		now := time.Now().UnixNano()
		return s.scan(ctx, []byte{tableSession}, true, func(k, v []byte) error {
			if len(v) != 8 {
				return corruptf("session %q: value of %d bytes", k[1:], len(v))
			}
			if now < int64(binary.BigEndian.Uint64(v)) {
				ids = append(ids, string(k[1:]))
			}
			return nil
		})
	})
	return ids, err
}

// badgerLogger sends Badger's messages to slog. Badger is chatty at info
// level about routine compactions, so that goes to debug.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, args ...any) {
	l.log.Error("badger: " + trimNewline(fmt.Sprintf(f, args...)))
}

func (l badgerLogger) Warningf(f string, args ...any) {
	l.log.Warn("badger: " + trimNewline(fmt.Sprintf(f, args...)))
}

func (l badgerLogger) Infof(f string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("badger: " + trimNewline(fmt.Sprintf(f, args...)))
	}
}

// badgerTraceLevel is below slog's debug: Badger logs several debug lines
// per write, which would drown fdfsfs's own debug log and cost a Sprintf
// per transaction.
const badgerTraceLevel = slog.LevelDebug - 4

func (l badgerLogger) Debugf(f string, args ...any) {
	if l.log.Enabled(context.Background(), badgerTraceLevel) {
		l.log.Log(context.Background(), badgerTraceLevel, "badger: "+trimNewline(fmt.Sprintf(f, args...)))
	}
}

func trimNewline(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
