// Package index owns the fdfsfs namespace: inodes, directory entries, the
// content each file name points at (a FastDFS file ID), and the journal of
// FastDFS files that must be deleted unless a name claims them.
//
// The namespace is engine-neutral: Index is the one interface the FUSE layer
// sees. Badger (one host) implements it in badger.go; a shared engine such as
// Redis implements the same contract so that several mount hosts see one tree.
//
// Index must never talk to FastDFS: file IDs are opaque strings here. Deleting
// FastDFS files is the caller's job; the index only records which ones are due.
package index

import (
	"context"
	"errors"
	"io"
	"time"
)

// Ino is an inode number. It is allocated by the index, never reused, and
// stable across remounts.
type Ino uint64

// RootIno is the mount root. Its children are the FastDFS group directories.
const RootIno Ino = 1

// Kind is what an inode holds.
type Kind uint8

const (
	KindFile Kind = iota + 1
	KindDir
	KindSymlink
	// The special kinds live in the index alone: FastDFS holds no content
	// for them. A device keeps its number in Attr.Rdev.
	KindFIFO
	KindSocket
	KindCharDev
	KindBlockDev
)

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Special reports whether k is a FIFO, a socket or a device: an inode with
// no content anywhere but its attributes.
func (k Kind) Special() bool { return k >= KindFIFO && k <= KindBlockDev }

// Attr is everything the index keeps about one inode.
type Attr struct {
	Ino   Ino
	Kind  Kind
	Mode  uint32 // permission bits only (07777); the type comes from Kind
	Uid   uint32
	Gid   uint32
	Nlink uint32
	Size  int64
	Atime time.Time
	Mtime time.Time
	Ctime time.Time

	// FileID is the FastDFS file holding the content ("" for an empty file,
	// a directory or a symlink). Appender is true when FileID is a FastDFS
	// appender file, which can be appended to, modified and truncated in place.
	FileID   string
	Appender bool
	// Gen is bumped on every content change (including in-place changes to an
	// appender file, whose FileID stays the same). Caches key on (FileID, Gen).
	Gen uint64

	// Target is the symlink target (KindSymlink only).
	Target string
	// Rdev is the device number (KindCharDev and KindBlockDev only), as
	// the kernel encodes it in a FUSE request.
	Rdev uint32
}

// Entry is one directory entry with the attributes of the inode it names, as
// a directory scan returns it (readdirplus needs both).
type Entry struct {
	Name string
	Attr Attr
}

// SetAttrIn says which attributes SetAttr changes: a nil field is left alone.
// Size here changes only the recorded size; content changes go through
// SetContent.
type SetAttrIn struct {
	Mode  *uint32
	Uid   *uint32
	Gid   *uint32
	Atime *time.Time
	Mtime *time.Time
	Ctime *time.Time
}

// Content is a new content version for a file.
type Content struct {
	FileID   string
	Appender bool
	Size     int64
	Mtime    time.Time
	// Claim says FileID is a new upload journalled as PendingUpload:
	// SetContent then fails with ErrLost, changing nothing, if the entry
	// is gone or no longer an upload (another host's sweep took it as
	// abandoned, and may have deleted the file).
	Claim bool
}

// PendingReason says why a FastDFS file is in the journal.
type PendingReason uint8

const (
	// PendingUpload: uploaded (or being uploaded), not yet claimed by a name.
	// SetContent with this file ID removes the entry in the same transaction.
	PendingUpload PendingReason = iota + 1
	// PendingDelete: no longer referenced; delete it from FastDFS.
	PendingDelete
)

// Pending is one journal entry: a FastDFS file that must be deleted unless a
// name claims it.
type Pending struct {
	FileID  string
	Reason  PendingReason
	Session string // the mount session that wrote it (shared engines)
	Since   time.Time
}

// Rename flags, as in renameat2(2).
const (
	RenameNoReplace uint32 = 1 << 0
	RenameExchange  uint32 = 1 << 1
)

// Errors the index returns. The FUSE layer maps them to errnos in one place.
var (
	ErrNotFound = errors.New("index: not found")   // ENOENT
	ErrExists   = errors.New("index: exists")      // EEXIST
	ErrNotEmpty = errors.New("index: not empty")   // ENOTEMPTY
	ErrNotDir   = errors.New("index: not a dir")   // ENOTDIR
	ErrIsDir    = errors.New("index: is a dir")    // EISDIR
	ErrInvalid  = errors.New("index: invalid")     // EINVAL (e.g. rename a dir into itself)
	ErrClosed   = errors.New("index: closed")      // EIO
	ErrCorrupt  = errors.New("index: corrupt")     // EIO
	ErrNameLen  = errors.New("index: name long")   // ENAMETOOLONG
	ErrReadOnly = errors.New("index: read-only")   // EROFS
	ErrBusy     = errors.New("index: held open")   // EBUSY: a live session holds the inode
	ErrLost     = errors.New("index: upload lost") // EIO: a claimed upload left the journal
	ErrNoXattr  = errors.New("index: no xattr")    // ENODATA
	ErrTooBig   = errors.New("index: too big")     // E2BIG
	ErrNoSpace  = errors.New("index: no space")    // ENOSPC
)

