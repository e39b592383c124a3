package index

import (
	"encoding/binary"
	"math"
	"time"
)

// Value encodings of the Badger engine. Attributes are read for every
// lookup and every entry of a listing, so they are a compact binary record
// rather than JSON. The first byte is the record's version.
//
// Attributes, version 1:
//
//	version  byte (1)
//	kind     byte
//	mode, uid, gid, nlink   uvarint each (≤ MaxUint32)
//	size     varint
//	atime, mtime, ctime     varint seconds + uvarint nanoseconds each
//	gen      uvarint
//	flags    byte: bit 0 appender
//	fileID   uvarint length + bytes
//	target   uvarint length + bytes
//	parent   uvarint (a directory's parent; 0 for other kinds and the root)
//
// Version 2 is version 1 followed by
//
//	rdev     uvarint (≤ MaxUint32)
//
// and is written only for a device, whose Rdev is not 0: every other inode
// keeps the version 1 record, which earlier builds read.
//
// The inode number is the key, not part of the value.
//
// Extended attributes of an inode, all in one value (the inode number is
// the key), version 1, names in byte order:
//
//	version  byte (1)
//	count    uvarint
//	each     name: uvarint length + bytes; value: uvarint length + bytes
//
// Pending journal entry, version 1 (the file ID is the key):
//
//	version  byte (1)
//	reason   byte
//	since    varint seconds + uvarint nanoseconds
//	session  uvarint length + bytes
//
// Holds of an inode (the inode number is the key), version 1:
//
//	version  byte (1)
//	sessions uvarint count, then each as uvarint length + bytes
const (
	attrVersion     = 1
	attrVersionRdev = 2
	pendingVersion  = 1
	holdsVersion    = 1
	xattrsVersion   = 1

	attrFlagAppender = 1 << 0
)

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeAttr(a Attr, parent Ino) []byte {
	b := make([]byte, 0, 64+len(a.FileID)+len(a.Target))
	version := byte(attrVersion)
	if a.Rdev != 0 {
		version = attrVersionRdev
	}
	b = append(b, version, byte(a.Kind))
	b = binary.AppendUvarint(b, uint64(a.Mode))
	b = binary.AppendUvarint(b, uint64(a.Uid))
	b = binary.AppendUvarint(b, uint64(a.Gid))
	b = binary.AppendUvarint(b, uint64(a.Nlink))
	b = binary.AppendVarint(b, a.Size)
	b = appendTime(b, a.Atime)
	b = appendTime(b, a.Mtime)
	b = appendTime(b, a.Ctime)
	b = binary.AppendUvarint(b, a.Gen)
	var flags byte
	if a.Appender {
		flags |= attrFlagAppender
	}
	b = append(b, flags)
	b = appendString(b, a.FileID)
	b = appendString(b, a.Target)
	b = binary.AppendUvarint(b, uint64(parent))
	if version == attrVersionRdev {
		b = binary.AppendUvarint(b, uint64(a.Rdev))
	}
	return b
}

// reader consumes a value front to back; the first failure sticks, so a
// decoder checks err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = corruptf("truncated or malformed %s", what)
	}
	r.b = nil
}

