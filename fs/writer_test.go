package fs

import (
	"reflect"
	"testing"
)

func TestExtents(t *testing.T) {
	var x extents
	x.add(10, 20)
	x.add(30, 40)
	x.add(20, 25) // touches the first: merges
	x.add(0, 0)   // empty: ignored
	want := extents{{10, 25}, {30, 40}}
	if !reflect.DeepEqual(x, want) {
		t.Fatalf("after adds: %v, want %v", x, want)
	}
	x.add(5, 35) // swallows both
	if want := (extents{{5, 40}}); !reflect.DeepEqual(x, want) {
		t.Fatalf("after covering add: %v, want %v", x, want)
	}
	x.add(50, 60)
	if e, ok := x.at(39); !ok || e != (extent{5, 40}) {
		t.Fatalf("at(39) = %v %v", e, ok)
	}
	if _, ok := x.at(40); ok {
		t.Fatal("at(40) found an extent; ranges are half-open")
	}
	if n := x.next(40, 100); n != 50 {
		t.Fatalf("next(40) = %d, want 50", n)
	}
	if n := x.next(40, 45); n != 45 {
		t.Fatalf("next(40, limit 45) = %d, want 45", n)
	}
	x.truncate(55)
	if want := (extents{{5, 40}, {50, 55}}); !reflect.DeepEqual(x, want) {
		t.Fatalf("after truncate(55): %v, want %v", x, want)
	}
	x.truncate(40)
	if want := (extents{{5, 40}}); !reflect.DeepEqual(x, want) {
		t.Fatalf("after truncate(40): %v, want %v", x, want)
	}
	x.truncate(0)
	if len(x) != 0 {
		t.Fatalf("after truncate(0): %v", x)
	}
}
