package index

import (
	"context"
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
	db       *badger.DB
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
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("index: open badger %q: %w", dir, err)
	}
	b := &Badger{db: db, log: log, readOnly: opts.ReadOnly, session: opts.Session}
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
		return b.db.View(func(tx *badger.Txn) error {
			fresh, err := check(tx)
			if err == nil && fresh {
				err = fmt.Errorf("%w: read-only open of an empty store", ErrNotFound)
			}
			return err
		})
	}
	return b.db.Update(func(tx *badger.Txn) error {
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
		tx := newTxn(b.db.NewTransaction(true), b.session)
		err := fn(tx)
		if err == nil {
			err = tx.flush()
		}
		if err == nil {
			err = tx.t.Commit()
		}
		tx.t.Discard()
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
	tx := newTxn(b.db.NewTransaction(false), b.session)
	defer tx.t.Discard()
	return fn(tx)
}

// allocIno hands out a fresh inode number, reserving a new batch from the
// counter in its own transaction when the current one is used up.
func (b *Badger) allocIno() (Ino, error) {
	b.allocMu.Lock()
	defer b.allocMu.Unlock()
	if b.allocNext == b.allocEnd {
		var start uint64
		err := b.db.Update(func(tx *badger.Txn) error {
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
	err := b.db.Update(func(tx *badger.Txn) error {
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

func (b *Badger) Lookup(ctx context.Context, parent Ino, name string) (Attr, error) {
	if err := CheckName(name); err != nil {
		return Attr{}, err
	}
	var a Attr
	err := b.view(ctx, func(tx *txn) error {
		ino, _, ok, err := tx.dentry(parent, name)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := tx.dir(parent); err != nil {
				return err
			}
			return ErrNotFound
		}
		n, err := tx.named(parent, name, ino)
		if err != nil {
			return err
		}
		a = n.Attr
		return nil
	})
	return a, err
}

func (b *Badger) GetAttr(ctx context.Context, ino Ino) (Attr, error) {
	var a Attr
	err := b.view(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err == nil {
			a = n.Attr
		}
		return err
	})
	return a, err
}

// ReadDir lists parent in one transaction: one scan of its entries, then
// the attributes of each. An entry whose inode is missing is left out and
// logged; Check reports it.
func (b *Badger) ReadDir(ctx context.Context, parent Ino) ([]Entry, error) {
	var entries []Entry
	err := b.view(ctx, func(tx *txn) error {
		if _, err := tx.dir(parent); err != nil {
			return err
		}
		entries = entries[:0]
		type dentry struct {
			name string
			ino  Ino
		}
		var ds []dentry
		err := tx.scanDentries(ctx, parent, func(name string, ino Ino, _ Kind) error {
			ds = append(ds, dentry{name, ino})
			return nil
		})
		if err != nil {
			return err
		}
		entries = make([]Entry, 0, len(ds))
		for i, d := range ds {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			a, _, err := tx.readAttr(d.ino)
			if errors.Is(err, ErrNotFound) {
				b.log.Warn("index: entry names a missing inode", "parent", parent, "name", d.name, "ino", d.ino)
				continue
			}
			if err != nil {
				return err
			}
			entries = append(entries, Entry{Name: d.name, Attr: a})
		}
		return nil
	})
	return entries, err
}

func (b *Badger) Create(ctx context.Context, parent Ino, name string, attr Attr) (Attr, error) {
	if err := CheckName(name); err != nil {
		return Attr{}, err
	}
	if !attr.Kind.valid() {
		return Attr{}, fmt.Errorf("%w: kind %d", ErrInvalid, attr.Kind)
	}
	if attr.Kind == KindSymlink && attr.Target == "" {
		return Attr{}, fmt.Errorf("%w: symlink without a target", ErrInvalid)
	}
	if err := b.enter(ctx, true); err != nil {
		return Attr{}, err
	}
	ino, err := b.allocIno()
	b.mu.RUnlock()
	if err != nil {
		return Attr{}, err
	}
	var created Attr
	err = b.update(ctx, func(tx *txn) error {
		p, err := tx.dir(parent)
		if err != nil {
			return err
		}
		if _, _, ok, err := tx.dentry(parent, name); err != nil {
			return err
		} else if ok {
			return ErrExists
		}
		a := attr
		a.Ino = ino
		a.Mode &= 0o7777
		a.Nlink = 1
		a.Gen = 0
		if a.Kind != KindSymlink {
			a.Target = ""
		}
		if a.Kind != KindFile {
			a.FileID, a.Appender, a.Size = "", false, 0
		}
		for _, t := range []*time.Time{&a.Atime, &a.Mtime, &a.Ctime} {
			if t.IsZero() {
				*t = tx.now
			}
		}
		n := tx.add(a)
		if a.Kind == KindDir {
			n.Nlink = 2
			n.parent = parent
			p.Nlink++
		}
		if a.FileID != "" {
			// The new name claims an uploaded file, as SetContent does.
			if err := tx.t.Delete(pendingKey(a.FileID)); err != nil {
				return err
			}
		}
		if err := tx.setDentry(parent, name, ino, a.Kind); err != nil {
			return err
		}
		p.Mtime, p.Ctime = tx.now, tx.now
		tx.touch(p)
		created = n.Attr
		return nil
	})
	return created, err
}

// Link refuses a directory with ErrInvalid (link(2) says EPERM, which the
// error set has no match for) and an orphan with ErrNotFound.
func (b *Badger) Link(ctx context.Context, ino Ino, newParent Ino, newName string) (Attr, error) {
	if err := CheckName(newName); err != nil {
		return Attr{}, err
	}
	var linked Attr
	err := b.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		switch {
		case n.Kind == KindDir:
			return fmt.Errorf("%w: hard link to a directory", ErrInvalid)
		case n.Nlink == 0:
			return fmt.Errorf("%w: inode %d has no names left", ErrNotFound, ino)
		}
		p, err := tx.dir(newParent)
		if err != nil {
			return err
		}
		if _, _, ok, err := tx.dentry(newParent, newName); err != nil {
			return err
		} else if ok {
			return ErrExists
		}
		if err := tx.setDentry(newParent, newName, ino, n.Kind); err != nil {
			return err
		}
		n.Nlink++
		n.Ctime = tx.now
		tx.touch(n)
		p.Mtime, p.Ctime = tx.now, tx.now
		tx.touch(p)
		linked = n.Attr
		return nil
	})
	return linked, err
}

func (b *Badger) Unlink(ctx context.Context, parent Ino, name string) (Attr, error) {
	if err := CheckName(name); err != nil {
		return Attr{}, err
	}
	var after Attr
	err := b.update(ctx, func(tx *txn) error {
		p, err := tx.dir(parent)
		if err != nil {
			return err
		}
		ino, kind, ok, err := tx.dentry(parent, name)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		if kind == KindDir {
			return ErrIsDir
		}
		n, err := tx.named(parent, name, ino)
		if err != nil {
			return err
		}
		if err := tx.t.Delete(dentryKey(parent, name)); err != nil {
			return err
		}
		if n.Nlink > 0 {
			n.Nlink--
		}
		n.Ctime = tx.now
		tx.touch(n)
		p.Mtime, p.Ctime = tx.now, tx.now
		tx.touch(p)
		after = n.Attr
		return nil
	})
	return after, err
}

func (b *Badger) Rmdir(ctx context.Context, parent Ino, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	return b.update(ctx, func(tx *txn) error {
		p, err := tx.dir(parent)
		if err != nil {
			return err
		}
		ino, kind, ok, err := tx.dentry(parent, name)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		if kind != KindDir {
			return ErrNotDir
		}
		n, err := tx.named(parent, name, ino)
		if err != nil {
			return err
		}
		if err := tx.removeEmptyDir(n); err != nil {
			return err
		}
		if err := tx.t.Delete(dentryKey(parent, name)); err != nil {
			return err
		}
		p.Nlink--
		p.Mtime, p.Ctime = tx.now, tx.now
		tx.touch(p)
		return nil
	})
}

func (b *Badger) Rename(ctx context.Context, oldParent Ino, oldName string, newParent Ino, newName string, flags uint32) (*Attr, error) {
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return nil, fmt.Errorf("%w: rename flags %#x", ErrInvalid, flags)
	}
	if err := CheckName(oldName); err != nil {
		return nil, err
	}
	if err := CheckName(newName); err != nil {
		return nil, err
	}
	var replaced *Attr
	err := b.update(ctx, func(tx *txn) error {
		replaced = nil
		op, err := tx.dir(oldParent)
		if err != nil {
			return err
		}
		np, err := tx.dir(newParent)
		if err != nil {
			return err
		}
		srcIno, _, ok, err := tx.dentry(oldParent, oldName)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		src, err := tx.named(oldParent, oldName, srcIno)
		if err != nil {
			return err
		}
		dstIno, _, dstExists, err := tx.dentry(newParent, newName)
		if err != nil {
			return err
		}
		if oldParent == newParent && oldName == newName {
			return nil
		}
		moved := oldParent != newParent

		if flags&RenameExchange != 0 {
			if !dstExists {
				return ErrNotFound
			}
			dst, err := tx.named(newParent, newName, dstIno)
			if err != nil {
				return err
			}
			if moved && src.Kind == KindDir {
				if err := tx.notInside(src.Ino, newParent); err != nil {
					return err
				}
			}
			if moved && dst.Kind == KindDir {
				if err := tx.notInside(dst.Ino, oldParent); err != nil {
					return err
				}
			}
			if err := tx.setDentry(newParent, newName, src.Ino, src.Kind); err != nil {
				return err
			}
			if err := tx.setDentry(oldParent, oldName, dst.Ino, dst.Kind); err != nil {
				return err
			}
			if moved && src.Kind == KindDir {
				src.parent = newParent
				op.Nlink--
				np.Nlink++
			}
			if moved && dst.Kind == KindDir {
				dst.parent = oldParent
				np.Nlink--
				op.Nlink++
			}
			src.Ctime, dst.Ctime = tx.now, tx.now
			tx.touch(src)
			tx.touch(dst)
			op.Mtime, op.Ctime, np.Mtime, np.Ctime = tx.now, tx.now, tx.now, tx.now
			tx.touch(op)
			tx.touch(np)
			return nil
		}

		var dst *node
		if dstExists {
			if flags&RenameNoReplace != 0 {
				return ErrExists
			}
			if dstIno == srcIno {
				// Two names of one inode: rename(2) does nothing.
				return nil
			}
			if dst, err = tx.named(newParent, newName, dstIno); err != nil {
				return err
			}
			switch {
			case src.Kind == KindDir && dst.Kind != KindDir:
				return ErrNotDir
			case src.Kind != KindDir && dst.Kind == KindDir:
				return ErrIsDir
			}
		}
		if moved && src.Kind == KindDir {
			if err := tx.notInside(src.Ino, newParent); err != nil {
				return err
			}
		}
		if dst != nil {
			if dst.Kind == KindDir {
				if err := tx.removeEmptyDir(dst); err != nil {
					return err
				}
				np.Nlink--
				gone := dst.Attr
				gone.Nlink = 0
				replaced = &gone
			} else {
				dst.Nlink--
				dst.Ctime = tx.now
				tx.touch(dst)
				after := dst.Attr
				replaced = &after
			}
		}
		if err := tx.t.Delete(dentryKey(oldParent, oldName)); err != nil {
			return err
		}
		if err := tx.setDentry(newParent, newName, src.Ino, src.Kind); err != nil {
			return err
		}
		if moved && src.Kind == KindDir {
			src.parent = newParent
			op.Nlink--
			np.Nlink++
		}
		src.Ctime = tx.now
		tx.touch(src)
		op.Mtime, op.Ctime, np.Mtime, np.Ctime = tx.now, tx.now, tx.now, tx.now
		tx.touch(op)
		tx.touch(np)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// SetAttr sets ctime to now unless in.Ctime says otherwise, as chmod,
// chown and utimes do.
func (b *Badger) SetAttr(ctx context.Context, ino Ino, in SetAttrIn) (Attr, error) {
	var a Attr
	err := b.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		if in.Mode != nil {
			n.Mode = *in.Mode & 0o7777
		}
		if in.Uid != nil {
			n.Uid = *in.Uid
		}
		if in.Gid != nil {
			n.Gid = *in.Gid
		}
		if in.Atime != nil {
			n.Atime = *in.Atime
		}
		if in.Mtime != nil {
			n.Mtime = *in.Mtime
		}
		n.Ctime = tx.now
		if in.Ctime != nil {
			n.Ctime = *in.Ctime
		}
		tx.touch(n)
		a = n.Attr
		return nil
	})
	return a, err
}

// SetContent removes the journal entry of c.FileID whatever its reason: a
// file a name points at must never be deleted. A zero c.Mtime means now.
func (b *Badger) SetContent(ctx context.Context, ino Ino, c Content) (Attr, error) {
	if c.Size < 0 {
		return Attr{}, fmt.Errorf("%w: size %d", ErrInvalid, c.Size)
	}
	var a Attr
	err := b.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		switch n.Kind {
		case KindDir:
			return ErrIsDir
		case KindSymlink:
			return fmt.Errorf("%w: content of a symlink", ErrInvalid)
		}
		if c.FileID != "" {
			if err := tx.t.Delete(pendingKey(c.FileID)); err != nil {
				return err
			}
		}
		if n.FileID != "" && n.FileID != c.FileID {
			if err := tx.setPending(Pending{FileID: n.FileID, Reason: PendingDelete, Session: tx.session}); err != nil {
				return err
			}
		}
		n.FileID, n.Appender, n.Size = c.FileID, c.Appender, c.Size
		n.Mtime = c.Mtime
		if n.Mtime.IsZero() {
			n.Mtime = tx.now
		}
		n.Ctime = tx.now
		n.Gen++
		tx.touch(n)
		a = n.Attr
		return nil
	})
	return a, err
}

// Purge of a missing inode does nothing but drop a stale orphan mark, so
// that two releases racing to purge both succeed.
func (b *Badger) Purge(ctx context.Context, ino Ino) error {
	return b.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if errors.Is(err, ErrNotFound) {
			return tx.t.Delete(orphanKey(ino))
		}
		if err != nil || n.Nlink > 0 {
			return err
		}
		if n.FileID != "" {
			if err := tx.setPending(Pending{FileID: n.FileID, Reason: PendingDelete, Session: tx.session}); err != nil {
				return err
			}
		}
		if n.Kind == KindDir {
			// Only Repair orphans a directory; whatever it still lists
			// goes with it.
			var names []string
			err := tx.scanDentries(ctx, ino, func(name string, _ Ino, _ Kind) error {
				names = append(names, name)
				return nil
			})
			if err != nil {
				return err
			}
			for _, name := range names {
				if err := tx.t.Delete(dentryKey(ino, name)); err != nil {
					return err
				}
			}
		}
		tx.remove(n)
		return tx.t.Delete(orphanKey(ino))
	})
}