func (r *reader) byte(what string) byte {
	if len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uint32(what string) uint32 {
	v := r.uvarint(what)
	if v > math.MaxUint32 {
		r.fail(what)
		return 0
	}
	return uint32(v)
}

func (r *reader) time(what string) time.Time {
	sec := r.varint(what)
	nsec := r.uvarint(what)
	if nsec >= uint64(time.Second) {
		r.fail(what)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}

func (r *reader) string(what string) string {
	n := r.uvarint(what)
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeAttr decodes the attributes stored for ino and the directory's
// parent. It never panics; damage is an error wrapping ErrCorrupt.
func decodeAttr(ino Ino, v []byte) (Attr, Ino, error) {
	r := reader{b: v}
	ver := r.byte("version")
	if r.err == nil && ver != attrVersion && ver != attrVersionRdev {
		return Attr{}, 0, corruptf("inode %d: attr version %d", ino, ver)
	}
	a := Attr{Ino: ino}
	a.Kind = Kind(r.byte("kind"))
	a.Mode = r.uint32("mode")
	a.Uid = r.uint32("uid")
	a.Gid = r.uint32("gid")
	a.Nlink = r.uint32("nlink")
	a.Size = r.varint("size")
	a.Atime = r.time("atime")
	a.Mtime = r.time("mtime")
	a.Ctime = r.time("ctime")
	a.Gen = r.uvarint("gen")
	flags := r.byte("flags")
	a.Appender = flags&attrFlagAppender != 0
	a.FileID = r.string("file ID")
	a.Target = r.string("target")
	parent := Ino(r.uvarint("parent"))
	if ver == attrVersionRdev {
		a.Rdev = r.uint32("rdev")
	}
	switch {
	case r.err != nil:
		return Attr{}, 0, r.err
	case len(r.b) != 0:
		return Attr{}, 0, corruptf("inode %d: %d trailing bytes", ino, len(r.b))
	case !a.Kind.valid():
		return Attr{}, 0, corruptf("inode %d: kind %d", ino, a.Kind)
	case flags&^attrFlagAppender != 0:
		return Attr{}, 0, corruptf("inode %d: flags %#x", ino, flags)
	}
	return a, parent, nil
}

func encodePending(p Pending) []byte {
	b := make([]byte, 0, 16+len(p.Session))
	b = append(b, pendingVersion, byte(p.Reason))
	b = appendTime(b, p.Since)
	return appendString(b, p.Session)
}

func decodePending(fileID string, v []byte) (Pending, error) {
	r := reader{b: v}
	if ver := r.byte("version"); r.err == nil && ver != pendingVersion {
		return Pending{}, corruptf("pending %q: version %d", fileID, ver)
	}
	p := Pending{FileID: fileID}
	p.Reason = PendingReason(r.byte("reason"))
	p.Since = r.time("since")
	p.Session = r.string("session")
	switch {
	case r.err != nil:
		return Pending{}, r.err
	case len(r.b) != 0:
		return Pending{}, corruptf("pending %q: %d trailing bytes", fileID, len(r.b))
	case !p.Reason.valid():
		return Pending{}, corruptf("pending %q: reason %d", fileID, p.Reason)
	}
	return p, nil
}

func encodeHolds(sessions []string) []byte {
	b := []byte{holdsVersion}
	b = binary.AppendUvarint(b, uint64(len(sessions)))
	for _, s := range sessions {
		b = appendString(b, s)
	}
	return b
}

func decodeHolds(ino Ino, v []byte) ([]string, error) {
	r := reader{b: v}
	if ver := r.byte("version"); r.err == nil && ver != holdsVersion {
		return nil, corruptf("holds of %d: version %d", ino, ver)
	}
	n := r.uvarint("count")
	if r.err == nil && n > uint64(len(r.b)) {
		return nil, corruptf("holds of %d: count %d", ino, n)
	}
	var ss []string
	for i := uint64(0); i < n && r.err == nil; i++ {
		ss = append(ss, r.string("session"))
	}
	switch {
	case r.err != nil:
		return nil, r.err
	case len(r.b) != 0:
		return nil, corruptf("holds of %d: %d trailing bytes", ino, len(r.b))
	}
	return ss, nil
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// encodeXattrs encodes an inode's attributes, which must be sorted by name;
// nil for none, so that the key is deleted.
func encodeXattrs(xs []Xattr) []byte {
	if len(xs) == 0 {
		return nil
	}
	n := 8
	for _, x := range xs {
		n += len(x.Name) + len(x.Value) + 8
	}
	b := make([]byte, 0, n)
	b = append(b, xattrsVersion)
	b = binary.AppendUvarint(b, uint64(len(xs)))
	for _, x := range xs {
		b = appendString(b, x.Name)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b
}

// decodeXattrs decodes what encodeXattrs wrote; nil v is no attributes.
func decodeXattrs(ino Ino, v []byte) ([]Xattr, error) {
	if v == nil {
		return nil, nil
	}
	r := reader{b: v}
	if ver := r.byte("version"); r.err == nil && ver != xattrsVersion {
		return nil, corruptf("xattrs of %d: version %d", ino, ver)
	}
	n := r.uvarint("count")
	if r.err == nil && n > uint64(len(r.b)) {
		return nil, corruptf("xattrs of %d: count %d", ino, n)
	}
	xs := make([]Xattr, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		name := r.string("xattr name")
		value := []byte(r.string("xattr value"))
		if r.err == nil && i > 0 && name <= xs[i-1].Name {
			return nil, corruptf("xattrs of %d: names out of order", ino)
		}
		xs = append(xs, Xattr{Name: name, Value: value})
	}
	switch {
	case r.err != nil:
		return nil, r.err
	case len(r.b) != 0:
		return nil, corruptf("xattrs of %d: %d trailing bytes", ino, len(r.b))
	}
	return xs, nil
}
