package index

import "encoding/binary"

// Key layout of the Badger engine. Every key starts with one byte naming its
// table. Inode numbers are 8 bytes big-endian, so a directory's entries sit
// together in name order and inodes sort by number; a directory listing is
// one prefix scan.
//
//	'M' name               → engine metadata: "schema" (uvarint version),
//	                         "loading" (present only while a Load runs)
//	'C' name               → counter, 8 bytes big-endian; "next_ino" is the
//	                         lowest inode number never handed out
//	'A' ino                → attributes, encodeAttr (codec.go)
//	'D' parent name        → directory entry: kind (1 byte), ino (8 bytes)
//	'O' ino                → orphan set: Nlink 0, not yet purged; empty value
//	'P' fileID             → pending journal entry, encodePending (codec.go)
//	'H' ino                → sessions holding an orphan open, encodeHolds (codec.go)
//	'X' ino                → the inode's extended attributes, encodeXattrs (codec.go)
//	'S' session            → a registered session: its expiry, 8 bytes big-endian
//	                         Unix nanoseconds (the key also has a Badger TTL a
//	                         little longer, which drops it eventually)
//	'I' fileID             → by-ID view entry, encodeByID (byid.go): a file the
//	                         group holds, listed under its ID path; a view, so
//	                         no inode, no dentry and no link count
//
// The layout is versioned by "schema"; a store with another version is
// refused rather than misread.
const (
	tableMeta    = 'M'
	tableCounter = 'C'
	tableAttr    = 'A'
	tableDentry  = 'D'
	tableOrphan  = 'O'
	tablePending = 'P'
	tableHolds   = 'H'
	tableSession = 'S'
	tableXattrs  = 'X'
	tableByID    = 'I'
)

const schemaVersion = 1

// Names in the meta and counter tables.
const (
	metaSchema  = "schema"
	metaLoading = "loading"
	// CounterNextIno names the inode counter in the store and in dumps.
	CounterNextIno = "next_ino"
)

func metaKey(name string) []byte    { return append([]byte{tableMeta}, name...) }
func counterKey(name string) []byte { return append([]byte{tableCounter}, name...) }

func inoKey(table byte, ino Ino) []byte {
	k := make([]byte, 9)
	k[0] = table
	binary.BigEndian.PutUint64(k[1:], uint64(ino))
	return k
}

func attrKey(ino Ino) []byte   { return inoKey(tableAttr, ino) }
func orphanKey(ino Ino) []byte { return inoKey(tableOrphan, ino) }

// dentryPrefix is the prefix shared by every entry of dir.
func dentryPrefix(dir Ino) []byte { return inoKey(tableDentry, dir) }

func dentryKey(dir Ino, name string) []byte {
	return append(dentryPrefix(dir), name...)
}

func pendingKey(fileID string) []byte { return append([]byte{tablePending}, fileID...) }
func holdsKey(ino Ino) []byte         { return inoKey(tableHolds, ino) }
func xattrsKey(ino Ino) []byte        { return inoKey(tableXattrs, ino) }
func sessionKey(id string) []byte     { return append([]byte{tableSession}, id...) }

// inoFromKey reads the inode number of an 'A' or 'O' key.
func inoFromKey(k []byte) (Ino, bool) {
	if len(k) != 9 {
		return 0, false
	}
	return Ino(binary.BigEndian.Uint64(k[1:])), true
}

// nameFromDentryKey returns the name part of a 'D' key.
func nameFromDentryKey(k []byte) (string, bool) {
	if len(k) <= 9 || k[0] != tableDentry {
		return "", false
	}
	return string(k[9:]), true
}

func encodeDentry(ino Ino, kind Kind) []byte {
	v := make([]byte, 9)
	v[0] = byte(kind)
	binary.BigEndian.PutUint64(v[1:], uint64(ino))
	return v
}

func decodeDentry(v []byte) (Ino, Kind, error) {
	if len(v) != 9 {
		return 0, 0, corruptf("dentry value of %d bytes", len(v))
	}
	kind := Kind(v[0])
	if !kind.valid() {
		return 0, 0, corruptf("dentry kind %d", v[0])
	}
	ino := Ino(binary.BigEndian.Uint64(v[1:]))
	if ino == 0 {
		return 0, 0, corruptf("dentry names inode 0")
	}
	return ino, kind, nil
}

func encodeCounter(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeCounter(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, corruptf("counter value of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
