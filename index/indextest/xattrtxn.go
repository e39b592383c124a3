package indextest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"fdfsfs/index"
)

// testXattrTransactions: CreateInheriting and ChangeModeXattrs change the
// mode and the extended attributes together, or nothing.
func testXattrTransactions(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	d := mkdir(t, idx, index.RootIno, "d")
	mustOK(t, "SetXattr on the parent", func() error { return idx.SetXattr(ctx, d.Ino, "user.pass", []byte("on"), 0) })

	t.Run("CreateInheriting", func(t *testing.T) {
		var seen []index.Xattr
		a, err := idx.CreateInheriting(ctx, d.Ino, "f", index.Attr{Kind: index.KindFile, Mode: 0o666},
			func(parent []index.Xattr, a *index.Attr) ([]index.Xattr, error) {
				seen = parent
				a.Mode = 0o640
				return []index.Xattr{{Name: "user.z", Value: []byte("1")}, {Name: "user.a", Value: nil}}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 || seen[0].Name != "user.pass" || string(seen[0].Value) != "on" {
			t.Errorf("inherit saw the parent's %v", seen)
		}
		if got := getattr(t, idx, a.Ino); got.Mode != 0o640 || a.Mode != 0o640 {
			t.Errorf("mode = %#o (returned %#o), want inherit's 0640", got.Mode, a.Mode)
		}
		names, err := idx.ListXattr(ctx, a.Ino)
		if err != nil || len(names) != 2 || names[0] != "user.a" || names[1] != "user.z" {
			t.Errorf("new inode lists %q, %v; want user.a, user.z in order", names, err)
		}
		if v, err := idx.GetXattr(ctx, a.Ino, "user.z"); err != nil || string(v) != "1" {
			t.Errorf("user.z = %q, %v", v, err)
		}

		refuse := errors.New("refused")
		_, err = idx.CreateInheriting(ctx, d.Ino, "g", index.Attr{Kind: index.KindFile, Mode: 0o644},
			func([]index.Xattr, *index.Attr) ([]index.Xattr, error) { return nil, refuse })
		wantErr(t, "CreateInheriting refused by inherit", err, refuse)
		_, err = idx.CreateInheriting(ctx, d.Ino, "g", index.Attr{Kind: index.KindFile, Mode: 0o644},
			func([]index.Xattr, *index.Attr) ([]index.Xattr, error) {
				return []index.Xattr{{Name: "user.big", Value: make([]byte, index.MaxXattrValueLen+1)}}, nil
			})
		wantErr(t, "CreateInheriting of a value over the limit", err, index.ErrTooBig)
		wantNames(t, idx, d.Ino, "f")
	})

	t.Run("ChangeModeXattrs", func(t *testing.T) {
		f := mkfile(t, idx, d.Ino, "h")
		mustOK(t, "SetXattr", func() error { return idx.SetXattr(ctx, f.Ino, "user.old", []byte("x"), 0) })
		before := getattr(t, idx, f.Ino)
		time.Sleep(2 * time.Millisecond)
		a, err := idx.ChangeModeXattrs(ctx, f.Ino, func(a index.Attr, xs []index.Xattr) (uint32, []index.Xattr, error) {
			if a.Mode != 0o644 || len(xs) != 1 || xs[0].Name != "user.old" {
				t.Errorf("change saw mode %#o and %v", a.Mode, xs)
			}
			return 0o2750, []index.Xattr{{Name: "user.new", Value: []byte("y")}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got := getattr(t, idx, f.Ino)
		if got.Mode != 0o2750 || a.Mode != 0o2750 {
			t.Errorf("mode = %#o (returned %#o), want 02750", got.Mode, a.Mode)
		}
		if !got.Ctime.After(before.Ctime) {
			t.Errorf("ctime %v, before the change %v: unchanged", got.Ctime, before.Ctime)
		}
		if _, err := idx.GetXattr(ctx, f.Ino, "user.old"); !errors.Is(err, index.ErrNoXattr) {
			t.Errorf("user.old after the change: %v, want ErrNoXattr", err)
		}
		if v, err := idx.GetXattr(ctx, f.Ino, "user.new"); err != nil || !bytes.Equal(v, []byte("y")) {
			t.Errorf("user.new = %q, %v", v, err)
		}

		refuse := errors.New("refused")
		_, err = idx.ChangeModeXattrs(ctx, f.Ino, func(index.Attr, []index.Xattr) (uint32, []index.Xattr, error) {
			return 0o777, nil, refuse
		})
		wantErr(t, "ChangeModeXattrs refused by change", err, refuse)
		if got := getattr(t, idx, f.Ino); got.Mode != 0o2750 {
			t.Errorf("a refused change left mode %#o", got.Mode)
		}
		_, err = idx.ChangeModeXattrs(ctx, 1<<40, func(a index.Attr, xs []index.Xattr) (uint32, []index.Xattr, error) {
			return a.Mode, xs, nil
		})
		wantErr(t, "ChangeModeXattrs of a missing inode", err, index.ErrNotFound)
	})
}
