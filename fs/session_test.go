package fs

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"fdfsfs/index"
)

// On a shared index a mount takes another host's expired session for a
// dead host only once its own heartbeats have been steady for a TTL: an
// outage of the index (a Redis failover longer than the TTL) expires every
// session alike, and a sweep right after it would delete the uploads of
// hosts that are alive and about to beat again.
func TestSweepJudgesOthersOnlyWhenSteady(t *testing.T) {
	ctx := context.Background()
	const ttl = time.Hour
	tf := newTestFS(t, func(o *Options) { o.Shared, o.Session, o.SessionTTL = true, "me", ttl })
	// An upload journalled by a session that is not alive (never was).
	data := []byte("another host's upload in progress")
	id, err := tf.be.Upload(ctx, "group1", "bin", bytes.NewReader(data), int64(len(data)), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.idx.AddPending(ctx, index.Pending{FileID: id, Reason: index.PendingUpload, Session: "other"}); err != nil {
		t.Fatal(err)
	}
	left := func() bool {
		_, stored := tf.be.content(id)
		_, journalled := tf.pending(t)[id]
		if stored != journalled {
			t.Fatalf("stored %v, journalled %v", stored, journalled)
		}
		return stored
	}
	now := time.Now()
	steps := []struct {
		what  string
		set   func()
		judge bool
	}{
		{"just mounted", func() {}, false},
		{"a beat failed", func() { tf.beaten(true, errors.New("index out of reach"), now) }, false},
		{"beating again, not yet for a TTL", func() { tf.beaten(true, nil, now) }, false},
		{"a beat found its own session expired", func() { tf.beaten(false, nil, now.Add(2*ttl)) }, false},
		{"steady for a TTL", func() { tf.beaten(true, nil, now); tf.steadySince.Store(now.Add(-ttl).UnixNano()) }, true},
	}
	for _, s := range steps {
		s.set()
		if got := tf.judgesOthers(); got != s.judge {
			t.Fatalf("%s: judgesOthers %v, want %v", s.what, got, s.judge)
		}
		tf.sweep(ctx)
		if kept := left(); kept == s.judge {
			t.Fatalf("%s: after a sweep the other session's upload is kept: %v", s.what, kept)
		}
	}
}
