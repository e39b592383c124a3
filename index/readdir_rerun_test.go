package index

import (
	"context"
	"log/slog"
	"slices"
	"testing"
)

// rerunView runs every view twice, as Redis does when what it read changed
// meanwhile, with between changing the store once, before the second run.
type rerunView struct {
	*Badger
	between func()
}

func (r *rerunView) view(ctx context.Context, fn func(tx *txn) error) error {
	if err := r.Badger.view(ctx, fn); err != nil {
		return err
	}
	if r.between != nil {
		r.between()
		r.between = nil
	}
	return r.Badger.view(ctx, fn)
}

func entryNames(es []Entry) []string {
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
	}
	return names
}

// TestReadDirRerun: an engine that reads a directory twice hands no entry
// to ReadDirBatches's callback twice (the listing goes on after the last
// name handed over), and ReadDir answers from the second read alone.
func TestReadDirRerun(t *testing.T) {
	ctx := t.Context()
	b, err := OpenBadger(t.TempDir(), BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d, err := b.Create(ctx, RootIno, "d", Attr{Kind: KindDir, Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	create := func(names ...string) func() {
		return func() {
			for _, n := range names {
				if _, err := b.Create(ctx, d.Ino, n, Attr{Kind: KindFile, Mode: 0o644}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	create("b", "c", "d")()
	rv := &rerunView{Badger: b}
	e := &engine{be: rv, log: slog.New(slog.DiscardHandler)}

	rv.between = create("a", "e") // one before the last name handed over, one after
	var got []Entry
	err = e.ReadDirBatches(ctx, d.Ino, 2, func(batch []Entry) error {
		got = append(got, batch...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "c", "d", "e"}; !slices.Equal(entryNames(got), want) {
		t.Fatalf("ReadDirBatches over two reads handed over %q, want %q", entryNames(got), want)
	}

	rv.between = create("f")
	es, err := e.ReadDir(ctx, d.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d", "e", "f"}; !slices.Equal(entryNames(es), want) {
		t.Fatalf("ReadDir over two reads = %q, want %q (the second read alone)", entryNames(es), want)
	}
}
