package fs

import (
	"bytes"
	"syscall"
	"testing"
)

// withBudget sets Options.WriteBudget to chunks write chunks.
func withBudget(chunks int) func(*Options) {
	return func(o *Options) { o.WriteBudget = int64(chunks) * testChunk }
}

// A file that finds the write budget spent by another file's buffer, with
// nothing of its own in flight, is staged on disk instead of waiting, and
// both files commit what was written; the budget is whole again after.
func TestWriteBudgetSpillsToStage(t *testing.T) {
	tf := newTestFS(t, withBudget(1))
	a := tf.create(t, "a.txt")
	b := tf.create(t, "b.txt")
	ha := openFile(t, a, syscall.O_WRONLY)
	hb := openFile(t, b, syscall.O_WRONLY)
	da, db := pattern(testChunk/2, 1), pattern(3*testChunk+10, 2)
	write(t, ha, da, 0)
	if s := state(a); s != buffered || tf.budget.inUse() != testChunk {
		t.Fatalf("a: %v with %d bytes of budget in use, want buffered holding one chunk", s, tf.budget.inUse())
	}
	writeInOrder(t, hb, db, 0, len(db), 1000)
	if s := state(b); s != staged {
		t.Fatalf("b, written in order with the budget spent: %v, want staged", s)
	}
	flush(t, ha)
	flush(t, hb)
	if got := tf.content(t, a); !bytes.Equal(got, da) {
		t.Error("a's content differs from what was written")
	}
	if got := tf.content(t, b); !bytes.Equal(got, db) {
		t.Error("b's content differs from what was written")
	}
	if n := tf.budget.inUse(); n != 0 {
		t.Errorf("%d bytes of budget in use after both commits", n)
	}
	tf.checkSwept(t)
}

// A streaming file whose next buffer does not fit waits for its own chunks
// in flight instead: it stays one streamed upload, and the chunks handed
// out never exceed the budget.
func TestWriteBudgetStreamingWaits(t *testing.T) {
	tf := newTestFS(t, withBudget(2))
	n := tf.create(t, "big.bin")
	h := openFile(t, n, syscall.O_WRONLY)
	data := pattern(8*testChunk+100, 3)
	g := tf.be.blockNext("Upload") // the first chunk stays in flight
	written := make(chan struct{})
	go func() {
		defer close(written)
		for off := 0; off < len(data); off += 1000 {
			write(t, h, data[off:min(off+1000, len(data))], int64(off))
			if used := tf.budget.inUse(); used > 2*testChunk {
				t.Errorf("%d bytes of budget in use, over its %d", used, 2*testChunk)
			}
		}
	}()
	<-g.entered
	waitForMemory(t)
	if s, used := state(n), tf.budget.inUse(); s != streaming || used != 2*testChunk {
		t.Errorf("waiting for memory: %v with %d bytes in use, want streaming with 2 chunks", s, used)
	}
	close(g.release)
	<-written
	if s := state(n); s != streaming {
		t.Fatalf("after 8 chunks in order: %v, want streaming", s)
	}
	flush(t, h)
	if got := tf.content(t, n); !bytes.Equal(got, data) {
		t.Fatal("committed content differs from what was written")
	}
	if ups := tf.be.count("Upload"); ups != 1 {
		t.Errorf("%d uploads, want the one streamed file", ups)
	}
	if used := tf.budget.inUse(); used != 0 {
		t.Errorf("%d bytes of budget in use after the commit", used)
	}
	tf.checkSwept(t)
}

// waitForMemory waits until a writer waits in chunk for the budget.
func waitForMemory(t *testing.T) {
	t.Helper()
	waitForGoroutine(t, "(*writer).chunk", "[chan receive")
}
