package index

import (
	"context"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func get(t *testing.T, tx *badger.Txn, key string) string {
	t.Helper()
	item, err := tx.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func set(key, value string) func(*badger.Txn) error {
	return func(tx *badger.Txn) error { return tx.Set([]byte(key), []byte(value)) }
}

// A transaction open across many later commits keeps its snapshot, and its
// own commit still conflicts with them: the discard timestamp, which lets
// Badger forget committed transactions, must wait for it.
func TestBadgerClockLongTransaction(t *testing.T) {
	b, err := OpenBadger(t.TempDir(), BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.updateDirect(set("k", "v0")); err != nil {
		t.Fatal(err)
	}

	reader, done := b.readTxn()
	defer done()
	ts := b.clock.begin()
	writer := b.db.NewTransactionAt(ts, true)
	defer writer.Discard()
	if got := get(t, writer, "k"); got != "v0" {
		t.Fatalf("writer reads %q, want v0", got)
	}

	for i := range 100 {
		if err := b.updateDirect(set("k", string(rune('a'+i%26)))); err != nil {
			t.Fatal(err)
		}
		if err := b.updateDirect(set("other", "x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	if got := get(t, reader, "k"); got != "v0" {
		t.Errorf("an open reader sees %q after later commits, want its snapshot v0", got)
	}
	if err := writer.Set([]byte("k"), []byte("lost")); err != nil {
		t.Fatal(err)
	}
	err = b.clock.commit(b.db, func(commitTs uint64) error { return writer.CommitAt(commitTs, nil) })
	b.clock.end(ts)
	if !errors.Is(err, badger.ErrConflict) {
		t.Fatalf("commit of a stale read-modify-write: %v, want ErrConflict", err)
	}

	tx, done2 := b.readTxn()
	defer done2()
	if got := get(t, tx, "k"); got == "lost" || got == "v0" {
		t.Errorf("k = %q after the conflict, want the last commit's value", got)
	}
}

// A store written by a build that ran Badger's own timestamps opens here,
// and one written here opens there: both take up from the highest version
// in the store.
func TestBadgerClockOldStores(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	b, err := OpenBadger(dir, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, RootIno, "new-build", Attr{Kind: KindFile, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// What an older build does: Badger's oracle picks the timestamps.
	old, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = old.Update(func(tx *badger.Txn) error {
		if _, err := tx.Get(dentryKey(RootIno, "new-build")); err != nil {
			return err
		}
		return tx.Set(dentryKey(RootIno, "old-build"), encodeDentry(RootIno, KindDir))
	})
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("an older build on this store: %v", err)
	}

	b, err = OpenBadger(dir, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, name := range []string{"new-build", "old-build"} {
		if _, err := b.Lookup(ctx, RootIno, name); err != nil {
			t.Errorf("Lookup %s: %v", name, err)
		}
	}
	if _, err := b.Rename(ctx, RootIno, "new-build", RootIno, "renamed", 0); err != nil {
		t.Fatalf("Rename after reopening: %v", err)
	}
	if _, err := b.Lookup(ctx, RootIno, "renamed"); err != nil {
		t.Errorf("Lookup renamed: %v", err)
	}
}
