package index

import (
	"errors"
	"reflect"
	"testing"
)

// The decoders below read bytes another host wrote to a shared engine (or
// a damaged store): they must refuse, with ErrCorrupt, whatever they cannot
// read, and never panic or allocate by a count they were told.

func FuzzDecodeNotice(f *testing.F) {
	f.Add(encodeNotice("host:1:/mnt", []Change{{Parent: 3, Name: "a.txt", Ino: 9}, {Ino: 4}}))
	f.Add(encodeNotice("", nil))
	f.Fuzz(func(t *testing.T, v []byte) {
		origin, cs, err := decodeNotice(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		o2, cs2, err := decodeNotice(encodeNotice(origin, cs))
		if err != nil || o2 != origin || len(cs2) != len(cs) || (len(cs) > 0 && !reflect.DeepEqual(cs, cs2)) {
			t.Fatalf("%q %+v came back as %q %+v, %v", origin, cs, o2, cs2, err)
		}
	})
}

func FuzzDecodeHolds(f *testing.F) {
	f.Add(encodeHolds([]string{"a:1:/m", "b:2:/m"}))
	f.Add(encodeHolds(nil))
	f.Fuzz(func(t *testing.T, v []byte) {
		ss, err := decodeHolds(7, v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := decodeHolds(7, encodeHolds(ss))
		if err != nil || len(again) != len(ss) || (len(ss) > 0 && !reflect.DeepEqual(ss, again)) {
			t.Fatalf("%q came back as %q, %v", ss, again, err)
		}
	})
}

func FuzzDecodeDentry(f *testing.F) {
	f.Add(encodeDentry(42, KindFile))
	f.Add(encodeDentry(1<<60, KindDir))
	f.Fuzz(func(t *testing.T, v []byte) {
		ino, kind, err := decodeDentry(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if i2, k2, err := decodeDentry(encodeDentry(ino, kind)); err != nil || i2 != ino || k2 != kind {
			t.Fatalf("%d %v came back as %d %v, %v", ino, kind, i2, k2, err)
		}
	})
}

func FuzzDecodeCounter(f *testing.F) {
	f.Add(encodeCounter(12345))
	f.Fuzz(func(t *testing.T, v []byte) {
		n, err := decodeCounter(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if m, err := decodeCounter(encodeCounter(n)); err != nil || m != n {
			t.Fatalf("%d came back as %d, %v", n, m, err)
		}
	})
}

func FuzzDecodeXattrs(f *testing.F) {
	f.Add(encodeXattrs([]Xattr{{Name: "user.a", Value: []byte{0, 1, 0xff}}, {Name: "user.b", Value: []byte{}}}))
	f.Add(encodeXattrs([]Xattr{{Name: "trusted.x", Value: make([]byte, 300)}}))
	f.Fuzz(func(t *testing.T, v []byte) {
		xs, err := decodeXattrs(7, v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := decodeXattrs(7, encodeXattrs(xs))
		if err != nil || len(again) != len(xs) || (len(xs) > 0 && !reflect.DeepEqual(xs, again)) {
			t.Fatalf("%q came back as %q, %v", xs, again, err)
		}
	})
}
