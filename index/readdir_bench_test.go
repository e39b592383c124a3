package index_test

import (
	"fmt"
	"testing"

	"fdfsfs/index"
)

// BenchmarkBadgerReadDir100k lists a directory of 100,000 files from a
// Badger index reopened after the entries were written, so they are read
// from its tables rather than its memtable: what `ls -l` of a big
// directory asks right after a mount.
func BenchmarkBadgerReadDir100k(b *testing.B) {
	ctx := b.Context()
	dir := b.TempDir()
	idx, err := index.OpenBadger(dir, index.BadgerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := idx.Create(ctx, index.RootIno, "big", index.Attr{Kind: index.KindDir, Mode: 0o755})
	if err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	for i := range n {
		if _, err := idx.Create(ctx, d.Ino, fmt.Sprintf("%d", i), index.Attr{Kind: index.KindFile, Mode: 0o644}); err != nil {
			b.Fatal(err)
		}
	}
	idx.Close()
	idx, err = index.OpenBadger(dir, index.BadgerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	for b.Loop() {
		if es, err := idx.ReadDir(ctx, d.Ino); err != nil || len(es) != n {
			b.Fatal(len(es), err)
		}
	}
}
