package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"
)

// Dump writes the store from one read transaction, so the dump is a
// consistent snapshot even while the mount keeps working.
func (b *Badger) Dump(ctx context.Context, w io.Writer) error {
	return b.read(ctx, func(tx badgerKV) error {
		dw, err := NewDumpWriter(w)
		if err != nil {
			return err
		}
		err = tx.scan(ctx, []byte{tableCounter}, true, func(k, v []byte) error {
			val, err := decodeCounter(v)
			if err != nil {
				return err
			}
			return dw.Write(DumpRecord{Type: RecordCounter, Name: string(k[1:]), Value: val})
		})
		if err != nil {
			return err
		}
		err = tx.scanInodes(ctx, func(a Attr, parent Ino) error {
			return dw.Write(DumpRecord{Type: RecordInode, Attr: a, Parent: parent})
		})
		if err != nil {
			return err
		}
		err = tx.scan(ctx, []byte{tableDentry}, true, func(k, v []byte) error {
			name, ok := nameFromDentryKey(k)
			if !ok {
				return corruptf("dentry key %x", k)
			}
			ino, kind, err := decodeDentry(v)
			if err != nil {
				return err
			}
			parent := Ino(binary.BigEndian.Uint64(k[1:9]))
			return dw.Write(DumpRecord{Type: RecordDentry, Parent: parent, Name: name, Ino: ino, Kind: kind})
		})
		if err != nil {
			return err
		}
		err = tx.scan(ctx, []byte{tableOrphan}, false, func(k, _ []byte) error {
			ino, ok := inoFromKey(k)
			if !ok {
				return corruptf("orphan key %x", k)
			}
			return dw.Write(DumpRecord{Type: RecordOrphan, Ino: ino})
		})
		if err != nil {
			return err
		}
		err = tx.scanPending(ctx, func(p Pending) error {
			return dw.Write(DumpRecord{Type: RecordPending, Pending: p})
		})
		if err != nil {
			return err
		}
		err = tx.scan(ctx, []byte{tableXattrs}, true, func(k, v []byte) error {
			ino, ok := inoFromKey(k)
			if !ok {
				return corruptf("xattrs key %x", k)
			}
			return writeXattrs(dw, ino, v)
		})
		if err != nil {
			return err
		}
		return dw.Close()
	})
}

// Load fills a new store (nothing but its root) from a dump, keeping every
// inode number. The dump is too large for one transaction, so Load writes
// in batches under a "loading" mark; if it fails, the store is wiped back
// to a new one, and if even that fails the mark makes OpenBadger refuse it.
func (b *Badger) Load(ctx context.Context, r io.Reader) error {
	dr, err := NewDumpReader(r)
	if err != nil {
		return fmt.Errorf("index: load: %w", err)
	}
	if err := b.enter(ctx, true); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	err = b.updateDirect(func(t *badger.Txn) error {
		if err := (badgerKV{t}).checkEmpty(ctx); err != nil {
			return err
		}
		return t.Set(metaKey(metaLoading), nil)
	})
	if err != nil {
		return fmt.Errorf("index: load: %w", err)
	}
	if err := b.load(ctx, dr); err != nil {
		if werr := b.wipe(); werr != nil {
			b.log.Error("index: wiping a failed load", "err", werr)
			return fmt.Errorf("index: load: %w (and wiping the partial load: %v)", err, werr)
		}
		return fmt.Errorf("index: load: %w", err)
	}
	return nil
}

func (b *Badger) load(ctx context.Context, dr *DumpReader) error {
	var maxIno Ino
	var nextIno uint64
	// The whole dump is one commit at one timestamp, written in batches.
	err := b.clock.commit(b.db, func(ts uint64) error {
		wb := b.db.NewWriteBatchAt(ts)
		defer wb.Cancel()
		var err error
		maxIno, nextIno, err = loadRecords(ctx, dr, wb)
		if err != nil {
			return err
		}
		return wb.Flush()
	})
	if err != nil {
		return err
	}
	err = b.updateDirect(func(t *badger.Txn) error {
		next := max(nextIno, uint64(maxIno)+1)
		if err := t.Set(counterKey(CounterNextIno), encodeCounter(next)); err != nil {
			return err
		}
		return t.Delete(metaKey(metaLoading))
	})
	if err != nil {
		return err
	}
	b.allocMu.Lock()
	b.allocNext, b.allocEnd = 0, 0
	b.allocMu.Unlock()
	return nil
}

// loadRecords writes a dump's records into wb and returns the highest inode
// number and the next_ino counter the dump holds.
func loadRecords(ctx context.Context, dr *DumpReader, wb *badger.WriteBatch) (maxIno Ino, nextIno uint64, err error) {
	sawRoot := false
	xattrs := xattrLoader{}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		rec, err := dr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		switch rec.Type {
		case RecordCounter:
			if rec.Name == CounterNextIno {
				nextIno = rec.Value
				continue
			}
			err = wb.Set(counterKey(rec.Name), encodeCounter(rec.Value))
		case RecordInode:
			a := rec.Attr
			if a.Ino == RootIno {
				if a.Kind != KindDir {
					return 0, 0, corruptf("dump: the root is a %s", a.Kind)
				}
				sawRoot = true
			}
			maxIno = max(maxIno, a.Ino)
			err = wb.Set(attrKey(a.Ino), encodeAttr(a, rec.Parent))
		case RecordDentry:
			err = wb.Set(dentryKey(rec.Parent, rec.Name), encodeDentry(rec.Ino, rec.Kind))
		case RecordOrphan:
			err = wb.Set(orphanKey(rec.Ino), nil)
		case RecordPending:
			err = wb.Set(pendingKey(rec.Pending.FileID), encodePending(rec.Pending))
		case RecordXattr:
			err = xattrs.add(rec)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	if !sawRoot {
		return 0, 0, corruptf("dump has no root inode")
	}
	err = xattrs.each(func(ino Ino, v []byte) error { return wb.Set(xattrsKey(ino), v) })
	if err != nil {
		return 0, 0, err
	}
	return maxIno, nextIno, nil
}

// wipe drops everything and makes the store new again.
func (b *Badger) wipe() error {
	if err := b.db.DropAll(); err != nil {
		return err
	}
	b.allocMu.Lock()
	b.allocNext, b.allocEnd = 0, 0
	b.allocMu.Unlock()
	return b.init()
}

// checkEmpty returns ErrNotEmpty unless the store holds nothing but its
// root: no other inode, no entry, orphan or journal entry.
func (tx badgerKV) checkEmpty(ctx context.Context) error {
	found := errors.New("found")
	for _, table := range []byte{tableAttr, tableDentry, tableOrphan, tablePending, tableXattrs} {
		err := tx.scan(ctx, []byte{table}, false, func(k, _ []byte) error {
			if ino, ok := inoFromKey(k); table == tableAttr && ok && ino == RootIno {
				return nil
			}
			return found
		})
		if errors.Is(err, found) {
			return fmt.Errorf("%w: refusing to load into an index that holds a tree", ErrNotEmpty)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
