package indextest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"fdfsfs/index"
)

// The by-ID view: adopted entries from a group's listing, named entries
// kept by the names' own transactions; a view, never a link.

func byIDOf(t *testing.T, idx index.Index) index.ByIDIndex {
	t.Helper()
	b, ok := idx.(index.ByIDIndex)
	if !ok {
		t.Fatalf("%T has no by-ID view", idx)
	}
	return b
}

// fileIDs makes n file IDs of group spread over two store paths and a few
// directories.
func fileIDs(group string, n int) []string {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("%s/M%02X/%02X/%02X/file%05d.jpg", group, i%2, i%3, i%5, i))
	}
	return ids
}

func listOf(ids []string) func(yield func(index.ByIDEntry) error) error {
	return func(yield func(index.ByIDEntry) error) error {
		for i, id := range ids {
			if err := yield(index.ByIDEntry{FileID: id, Size: int64(i), Mtime: time.Unix(1700000000+int64(i), 0)}); err != nil {
				return err
			}
		}
		return nil
	}
}

func adopt(t *testing.T, b index.ByIDIndex, group string, ids []string) index.AdoptStats {
	t.Helper()
	st, err := index.Adopt(t.Context(), b, group, listOf(ids), index.AdoptOptions{Batch: 7})
	if err != nil {
		t.Fatalf("Adopt(%s, %d files): %v", group, len(ids), err)
	}
	return st
}

// viewFiles lists every file of group's view by walking its directories.
func viewFiles(t *testing.T, b index.ByIDIndex, dir string) []index.ByIDEntry {
	t.Helper()
	var out []index.ByIDEntry
	err := b.ByIDReadDir(t.Context(), dir, 3, func(subs []string) error {
		if !slices.IsSorted(subs) {
			t.Errorf("%s: sub-directories out of order: %v", dir, subs)
		}
		for _, s := range subs {
			out = append(out, viewFiles(t, b, dir+"/"+s)...)
		}
		return nil
	}, func(es []index.ByIDEntry) error {
		out = append(out, es...)
		return nil
	})
	if err != nil {
		t.Fatalf("ByIDReadDir(%s): %v", dir, err)
	}
	return out
}

func viewIDs(t *testing.T, b index.ByIDIndex, group string) []string {
	t.Helper()
	var ids []string
	for _, e := range viewFiles(t, b, group) {
		ids = append(ids, e.FileID)
	}
	return ids
}