// MaxNameLen is the longest name accepted, in bytes, as on Linux.
const MaxNameLen = 255

// Index is the namespace. Every method that changes more than one key does so
// atomically. Methods are safe for concurrent use.
type Index interface {
	// Lookup finds name in directory parent. An entry naming a missing
	// inode is ErrCorrupt.
	Lookup(ctx context.Context, parent Ino, name string) (Attr, error)
	// GetAttr reads one inode. Orphaned inodes (Nlink 0, not yet purged) are
	// still readable.
	GetAttr(ctx context.Context, ino Ino) (Attr, error)
	// ReadDir lists a directory in name order with each entry's attributes,
	// from one scan. "." and ".." are not included. An entry naming a
	// missing inode is left out (Check reports it).
	ReadDir(ctx context.Context, parent Ino) ([]Entry, error)
	// ReadDirBatches is ReadDir handing the entries to fn in name order as
	// they are read, up to batch at a time (all at once for batch <= 0),
	// so that a listing can be served while it is read. The entries come
	// from one snapshot, except where a shared engine must read again
	// because the directory changed under it: the rest of the listing then
	// comes from the newer state, and no entry is handed over twice. An
	// error from fn ends the listing and is returned.
	ReadDirBatches(ctx context.Context, parent Ino, batch int, fn func([]Entry) error) error

	// Create makes a new inode of attr.Kind named name in parent (attr.Ino
	// and Nlink are assigned by the index; Nlink is 1, or 2 for a directory).
	// It returns ErrExists if the name is taken.
	Create(ctx context.Context, parent Ino, name string, attr Attr) (Attr, error)
	// CreateInheriting is Create that, in the same transaction, runs
	// inherit on the parent's extended attributes: it may change the new
	// inode's attr (its Mode, say) and returns the extended attributes
	// the inode is created with (nil for none; limits as SetXattr's). An
	// error from inherit is returned and nothing is created.
	CreateInheriting(ctx context.Context, parent Ino, name string, attr Attr, inherit Inherit) (Attr, error)
	// Link adds another name for a file or symlink (not a directory).
	Link(ctx context.Context, ino Ino, newParent Ino, newName string) (Attr, error)
	// Unlink removes a non-directory name and returns the inode as it is
	// afterwards. When Nlink reaches 0 the inode stays as an orphan until
	// Purge, so that open handles keep working.
	Unlink(ctx context.Context, parent Ino, name string) (Attr, error)
	// Rmdir removes an empty directory (ErrNotEmpty otherwise).
	Rmdir(ctx context.Context, parent Ino, name string) error
	// Rename moves a name, atomically. An existing target file loses that
	// name (and becomes an orphan if it was its last); an existing target
	// directory must be empty. The returned Attr, if not nil, is the replaced
	// inode as it is afterwards.
	Rename(ctx context.Context, oldParent Ino, oldName string, newParent Ino, newName string, flags uint32) (replaced *Attr, err error)

	// SetAttr changes mode, owner and times.
	SetAttr(ctx context.Context, ino Ino, in SetAttrIn) (Attr, error)
	// SetContent points a file at new content and bumps Gen. In the same
	// transaction: c.FileID's PendingUpload entry (if any) is removed, and the
	// previous FileID, if different and not "", becomes PendingDelete.
	SetContent(ctx context.Context, ino Ino, c Content) (Attr, error)

	// Purge deletes an orphaned inode (Nlink 0); its FileID becomes
	// PendingDelete in the same transaction. Purging a linked inode is a no-op,
	// and so is purging a missing one, apart from dropping a stale orphan mark.
	// An orphan that a live session other than this index's own (the
	// Session it was opened with) holds (Hold) is left alone: ErrBusy.
	// Holds of expired sessions, and this index's own, go with the inode.
	Purge(ctx context.Context, ino Ino) error
	// Orphans lists inodes with Nlink 0 (to purge after a crash).
	Orphans(ctx context.Context) ([]Ino, error)

	// AddPending records a FastDFS file that must be deleted unless claimed.
	AddPending(ctx context.Context, p Pending) error
	// RemovePending drops a journal entry (after the file was deleted).
	RemovePending(ctx context.Context, fileID string) error
	// ListPending lists the journal.
	ListPending(ctx context.Context) ([]Pending, error)

	// Sessions let several mount hosts tell a live host's journal entries
	// and open files from those of a host that died. Each mount registers
	// its session and calls RegisterSession again well within ttl (the
	// heartbeat); a session not refreshed in time has expired, and other
	// hosts may clean up after it. A single-host engine keeps them too.

	// RegisterSession marks session id alive until ttl from now. It
	// reports whether the session was alive already: false for a new one,
	// and for one that expired, after which other hosts may have deleted
	// its uploads and purged its orphans.
	RegisterSession(ctx context.Context, id string, ttl time.Duration) (wasAlive bool, err error)
	// EndSession expires a session at once (a clean unmount).
	EndSession(ctx context.Context, id string) error
	// SessionAlive reports whether session id is registered and not expired.
	SessionAlive(ctx context.Context, id string) (bool, error)
	// LiveSessions lists, in order, the sessions registered and not
	// expired: the mounts using the index now (or dead less than their
	// TTL ago). It reads the whole session table, for the commands that
	// must not run beside a mount.
	LiveSessions(ctx context.Context) ([]string, error)
	// Hold records that session holds ino open, so that Purge leaves the
	// inode alone while that session is alive (ErrNotFound for a missing
	// inode). Unhold drops the record; dropping one that is not there is
	// a no-op. Holds are not part of a Dump.
	Hold(ctx context.Context, session string, ino Ino) error
	Unhold(ctx context.Context, session string, ino Ino) error

	// Dump writes the whole namespace and journal in an engine-neutral
	// format; Load replaces an empty index with such a dump, keeping inode
	// numbers, and refuses one holding more than its root (ErrNotEmpty).
	Dump(ctx context.Context, w io.Writer) error
	Load(ctx context.Context, r io.Reader) error

	// The four methods below exist for Check and Repair (check.go) only.
	// They see and mend damage that the methods above hide or refuse, so
	// they bypass the namespace rules; the FUSE layer must not call them.

	// Inodes calls fn for every inode, orphans included, in inode order.
	Inodes(ctx context.Context, fn func(Attr) error) error
	// Dentries calls fn for every entry of dir as stored, in name order,
	// without reading the inodes: entries naming a missing inode show up.
	Dentries(ctx context.Context, dir Ino, fn func(name string, ino Ino, kind Kind) error) error
	// DropDentry removes one entry and touches nothing else.
	DropDentry(ctx context.Context, dir Ino, name string) error
	// SetNlink sets an inode's link count; 0 puts it in the orphan set and
	// anything else takes it out.
	SetNlink(ctx context.Context, ino Ino, nlink uint32) (Attr, error)

	// GetXattr, ListXattr, SetXattr and RemoveXattr keep an inode's
	// extended attributes: any bytes, names up to MaxXattrNameLen, values
	// up to MaxXattrValueLen (ErrTooBig beyond), MaxXattrTotal for one
	// inode together (ErrNoSpace beyond). A missing name is ErrNoXattr;
	// SetXattr's flags XattrCreate and XattrReplace fail with ErrExists
	// and ErrNoXattr as setxattr(2) does. A change also changes Ctime.
	// The attributes go with the inode when it is purged, and are part of
	// a Dump.
	GetXattr(ctx context.Context, ino Ino, name string) ([]byte, error)
	ListXattr(ctx context.Context, ino Ino) ([]string, error)
	SetXattr(ctx context.Context, ino Ino, name string, value []byte, flags uint32) error
	RemoveXattr(ctx context.Context, ino Ino, name string) error
	// ChangeModeXattrs replaces ino's permission bits and extended
	// attributes with what change makes of them, and changes Ctime, in one
	// transaction: for attributes that must stay in step with the mode
	// (POSIX ACLs). An error from change is returned and nothing changes.
	ChangeModeXattrs(ctx context.Context, ino Ino, change ModeXattrsChange) (Attr, error)

	// Sync makes every change committed so far as durable as the engine
	// can: Badger writes its log to the disk (fsync), Redis answers at
	// once (a commit there is as durable as the server's appendfsync).
	Sync(ctx context.Context) error

	// Changes delivers notices of changes made by other mount hosts (shared
	// engines). A single-host engine returns nil.
	Changes() <-chan Change

	Close() error
}

// Change is a notice that another host changed something, so cached entries
// and content must be dropped.
type Change struct {
	Parent Ino    // directory whose entry Name changed (0 if none)
	Name   string //
	Ino    Ino    // inode whose attributes or content changed (0 if none)
	// All says that notices may have been lost (the subscription was
	// broken, by a failover say, or the reader fell behind): everything
	// cached may be stale and is dropped. The other fields are zero.
	All bool
}
