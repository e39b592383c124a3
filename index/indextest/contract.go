// Package indextest is the contract every index.Index engine must meet, as
// one suite each engine's tests run against their own store:
//
//	func TestContract(t *testing.T) {
//		indextest.RunContract(t, func(t *testing.T) index.Index { ... })
//	}
//
// It must never depend on one engine: only the Index interface is used.
package indextest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"fdfsfs/index"
)

// RunContract runs the suite. open must return a new, empty index (nothing
// but its root) each time it is called; the suite closes it.
func RunContract(t *testing.T, open func(t *testing.T) index.Index) {
	fresh := func(t *testing.T) index.Index {
		t.Helper()
		idx := open(t)
		t.Cleanup(func() { idx.Close() })
		return idx
	}
	groups := []struct {
		name string
		run  func(t *testing.T, fresh func(*testing.T) index.Index)
	}{
		{"Root", testRoot},
		{"Create", testCreate},
		{"Names", testNames},
		{"Lookup", testLookup},
		{"ReadDir", testReadDir},
		{"Link", testLink},
		{"Unlink", testUnlink},
		{"Rmdir", testRmdir},
		{"Rename", testRename},
		{"SetAttr", testSetAttr},
		{"SetContent", testSetContent},
		{"Special", testSpecial},
		{"Xattr", testXattr},
		{"XattrTransactions", testXattrTransactions},
		{"Purge", testPurge},
		{"Pending", testPending},
		{"Sessions", testSessions},
		{"Claim", testClaim},
		{"Concurrency", testConcurrency},
		{"DumpLoad", testDumpLoad},
		{"Check", testCheck},
		{"Closed", testClosed},
		{"Cancelled", testCancelled},
		{"ByID", testByID},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, fresh) })
	}
}

// RunPersistence checks that a store keeps its tree, journal and inode
// numbers across Close and a new open. newStore makes a new, empty store
// and returns a function that opens it; the suite closes what it opens.
func RunPersistence(t *testing.T, newStore func(t *testing.T) (open func() index.Index)) {
	ctx := t.Context()
	open := newStore(t)
	idx := open()
	a := mkdir(t, idx, index.RootIno, "a")
	f := mkfile(t, idx, a.Ino, "f")
	mustOK(t, "SetContent", func() error {
		_, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: "group1/M00/00/00/f", Size: 10})
		return err
	})
	link(t, idx, f.Ino, index.RootIno, "f-link")
	o := mkfile(t, idx, index.RootIno, "orphan")
	unlink(t, idx, index.RootIno, "orphan")
	mustOK(t, "AddPending", func() error {
		return idx.AddPending(ctx, index.Pending{FileID: "group1/M00/00/00/up", Reason: index.PendingUpload})
	})
	before := snapshot(t, idx)
	if err := idx.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	idx = open()
	after := snapshot(t, idx)
	if diff := before.diff(after); diff != "" {
		t.Fatalf("store changed across reopen:\n%s", diff)
	}
	if got := lookup(t, idx, a.Ino, "f"); got.Ino != f.Ino {
		t.Errorf("a/f is inode %d after reopen, was %d", got.Ino, f.Ino)
	}
	if orphans, _ := idx.Orphans(ctx); !slices.Equal(orphans, []index.Ino{o.Ino}) {
		t.Errorf("Orphans after reopen = %v, want [%d]", orphans, o.Ino)
	}
	g := mkfile(t, idx, index.RootIno, "g")
	for ino := range before.inodes {
		if g.Ino <= ino {
			t.Errorf("new inode %d after reopen is not above old inode %d", g.Ino, ino)
		}
	}
	if err := idx.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	idx = open()
	defer idx.Close()
	if got := lookup(t, idx, index.RootIno, "g"); got.Ino != g.Ino {
		t.Errorf("g is inode %d after the second reopen, was %d", got.Ino, g.Ino)
	}
}

// ---- helpers ----