func (b *Badger) Orphans(ctx context.Context) ([]Ino, error) {
	var inos []Ino
	err := b.view(ctx, func(tx *txn) error {
		return tx.scan(ctx, []byte{tableOrphan}, false, func(k, _ []byte) error {
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

// AddPending fills in an empty Session with this mount's and a zero Since
// with now. It replaces an entry for the same file ID.
func (b *Badger) AddPending(ctx context.Context, p Pending) error {
	if p.FileID == "" || !p.Reason.valid() {
		return fmt.Errorf("%w: pending entry %+v", ErrInvalid, p)
	}
	return b.update(ctx, func(tx *txn) error {
		if p.Session == "" {
			p.Session = tx.session
		}
		return tx.setPending(p)
	})
}

func (b *Badger) RemovePending(ctx context.Context, fileID string) error {
	return b.update(ctx, func(tx *txn) error {
		_, err := tx.t.Get(pendingKey(fileID))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return tx.t.Delete(pendingKey(fileID))
	})
}

func (b *Badger) ListPending(ctx context.Context) ([]Pending, error) {
	var ps []Pending
	err := b.view(ctx, func(tx *txn) error {
		return tx.scanPending(ctx, func(p Pending) error {
			ps = append(ps, p)
			return nil
		})
	})
	return ps, err
}

// Changes returns nil: nobody else writes a Badger store.
func (b *Badger) Changes() <-chan Change { return nil }

func (b *Badger) Inodes(ctx context.Context, fn func(Attr) error) error {
	return b.view(ctx, func(tx *txn) error {
		return tx.scanInodes(ctx, func(a Attr, _ Ino) error { return fn(a) })
	})
}

func (b *Badger) Dentries(ctx context.Context, dir Ino, fn func(name string, ino Ino, kind Kind) error) error {
	return b.view(ctx, func(tx *txn) error {
		return tx.scanDentries(ctx, dir, fn)
	})
}

func (b *Badger) DropDentry(ctx context.Context, dir Ino, name string) error {
	return b.update(ctx, func(tx *txn) error {
		_, err := tx.t.Get(dentryKey(dir, name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return tx.t.Delete(dentryKey(dir, name))
	})
}

func (b *Badger) SetNlink(ctx context.Context, ino Ino, nlink uint32) (Attr, error) {
	var a Attr
	err := b.update(ctx, func(tx *txn) error {
		n, err := tx.node(ino)
		if err != nil {
			return err
		}
		n.Nlink = nlink
		tx.touch(n)
		// Set the mark from the new count alone: the old one may be the
		// damage being repaired.
		n.origNlink = -1
		if nlink == 0 {
			err = tx.t.Set(orphanKey(ino), nil)
		} else {
			err = tx.t.Delete(orphanKey(ino))
		}
		a = n.Attr
		return err
	})
	return a, err
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
