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

// untilExpired waits for session id to expire; the bound only guards
// against a hang.
func untilExpired(t *testing.T, idx index.Index, id string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		alive, err := idx.SessionAlive(t.Context(), id)
		if err != nil {
			t.Fatalf("SessionAlive(%s): %v", id, err)
		}
		if !alive {
			return
		}
	}
	t.Fatalf("session %s still alive 20 s after its TTL", id)
}

func alive(t *testing.T, idx index.Index, id string) bool {
	t.Helper()
	ok, err := idx.SessionAlive(t.Context(), id)
	if err != nil {
		t.Fatalf("SessionAlive(%s): %v", id, err)
	}
	return ok
}

// ownSession is the session the index was opened with, as it writes it
// into a journal entry left without one.
func ownSession(t *testing.T, idx index.Index) string {
	t.Helper()
	ctx := t.Context()
	const probe = "group9/M00/00/00/session-probe"
	mustOK(t, "AddPending", func() error {
		return idx.AddPending(ctx, index.Pending{FileID: probe, Reason: index.PendingDelete})
	})
	ps, err := idx.ListPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, "RemovePending", func() error { return idx.RemovePending(ctx, probe) })
	for _, p := range ps {
		if p.FileID == probe {
			return p.Session
		}
	}
	t.Fatal("the probe entry is not in the journal")
	return ""
}

