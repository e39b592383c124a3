package index

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Sessions and holds, written once over kv for every engine. A session is
// one key that expires ttl after its last RegisterSession; a hold is a
// session's name in the inode's holds value, which Purge reads in its own
// transaction, so a Hold that commits first stops the Purge and a Purge
// that commits first makes the Hold find no inode.

func (e *engine) RegisterSession(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if id == "" || ttl <= 0 {
		return false, fmt.Errorf("%w: session %q for %v", ErrInvalid, id, ttl)
	}
	var was bool
	err := e.be.update(ctx, func(tx *txn) error {
		var err error
		if was, err = tx.kv.sessionAlive(id); err != nil {
			return err
		}
		return tx.kv.setSession(id, ttl)
	})
	return was, err
}

func (e *engine) EndSession(ctx context.Context, id string) error {
	return e.be.update(ctx, func(tx *txn) error { return tx.kv.deleteSession(id) })
}

func (e *engine) SessionAlive(ctx context.Context, id string) (bool, error) {
	var alive bool
	err := e.be.view(ctx, func(tx *txn) error {
		var err error
		alive, err = tx.kv.sessionAlive(id)
		return err
	})
	return alive, err
}

func (e *engine) Hold(ctx context.Context, session string, ino Ino) error {
	if session == "" {
		return fmt.Errorf("%w: hold without a session", ErrInvalid)
	}
	return e.be.update(ctx, func(tx *txn) error {
		if _, err := tx.node(ino); err != nil {
			return err
		}
		hs, err := tx.holds(ino)
		if err != nil || slices.Contains(hs, session) {
			return err
		}
		return tx.kv.setHolds(ino, encodeHolds(append(hs, session)))
	})
}

func (e *engine) Unhold(ctx context.Context, session string, ino Ino) error {
	return e.be.update(ctx, func(tx *txn) error {
		hs, err := tx.holds(ino)
		if err != nil || !slices.Contains(hs, session) {
			return err
		}
		hs = slices.DeleteFunc(hs, func(s string) bool { return s == session })
		if len(hs) == 0 {
			return tx.kv.setHolds(ino, nil)
		}
		return tx.kv.setHolds(ino, encodeHolds(hs))
	})
}

func (tx *txn) holds(ino Ino) ([]string, error) {
	v, err := tx.kv.holds(ino)
	if err != nil || v == nil {
		return nil, err
	}
	return decodeHolds(ino, v)
}

// releaseHolds drops ino's holds before a Purge removes it, or fails with
// ErrBusy if a live session other than this transaction's own holds it.
func (tx *txn) releaseHolds(ino Ino) error {
	hs, err := tx.holds(ino)
	if err != nil || len(hs) == 0 {
		return err
	}
	for _, s := range hs {
		if s == tx.session {
			continue
		}
		alive, err := tx.kv.sessionAlive(s)
		if err != nil {
			return err
		}
		if alive {
			return fmt.Errorf("%w: inode %d by session %s", ErrBusy, ino, s)
		}
	}
	return tx.kv.setHolds(ino, nil)
}
