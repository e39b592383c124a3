package index

import (
	"context"
	"time"
)

// kv is one engine's transaction as the shared namespace operations
// (namespace.go, txn.go) see it: the five tables of keys.go, each read and
// written by key. Badger implements it over one badger.Txn (badger_kv.go),
// Redis over one WATCH … MULTI/EXEC round (redis_kv.go).
//
// Reads return nil, nil for a missing key. Whether a read sees the
// transaction's own earlier writes differs (Badger: yes; Redis: no, they
// are queued for EXEC), so the operations never read back what they wrote
// and keep the inodes they change in txn.nodes. Writes may be queued until
// commit, so they only fail for reasons the engine knows up front (Badger:
// a transaction too big).
type kv interface {
	attr(ino Ino) ([]byte, error)
	// attrs reads many inodes at once (one round trip for Redis); a missing
	// one is nil.
	attrs(inos []Ino) ([][]byte, error)
	setAttr(ino Ino, v []byte) error
	deleteAttr(ino Ino) error

	dentry(dir Ino, name string) ([]byte, error)
	setDentry(dir Ino, name string, v []byte) error
	deleteDentry(dir Ino, name string) error
	// dirEmpty reports whether dir has no entries. A transaction that
	// commits after it saw a directory empty is sure nobody added an entry
	// meanwhile.
	dirEmpty(dir Ino) (bool, error)
	// dentries calls fn for every entry of dir in name order.
	dentries(ctx context.Context, dir Ino, fn func(name string, v []byte) error) error

	setOrphan(ino Ino, orphan bool) error

	pending(fileID string) ([]byte, error)
	setPending(fileID string, v []byte) error
	deletePending(fileID string) error

	// holds is the encoded list of sessions holding ino open
	// (encodeHolds), nil if none; setHolds with nil drops it. It is one
	// value per inode, so that a Hold and a Purge of one inode always
	// conflict.
	holds(ino Ino) ([]byte, error)
	setHolds(ino Ino, v []byte) error
	// xattrs is the encoded set of ino's extended attributes
	// (encodeXattrs), nil if none; setXattrs with nil drops it.
	xattrs(ino Ino) ([]byte, error)
	setXattrs(ino Ino, v []byte) error
	// sessionAlive reports whether session id is registered and has not
	// expired; setSession registers it until ttl from now.
	sessionAlive(id string) (bool, error)
	setSession(id string, ttl time.Duration) error
	deleteSession(id string) error
}
