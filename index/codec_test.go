package index

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleAttrs() []struct {
	attr   Attr
	parent Ino
} {
	ts := time.Unix(1_700_000_000, 123456789)
	return []struct {
		attr   Attr
		parent Ino
	}{
		{Attr{Ino: RootIno, Kind: KindDir, Mode: 0o755, Nlink: 2, Atime: ts, Mtime: ts, Ctime: ts}, 0},
		{Attr{Ino: 2, Kind: KindDir, Mode: 0o1777, Uid: 1000, Gid: 100, Nlink: 40000, Atime: ts, Mtime: ts, Ctime: ts}, 1},
		{Attr{
			Ino: 1 << 40, Kind: KindFile, Mode: 0o4755, Uid: 1<<32 - 1, Gid: 1<<32 - 2, Nlink: 1,
			Size: 1<<62 + 5, Atime: time.Unix(-5, 1), Mtime: ts, Ctime: time.Unix(1<<40, 999999999),
			FileID: "group1/M00/00/00/wKgBAWdL8gKAAAAAAAAAAA.bin", Appender: true, Gen: 1<<64 - 1,
		}, 0},
		{Attr{Ino: 9, Kind: KindSymlink, Mode: 0o777, Nlink: 3, Target: "../a/b\xff"}, 0},
		{Attr{Ino: 10, Kind: KindFile}, 0}, // zero times survive as zero
		{Attr{Ino: 11, Kind: KindCharDev, Mode: 0o666, Nlink: 1, Rdev: 0x0103, Atime: ts, Mtime: ts, Ctime: ts}, 0},
		{Attr{Ino: 12, Kind: KindBlockDev, Mode: 0o660, Nlink: 2, Rdev: 1<<32 - 1}, 0},
		{Attr{Ino: 13, Kind: KindFIFO, Mode: 0o600, Nlink: 1, Uid: 3}, 0},
		{Attr{Ino: 14, Kind: KindSocket, Mode: 0o755, Nlink: 1}, 0},
	}
}

func TestAttrRoundTrip(t *testing.T) {
	for _, s := range sampleAttrs() {
		v := encodeAttr(s.attr, s.parent)
		got, parent, err := decodeAttr(s.attr.Ino, v)
		if err != nil {
			t.Fatalf("decode %+v: %v", s.attr, err)
		}
		want := s.attr
		for _, p := range [][2]*time.Time{{&got.Atime, &want.Atime}, {&got.Mtime, &want.Mtime}, {&got.Ctime, &want.Ctime}} {
			if !p[0].Equal(*p[1]) || p[0].IsZero() != p[1].IsZero() {
				t.Errorf("ino %d: time %v, want %v", want.Ino, *p[0], *p[1])
			}
			*p[0], *p[1] = time.Time{}, time.Time{}
		}
		if got != want || parent != s.parent {
			t.Errorf("round trip:\n got %+v parent %d\nwant %+v parent %d", got, parent, want, s.parent)
		}
		// Only a device needs the version 2 record; every other inode
		// stays readable by builds that know version 1 alone.
		if wantVer := byte(1 + min(s.attr.Rdev, 1)); v[0] != wantVer {
			t.Errorf("ino %d: record version %d, want %d", s.attr.Ino, v[0], wantVer)
		}
	}
}