func testSessions(t *testing.T, fresh func(*testing.T) index.Index) {
	t.Run("Lifecycle", func(t *testing.T) {
		ctx := t.Context()
		idx := fresh(t)
		if alive(t, idx, "host-a:1:/mnt") {
			t.Fatal("a session nobody registered is alive")
		}
		was, err := idx.RegisterSession(ctx, "host-a:1:/mnt", time.Hour)
		if err != nil || was {
			t.Fatalf("first RegisterSession = %v, %v; want false, nil", was, err)
		}
		if !alive(t, idx, "host-a:1:/mnt") {
			t.Fatal("a registered session is not alive")
		}
		if was, err := idx.RegisterSession(ctx, "host-a:1:/mnt", time.Hour); err != nil || !was {
			t.Fatalf("heartbeat RegisterSession = %v, %v; want true, nil", was, err)
		}
		if alive(t, idx, "host-b:1:/mnt") {
			t.Error("registering one session made another alive")
		}
		mustOK(t, "EndSession", func() error { return idx.EndSession(ctx, "host-a:1:/mnt") })
		if alive(t, idx, "host-a:1:/mnt") {
			t.Error("an ended session is alive")
		}
		mustOK(t, "EndSession(again)", func() error { return idx.EndSession(ctx, "host-a:1:/mnt") })
		_, err = idx.RegisterSession(ctx, "", time.Second)
		wantErr(t, "RegisterSession(no name)", err, index.ErrInvalid)
		_, err = idx.RegisterSession(ctx, "x", 0)
		wantErr(t, "RegisterSession(no TTL)", err, index.ErrInvalid)
	})

	t.Run("LiveSessions", func(t *testing.T) {
		ctx := t.Context()
		idx := fresh(t)
		before, err := idx.LiveSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const ttl = 300 * time.Millisecond
		for _, id := range []string{"host-b:2:/mnt", "host-a:1:/mnt", "ends", "short"} {
			d := time.Hour
			if id == "short" {
				d = ttl
			}
			if _, err := idx.RegisterSession(ctx, id, d); err != nil {
				t.Fatal(err)
			}
		}
		mustOK(t, "EndSession", func() error { return idx.EndSession(ctx, "ends") })
		time.Sleep(ttl)
		untilExpired(t, idx, "short")
		got, err := idx.LiveSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(append(slices.Clone(before), "host-a:1:/mnt", "host-b:2:/mnt")))
		if !slices.Equal(got, want) {
			t.Errorf("LiveSessions = %q, want %q (an ended and an expired session left out)", got, want)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		ctx := t.Context()
		idx := fresh(t)
		const ttl = 300 * time.Millisecond
		if _, err := idx.RegisterSession(ctx, "short", ttl); err != nil {
			t.Fatal(err)
		}
		if _, err := idx.RegisterSession(ctx, "long", time.Hour); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ttl)
		untilExpired(t, idx, "short")
		if !alive(t, idx, "long") {
			t.Error("a session within its TTL expired with another")
		}
		// Registering an expired session brings it back, and says it
		// had expired.
		if was, err := idx.RegisterSession(ctx, "short", time.Hour); err != nil || was {
			t.Errorf("RegisterSession after expiry = %v, %v; want false, nil", was, err)
		}
		if !alive(t, idx, "short") {
			t.Error("a session registered again is not alive")
		}
	})

	t.Run("Holds", func(t *testing.T) {
		ctx := t.Context()
		idx := fresh(t)
		own := ownSession(t, idx)
		if _, err := idx.RegisterSession(ctx, "other", time.Hour); err != nil {
			t.Fatal(err)
		}
		f := mkfile(t, idx, index.RootIno, "f")
		if _, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/f", Size: 1}); err != nil {
			t.Fatal(err)
		}
		mustOK(t, "Hold", func() error { return idx.Hold(ctx, "other", f.Ino) })
		mustOK(t, "Hold(again)", func() error { return idx.Hold(ctx, "other", f.Ino) })
		unlink(t, idx, index.RootIno, "f")

		wantErr(t, "Purge(held by a live session)", idx.Purge(ctx, f.Ino), index.ErrBusy)
		if got := getattr(t, idx, f.Ino); got.Nlink != 0 || got.FileID != "g/f" {
			t.Errorf("a refused Purge changed the inode: %s", formatAttr(got))
		}
		if os, _ := idx.Orphans(ctx); !slices.Equal(os, []index.Ino{f.Ino}) {
			t.Errorf("Orphans after a refused Purge = %v, want [%d]", os, f.Ino)
		}
		if ps, _ := idx.ListPending(ctx); len(ps) != 0 {
			t.Errorf("a refused Purge journaled %+v", ps)
		}

		// One Unhold drops the hold however often it was taken.
		mustOK(t, "Unhold", func() error { return idx.Unhold(ctx, "other", f.Ino) })
		mustOK(t, "Unhold(again)", func() error { return idx.Unhold(ctx, "other", f.Ino) })
		mustOK(t, "Purge(unheld)", func() error { return idx.Purge(ctx, f.Ino) })
		_, err := idx.GetAttr(ctx, f.Ino)
		wantErr(t, "GetAttr(purged)", err, index.ErrNotFound)
		if ps, _ := idx.ListPending(ctx); len(ps) != 1 || ps[0].FileID != "g/f" || ps[0].Reason != index.PendingDelete {
			t.Errorf("journal after Purge = %+v, want g/f to delete", ps)
		}
		wantErr(t, "Hold(purged)", idx.Hold(ctx, "other", f.Ino), index.ErrNotFound)
		mustOK(t, "Unhold(purged)", func() error { return idx.Unhold(ctx, "other", f.Ino) })

		// The index's own hold does not stop its own Purge (the caller
		// knows its own handles), and an ended session's hold stops
		// nobody.
		g := mkfile(t, idx, index.RootIno, "g")
		mustOK(t, "Hold(own)", func() error { return idx.Hold(ctx, own, g.Ino) })
		h := mkfile(t, idx, index.RootIno, "h")
		mustOK(t, "Hold(other)", func() error { return idx.Hold(ctx, "other", h.Ino) })
		mustOK(t, "Hold(own)", func() error { return idx.Hold(ctx, own, h.Ino) })
		unlink(t, idx, index.RootIno, "g")
		unlink(t, idx, index.RootIno, "h")
		mustOK(t, "Purge(held by this index)", func() error { return idx.Purge(ctx, g.Ino) })
		wantErr(t, "Purge(held by this index and a live one)", idx.Purge(ctx, h.Ino), index.ErrBusy)
		mustOK(t, "EndSession", func() error { return idx.EndSession(ctx, "other") })
		mustOK(t, "Purge(held by an ended session)", func() error { return idx.Purge(ctx, h.Ino) })
		if os, _ := idx.Orphans(ctx); len(os) != 0 {
			t.Errorf("Orphans after purging all = %v", os)
		}
		wantErr(t, "Hold(never existed)", idx.Hold(ctx, "other", 999999), index.ErrNotFound)
		wantErr(t, "Hold(no session)", idx.Hold(ctx, "", index.RootIno), index.ErrInvalid)
	})

	t.Run("HoldOfExpiredSession", func(t *testing.T) {
		ctx := t.Context()
		idx := fresh(t)
		const ttl = 300 * time.Millisecond
		if _, err := idx.RegisterSession(ctx, "dies", ttl); err != nil {
			t.Fatal(err)
		}
		f := mkfile(t, idx, index.RootIno, "f")
		mustOK(t, "Hold", func() error { return idx.Hold(ctx, "dies", f.Ino) })
		unlink(t, idx, index.RootIno, "f")
		// Purge may or may not come before the expiry; once the session
		// has expired it must succeed.
		time.Sleep(ttl)
		untilExpired(t, idx, "dies")
		mustOK(t, "Purge(held by an expired session)", func() error { return idx.Purge(ctx, f.Ino) })
		_, err := idx.GetAttr(ctx, f.Ino)
		wantErr(t, "GetAttr(purged)", err, index.ErrNotFound)
	})

	t.Run("HoldRacesPurge", func(t *testing.T) {
		// Either the Hold wins and the Purge is refused, or the Purge wins
		// and the Hold finds no inode: never both succeed.
		ctx := t.Context()
		idx := fresh(t)
		if _, err := idx.RegisterSession(ctx, "other", time.Hour); err != nil {
			t.Fatal(err)
		}
		for round := range 20 {
			f := mkfile(t, idx, index.RootIno, "f")
			unlink(t, idx, index.RootIno, "f")
			var holdErr, purgeErr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				holdErr = idx.Hold(ctx, "other", f.Ino)
			}()
			purgeErr = idx.Purge(ctx, f.Ino)
			<-done
			switch {
			case holdErr == nil && purgeErr == nil:
				t.Fatalf("round %d: Hold and Purge both succeeded", round)
			case holdErr != nil && !errors.Is(holdErr, index.ErrNotFound):
				t.Fatalf("round %d: Hold: %v", round, holdErr)
			case purgeErr != nil && !errors.Is(purgeErr, index.ErrBusy):
				t.Fatalf("round %d: Purge: %v", round, purgeErr)
			}
			mustOK(t, "Unhold", func() error { return idx.Unhold(ctx, "other", f.Ino) })
			mustOK(t, "Purge", func() error { return idx.Purge(ctx, f.Ino) })
		}
	})

	t.Run("Closed", func(t *testing.T) {
		idx := fresh(t)
		idx.Close()
		ctx := context.Background()
		_, err := idx.RegisterSession(ctx, "x", time.Second)
		wantErr(t, "RegisterSession", err, index.ErrClosed)
		_, err = idx.SessionAlive(ctx, "x")
		wantErr(t, "SessionAlive", err, index.ErrClosed)
		wantErr(t, "Hold", idx.Hold(ctx, "x", index.RootIno), index.ErrClosed)
	})
}