func mustOK(t *testing.T, what string, fn func() error) {
	t.Helper()
	if err := fn(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

func create(t *testing.T, idx index.Index, parent index.Ino, name string, a index.Attr) index.Attr {
	t.Helper()
	got, err := idx.Create(t.Context(), parent, name, a)
	if err != nil {
		t.Fatalf("Create(%d, %q, %s): %v", parent, name, a.Kind, err)
	}
	return got
}

func mkfile(t *testing.T, idx index.Index, parent index.Ino, name string) index.Attr {
	t.Helper()
	return create(t, idx, parent, name, index.Attr{Kind: index.KindFile, Mode: 0o644, Uid: 1000, Gid: 1000})
}

func mkdir(t *testing.T, idx index.Index, parent index.Ino, name string) index.Attr {
	t.Helper()
	return create(t, idx, parent, name, index.Attr{Kind: index.KindDir, Mode: 0o755, Uid: 1000, Gid: 1000})
}

func symlink(t *testing.T, idx index.Index, parent index.Ino, name, target string) index.Attr {
	t.Helper()
	return create(t, idx, parent, name, index.Attr{Kind: index.KindSymlink, Mode: 0o777, Target: target})
}

func link(t *testing.T, idx index.Index, ino, parent index.Ino, name string) index.Attr {
	t.Helper()
	a, err := idx.Link(t.Context(), ino, parent, name)
	if err != nil {
		t.Fatalf("Link(%d, %d, %q): %v", ino, parent, name, err)
	}
	return a
}

func unlink(t *testing.T, idx index.Index, parent index.Ino, name string) index.Attr {
	t.Helper()
	a, err := idx.Unlink(t.Context(), parent, name)
	if err != nil {
		t.Fatalf("Unlink(%d, %q): %v", parent, name, err)
	}
	return a
}

func lookup(t *testing.T, idx index.Index, parent index.Ino, name string) index.Attr {
	t.Helper()
	a, err := idx.Lookup(t.Context(), parent, name)
	if err != nil {
		t.Fatalf("Lookup(%d, %q): %v", parent, name, err)
	}
	return a
}

func getattr(t *testing.T, idx index.Index, ino index.Ino) index.Attr {
	t.Helper()
	a, err := idx.GetAttr(t.Context(), ino)
	if err != nil {
		t.Fatalf("GetAttr(%d): %v", ino, err)
	}
	return a
}

func readdir(t *testing.T, idx index.Index, dir index.Ino) []index.Entry {
	t.Helper()
	es, err := idx.ReadDir(t.Context(), dir)
	if err != nil {
		t.Fatalf("ReadDir(%d): %v", dir, err)
	}
	return es
}

func names(es []index.Entry) []string {
	ns := make([]string, len(es))
	for i, e := range es {
		ns[i] = e.Name
	}
	return ns
}

func wantNames(t *testing.T, idx index.Index, dir index.Ino, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := names(readdir(t, idx, dir)); !slices.Equal(got, want) {
		t.Errorf("ReadDir(%d) = %q, want %q", dir, got, want)
	}
}

func wantNlink(t *testing.T, idx index.Index, ino index.Ino, want uint32) {
	t.Helper()
	if got := getattr(t, idx, ino).Nlink; got != want {
		t.Errorf("Nlink of %d = %d, want %d", ino, got, want)
	}
}

// sameAttr compares attributes with times compared as instants.
func sameAttr(a, b index.Attr) bool {
	ta := []time.Time{a.Atime, a.Mtime, a.Ctime}
	tb := []time.Time{b.Atime, b.Mtime, b.Ctime}
	for i := range ta {
		if !ta[i].Equal(tb[i]) {
			return false
		}
	}
	a.Atime, a.Mtime, a.Ctime = time.Time{}, time.Time{}, time.Time{}
	b.Atime, b.Mtime, b.Ctime = time.Time{}, time.Time{}, time.Time{}
	return a == b
}

func formatAttr(a index.Attr) string {
	return fmt.Sprintf("{ino %d %s mode %#o uid %d gid %d nlink %d size %d atime %d mtime %d ctime %d file %q app %v gen %d target %q rdev %#x}",
		a.Ino, a.Kind, a.Mode, a.Uid, a.Gid, a.Nlink, a.Size, a.Atime.UnixNano(), a.Mtime.UnixNano(), a.Ctime.UnixNano(),
		a.FileID, a.Appender, a.Gen, a.Target, a.Rdev)
}

// state is everything an index holds, read through the interface.
type state struct {
	inodes  map[index.Ino]index.Attr
	entries map[string]index.Ino // "parent/name"
	orphans []index.Ino
	pending []string
	xattrs  []string // "ino name value" of every extended attribute
}

func snapshot(t *testing.T, idx index.Index) state {
	t.Helper()
	ctx := t.Context()
	s := state{inodes: map[index.Ino]index.Attr{}, entries: map[string]index.Ino{}}
	mustOK(t, "Inodes", func() error {
		return idx.Inodes(ctx, func(a index.Attr) error {
			s.inodes[a.Ino] = a
			return nil
		})
	})
	for ino := range s.inodes {
		names, err := idx.ListXattr(ctx, ino)
		if err != nil {
			t.Fatalf("ListXattr(%d): %v", ino, err)
		}
		for _, name := range names {
			v, err := idx.GetXattr(ctx, ino, name)
			if err != nil {
				t.Fatalf("GetXattr(%d, %q): %v", ino, name, err)
			}
			s.xattrs = append(s.xattrs, fmt.Sprintf("%d %q %x", ino, name, v))
		}
	}
	slices.Sort(s.xattrs)
	for ino, a := range s.inodes {
		if a.Kind != index.KindDir {
			continue
		}
		mustOK(t, "Dentries", func() error {
			return idx.Dentries(ctx, ino, func(name string, child index.Ino, _ index.Kind) error {
				s.entries[fmt.Sprintf("%d/%s", ino, name)] = child
				return nil
			})
		})
	}
	var err error
	if s.orphans, err = idx.Orphans(ctx); err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	slices.Sort(s.orphans)
	ps, err := idx.ListPending(ctx)
	if err != nil {
		t.Fatalf("ListPending: %v", err)
	}
	for _, p := range ps {
		s.pending = append(s.pending, fmt.Sprintf("%s %d %s %d", p.FileID, p.Reason, p.Session, p.Since.UnixNano()))
	}
	slices.Sort(s.pending)
	return s
}

func (s state) diff(o state) string {
	var b strings.Builder
	for ino, a := range s.inodes {
		if oa, ok := o.inodes[ino]; !ok {
			fmt.Fprintf(&b, "inode %d gone\n", ino)
		} else if !sameAttr(a, oa) {
			fmt.Fprintf(&b, "inode %d: %s\n       now %s\n", ino, formatAttr(a), formatAttr(oa))
		}
	}
	for ino := range o.inodes {
		if _, ok := s.inodes[ino]; !ok {
			fmt.Fprintf(&b, "inode %d new\n", ino)
		}
	}
	for k, v := range s.entries {
		if ov, ok := o.entries[k]; !ok || ov != v {
			fmt.Fprintf(&b, "entry %s: %d, now %d (present %v)\n", k, v, ov, ok)
		}
	}
	for k := range o.entries {
		if _, ok := s.entries[k]; !ok {
			fmt.Fprintf(&b, "entry %s new\n", k)
		}
	}
	if !slices.Equal(s.orphans, o.orphans) {
		fmt.Fprintf(&b, "orphans %v, now %v\n", s.orphans, o.orphans)
	}
	if !slices.Equal(s.pending, o.pending) {
		fmt.Fprintf(&b, "pending %q, now %q\n", s.pending, o.pending)
	}
	if !slices.Equal(s.xattrs, o.xattrs) {
		fmt.Fprintf(&b, "xattrs %q, now %q\n", s.xattrs, o.xattrs)
	}
	return b.String()
}

// ---- the suite ----

func testRoot(t *testing.T, fresh func(*testing.T) index.Index) {
	idx := fresh(t)
	root := getattr(t, idx, index.RootIno)
	if root.Ino != index.RootIno || root.Kind != index.KindDir || root.Nlink != 2 || root.Mode != 0o755 {
		t.Errorf("root = %s, want dir 0755 with nlink 2", formatAttr(root))
	}
	wantNames(t, idx, index.RootIno)
	if ch := idx.Changes(); ch != nil {
		select {
		case c := <-ch:
			t.Errorf("a new index announced a change: %+v", c)
		default:
		}
	}
	_, err := idx.GetAttr(t.Context(), 999999)
	wantErr(t, "GetAttr(missing)", err, index.ErrNotFound)
}

func testCreate(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	t.Run("Kinds", func(t *testing.T) {
		idx := fresh(t)
		mtime := time.Unix(1_700_000_000, 123456789)
		f := create(t, idx, index.RootIno, "f", index.Attr{
			Kind: index.KindFile, Mode: 0o100640, Uid: 7, Gid: 8, Mtime: mtime,
			Nlink: 9, Ino: 12345, Gen: 99,
		})
		if f.Ino <= index.RootIno || f.Nlink != 1 || f.Mode != 0o640 || f.Uid != 7 || f.Gid != 8 || f.Gen != 0 {
			t.Errorf("file = %s; want a new inode, nlink 1, mode 0640 (type bits dropped), uid 7, gid 8, gen 0", formatAttr(f))
		}
		if !f.Mtime.Equal(mtime) {
			t.Errorf("file mtime = %v, want the given %v", f.Mtime, mtime)
		}
		if f.Atime.IsZero() || f.Ctime.IsZero() {
			t.Errorf("file with zero atime/ctime kept them zero: %s", formatAttr(f))
		}
		d := mkdir(t, idx, index.RootIno, "d")
		if d.Nlink != 2 || d.Kind != index.KindDir {
			t.Errorf("dir = %s, want nlink 2", formatAttr(d))
		}
		s := symlink(t, idx, index.RootIno, "s", "../somewhere")
		if s.Target != "../somewhere" || s.Kind != index.KindSymlink || s.Nlink != 1 {
			t.Errorf("symlink = %s", formatAttr(s))
		}
		if f.Ino == d.Ino || d.Ino == s.Ino || f.Ino == s.Ino {
			t.Errorf("inode numbers reused: %d %d %d", f.Ino, d.Ino, s.Ino)
		}
		for name, want := range map[string]index.Attr{"f": f, "d": d, "s": s} {
			if got := lookup(t, idx, index.RootIno, name); !sameAttr(got, want) {
				t.Errorf("Lookup(%q) = %s, Create returned %s", name, formatAttr(got), formatAttr(want))
			}
			if got := getattr(t, idx, want.Ino); !sameAttr(got, want) {
				t.Errorf("GetAttr(%q) = %s, Create returned %s", name, formatAttr(got), formatAttr(want))
			}
		}
		wantNlink(t, idx, index.RootIno, 3)
		sub := mkdir(t, idx, d.Ino, "sub")
		wantNlink(t, idx, d.Ino, 3)
		mkfile(t, idx, sub.Ino, "deep")
		wantNlink(t, idx, sub.Ino, 2)
	})
	t.Run("ParentTimes", func(t *testing.T) {
		idx := fresh(t)
		old := time.Unix(1_000_000_000, 0)
		d := mkdir(t, idx, index.RootIno, "d")
		mustOK(t, "SetAttr", func() error {
			_, err := idx.SetAttr(ctx, d.Ino, index.SetAttrIn{Mtime: &old, Ctime: &old})
			return err
		})
		mkfile(t, idx, d.Ino, "f")
		if got := getattr(t, idx, d.Ino); !got.Mtime.After(old) || !got.Ctime.After(old) {
			t.Errorf("creating in a dir left its mtime %v ctime %v", got.Mtime, got.Ctime)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		idx := fresh(t)
		f := mkfile(t, idx, index.RootIno, "f")
		cases := []struct {
			name   string
			parent index.Ino
			entry  string
			attr   index.Attr
			want   error
		}{
			{"exists", index.RootIno, "f", index.Attr{Kind: index.KindFile}, index.ErrExists},
			{"exists as dir", index.RootIno, "f", index.Attr{Kind: index.KindDir}, index.ErrExists},
			{"missing parent", 999999, "x", index.Attr{Kind: index.KindFile}, index.ErrNotFound},
			{"parent is a file", f.Ino, "x", index.Attr{Kind: index.KindFile}, index.ErrNotDir},
			{"no kind", index.RootIno, "x", index.Attr{}, index.ErrInvalid},
			{"bad kind", index.RootIno, "x", index.Attr{Kind: 99}, index.ErrInvalid},
			{"symlink without target", index.RootIno, "x", index.Attr{Kind: index.KindSymlink}, index.ErrInvalid},
		}
		for _, c := range cases {
			_, err := idx.Create(ctx, c.parent, c.entry, c.attr)
			wantErr(t, c.name, err, c.want)
		}
		wantNames(t, idx, index.RootIno, "f")
		wantNlink(t, idx, index.RootIno, 2)
	})
	t.Run("ClaimsUpload", func(t *testing.T) {
		idx := fresh(t)
		mustOK(t, "AddPending", func() error {
			return idx.AddPending(ctx, index.Pending{FileID: "g/up", Reason: index.PendingUpload})
		})
		f := create(t, idx, index.RootIno, "f", index.Attr{Kind: index.KindFile, FileID: "g/up", Size: 5})
		if f.FileID != "g/up" || f.Size != 5 {
			t.Errorf("file = %s, want g/up of size 5", formatAttr(f))
		}
		if ps, _ := idx.ListPending(ctx); len(ps) != 0 {
			t.Errorf("creating a file on an upload left the journal %v", ps)
		}
	})
}

func testNames(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	d := mkdir(t, idx, index.RootIno, "d")
	long := strings.Repeat("n", index.MaxNameLen)
	bad := []struct {
		name string
		want error
	}{
		{"", index.ErrInvalid},
		{".", index.ErrInvalid},
		{"..", index.ErrInvalid},
		{"a/b", index.ErrInvalid},
		{"/", index.ErrInvalid},
		{"nul\x00", index.ErrInvalid},
		{long + "n", index.ErrNameLen},
	}
	for _, c := range bad {
		what := fmt.Sprintf("%q", c.name)
		if len(what) > 20 {
			what = what[:20] + "…"
		}
		_, err := idx.Create(ctx, index.RootIno, c.name, index.Attr{Kind: index.KindFile})
		wantErr(t, "Create "+what, err, c.want)
		_, err = idx.Lookup(ctx, index.RootIno, c.name)
		wantErr(t, "Lookup "+what, err, c.want)
		_, err = idx.Link(ctx, f.Ino, index.RootIno, c.name)
		wantErr(t, "Link "+what, err, c.want)
		_, err = idx.Unlink(ctx, index.RootIno, c.name)
		wantErr(t, "Unlink "+what, err, c.want)
		err = idx.Rmdir(ctx, index.RootIno, c.name)
		wantErr(t, "Rmdir "+what, err, c.want)
		_, err = idx.Rename(ctx, index.RootIno, "f", d.Ino, c.name, 0)
		wantErr(t, "Rename to "+what, err, c.want)
		_, err = idx.Rename(ctx, index.RootIno, c.name, d.Ino, "x", 0)
		wantErr(t, "Rename from "+what, err, c.want)
	}
	wantNames(t, idx, index.RootIno, "d", "f")
	wantNames(t, idx, d.Ino)

	// The longest name, bytes that are not UTF-8, and odd characters are
	// all fine.
	for _, name := range []string{long, "bad\xff\xfeutf8", "spa ce", "new\nline", "ünï", "...", ".hidden"} {
		a := mkfile(t, idx, d.Ino, name)
		if got := lookup(t, idx, d.Ino, name); got.Ino != a.Ino {
			t.Errorf("Lookup(%q) = %d, want %d", name, got.Ino, a.Ino)
		}
	}
}

func testLookup(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	_, err := idx.Lookup(ctx, index.RootIno, "nope")
	wantErr(t, "missing name", err, index.ErrNotFound)
	_, err = idx.Lookup(ctx, f.Ino, "x")
	wantErr(t, "parent is a file", err, index.ErrNotDir)
	_, err = idx.Lookup(ctx, 999999, "x")
	wantErr(t, "missing parent", err, index.ErrNotFound)
	if got := lookup(t, idx, index.RootIno, "f"); got.Ino != f.Ino {
		t.Errorf("Lookup(f) = %d, want %d", got.Ino, f.Ino)
	}
}

func testReadDir(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	d := mkdir(t, idx, index.RootIno, "d")
	want := map[string]index.Attr{}
	for _, name := range []string{"zeta", "alpha", "Beta", "mid", "a"} {
		want[name] = mkfile(t, idx, d.Ino, name)
	}
	want["sub"] = mkdir(t, idx, d.Ino, "sub")
	want["ln"] = symlink(t, idx, d.Ino, "ln", "alpha")
	mkfile(t, idx, want["sub"].Ino, "not-listed")
	// Entry attributes must be current, not what they were at create.
	mtime := time.Unix(1_600_000_000, 5)
	var err error
	if want["mid"], err = idx.SetContent(ctx, want["mid"].Ino, index.Content{FileID: "g/mid", Size: 42, Mtime: mtime}); err != nil {
		t.Fatal(err)
	}
	want["alpha"] = link(t, idx, want["alpha"].Ino, index.RootIno, "alpha2")
	want["sub"] = getattr(t, idx, want["sub"].Ino)

	es := readdir(t, idx, d.Ino)
	got := names(es)
	sorted := slices.Sorted(func(yield func(string) bool) {
		for n := range want {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Equal(got, sorted) {
		t.Fatalf("ReadDir names = %q, want %q (byte order)", got, sorted)
	}
	for _, e := range es {
		if !sameAttr(e.Attr, want[e.Name]) {
			t.Errorf("entry %q = %s, want %s", e.Name, formatAttr(e.Attr), formatAttr(want[e.Name]))
		}
	}
	// In batches: the same entries in the same order, at most 2 at a time;
	// an error from the callback ends the listing.
	var batched []index.Entry
	err = idx.ReadDirBatches(ctx, d.Ino, 2, func(b []index.Entry) error {
		if len(b) == 0 || len(b) > 2 {
			t.Errorf("ReadDirBatches(2) handed a batch of %d", len(b))
		}
		batched = append(batched, b...)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadDirBatches: %v", err)
	}
	if !slices.Equal(names(batched), got) {
		t.Errorf("ReadDirBatches names = %q, want %q", names(batched), got)
	}
	for i, e := range batched {
		if i < len(es) && !sameAttr(e.Attr, es[i].Attr) {
			t.Errorf("batched entry %q = %s, want %s", e.Name, formatAttr(e.Attr), formatAttr(es[i].Attr))
		}
	}
	stop := errors.New("stop")
	calls := 0
	err = idx.ReadDirBatches(ctx, d.Ino, 3, func([]index.Entry) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ReadDirBatches with a failing callback: %v after %d calls, want %v after 1", err, calls, stop)
	}
	err = idx.ReadDirBatches(ctx, want["zeta"].Ino, 2, func([]index.Entry) error { return nil })
	wantErr(t, "ReadDirBatches(file)", err, index.ErrNotDir)
	_, err = idx.ReadDir(ctx, want["zeta"].Ino)
	wantErr(t, "ReadDir(file)", err, index.ErrNotDir)
	_, err = idx.ReadDir(ctx, 999999)
	wantErr(t, "ReadDir(missing)", err, index.ErrNotFound)
	wantNames(t, idx, want["sub"].Ino, "not-listed")
}

func testLink(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	d := mkdir(t, idx, index.RootIno, "d")
	f := mkfile(t, idx, index.RootIno, "f")
	s := symlink(t, idx, index.RootIno, "s", "f")
	old := time.Unix(1_000_000_000, 0)
	mustOK(t, "SetAttr", func() error {
		_, err := idx.SetAttr(ctx, f.Ino, index.SetAttrIn{Ctime: &old})
		return err
	})
	l := link(t, idx, f.Ino, d.Ino, "f2")
	if l.Ino != f.Ino || l.Nlink != 2 || !l.Ctime.After(old) {
		t.Errorf("Link returned %s; want inode %d, nlink 2, new ctime", formatAttr(l), f.Ino)
	}
	if got := lookup(t, idx, d.Ino, "f2"); got.Ino != f.Ino || got.Nlink != 2 {
		t.Errorf("d/f2 = %s", formatAttr(got))
	}
	if got := lookup(t, idx, index.RootIno, "f"); got.Nlink != 2 {
		t.Errorf("f nlink = %d, want 2 through the old name too", got.Nlink)
	}
	if got := link(t, idx, s.Ino, d.Ino, "s2"); got.Nlink != 2 || got.Kind != index.KindSymlink {
		t.Errorf("symlink link = %s", formatAttr(got))
	}
	wantNlink(t, idx, d.Ino, 2) // files do not count in a dir's nlink

	_, err := idx.Link(ctx, f.Ino, d.Ino, "f2")
	wantErr(t, "Link to an existing name", err, index.ErrExists)
	_, err = idx.Link(ctx, d.Ino, index.RootIno, "d2")
	wantErr(t, "Link of a directory", err, index.ErrInvalid)
	_, err = idx.Link(ctx, 999999, index.RootIno, "x")
	wantErr(t, "Link of a missing inode", err, index.ErrNotFound)
	_, err = idx.Link(ctx, f.Ino, 999999, "x")
	wantErr(t, "Link into a missing dir", err, index.ErrNotFound)
	_, err = idx.Link(ctx, f.Ino, s.Ino, "x")
	wantErr(t, "Link into a symlink", err, index.ErrNotDir)

	o := mkfile(t, idx, index.RootIno, "o")
	unlink(t, idx, index.RootIno, "o")
	_, err = idx.Link(ctx, o.Ino, index.RootIno, "o-again")
	wantErr(t, "Link of an orphan", err, index.ErrNotFound)
	wantNames(t, idx, index.RootIno, "d", "f", "s")
}

func testUnlink(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	d := mkdir(t, idx, index.RootIno, "d")
	f := mkfile(t, idx, d.Ino, "f")
	link(t, idx, f.Ino, index.RootIno, "f2")
	old := time.Unix(1_000_000_000, 0)
	mustOK(t, "SetAttr", func() error {
		_, err := idx.SetAttr(ctx, d.Ino, index.SetAttrIn{Mtime: &old, Ctime: &old})
		return err
	})

	a := unlink(t, idx, d.Ino, "f")
	if a.Ino != f.Ino || a.Nlink != 1 {
		t.Errorf("first Unlink = %s, want nlink 1", formatAttr(a))
	}
	if got := getattr(t, idx, d.Ino); !got.Mtime.After(old) || !got.Ctime.After(old) {
		t.Errorf("Unlink left the parent's mtime %v ctime %v", got.Mtime, got.Ctime)
	}
	wantNames(t, idx, d.Ino)
	if os, _ := idx.Orphans(ctx); len(os) != 0 {
		t.Errorf("Orphans with a name left = %v", os)
	}
	a = unlink(t, idx, index.RootIno, "f2")
	if a.Nlink != 0 {
		t.Errorf("last Unlink = %s, want nlink 0", formatAttr(a))
	}
	// The orphan stays readable for open handles until Purge.
	if got := getattr(t, idx, f.Ino); got.Nlink != 0 || got.Kind != index.KindFile {
		t.Errorf("orphan = %s", formatAttr(got))
	}
	if os, _ := idx.Orphans(ctx); !slices.Equal(os, []index.Ino{f.Ino}) {
		t.Errorf("Orphans = %v, want [%d]", os, f.Ino)
	}
	wantNames(t, idx, index.RootIno, "d")

	_, err := idx.Unlink(ctx, index.RootIno, "d")
	wantErr(t, "Unlink(dir)", err, index.ErrIsDir)
	_, err = idx.Unlink(ctx, index.RootIno, "nope")
	wantErr(t, "Unlink(missing)", err, index.ErrNotFound)
	_, err = idx.Unlink(ctx, 999999, "x")
	wantErr(t, "Unlink in a missing dir", err, index.ErrNotFound)
	s := symlink(t, idx, index.RootIno, "s", "d")
	_, err = idx.Unlink(ctx, s.Ino, "x")
	wantErr(t, "Unlink in a symlink", err, index.ErrNotDir)
	if a := unlink(t, idx, index.RootIno, "s"); a.Nlink != 0 || a.Kind != index.KindSymlink {
		t.Errorf("Unlink(symlink) = %s", formatAttr(a))
	}
}

func testRmdir(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	d := mkdir(t, idx, index.RootIno, "d")
	sub := mkdir(t, idx, d.Ino, "sub")
	mkfile(t, idx, index.RootIno, "f")
	wantNlink(t, idx, index.RootIno, 3)
	wantNlink(t, idx, d.Ino, 3)

	wantErr(t, "Rmdir(non-empty)", idx.Rmdir(ctx, index.RootIno, "d"), index.ErrNotEmpty)
	wantErr(t, "Rmdir(file)", idx.Rmdir(ctx, index.RootIno, "f"), index.ErrNotDir)
	wantErr(t, "Rmdir(missing)", idx.Rmdir(ctx, index.RootIno, "nope"), index.ErrNotFound)
	wantErr(t, "Rmdir in a missing dir", idx.Rmdir(ctx, 999999, "x"), index.ErrNotFound)

	mustOK(t, "Rmdir(sub)", func() error { return idx.Rmdir(ctx, d.Ino, "sub") })
	wantNlink(t, idx, d.Ino, 2)
	_, err := idx.GetAttr(ctx, sub.Ino)
	wantErr(t, "GetAttr(removed dir)", err, index.ErrNotFound)
	mustOK(t, "Rmdir(d)", func() error { return idx.Rmdir(ctx, index.RootIno, "d") })
	wantNlink(t, idx, index.RootIno, 2)
	wantNames(t, idx, index.RootIno, "f")
	_, err = idx.Create(ctx, d.Ino, "x", index.Attr{Kind: index.KindFile})
	wantErr(t, "Create in a removed dir", err, index.ErrNotFound)
	if os, _ := idx.Orphans(ctx); len(os) != 0 {
		t.Errorf("Rmdir left orphans %v", os)
	}
}

func testRename(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	old := time.Unix(1_000_000_000, 0)
	age := func(t *testing.T, idx index.Index, inos ...index.Ino) {
		t.Helper()
		for _, ino := range inos {
			mustOK(t, "SetAttr", func() error {
				_, err := idx.SetAttr(ctx, ino, index.SetAttrIn{Mtime: &old, Ctime: &old})
				return err
			})
		}
	}
	fresher := func(t *testing.T, idx index.Index, ino index.Ino, mtimeToo bool) {
		t.Helper()
		a := getattr(t, idx, ino)
		if !a.Ctime.After(old) || (mtimeToo && !a.Mtime.After(old)) {
			t.Errorf("rename left inode %d with mtime %v ctime %v", ino, a.Mtime, a.Ctime)
		}
	}

	t.Run("FileSameDir", func(t *testing.T) {
		idx := fresh(t)
		f := mkfile(t, idx, index.RootIno, "a")
		age(t, idx, f.Ino, index.RootIno)
		rep, err := idx.Rename(ctx, index.RootIno, "a", index.RootIno, "b", 0)
		if err != nil || rep != nil {
			t.Fatalf("Rename = %v, %v", rep, err)
		}
		wantNames(t, idx, index.RootIno, "b")
		if got := lookup(t, idx, index.RootIno, "b"); got.Ino != f.Ino || got.Nlink != 1 {
			t.Errorf("b = %s", formatAttr(got))
		}
		fresher(t, idx, f.Ino, false)
		fresher(t, idx, index.RootIno, true)
	})
	t.Run("FileAcrossDirs", func(t *testing.T) {
		idx := fresh(t)
		d1 := mkdir(t, idx, index.RootIno, "d1")
		d2 := mkdir(t, idx, index.RootIno, "d2")
		f := mkfile(t, idx, d1.Ino, "f")
		age(t, idx, d1.Ino, d2.Ino)
		if _, err := idx.Rename(ctx, d1.Ino, "f", d2.Ino, "g", 0); err != nil {
			t.Fatal(err)
		}
		wantNames(t, idx, d1.Ino)
		wantNames(t, idx, d2.Ino, "g")
		if got := lookup(t, idx, d2.Ino, "g"); got.Ino != f.Ino {
			t.Errorf("d2/g = %d, want %d", got.Ino, f.Ino)
		}
		wantNlink(t, idx, d1.Ino, 2)
		wantNlink(t, idx, d2.Ino, 2)
		fresher(t, idx, d1.Ino, true)
		fresher(t, idx, d2.Ino, true)
	})
	t.Run("OverFile", func(t *testing.T) {
		idx := fresh(t)
		a := mkfile(t, idx, index.RootIno, "a")
		b := mkfile(t, idx, index.RootIno, "b")
		rep, err := idx.Rename(ctx, index.RootIno, "a", index.RootIno, "b", 0)
		if err != nil {
			t.Fatal(err)
		}
		if rep == nil || rep.Ino != b.Ino || rep.Nlink != 0 {
			t.Fatalf("replaced = %v, want inode %d with nlink 0", rep, b.Ino)
		}
		wantNames(t, idx, index.RootIno, "b")
		if got := lookup(t, idx, index.RootIno, "b"); got.Ino != a.Ino {
			t.Errorf("b = %d, want %d", got.Ino, a.Ino)
		}
		if os, _ := idx.Orphans(ctx); !slices.Equal(os, []index.Ino{b.Ino}) {
			t.Errorf("Orphans = %v, want the replaced %d", os, b.Ino)
		}
		if got := getattr(t, idx, b.Ino); got.Nlink != 0 {
			t.Errorf("replaced = %s", formatAttr(got))
		}
	})
	t.Run("OverLinkedFile", func(t *testing.T) {
		idx := fresh(t)
		mkfile(t, idx, index.RootIno, "a")
		b := mkfile(t, idx, index.RootIno, "b")
		link(t, idx, b.Ino, index.RootIno, "b2")
		rep, err := idx.Rename(ctx, index.RootIno, "a", index.RootIno, "b", 0)
		if err != nil || rep == nil || rep.Ino != b.Ino || rep.Nlink != 1 {
			t.Fatalf("Rename = %v, %v; want the replaced %d with nlink 1", rep, err, b.Ino)
		}
		if os, _ := idx.Orphans(ctx); len(os) != 0 {
			t.Errorf("Orphans = %v, want none", os)
		}
	})
	t.Run("HardLinksOfOneInode", func(t *testing.T) {
		idx := fresh(t)
		a := mkfile(t, idx, index.RootIno, "a")
		link(t, idx, a.Ino, index.RootIno, "b")
		rep, err := idx.Rename(ctx, index.RootIno, "a", index.RootIno, "b", 0)
		if err != nil || rep != nil {
			t.Fatalf("Rename(a, b) of one inode = %v, %v; want a no-op", rep, err)
		}
		wantNames(t, idx, index.RootIno, "a", "b")
		wantNlink(t, idx, a.Ino, 2)
	})
	t.Run("ToItself", func(t *testing.T) {
		idx := fresh(t)
		mkfile(t, idx, index.RootIno, "a")
		for _, flags := range []uint32{0, index.RenameNoReplace, index.RenameExchange} {
			if rep, err := idx.Rename(ctx, index.RootIno, "a", index.RootIno, "a", flags); err != nil || rep != nil {
				t.Errorf("Rename(a, a, %d) = %v, %v", flags, rep, err)
			}
		}
		wantNames(t, idx, index.RootIno, "a")
		_, err := idx.Rename(ctx, index.RootIno, "nope", index.RootIno, "nope", 0)
		wantErr(t, "Rename(missing, itself)", err, index.ErrNotFound)
	})
	t.Run("DirAcrossDirs", func(t *testing.T) {
		idx := fresh(t)
		d1 := mkdir(t, idx, index.RootIno, "d1")
		d2 := mkdir(t, idx, index.RootIno, "d2")
		x := mkdir(t, idx, d1.Ino, "x")
		mkfile(t, idx, x.Ino, "inside")
		wantNlink(t, idx, d1.Ino, 3)
		if _, err := idx.Rename(ctx, d1.Ino, "x", d2.Ino, "y", 0); err != nil {
			t.Fatal(err)
		}
		wantNlink(t, idx, d1.Ino, 2)
		wantNlink(t, idx, d2.Ino, 3)
		wantNlink(t, idx, x.Ino, 2)
		wantNames(t, idx, x.Ino, "inside")
		// The moved directory's new place counts for loop checks.
		_, err := idx.Rename(ctx, index.RootIno, "d2", x.Ino, "d2", 0)
		wantErr(t, "Rename(d2 into d2/y)", err, index.ErrInvalid)
		if _, err := idx.Rename(ctx, index.RootIno, "d1", x.Ino, "d1", 0); err != nil {
			t.Errorf("Rename(d1 into d2/y): %v", err)
		}
		wantNlink(t, idx, index.RootIno, 3)
		wantNlink(t, idx, x.Ino, 3)
	})
	t.Run("DirSameDir", func(t *testing.T) {
		idx := fresh(t)
		d := mkdir(t, idx, index.RootIno, "d")
		if _, err := idx.Rename(ctx, index.RootIno, "d", index.RootIno, "e", 0); err != nil {
			t.Fatal(err)
		}
		wantNlink(t, idx, index.RootIno, 3)
		if got := lookup(t, idx, index.RootIno, "e"); got.Ino != d.Ino || got.Nlink != 2 {
			t.Errorf("e = %s", formatAttr(got))
		}
	})
	t.Run("DirOverEmptyDir", func(t *testing.T) {
		idx := fresh(t)
		d1 := mkdir(t, idx, index.RootIno, "d1")
		x := mkdir(t, idx, d1.Ino, "x")
		y := mkdir(t, idx, index.RootIno, "y")
		wantNlink(t, idx, index.RootIno, 4)
		rep, err := idx.Rename(ctx, d1.Ino, "x", index.RootIno, "y", 0)
		if err != nil {
			t.Fatal(err)
		}
		if rep == nil || rep.Ino != y.Ino {
			t.Errorf("replaced = %v, want dir %d", rep, y.Ino)
		}
		_, err = idx.GetAttr(ctx, y.Ino)
		wantErr(t, "GetAttr(replaced dir)", err, index.ErrNotFound)
		wantNlink(t, idx, index.RootIno, 4)
		wantNlink(t, idx, d1.Ino, 2)
		if got := lookup(t, idx, index.RootIno, "y"); got.Ino != x.Ino {
			t.Errorf("y = %d, want %d", got.Ino, x.Ino)
		}
		// Within one directory, replacing a dir drops one subdirectory.
		mkdir(t, idx, index.RootIno, "z")
		wantNlink(t, idx, index.RootIno, 5)
		if _, err := idx.Rename(ctx, index.RootIno, "y", index.RootIno, "z", 0); err != nil {
			t.Fatal(err)
		}
		wantNlink(t, idx, index.RootIno, 4)
		wantNames(t, idx, index.RootIno, "d1", "z")
		if os, _ := idx.Orphans(ctx); len(os) != 0 {
			t.Errorf("replacing dirs left orphans %v", os)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		idx := fresh(t)
		d := mkdir(t, idx, index.RootIno, "d")
		full := mkdir(t, idx, index.RootIno, "full")
		mkfile(t, idx, full.Ino, "x")
		sub := mkdir(t, idx, d.Ino, "sub")
		mkfile(t, idx, index.RootIno, "f")
		mkdir(t, idx, index.RootIno, "empty")
		cases := []struct {
			name  string
			op    index.Ino
			on    string
			np    index.Ino
			nn    string
			flags uint32
			want  error
		}{
			{"dir over non-empty dir", index.RootIno, "d", index.RootIno, "full", 0, index.ErrNotEmpty},
			{"dir over file", index.RootIno, "d", index.RootIno, "f", 0, index.ErrNotDir},
			{"file over dir", index.RootIno, "f", index.RootIno, "empty", 0, index.ErrIsDir},
			{"dir into itself", index.RootIno, "d", d.Ino, "d", 0, index.ErrInvalid},
			{"dir into its subtree", index.RootIno, "d", sub.Ino, "d", 0, index.ErrInvalid},
			{"no-replace over a file", index.RootIno, "f", d.Ino, "sub", index.RenameNoReplace, index.ErrExists},
			{"no-replace", index.RootIno, "empty", index.RootIno, "f", index.RenameNoReplace, index.ErrExists},
			{"both flags", index.RootIno, "f", index.RootIno, "g", index.RenameNoReplace | index.RenameExchange, index.ErrInvalid},
			{"unknown flag", index.RootIno, "f", index.RootIno, "g", 1 << 5, index.ErrInvalid},
			{"missing source", index.RootIno, "nope", index.RootIno, "g", 0, index.ErrNotFound},
			{"missing old parent", 999999, "f", index.RootIno, "g", 0, index.ErrNotFound},
			{"missing new parent", index.RootIno, "f", 999999, "g", 0, index.ErrNotFound},
			{"new parent a file", index.RootIno, "d", lookup(t, idx, index.RootIno, "f").Ino, "g", 0, index.ErrNotDir},
			{"exchange with nothing", index.RootIno, "f", index.RootIno, "nope", index.RenameExchange, index.ErrNotFound},
			{"exchange with a missing name", index.RootIno, "d", sub.Ino, "x", index.RenameExchange, index.ErrNotFound},
		}
		before := snapshot(t, idx)
		for _, c := range cases {
			rep, err := idx.Rename(ctx, c.op, c.on, c.np, c.nn, c.flags)
			wantErr(t, c.name, err, c.want)
			if rep != nil {
				t.Errorf("%s: replaced = %v on error", c.name, rep)
			}
		}
		if diff := before.diff(snapshot(t, idx)); diff != "" {
			t.Errorf("refused renames changed the store:\n%s", diff)
		}
		// Exchanging a dir with an entry inside itself.
		mkfile(t, idx, sub.Ino, "x")
		before = snapshot(t, idx)
		_, err := idx.Rename(ctx, index.RootIno, "d", sub.Ino, "x", index.RenameExchange)
		wantErr(t, "exchange a dir with a file inside it", err, index.ErrInvalid)
		if diff := before.diff(snapshot(t, idx)); diff != "" {
			t.Errorf("refused renames changed the store:\n%s", diff)
		}
	})
	t.Run("Exchange", func(t *testing.T) {
		idx := fresh(t)
		d1 := mkdir(t, idx, index.RootIno, "d1")
		d2 := mkdir(t, idx, index.RootIno, "d2")
		f := mkfile(t, idx, d1.Ino, "f")
		x := mkdir(t, idx, d2.Ino, "x")
		mkfile(t, idx, x.Ino, "inside")
		age(t, idx, f.Ino, x.Ino, d1.Ino, d2.Ino)
		rep, err := idx.Rename(ctx, d1.Ino, "f", d2.Ino, "x", index.RenameExchange)
		if err != nil || rep != nil {
			t.Fatalf("exchange = %v, %v", rep, err)
		}
		if got := lookup(t, idx, d1.Ino, "f"); got.Ino != x.Ino {
			t.Errorf("d1/f = %d, want the dir %d", got.Ino, x.Ino)
		}
		if got := lookup(t, idx, d2.Ino, "x"); got.Ino != f.Ino {
			t.Errorf("d2/x = %d, want the file %d", got.Ino, f.Ino)
		}
		wantNlink(t, idx, d1.Ino, 3)
		wantNlink(t, idx, d2.Ino, 2)
		wantNlink(t, idx, f.Ino, 1)
		wantNlink(t, idx, x.Ino, 2)
		for _, ino := range []index.Ino{f.Ino, x.Ino} {
			fresher(t, idx, ino, false)
		}
		for _, ino := range []index.Ino{d1.Ino, d2.Ino} {
			fresher(t, idx, ino, true)
		}
		// The moved dir is now below d1 for loop checks.
		_, err = idx.Rename(ctx, index.RootIno, "d1", x.Ino, "loop", 0)
		wantErr(t, "Rename(d1 into d1/f)", err, index.ErrInvalid)
		// And back, the directory being the source this time.
		if _, err := idx.Rename(ctx, d1.Ino, "f", d2.Ino, "x", index.RenameExchange); err != nil {
			t.Fatal(err)
		}
		wantNlink(t, idx, d1.Ino, 2)
		wantNlink(t, idx, d2.Ino, 3)
		if got := lookup(t, idx, d2.Ino, "x"); got.Ino != x.Ino {
			t.Errorf("d2/x = %d after exchanging back, want %d", got.Ino, x.Ino)
		}
		_, err = idx.Rename(ctx, index.RootIno, "d2", x.Ino, "loop", 0)
		wantErr(t, "Rename(d2 into d2/x)", err, index.ErrInvalid)
		if _, err := idx.Rename(ctx, index.RootIno, "d1", x.Ino, "d1", 0); err != nil {
			t.Errorf("Rename(d1 into d2/x): %v", err)
		}
		// Two dirs in one parent: nothing to recount.
		mkdir(t, idx, index.RootIno, "d3")
		if _, err := idx.Rename(ctx, index.RootIno, "d2", index.RootIno, "d3", index.RenameExchange); err != nil {
			t.Fatal(err)
		}
		wantNlink(t, idx, index.RootIno, 4)
	})
	t.Run("NoReplace", func(t *testing.T) {
		idx := fresh(t)
		f := mkfile(t, idx, index.RootIno, "f")
		if _, err := idx.Rename(ctx, index.RootIno, "f", index.RootIno, "g", index.RenameNoReplace); err != nil {
			t.Fatal(err)
		}
		if got := lookup(t, idx, index.RootIno, "g"); got.Ino != f.Ino {
			t.Errorf("g = %d, want %d", got.Ino, f.Ino)
		}
	})
}

func testSetAttr(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	u32 := func(v uint32) *uint32 { return &v }
	at := time.Unix(1_500_000_000, 1)
	mt := time.Unix(1_500_000_001, 2)
	ct := time.Unix(1_500_000_002, 3)

	a, err := idx.SetAttr(ctx, f.Ino, index.SetAttrIn{Mode: u32(0o104755)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != 0o4755 || a.Uid != f.Uid || a.Gid != f.Gid || !a.Mtime.Equal(f.Mtime) {
		t.Errorf("after chmod: %s", formatAttr(a))
	}
	a, err = idx.SetAttr(ctx, f.Ino, index.SetAttrIn{Uid: u32(11), Gid: u32(12)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Uid != 11 || a.Gid != 12 || a.Mode != 0o4755 {
		t.Errorf("after chown: %s", formatAttr(a))
	}
	a, err = idx.SetAttr(ctx, f.Ino, index.SetAttrIn{Atime: &at, Mtime: &mt, Ctime: &ct})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Atime.Equal(at) || !a.Mtime.Equal(mt) || !a.Ctime.Equal(ct) {
		t.Errorf("after utimes: %s", formatAttr(a))
	}
	a, err = idx.SetAttr(ctx, f.Ino, index.SetAttrIn{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Ctime.After(ct) || !a.Atime.Equal(at) || !a.Mtime.Equal(mt) {
		t.Errorf("an empty SetAttr should only bump ctime: %s", formatAttr(a))
	}
	if got := getattr(t, idx, f.Ino); !sameAttr(got, a) {
		t.Errorf("GetAttr = %s, SetAttr returned %s", formatAttr(got), formatAttr(a))
	}
	_, err = idx.SetAttr(ctx, 999999, index.SetAttrIn{Mode: u32(0)})
	wantErr(t, "SetAttr(missing)", err, index.ErrNotFound)
	if got := getattr(t, idx, index.RootIno); got.Mode != 0o755 {
		t.Errorf("root mode changed to %#o", got.Mode)
	}
}

func testSetContent(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	pending := func() map[string]index.PendingReason {
		ps, err := idx.ListPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]index.PendingReason{}
		for _, p := range ps {
			m[p.FileID] = p.Reason
		}
		return m
	}
	mustOK(t, "AddPending", func() error {
		return idx.AddPending(ctx, index.Pending{FileID: "g/v1", Reason: index.PendingUpload})
	})
	mt := time.Unix(1_650_000_000, 9)
	a, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/v1", Size: 100, Mtime: mt})
	if err != nil {
		t.Fatal(err)
	}
	if a.FileID != "g/v1" || a.Size != 100 || a.Appender || a.Gen != f.Gen+1 || !a.Mtime.Equal(mt) || !a.Ctime.After(f.Ctime.Add(-time.Nanosecond)) {
		t.Errorf("after v1: %s", formatAttr(a))
	}
	if got := pending(); len(got) != 0 {
		t.Errorf("claiming v1 left the journal %v", got)
	}

	a, err = idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/v2", Appender: true, Size: 200})
	if err != nil {
		t.Fatal(err)
	}
	if a.FileID != "g/v2" || !a.Appender || a.Size != 200 || a.Gen != f.Gen+2 || !a.Mtime.After(mt) {
		t.Errorf("after v2: %s (a zero Content.Mtime means now)", formatAttr(a))
	}
	if got := pending(); len(got) != 1 || got["g/v1"] != index.PendingDelete {
		t.Errorf("journal after replacing v1 = %v, want g/v1 to delete", got)
	}
	ps, _ := idx.ListPending(ctx)
	if len(ps) == 1 && ps[0].Since.IsZero() {
		t.Errorf("PendingDelete without Since: %+v", ps[0])
	}

	// An appender file changed in place keeps its ID: nothing to delete.
	a, err = idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/v2", Appender: true, Size: 300})
	if err != nil {
		t.Fatal(err)
	}
	if a.Gen != f.Gen+3 || a.Size != 300 {
		t.Errorf("after in-place change: %s", formatAttr(a))
	}
	if got := pending(); len(got) != 1 {
		t.Errorf("in-place change journaled something: %v", got)
	}

	// Truncating to nothing journals the old content.
	a, err = idx.SetContent(ctx, f.Ino, index.Content{})
	if err != nil {
		t.Fatal(err)
	}
	if a.FileID != "" || a.Size != 0 || a.Appender {
		t.Errorf("after truncate: %s", formatAttr(a))
	}
	if got := pending(); got["g/v2"] != index.PendingDelete {
		t.Errorf("journal after truncate = %v, want g/v2 to delete", got)
	}
	if got := getattr(t, idx, f.Ino); !sameAttr(got, a) {
		t.Errorf("GetAttr = %s, SetContent returned %s", formatAttr(got), formatAttr(a))
	}

	d := mkdir(t, idx, index.RootIno, "d")
	s := symlink(t, idx, index.RootIno, "s", "f")
	_, err = idx.SetContent(ctx, d.Ino, index.Content{FileID: "g/x"})
	wantErr(t, "SetContent(dir)", err, index.ErrIsDir)
	_, err = idx.SetContent(ctx, s.Ino, index.Content{FileID: "g/x"})
	wantErr(t, "SetContent(symlink)", err, index.ErrInvalid)
	_, err = idx.SetContent(ctx, 999999, index.Content{FileID: "g/x"})
	wantErr(t, "SetContent(missing)", err, index.ErrNotFound)

	// An orphan still takes writes from its open handles.
	unlink(t, idx, index.RootIno, "f")
	if a, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/v3", Size: 1}); err != nil || a.Nlink != 0 {
		t.Errorf("SetContent(orphan) = %s, %v", formatAttr(a), err)
	}
}

func testPurge(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	if _, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/data", Size: 3}); err != nil {
		t.Fatal(err)
	}
	empty := mkfile(t, idx, index.RootIno, "empty")

	mustOK(t, "Purge(linked)", func() error { return idx.Purge(ctx, f.Ino) })
	if got := getattr(t, idx, f.Ino); got.Nlink != 1 || got.FileID != "g/data" {
		t.Errorf("Purge of a linked inode changed it: %s", formatAttr(got))
	}
	if ps, _ := idx.ListPending(ctx); len(ps) != 0 {
		t.Errorf("Purge of a linked inode journaled %v", ps)
	}

	unlink(t, idx, index.RootIno, "f")
	unlink(t, idx, index.RootIno, "empty")
	mustOK(t, "Purge(f)", func() error { return idx.Purge(ctx, f.Ino) })
	_, err := idx.GetAttr(ctx, f.Ino)
	wantErr(t, "GetAttr(purged)", err, index.ErrNotFound)
	ps, err := idx.ListPending(ctx)
	if err != nil || len(ps) != 1 || ps[0].FileID != "g/data" || ps[0].Reason != index.PendingDelete {
		t.Errorf("journal after Purge = %+v, %v; want g/data to delete", ps, err)
	}
	if os, _ := idx.Orphans(ctx); !slices.Equal(os, []index.Ino{empty.Ino}) {
		t.Errorf("Orphans = %v, want [%d]", os, empty.Ino)
	}
	mustOK(t, "Purge(empty)", func() error { return idx.Purge(ctx, empty.Ino) })
	if ps, _ := idx.ListPending(ctx); len(ps) != 1 {
		t.Errorf("purging a file without content journaled something: %v", ps)
	}
	if os, _ := idx.Orphans(ctx); len(os) != 0 {
		t.Errorf("Orphans after purging all = %v", os)
	}
	mustOK(t, "Purge(purged again)", func() error { return idx.Purge(ctx, f.Ino) })
	mustOK(t, "Purge(never existed)", func() error { return idx.Purge(ctx, 999999) })
	wantNames(t, idx, index.RootIno)
}

func testPending(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	since := time.Unix(1_700_000_000, 42)
	in := []index.Pending{
		{FileID: "group1/M00/00/00/b", Reason: index.PendingUpload, Session: "host-a", Since: since},
		{FileID: "group1/M00/00/00/a", Reason: index.PendingDelete, Session: "host-b", Since: since},
		{FileID: "group2/M00/00/00/c", Reason: index.PendingUpload},
	}
	for _, p := range in {
		mustOK(t, "AddPending", func() error { return idx.AddPending(ctx, p) })
	}
	ps, err := idx.ListPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("ListPending = %+v", ps)
	}
	byID := map[string]index.Pending{}
	for _, p := range ps {
		byID[p.FileID] = p
	}
	for _, p := range in[:2] {
		got := byID[p.FileID]
		if got.Reason != p.Reason || got.Session != p.Session || !got.Since.Equal(p.Since) {
			t.Errorf("pending %q = %+v, want %+v", p.FileID, got, p)
		}
	}
	if got := byID["group2/M00/00/00/c"]; got.Since.IsZero() || got.Reason != index.PendingUpload {
		t.Errorf("a zero Since is not filled in: %+v", got)
	}
	// The same file ID again replaces the entry.
	mustOK(t, "AddPending again", func() error {
		return idx.AddPending(ctx, index.Pending{FileID: in[0].FileID, Reason: index.PendingDelete, Since: since})
	})
	ps, _ = idx.ListPending(ctx)
	if len(ps) != 3 {
		t.Errorf("re-adding a file ID made %d entries", len(ps))
	}

	mustOK(t, "RemovePending", func() error { return idx.RemovePending(ctx, in[1].FileID) })
	wantErr(t, "RemovePending(gone)", idx.RemovePending(ctx, in[1].FileID), index.ErrNotFound)
	ps, _ = idx.ListPending(ctx)
	for _, p := range ps {
		if p.FileID == in[1].FileID {
			t.Errorf("removed entry still listed: %+v", p)
		}
	}
	wantErr(t, "AddPending(no file ID)", idx.AddPending(ctx, index.Pending{Reason: index.PendingUpload}), index.ErrInvalid)
	wantErr(t, "AddPending(no reason)", idx.AddPending(ctx, index.Pending{FileID: "x"}), index.ErrInvalid)
}

func testConcurrency(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	const n = 16
	t.Run("DistinctNames", func(t *testing.T) {
		idx := fresh(t)
		var wg sync.WaitGroup
		inos := make([]index.Ino, 2*n)
		errs := make([]error, 2*n)
		for i := range 2 * n {
			wg.Go(func() {
				kind := index.KindFile
				if i%2 == 1 {
					kind = index.KindDir
				}
				a, err := idx.Create(ctx, index.RootIno, fmt.Sprintf("e%02d", i), index.Attr{Kind: kind, Mode: 0o644})
				inos[i], errs[i] = a.Ino, err
			})
		}
		wg.Wait()
		seen := map[index.Ino]bool{}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Create e%02d: %v", i, err)
			}
			if seen[inos[i]] {
				t.Fatalf("inode %d handed out twice", inos[i])
			}
			seen[inos[i]] = true
		}
		if es := readdir(t, idx, index.RootIno); len(es) != 2*n {
			t.Errorf("ReadDir lists %d entries, want %d", len(es), 2*n)
		}
		wantNlink(t, idx, index.RootIno, 2+n)
	})
	t.Run("SameName", func(t *testing.T) {
		idx := fresh(t)
		var wg sync.WaitGroup
		errs := make([]error, n)
		inos := make([]index.Ino, n)
		for i := range n {
			wg.Go(func() {
				a, err := idx.Create(ctx, index.RootIno, "same", index.Attr{Kind: index.KindDir, Mode: 0o755})
				inos[i], errs[i] = a.Ino, err
			})
		}
		wg.Wait()
		var winner index.Ino
		for i, err := range errs {
			switch {
			case err == nil:
				if winner != 0 {
					t.Fatalf("two creators of one name won: %d and %d", winner, inos[i])
				}
				winner = inos[i]
			case !errors.Is(err, index.ErrExists):
				t.Errorf("loser %d: %v, want ErrExists", i, err)
			}
		}
		if winner == 0 {
			t.Fatal("no creator won")
		}
		if got := lookup(t, idx, index.RootIno, "same"); got.Ino != winner {
			t.Errorf("same = %d, the winner was %d", got.Ino, winner)
		}
		wantNlink(t, idx, index.RootIno, 3)
	})
	t.Run("LinksAndUnlinks", func(t *testing.T) {
		idx := fresh(t)
		f := mkfile(t, idx, index.RootIno, "f")
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				name := fmt.Sprintf("l%02d", i)
				if _, err := idx.Link(ctx, f.Ino, index.RootIno, name); err != nil {
					t.Errorf("Link %s: %v", name, err)
					return
				}
				if i%2 == 0 {
					if _, err := idx.Unlink(ctx, index.RootIno, name); err != nil {
						t.Errorf("Unlink %s: %v", name, err)
					}
				}
			})
		}
		wg.Wait()
		wantNlink(t, idx, f.Ino, 1+n/2)
	})
	t.Run("CrossedDirRenames", func(t *testing.T) {
		// a → b/a and b → a/b at once: one at most may win, or the two
		// directories would hold each other, cut off from the root.
		idx := fresh(t)
		for round := range 8 {
			a := mkdir(t, idx, index.RootIno, fmt.Sprintf("a%d", round))
			b := mkdir(t, idx, index.RootIno, fmt.Sprintf("b%d", round))
			var wg sync.WaitGroup
			var errA, errB error
			wg.Go(func() { _, errA = idx.Rename(ctx, index.RootIno, fmt.Sprintf("a%d", round), b.Ino, "a", 0) })
			wg.Go(func() { _, errB = idx.Rename(ctx, index.RootIno, fmt.Sprintf("b%d", round), a.Ino, "b", 0) })
			wg.Wait()
			if errA == nil && errB == nil {
				t.Fatalf("round %d: both crossed renames succeeded", round)
			}
			for _, err := range []error{errA, errB} {
				if err != nil && !errors.Is(err, index.ErrInvalid) && !errors.Is(err, index.ErrNotFound) {
					t.Errorf("round %d: %v", round, err)
				}
			}
		}
		r, err := index.Check(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Damaged() {
			t.Errorf("Check after crossed renames: %+v", r)
		}
	})
}

// buildTree makes a store with every kind of thing a dump must carry.
func buildTree(t *testing.T, idx index.Index) {
	t.Helper()
	ctx := t.Context()
	g := mkdir(t, idx, index.RootIno, "group1")
	d := mkdir(t, idx, g.Ino, "dir")
	f := mkfile(t, idx, d.Ino, "file.txt")
	if _, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: "group1/M00/00/00/file", Size: 1234, Mtime: time.Unix(1_700_000_000, 5)}); err != nil {
		t.Fatal(err)
	}
	ap := mkfile(t, idx, g.Ino, "log")
	if _, err := idx.SetContent(ctx, ap.Ino, index.Content{FileID: "group1/M00/00/00/log", Appender: true, Size: 77}); err != nil {
		t.Fatal(err)
	}
	link(t, idx, f.Ino, g.Ino, "hardlink")
	symlink(t, idx, g.Ino, "link", "dir/file.txt")
	symlink(t, idx, g.Ino, "badlink", "to\xff\xfe")
	mkfile(t, idx, d.Ino, "bad\xffname")
	mkfile(t, idx, d.Ino, "ünïcødé")
	mkdir(t, idx, g.Ino, "empty")
	create(t, idx, g.Ino, "fifo", index.Attr{Kind: index.KindFIFO, Mode: 0o600})
	create(t, idx, g.Ino, "sock", index.Attr{Kind: index.KindSocket, Mode: 0o755})
	create(t, idx, g.Ino, "null", index.Attr{Kind: index.KindCharDev, Mode: 0o666, Rdev: 0x103})
	create(t, idx, g.Ino, "sda", index.Attr{Kind: index.KindBlockDev, Mode: 0o660, Rdev: 0x800})
	for name, v := range map[string][]byte{"user.bin": {0x61, 0, 0x62, 0x8f, 0xff}, "user.empty": {}, "user.big": bytes.Repeat([]byte{7}, index.MaxXattrValueLen)} {
		if err := idx.SetXattr(ctx, f.Ino, name, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.SetXattr(ctx, d.Ino, "trusted.bad\xffname", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	o := mkfile(t, idx, index.RootIno, "orphan")
	if _, err := idx.SetContent(ctx, o.Ino, index.Content{FileID: "group1/M00/00/00/orphan", Size: 1}); err != nil {
		t.Fatal(err)
	}
	unlink(t, idx, index.RootIno, "orphan")
	u32 := func(v uint32) *uint32 { return &v }
	if _, err := idx.SetAttr(ctx, d.Ino, index.SetAttrIn{Mode: u32(0o1777), Uid: u32(4242), Gid: u32(99)}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []index.Pending{
		{FileID: "group1/M00/00/00/up", Reason: index.PendingUpload, Session: "s1", Since: time.Unix(1_700_000_001, 0)},
		{FileID: "group1/M00/00/00/del", Reason: index.PendingDelete, Session: "s2", Since: time.Unix(1_700_000_002, 0)},
	} {
		if err := idx.AddPending(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

func dump(t *testing.T, idx index.Index) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := idx.Dump(t.Context(), &buf); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return buf.Bytes()
}

// dumpRecords reads a dump back as comparable lines.
func dumpRecords(t *testing.T, b []byte) []string {
	t.Helper()
	dr, err := index.NewDumpReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("NewDumpReader: %v", err)
	}
	var out []string
	for {
		r, err := dr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("dump: %v", err)
		}
		out = append(out, fmt.Sprintf("%d %q %d %s %d %q %d %d %s %d %d %q %x",
			r.Type, r.Name, r.Value, formatAttr(r.Attr), r.Parent, r.Name, r.Ino, r.Kind,
			r.Pending.FileID+"|"+r.Pending.Session, r.Pending.Reason, r.Pending.Since.UnixNano(),
			r.Xattr.Name, r.Xattr.Value))
	}
	sort.Strings(out)
	return out
}

func testDumpLoad(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	src := fresh(t)
	buildTree(t, src)
	want := snapshot(t, src)
	d1 := dump(t, src)

	dst := fresh(t)
	if err := dst.Load(ctx, bytes.NewReader(d1)); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := want.diff(snapshot(t, dst)); diff != "" {
		t.Fatalf("loaded store differs from the dumped one:\n%s", diff)
	}
	if a, b := dumpRecords(t, d1), dumpRecords(t, dump(t, dst)); !slices.Equal(a, b) {
		t.Errorf("dump of the loaded store differs:\n%q\n%q", a, b)
	}
	g := lookup(t, dst, index.RootIno, "group1")
	d := lookup(t, dst, g.Ino, "dir")
	wantNames(t, dst, d.Ino, "bad\xffname", "file.txt", "ünïcødé")
	if got := lookup(t, dst, g.Ino, "badlink"); got.Target != "to\xff\xfe" {
		t.Errorf("symlink target = %q after load", got.Target)
	}
	if r, err := index.Check(ctx, dst); err != nil || r.Damaged() {
		t.Errorf("Check of the loaded store: %+v, %v", r, err)
	}
	// New inodes come after every loaded one.
	n := mkfile(t, dst, index.RootIno, "new")
	for ino := range want.inodes {
		if n.Ino <= ino {
			t.Errorf("new inode %d is not above loaded inode %d", n.Ino, ino)
		}
	}

	t.Run("RefusesNonEmpty", func(t *testing.T) {
		wantErr(t, "Load into a tree", dst.Load(ctx, bytes.NewReader(d1)), index.ErrNotEmpty)
		only := fresh(t)
		mustOK(t, "AddPending", func() error {
			return only.AddPending(ctx, index.Pending{FileID: "x", Reason: index.PendingDelete})
		})
		wantErr(t, "Load into a store with a journal", only.Load(ctx, bytes.NewReader(d1)), index.ErrNotEmpty)
	})
	t.Run("RefusesDamage", func(t *testing.T) {
		lines := bytes.SplitAfter(bytes.TrimSuffix(d1, []byte("\n")), []byte("\n"))
		truncated := bytes.Join(lines[:len(lines)-1], nil)
		cases := map[string][]byte{
			"empty":       nil,
			"not a dump":  []byte("hello\n"),
			"truncated":   truncated,
			"bad record":  append(bytes.Join(lines[:2], nil), []byte("{\"t\":\"inode\",\"ino\":0}\n")...),
			"other magic": []byte(`{"t":"header","format":"other","version":1}` + "\n"),
			"newer":       []byte(`{"t":"header","format":"fdfsfs-index","version":99}` + "\n"),
		}
		for name, b := range cases {
			idx := fresh(t)
			wantErr(t, name, idx.Load(ctx, bytes.NewReader(b)), index.ErrCorrupt)
		}
	})
}

func testCheck(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	buildTree(t, idx)
	r, err := index.Check(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Damaged() {
		t.Fatalf("Check of a sound tree: %+v", r)
	}
	if len(r.Orphans) != 1 || len(r.Pending) != 2 {
		t.Errorf("Check reports orphans %v and pending %v, want 1 and 2", r.Orphans, r.Pending)
	}
	if r.Inodes < 10 || r.Entries < 10 {
		t.Errorf("Check counted %d inodes and %d entries", r.Inodes, r.Entries)
	}

	// Damage it through the fsck methods.
	dl := mkfile(t, idx, index.RootIno, "d1")
	link(t, idx, dl.Ino, index.RootIno, "d2")
	if _, err := idx.SetNlink(ctx, dl.Ino, 0); err != nil {
		t.Fatal(err)
	}
	mustOK(t, "Purge", func() error { return idx.Purge(ctx, dl.Ino) }) // d1 and d2 now dangle
	lost := mkdir(t, idx, index.RootIno, "lost")
	lf := mkfile(t, idx, lost.Ino, "f")
	mustOK(t, "DropDentry", func() error { return idx.DropDentry(ctx, index.RootIno, "lost") })
	wantErr(t, "DropDentry(missing)", idx.DropDentry(ctx, index.RootIno, "lost"), index.ErrNotFound)
	nl := mkfile(t, idx, index.RootIno, "n")
	if a, err := idx.SetNlink(ctx, nl.Ino, 5); err != nil || a.Nlink != 5 {
		t.Fatalf("SetNlink = %s, %v", formatAttr(a), err)
	}
	_, err = idx.Lookup(ctx, index.RootIno, "d1")
	wantErr(t, "Lookup(dangling)", err, index.ErrCorrupt)
	wantNames(t, idx, index.RootIno, "group1", "n")
	var raw []string
	mustOK(t, "Dentries", func() error {
		return idx.Dentries(ctx, index.RootIno, func(name string, ino index.Ino, kind index.Kind) error {
			raw = append(raw, name)
			return nil
		})
	})
	if !slices.Equal(raw, []string{"d1", "d2", "group1", "n"}) {
		t.Errorf("Dentries(root) = %q", raw)
	}

	r, err = index.Check(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	wantDangling := []index.EntryRef{{Parent: index.RootIno, Name: "d1", Ino: dl.Ino}, {Parent: index.RootIno, Name: "d2", Ino: dl.Ino}}
	if !slices.Equal(r.Dangling, wantDangling) {
		t.Errorf("Dangling = %+v, want %+v", r.Dangling, wantDangling)
	}
	if !slices.Equal(r.Unreachable, []index.Ino{lost.Ino, lf.Ino}) {
		t.Errorf("Unreachable = %v, want [%d %d]", r.Unreachable, lost.Ino, lf.Ino)
	}
	wantNl := []index.NlinkMismatch{{Ino: index.RootIno, Stored: 4, Counted: 3}, {Ino: nl.Ino, Stored: 5, Counted: 1}}
	if !slices.Equal(r.Nlink, wantNl) {
		t.Errorf("Nlink = %+v, want %+v", r.Nlink, wantNl)
	}
	if !r.Damaged() {
		t.Error("Damaged() = false")
	}

	if _, err := index.Repair(ctx, idx); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	r, err = index.Check(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Damaged() {
		t.Fatalf("Check after Repair: %+v", r)
	}
	wantNames(t, idx, index.RootIno, "group1", "n")
	wantNlink(t, idx, nl.Ino, 1)
	wantNlink(t, idx, index.RootIno, 3)
	orphans, _ := idx.Orphans(ctx)
	for _, ino := range []index.Ino{lost.Ino, lf.Ino} {
		if !slices.Contains(orphans, ino) {
			t.Errorf("unreachable %d is not an orphan after Repair: %v", ino, orphans)
		}
	}
	for _, ino := range orphans {
		mustOK(t, "Purge", func() error { return idx.Purge(ctx, ino) })
	}
	if r, err := index.Check(ctx, idx); err != nil || r.Damaged() || len(r.Orphans) != 0 {
		t.Errorf("Check after purging: %+v, %v", r, err)
	}
}

func testClosed(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	if err := idx.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := idx.GetAttr(ctx, f.Ino)
	wantErr(t, "GetAttr", err, index.ErrClosed)
	_, err = idx.Lookup(ctx, index.RootIno, "f")
	wantErr(t, "Lookup", err, index.ErrClosed)
	_, err = idx.ReadDir(ctx, index.RootIno)
	wantErr(t, "ReadDir", err, index.ErrClosed)
	_, err = idx.Create(ctx, index.RootIno, "g", index.Attr{Kind: index.KindFile})
	wantErr(t, "Create", err, index.ErrClosed)
	_, err = idx.Unlink(ctx, index.RootIno, "f")
	wantErr(t, "Unlink", err, index.ErrClosed)
	wantErr(t, "AddPending", idx.AddPending(ctx, index.Pending{FileID: "x", Reason: index.PendingDelete}), index.ErrClosed)
	wantErr(t, "Dump", idx.Dump(ctx, io.Discard), index.ErrClosed)
}

func testCancelled(t *testing.T, fresh func(*testing.T) index.Index) {
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := idx.Create(ctx, index.RootIno, "g", index.Attr{Kind: index.KindFile})
	wantErr(t, "Create", err, context.Canceled)
	_, err = idx.GetAttr(ctx, f.Ino)
	wantErr(t, "GetAttr", err, context.Canceled)
	_, err = idx.Rename(ctx, index.RootIno, "f", index.RootIno, "h", 0)
	wantErr(t, "Rename", err, context.Canceled)
	wantNames(t, idx, index.RootIno, "f")
}

func testSpecial(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	d := mkdir(t, idx, index.RootIno, "d")
	kinds := map[string]index.Attr{
		"fifo": {Kind: index.KindFIFO, Mode: 0o640, Uid: 5, Gid: 6},
		"sock": {Kind: index.KindSocket, Mode: 0o755},
		"chr":  {Kind: index.KindCharDev, Mode: 0o666, Rdev: 0x0501},
		"blk":  {Kind: index.KindBlockDev, Mode: 0o660, Rdev: 0xfff00fff},
	}
	for name, a := range kinds {
		// The index keeps what it is given, and drops what the kind
		// cannot hold: content, a target, an rdev on a non-device.
		in := a
		in.FileID, in.Size, in.Target = "group1/M00/00/00/x", 99, "t"
		if !(a.Kind == index.KindCharDev || a.Kind == index.KindBlockDev) {
			in.Rdev = 42
		}
		got := create(t, idx, d.Ino, name, in)
		if got.Kind != a.Kind || got.Mode != a.Mode || got.Uid != a.Uid || got.Gid != a.Gid || got.Rdev != a.Rdev ||
			got.FileID != "" || got.Size != 0 || got.Target != "" || got.Nlink != 1 {
			t.Errorf("%s = %s, want kind %s mode %#o rdev %#x, no content", name, formatAttr(got), a.Kind, a.Mode, a.Rdev)
		}
		if l := lookup(t, idx, d.Ino, name); !sameAttr(l, got) {
			t.Errorf("Lookup(%s) = %s, Create returned %s", name, formatAttr(l), formatAttr(got))
		}
		_, err := idx.SetContent(ctx, got.Ino, index.Content{FileID: "group1/M00/00/00/y", Size: 1})
		wantErr(t, "SetContent of a "+name, err, index.ErrInvalid)
	}
	es := readdir(t, idx, d.Ino)
	for _, e := range es {
		if want := kinds[e.Name]; e.Attr.Kind != want.Kind || e.Attr.Rdev != want.Rdev {
			t.Errorf("ReadDir entry %s = %s", e.Name, formatAttr(e.Attr))
		}
	}
	// Link, rename, unlink and setattr treat them as any other name.
	fifo := lookup(t, idx, d.Ino, "fifo")
	if got := link(t, idx, fifo.Ino, index.RootIno, "fifo2"); got.Nlink != 2 || got.Kind != index.KindFIFO {
		t.Errorf("Link of a fifo = %s", formatAttr(got))
	}
	mustOK(t, "Rename", func() error {
		_, err := idx.Rename(ctx, d.Ino, "chr", index.RootIno, "chr2", 0)
		return err
	})
	if got := lookup(t, idx, index.RootIno, "chr2"); got.Rdev != 0x0501 || got.Kind != index.KindCharDev {
		t.Errorf("renamed device = %s", formatAttr(got))
	}
	mode := uint32(0o600)
	if got, err := idx.SetAttr(ctx, fifo.Ino, index.SetAttrIn{Mode: &mode}); err != nil || got.Mode != 0o600 || got.Kind != index.KindFIFO {
		t.Errorf("SetAttr of a fifo = %s, %v", formatAttr(got), err)
	}
	unlink(t, idx, d.Ino, "fifo")
	if a := unlink(t, idx, index.RootIno, "fifo2"); a.Nlink != 0 {
		t.Errorf("fifo after its last unlink = %s", formatAttr(a))
	}
	mustOK(t, "Purge", func() error { return idx.Purge(ctx, fifo.Ino) })
	if ps, _ := idx.ListPending(ctx); len(ps) != 0 {
		t.Errorf("purging a fifo journalled %v", ps)
	}
	if r, err := index.Check(ctx, idx); err != nil || r.Damaged() {
		t.Errorf("Check: %+v, %v", r, err)
	}
}

func testXattr(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	get := func(name string) ([]byte, error) { return idx.GetXattr(ctx, f.Ino, name) }
	list := func() []string {
		t.Helper()
		names, err := idx.ListXattr(ctx, f.Ino)
		if err != nil {
			t.Fatalf("ListXattr: %v", err)
		}
		return names
	}
	if names := list(); len(names) != 0 {
		t.Errorf("a new file lists %q", names)
	}
	_, err := get("user.none")
	wantErr(t, "GetXattr of a missing name", err, index.ErrNoXattr)

	binary := []byte{0x61, 0x00, 0x62, 0x8f, 0xff}
	mustOK(t, "SetXattr binary", func() error { return idx.SetXattr(ctx, f.Ino, "user.bin", binary, 0) })
	if v, err := get("user.bin"); err != nil || !bytes.Equal(v, binary) {
		t.Errorf("binary value reads back %x, %v; want %x", v, err, binary)
	}
	before := getattr(t, idx, f.Ino)
	time.Sleep(2 * time.Millisecond)
	big := bytes.Repeat([]byte("x"), index.MaxXattrValueLen)
	mustOK(t, "SetXattr 64 KiB", func() error { return idx.SetXattr(ctx, f.Ino, "user.big", big, 0) })
	if v, err := get("user.big"); err != nil || !bytes.Equal(v, big) {
		t.Errorf("64 KiB value reads back %d bytes, %v", len(v), err)
	}
	if after := getattr(t, idx, f.Ino); !after.Ctime.After(before.Ctime) || !after.Mtime.Equal(before.Mtime) {
		t.Errorf("SetXattr: ctime %v -> %v, mtime %v -> %v; want ctime later, mtime kept", before.Ctime, after.Ctime, before.Mtime, after.Mtime)
	}
	mustOK(t, "SetXattr empty", func() error { return idx.SetXattr(ctx, f.Ino, "user.empty", nil, 0) })
	if v, err := get("user.empty"); err != nil || len(v) != 0 {
		t.Errorf("empty value reads back %x, %v", v, err)
	}
	long := "user." + strings.Repeat("n", index.MaxXattrNameLen-5)
	mustOK(t, "SetXattr 255-byte name", func() error { return idx.SetXattr(ctx, f.Ino, long, []byte("v"), 0) })
	if got, want := list(), []string{"user.big", "user.bin", "user.empty", long}; !slices.Equal(got, want) {
		t.Errorf("ListXattr = %q, want %q", got, want)
	}

	wantErr(t, "XattrCreate of a set name", idx.SetXattr(ctx, f.Ino, "user.bin", []byte("y"), index.XattrCreate), index.ErrExists)
	wantErr(t, "XattrReplace of a missing name", idx.SetXattr(ctx, f.Ino, "user.none", []byte("y"), index.XattrReplace), index.ErrNoXattr)
	mustOK(t, "XattrReplace", func() error { return idx.SetXattr(ctx, f.Ino, "user.bin", []byte("y"), index.XattrReplace) })
	mustOK(t, "XattrCreate", func() error { return idx.SetXattr(ctx, f.Ino, "user.new", []byte("z"), index.XattrCreate) })
	if v, _ := get("user.bin"); string(v) != "y" {
		t.Errorf("replaced value = %q", v)
	}
	wantErr(t, "value over the limit", idx.SetXattr(ctx, f.Ino, "user.huge", make([]byte, index.MaxXattrValueLen+1), 0), index.ErrTooBig)
	wantErr(t, "name over the limit", idx.SetXattr(ctx, f.Ino, long+"n", nil, 0), index.ErrNameLen)
	wantErr(t, "empty name", idx.SetXattr(ctx, f.Ino, "", nil, 0), index.ErrInvalid)
	wantErr(t, "both flags", idx.SetXattr(ctx, f.Ino, "user.x", nil, index.XattrCreate|index.XattrReplace), index.ErrInvalid)
	var full error
	for i := 0; i < 40 && full == nil; i++ {
		full = idx.SetXattr(ctx, f.Ino, fmt.Sprintf("user.fill%02d", i), big, 0)
	}
	wantErr(t, "more than MaxXattrTotal on one inode", full, index.ErrNoSpace)

	// The kernel reads a list of names of at most MaxXattrList bytes
	// (XATTR_LIST_MAX): a name that would make it longer is refused, so
	// that listxattr keeps working.
	names := mkfile(t, idx, index.RootIno, "names")
	full = nil
	for i := 0; i < 300 && full == nil; i++ {
		full = idx.SetXattr(ctx, names.Ino, fmt.Sprintf("user.%0250d", i), nil, 0)
	}
	wantErr(t, "a list of names over MaxXattrList", full, index.ErrNoSpace)
	if listed, err := idx.ListXattr(ctx, names.Ino); err != nil {
		t.Errorf("ListXattr of a full list: %v", err)
	} else if n := len(strings.Join(listed, "\x00")) + 1; n > index.MaxXattrList {
		t.Errorf("the list of names takes %d bytes, over %d", n, index.MaxXattrList)
	}

	mustOK(t, "RemoveXattr", func() error { return idx.RemoveXattr(ctx, f.Ino, "user.bin") })
	wantErr(t, "RemoveXattr of a removed name", idx.RemoveXattr(ctx, f.Ino, "user.bin"), index.ErrNoXattr)
	_, err = get("user.bin")
	wantErr(t, "GetXattr of a removed name", err, index.ErrNoXattr)

	// Hard links share the inode's attributes; other inodes have their own.
	l := link(t, idx, f.Ino, index.RootIno, "f-link")
	if v, err := idx.GetXattr(ctx, l.Ino, "user.new"); err != nil || string(v) != "z" {
		t.Errorf("through a hard link: %q, %v", v, err)
	}
	d := mkdir(t, idx, index.RootIno, "d")
	mustOK(t, "SetXattr on a dir", func() error { return idx.SetXattr(ctx, d.Ino, "user.new", []byte("dir"), 0) })
	if v, _ := get("user.new"); string(v) != "z" {
		t.Errorf("the dir's attribute changed the file's: %q", v)
	}
	_, err = idx.GetXattr(ctx, 999999, "user.x")
	wantErr(t, "GetXattr of a missing inode", err, index.ErrNotFound)
	wantErr(t, "SetXattr of a missing inode", idx.SetXattr(ctx, 999999, "user.x", nil, 0), index.ErrNotFound)

	// They go with the inode: a new inode never sees them.
	unlink(t, idx, index.RootIno, "f")
	unlink(t, idx, index.RootIno, "f-link")
	mustOK(t, "Purge", func() error { return idx.Purge(ctx, f.Ino) })
	_, err = get("user.new")
	wantErr(t, "GetXattr of a purged inode", err, index.ErrNotFound)
	mustOK(t, "Rmdir", func() error { return idx.Rmdir(ctx, index.RootIno, "d") })
	_, err = idx.GetXattr(ctx, d.Ino, "user.new")
	wantErr(t, "GetXattr of a removed dir", err, index.ErrNotFound)

	t.Run("Concurrent", func(t *testing.T) {
		g := mkfile(t, idx, index.RootIno, "g")
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := idx.SetXattr(ctx, g.Ino, fmt.Sprintf("user.c%d", i), []byte{byte(i)}, 0); err != nil {
					t.Errorf("SetXattr %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		names, err := idx.ListXattr(ctx, g.Ino)
		if err != nil || len(names) != 8 {
			t.Errorf("after 8 concurrent sets: %q, %v", names, err)
		}
	})
}