func sorted(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

func testByID(t *testing.T, fresh func(*testing.T) index.Index) {
	t.Run("AdoptListsAndIsIdempotent", func(t *testing.T) {
		idx := fresh(t)
		b := byIDOf(t, idx)
		ids := fileIDs("group1", 40)
		st := adopt(t, b, "group1", ids)
		if st.Listed != 40 || st.Added != 40 || st.Unchanged != 0 || st.Removed != 0 {
			t.Fatalf("first adopt: %+v", st)
		}
		if got := viewIDs(t, b, "group1"); !slices.Equal(got, sorted(ids)) {
			t.Fatalf("view %v\nwant %v", got, sorted(ids))
		}
		var subs []string
		mustOK(t, "ByIDReadDir(group1)", func() error {
			return b.ByIDReadDir(t.Context(), "group1", 0, func(s []string) error { subs = s; return nil }, nil)
		})
		if !slices.Equal(subs, []string{"M00", "M01"}) {
			t.Errorf("group1 lists %v", subs)
		}
		e, err := b.ByIDLookup(t.Context(), ids[7])
		if err != nil || e.Origin != index.ByIDAdopted || e.Size != 7 || e.Ino != 0 || !e.Mtime.Equal(time.Unix(1700000007, 0)) || e.Name() != "file00007.jpg" {
			t.Fatalf("ByIDLookup = %+v, %v", e, err)
		}
		if st := adopt(t, b, "group1", ids); st.Added != 0 || st.Unchanged != 40 || st.Removed != 0 {
			t.Fatalf("second adopt: %+v", st)
		}
		if got := viewIDs(t, b, "group2"); len(got) != 0 {
			t.Fatalf("another group lists %v", got)
		}
		// The view holds no inodes: the tree is as empty as before.
		wantNames(t, idx, index.RootIno)
	})

	t.Run("AdoptRemovesGoneAdoptedOnly", func(t *testing.T) {
		ctx := t.Context()
		idx := fresh(t)
		b := byIDOf(t, idx)
		ids := fileIDs("group1", 30)
		// ids[0] has a name: written through the mount.
		f := mkfile(t, idx, index.RootIno, "named")
		if _, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: ids[0], Size: 5}); err != nil {
			t.Fatal(err)
		}
		adopt(t, b, "group1", ids)
		time.Sleep(2 * time.Millisecond)
		// ids[0..9] are gone from the group.
		st := adopt(t, b, "group1", ids[10:])
		if st.Removed != 9 || st.Added != 0 || st.Unchanged != 20 {
			t.Fatalf("adopt after deletes: %+v", st)
		}
		want := sorted(append([]string{ids[0]}, ids[10:]...))
		if got := viewIDs(t, b, "group1"); !slices.Equal(got, want) {
			t.Fatalf("view %v\nwant %v", got, want)
		}
		e, err := b.ByIDLookup(ctx, ids[0])
		if err != nil || e.Origin != index.ByIDNamed || e.Ino != f.Ino || e.Size != 5 {
			t.Fatalf("named entry %+v, %v", e, err)
		}
	})

	t.Run("FailedListingRemovesNothing", func(t *testing.T) {
		idx := fresh(t)
		b := byIDOf(t, idx)
		ids := fileIDs("group1", 20)
		adopt(t, b, "group1", ids)
		boom := errors.New("storage went away")
		st, err := index.Adopt(t.Context(), b, "group1", func(yield func(index.ByIDEntry) error) error {
			if err := listOf(ids[:3])(yield); err != nil {
				return err
			}
			return boom
		}, index.AdoptOptions{Batch: 2})
		if !errors.Is(err, boom) || st.Removed != 0 {
			t.Fatalf("Adopt = %+v, %v", st, err)
		}
		if got := viewIDs(t, b, "group1"); len(got) != 20 {
			t.Fatalf("a failed listing removed entries: %d left", len(got))
		}
		_, err = index.Adopt(t.Context(), b, "group1", listOf([]string{"group2/M00/00/00/x.jpg"}), index.AdoptOptions{})
		wantErr(t, "Adopt(another group's file)", err, index.ErrInvalid)
		_, err = index.Adopt(t.Context(), b, "group1", listOf([]string{"group1/nothing"}), index.AdoptOptions{})
		wantErr(t, "Adopt(not an ID path)", err, index.ErrInvalid)
	})

	t.Run("NamedEntriesFollowTheNames", func(t *testing.T) {
		ctx := t.Context()
		idx := fresh(t)
		b := byIDOf(t, idx)
		ids := fileIDs("group1", 3)
		adopt(t, b, "group1", ids[:1])
		// ln from the by-ID tree: a new inode claims the adopted file.
		a := create(t, idx, index.RootIno, "a", index.Attr{Kind: index.KindFile, Mode: 0o644, FileID: ids[0], Size: 9})
		e, err := b.ByIDLookup(ctx, ids[0])
		if err != nil || e.Origin != index.ByIDNamed || e.Ino != a.Ino || e.Size != 9 {
			t.Fatalf("after Create with the file: %+v, %v", e, err)
		}
		wantNlink(t, idx, a.Ino, 1) // the view is no link
		link(t, idx, a.Ino, index.RootIno, "a2")
		wantNlink(t, idx, a.Ino, 2)
		// New content: the old file leaves the view, the new one enters.
		if _, err := idx.SetContent(ctx, a.Ino, index.Content{FileID: ids[1], Size: 4}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ByIDLookup(ctx, ids[0]); !errors.Is(err, index.ErrNotFound) {
			t.Fatalf("replaced file still in the view: %v", err)
		}
		if e, err := b.ByIDLookup(ctx, ids[1]); err != nil || e.Ino != a.Ino || e.Size != 4 {
			t.Fatalf("new content: %+v, %v", e, err)
		}
		// An appender changed in place: same file, new size.
		if _, err := idx.SetContent(ctx, a.Ino, index.Content{FileID: ids[1], Size: 40, Appender: true}); err != nil {
			t.Fatal(err)
		}
		if e, _ := b.ByIDLookup(ctx, ids[1]); e.Size != 40 {
			t.Fatalf("size after an in-place change: %d", e.Size)
		}
		// The entry keeps nothing alive: the last name goes, the file is
		// journalled for deletion and leaves the view at Purge.
		unlink(t, idx, index.RootIno, "a")
		unlink(t, idx, index.RootIno, "a2")
		if _, err := b.ByIDLookup(ctx, ids[1]); err != nil {
			t.Fatalf("an orphan still open keeps its entry until Purge: %v", err)
		}
		mustOK(t, "Purge", func() error { return idx.Purge(ctx, a.Ino) })
		if _, err := b.ByIDLookup(ctx, ids[1]); !errors.Is(err, index.ErrNotFound) {
			t.Fatalf("purged file still in the view: %v", err)
		}
		ps, _ := idx.ListPending(ctx)
		if len(ps) != 2 {
			t.Fatalf("journal %+v, want both files to delete", ps)
		}
		// A file ID without the ID path shape stays out of the view.
		g := mkfile(t, idx, index.RootIno, "g")
		if _, err := idx.SetContent(ctx, g.Ino, index.Content{FileID: "g/data", Size: 1}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SweepLeavesNewerEntries", func(t *testing.T) {
		idx := fresh(t)
		b := byIDOf(t, idx)
		ids := fileIDs("group1", 10)
		before := time.Now()
		time.Sleep(2 * time.Millisecond)
		adopt(t, b, "group1", ids)
		n, err := b.SweepAdopted(t.Context(), "group1", before, func(string) bool { return true })
		if err != nil || n != 0 {
			t.Fatalf("sweep of entries newer than its run removed %d, %v", n, err)
		}
		n, err = b.SweepAdopted(t.Context(), "group1", time.Now(), func(id string) bool { return id == ids[3] })
		if err != nil || n != 1 {
			t.Fatalf("sweep removed %d, %v", n, err)
		}
	})

	t.Run("ConcurrentAdopts", func(t *testing.T) {
		idx := fresh(t)
		b := byIDOf(t, idx)
		ids := fileIDs("group1", 200)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				_, err := index.Adopt(context.Background(), b, "group1", listOf(ids), index.AdoptOptions{Batch: 16})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := viewIDs(t, b, "group1"); !slices.Equal(got, sorted(ids)) {
			t.Fatalf("after concurrent adopts: %d entries, want %d", len(got), len(ids))
		}
	})

	t.Run("BadDirectories", func(t *testing.T) {
		b := byIDOf(t, fresh(t))
		for _, dir := range []string{"", "group1/X00", "group1/M00/0", "group1/M00/00/00/x", "group1/m00"} {
			err := b.ByIDReadDir(t.Context(), dir, 0, func([]string) error { return nil }, func([]index.ByIDEntry) error { return nil })
			wantErr(t, "ByIDReadDir("+dir+")", err, index.ErrInvalid)
		}
		_, err := b.ByIDLookup(t.Context(), "group1/M00/00/00/none.jpg")
		wantErr(t, "ByIDLookup(missing)", err, index.ErrNotFound)
	})
}