func testClaim(t *testing.T, fresh func(*testing.T) index.Index) {
	ctx := t.Context()
	idx := fresh(t)
	f := mkfile(t, idx, index.RootIno, "f")
	mustOK(t, "AddPending", func() error {
		return idx.AddPending(ctx, index.Pending{FileID: "g/new", Reason: index.PendingUpload})
	})
	mustOK(t, "SetContent(claim)", func() error {
		_, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/new", Size: 3, Claim: true})
		return err
	})
	if ps, _ := idx.ListPending(ctx); len(ps) != 0 {
		t.Errorf("journal after a claim = %+v, want empty", ps)
	}
	// Gone from the journal (another host took it as abandoned): the
	// claim fails and the file keeps its content.
	_, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/taken", Size: 5, Claim: true})
	wantErr(t, "SetContent(claim of an upload not journalled)", err, index.ErrLost)
	mustOK(t, "AddPending", func() error {
		return idx.AddPending(ctx, index.Pending{FileID: "g/doomed", Reason: index.PendingDelete})
	})
	_, err = idx.SetContent(ctx, f.Ino, index.Content{FileID: "g/doomed", Size: 5, Claim: true})
	wantErr(t, "SetContent(claim of a file to delete)", err, index.ErrLost)
	if got := getattr(t, idx, f.Ino); got.FileID != "g/new" || got.Size != 3 {
		t.Errorf("failed claims changed the file: %s", formatAttr(got))
	}
	if ps, _ := idx.ListPending(ctx); len(ps) != 1 || ps[0].FileID != "g/doomed" {
		t.Errorf("journal after failed claims = %+v, want only g/doomed", ps)
	}

	// A claim racing another host taking the upload as abandoned
	// (RemovePending, then deleting the file): exactly one wins, while
	// other writers change other journal entries.
	for round := range 30 {
		id := fmt.Sprintf("g/race%d", round)
		mustOK(t, "AddPending", func() error {
			return idx.AddPending(ctx, index.Pending{FileID: id, Reason: index.PendingUpload})
		})
		var claimErr, takeErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			_, claimErr = idx.SetContent(ctx, f.Ino, index.Content{FileID: id, Size: 1, Claim: true})
		})
		wg.Go(func() { takeErr = idx.RemovePending(ctx, id) })
		wg.Go(func() {
			idx.AddPending(ctx, index.Pending{FileID: id + "-other", Reason: index.PendingUpload})
			idx.RemovePending(ctx, id+"-other")
		})
		wg.Wait()
		switch {
		case claimErr == nil && takeErr == nil:
			t.Fatalf("round %d: both the claim and the take of %s succeeded", round, id)
		case claimErr != nil && !errors.Is(claimErr, index.ErrLost):
			t.Fatalf("round %d: claim: %v", round, claimErr)
		case takeErr != nil && !errors.Is(takeErr, index.ErrNotFound):
			t.Fatalf("round %d: take: %v", round, takeErr)
		case claimErr != nil && takeErr != nil:
			t.Fatalf("round %d: neither the claim nor the take succeeded", round)
		}
	}
}