func TestXattrsRoundTrip(t *testing.T) {
	xs := []Xattr{{Name: "security.selinux", Value: []byte("x\x00")}, {Name: "user.a", Value: []byte{0, 0xff, 0x8f}}, {Name: "user.empty", Value: []byte{}}}
	got, err := decodeXattrs(3, encodeXattrs(xs))
	if err != nil || !reflect.DeepEqual(got, xs) {
		t.Fatalf("round trip: %q, %v; want %q", got, err, xs)
	}
	if v := encodeXattrs(nil); v != nil {
		t.Errorf("no attributes encode as %x, want nil (the key is deleted)", v)
	}
	v := encodeXattrs(xs)
	for n := 1; n < len(v); n++ {
		if _, err := decodeXattrs(3, v[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("prefix of %d/%d bytes: err = %v, want ErrCorrupt", n, len(v), err)
		}
	}
	unordered := encodeXattrs([]Xattr{{Name: "user.b"}, {Name: "user.a"}})
	if _, err := decodeXattrs(3, unordered); !errors.Is(err, ErrCorrupt) {
		t.Errorf("names out of order: err = %v, want ErrCorrupt", err)
	}
}

func TestAttrDecodeRefusesDamage(t *testing.T) {
	v := encodeAttr(sampleAttrs()[2].attr, 0)
	// Every strict prefix is truncated somewhere.
	for n := range len(v) {
		if _, _, err := decodeAttr(3, v[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("prefix of %d/%d bytes: err = %v, want ErrCorrupt", n, len(v), err)
		}
	}
	damaged := map[string][]byte{
		"trailing byte": append(bytes.Clone(v), 0),
		"version 2":     append([]byte{2}, v[1:]...),
		"kind 0":        append([]byte{v[0], 0}, v[2:]...),
		"kind 9":        append([]byte{v[0], 9}, v[2:]...),
		"version 3":     append([]byte{3}, v[1:]...),
	}
	for name, b := range damaged {
		if _, _, err := decodeAttr(3, b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestPendingRoundTrip(t *testing.T) {
	p := Pending{FileID: "group2/M01/AB/CD/x", Reason: PendingDelete, Session: "host-7", Since: time.Unix(1_700_000_000, 77)}
	v := encodePending(p)
	got, err := decodePending(p.FileID, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.FileID != p.FileID || got.Reason != p.Reason || got.Session != p.Session || !got.Since.Equal(p.Since) {
		t.Errorf("round trip = %+v, want %+v", got, p)
	}
	for n := range len(v) {
		if _, err := decodePending(p.FileID, v[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("prefix of %d bytes: err = %v", n, err)
		}
	}
	if _, err := decodePending(p.FileID, append([]byte{1, 7}, v[2:]...)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("reason 7: err = %v", err)
	}
}

func TestDentryValue(t *testing.T) {
	ino, kind, err := decodeDentry(encodeDentry(1<<50+3, KindSymlink))
	if err != nil || ino != 1<<50+3 || kind != KindSymlink {
		t.Errorf("round trip = %d %s %v", ino, kind, err)
	}
	for _, v := range [][]byte{nil, {1}, make([]byte, 9), append([]byte{4}, make([]byte, 8)...), make([]byte, 10)} {
		if _, _, err := decodeDentry(v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeDentry(%x): err = %v", v, err)
		}
	}
}

func TestKeysOrder(t *testing.T) {
	// Entries of one directory sort together, by name, ahead of the next
	// directory's; inodes sort by number.
	keys := [][]byte{
		dentryKey(255, "zzz"), dentryKey(256, ""), dentryKey(256, "a"), dentryKey(256, "ab"), dentryKey(256, "b"), dentryKey(257, "a"),
	}
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			t.Errorf("key %x does not sort before %x", keys[i-1], keys[i])
		}
	}
	if bytes.Compare(attrKey(255), attrKey(256)) >= 0 || bytes.Compare(attrKey(1<<32), attrKey(1<<32+1)) >= 0 {
		t.Error("attr keys out of inode order")
	}
	if !bytes.HasPrefix(dentryKey(7, "x"), dentryPrefix(7)) || bytes.HasPrefix(dentryKey(7, "x"), dentryPrefix(8)) {
		t.Error("dentry prefix")
	}
	if name, ok := nameFromDentryKey(dentryKey(7, "näme")); !ok || name != "näme" {
		t.Errorf("nameFromDentryKey = %q, %v", name, ok)
	}
	if ino, ok := inoFromKey(orphanKey(1<<63 + 1)); !ok || ino != 1<<63+1 {
		t.Errorf("inoFromKey = %d, %v", ino, ok)
	}
}

func FuzzDecodeAttr(f *testing.F) {
	for _, s := range sampleAttrs() {
		f.Add(encodeAttr(s.attr, s.parent))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		a, parent, err := decodeAttr(5, v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// Whatever decodes must survive another trip unchanged (varints
		// may have been non-minimal, so compare values, not bytes).
		again := encodeAttr(a, parent)
		b, parent2, err := decodeAttr(5, again)
		if err != nil || parent2 != parent || !reflect.DeepEqual(a, b) {
			t.Fatalf("%+v (parent %d) came back as %+v (parent %d), %v", a, parent, b, parent2, err)
		}
	})
}

func FuzzDecodePending(f *testing.F) {
	f.Add(encodePending(Pending{FileID: "g/x", Reason: PendingUpload, Session: "s", Since: time.Unix(1_700_000_000, 1)}))
	f.Add(encodePending(Pending{FileID: "g/x", Reason: PendingDelete}))
	f.Fuzz(func(t *testing.T, v []byte) {
		p, err := decodePending("g/x", v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		q, err := decodePending("g/x", encodePending(p))
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("%+v came back as %+v, %v", p, q, err)
		}
	})
}
