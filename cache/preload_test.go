package cache

import (
	"context"
	"testing"
	"time"
)

// TestPreload: an object of one block is fetched whole, once, when it is
// preloaded; the read after it is answered from memory without another
// fetch, and the block reaches the disk. Larger objects, and objects
// cached already, are left alone.
func TestPreload(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	f := newFakeFetcher(t, 3000)
	r := c.NewReader(f.object("small"))
	defer r.Close()
	r.Preload()
	r.Preload() // a second call starts nothing more
	s, n, err := r.ReadShared(context.Background(), make([]byte, 3000), 0)
	if err != nil || n != 3000 {
		t.Fatalf("read after preload: %d bytes, %v", n, err)
	}
	for i, b := range append(append([]byte(nil), s.Data...), s.Rest...) {
		if b != byteAt(int64(i)) {
			t.Fatalf("wrong byte at %d", i)
		}
	}
	s.Release()
	if calls := f.Calls(); len(calls) != 1 || calls[0] != (fetchCall{0, 3000}) {
		t.Fatalf("fetches %v, want the whole object once", calls)
	}
	settle(t, c)
	if st := c.Stats(); st.Blocks != 1 || st.Prefetches != 1 {
		t.Fatalf("stats %+v: want the block on disk, one prefetch", st)
	}

	// Cached now: a new Reader's Preload fetches nothing.
	again := c.NewReader(f.object("small"))
	again.Preload()
	again.Close()
	big := newFakeFetcher(t, testBlock+1)
	rb := c.NewReader(big.object("big"))
	rb.Preload()
	rb.Close()
	settle(t, c)
	if f.Count() != 1 || big.Count() != 0 {
		t.Fatalf("fetches of a cached object %d, of a two-block one %d; want 1 and 0", f.Count(), big.Count())
	}
}

// TestPreloadClosedUnread: a handle closed before its first read cancels
// the fetch it started.
func TestPreloadClosedUnread(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	f := newFakeFetcher(t, 100)
	f.hold = func(int64) bool { return true }
	r := c.NewReader(f.object("held"))
	r.Preload()
	deadline := time.Now().Add(5 * time.Second)
	for f.Running() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("preload never fetched")
		}
		time.Sleep(time.Millisecond)
	}
	r.Close()
	for f.Running() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fetch went on after Close")
		}
		time.Sleep(time.Millisecond)
	}
	settle(t, c)
	if f.Cancelled() != 1 {
		t.Fatalf("%d fetches cancelled, want 1", f.Cancelled())
	}
	if st := c.Stats(); st.Blocks != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v after an unread preload was closed", st)
	}
}

// TestPrefetchSmallObject: Prefetch fetches a small object once, in the
// background, into memory and onto disk; an object cached already, or of
// more than one block, is not fetched.
func TestPrefetchSmallObject(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	f := newFakeFetcher(t, 3000)
	if !c.Prefetch(f.object("small")) {
		t.Fatal("Prefetch refused a small object")
	}
	c.Prefetch(f.object("small")) // on its way or in memory: nothing more
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Blocks != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the prefetched object never reached the disk")
		}
		time.Sleep(time.Millisecond)
	}
	c.Prefetch(f.object("small"))
	mustRead(t, c, f.object("small"), 0, 3000)
	big := newFakeFetcher(t, testBlock+1)
	if c.Prefetch(big.object("big")) {
		t.Fatal("Prefetch took an object of two blocks")
	}
	settle(t, c)
	if f.Count() != 1 || big.Count() != 0 {
		t.Fatalf("fetches of the small object %d, of the large one %d; want 1 and 0", f.Count(), big.Count())
	}
}
