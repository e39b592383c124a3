package index

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// The dump format moves a namespace between engines (`fdfsfs meta dump` and
// `meta load`). It is JSON lines, one record per line:
//
//	{"t":"header","format":"fdfsfs-index","version":1}
//	{"t":"counter","name":"next_ino","value":42}
//	{"t":"inode","ino":1,"kind":"dir","mode":493,...,"parent":0}
//	{"t":"dentry","parent":1,"name":"group1","ino":2,"kind":"dir"}
//	{"t":"orphan","ino":7}
//	{"t":"pending","file_id":"group1/M00/...","reason":"delete","session":"host-a","since":"..."}
//	{"t":"xattr","ino":7,"name":"user.mime","value_b64":"aW1hZ2UvanBlZw=="}
//	{"t":"end","records":6}
//
// The header comes first and the end record last; a dump without its end
// record is truncated and refused. Records in between may come in any order.
// Times are RFC 3339 with nanoseconds. Names and symlink targets are bytes
// on Linux, so one that is not valid UTF-8 is written base64 in "name_b64"
// or "target_b64" instead, and survives the trip unchanged. An extended
// attribute's value is any bytes, so it is always base64.
//
// Version 2 added the special kinds of inode (fifo, socket, chardev and
// blockdev, the devices with "rdev") and the xattr records; a version 1
// dump is read as it always was.
const (
	DumpFormat  = "fdfsfs-index"
	DumpVersion = 2

	// maxDumpLine bounds one record; the largest legitimate one is an inode
	// with a long symlink target, far below this.
	maxDumpLine = 1 << 20
)

// RecordType says what a DumpRecord holds.
type RecordType uint8

const (
	RecordCounter RecordType = iota + 1
	RecordInode
	RecordDentry
	RecordOrphan
	RecordPending
	RecordXattr
)

var recordTypeNames = map[RecordType]string{
	RecordCounter: "counter",
	RecordInode:   "inode",
	RecordDentry:  "dentry",
	RecordOrphan:  "orphan",
	RecordPending: "pending",
	RecordXattr:   "xattr",
}

func (t RecordType) String() string {
	if s, ok := recordTypeNames[t]; ok {
		return s
	}
	return "unknown"
}

// DumpRecord is one record of a dump; Type says which fields are set.
type DumpRecord struct {
	Type RecordType
	// RecordCounter: Name and Value.
	Name  string
	Value uint64
	// RecordInode: Attr, and Parent for a directory (0 for the root and
	// other kinds).
	Attr Attr
	// RecordDentry: Parent, Name, Ino and Kind. RecordOrphan: Ino.
	Parent Ino
	Ino    Ino
	Kind   Kind
	// RecordPending: Pending.
	Pending Pending
	// RecordXattr: Ino and Xattr.
	Xattr Xattr
}

// dumpLine is the JSON shape of every record; omitempty keeps each line to
// the fields of its type.
type dumpLine struct {
	T       string     `json:"t"`
	Format  string     `json:"format,omitempty"`
	Version int        `json:"version,omitempty"`
	Records uint64     `json:"records,omitempty"`
	Name    *string    `json:"name,omitempty"`
	NameB64 *string    `json:"name_b64,omitempty"`
	Value   *uint64    `json:"value,omitempty"`
	Ino     uint64     `json:"ino,omitempty"`
	Kind    string     `json:"kind,omitempty"`
	Mode    uint32     `json:"mode,omitempty"`
	Uid     uint32     `json:"uid,omitempty"`
	Gid     uint32     `json:"gid,omitempty"`
	Nlink   *uint32    `json:"nlink,omitempty"`
	Size    int64      `json:"size,omitempty"`
	Atime   *time.Time `json:"atime,omitempty"`
	Mtime   *time.Time `json:"mtime,omitempty"`
	Ctime   *time.Time `json:"ctime,omitempty"`
	FileID  string     `json:"file_id,omitempty"`
	Append  bool       `json:"appender,omitempty"`
	Gen     uint64     `json:"gen,omitempty"`
	Target  *string    `json:"target,omitempty"`
	TgtB64  *string    `json:"target_b64,omitempty"`
	Parent  uint64     `json:"parent,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	Session string     `json:"session,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	Rdev    uint32     `json:"rdev,omitempty"`
	Value64 *string    `json:"value_b64,omitempty"`
}

var kindNames = map[Kind]string{
	KindFile: "file", KindDir: "dir", KindSymlink: "symlink",
	KindFIFO: "fifo", KindSocket: "socket", KindCharDev: "chardev", KindBlockDev: "blockdev",
}

func kindFromName(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n == s {
			return k, true
		}
	}
	return 0, false
}

func reasonFromName(s string) (PendingReason, bool) {
	switch s {
	case "upload":
		return PendingUpload, true
	case "delete":
		return PendingDelete, true
	}
	return 0, false
}

// bytesField puts s in the plain field when it is valid UTF-8 (JSON would
// otherwise replace the bad bytes) and base64 in the other.
func bytesField(s string) (plain, b64 *string) {
	if utf8.ValidString(s) {
		return &s, nil
	}
	e := base64.StdEncoding.EncodeToString([]byte(s))
	return nil, &e
}

func fromBytesField(plain, b64 *string, what string) (string, error) {
	switch {
	case plain != nil && b64 != nil:
		return "", fmt.Errorf("%w: dump: both %s and %s_b64", ErrCorrupt, what, what)
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return "", fmt.Errorf("%w: dump: %s_b64: %v", ErrCorrupt, what, err)
		}
		return string(b), nil
	case plain != nil:
		return *plain, nil
	}
	return "", nil
}

// DumpWriter writes a dump. The header is written by NewDumpWriter and the
// end record by Close; a dump is complete only once Close returns nil.
type DumpWriter struct {
	w       *bufio.Writer
	enc     *json.Encoder
	records uint64
	err     error
}

// NewDumpWriter starts a dump on w.
func NewDumpWriter(w io.Writer) (*DumpWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	d := &DumpWriter{w: bw, enc: enc}
	if err := d.put(dumpLine{T: "header", Format: DumpFormat, Version: DumpVersion}); err != nil {
		return nil, err
	}
	d.records = 0
	return d, nil
}

func (d *DumpWriter) put(l dumpLine) error {
	if d.err != nil {
		return d.err
	}
	if err := d.enc.Encode(l); err != nil {
		d.err = fmt.Errorf("dump: %w", err)
		return d.err
	}
	d.records++
	return nil
}

// Write adds one record.
func (d *DumpWriter) Write(r DumpRecord) error {
	switch r.Type {
	case RecordCounter:
		v := r.Value
		return d.put(dumpLine{T: "counter", Name: &r.Name, Value: &v})
	case RecordInode:
		a := r.Attr
		l := dumpLine{
			T: "inode", Ino: uint64(a.Ino), Kind: kindNames[a.Kind],
			Mode: a.Mode, Uid: a.Uid, Gid: a.Gid, Nlink: &a.Nlink, Size: a.Size,
			Atime: &a.Atime, Mtime: &a.Mtime, Ctime: &a.Ctime,
			FileID: a.FileID, Append: a.Appender, Gen: a.Gen, Parent: uint64(r.Parent),
			Rdev: a.Rdev,
		}
		if a.Kind == KindSymlink {
			l.Target, l.TgtB64 = bytesField(a.Target)
		}
		return d.put(l)
	case RecordDentry:
		l := dumpLine{T: "dentry", Parent: uint64(r.Parent), Ino: uint64(r.Ino), Kind: kindNames[r.Kind]}
		l.Name, l.NameB64 = bytesField(r.Name)
		return d.put(l)
	case RecordOrphan:
		return d.put(dumpLine{T: "orphan", Ino: uint64(r.Ino)})
	case RecordPending:
		p := r.Pending
		return d.put(dumpLine{T: "pending", FileID: p.FileID, Reason: p.Reason.String(), Session: p.Session, Since: &p.Since})
	case RecordXattr:
		v := base64.StdEncoding.EncodeToString(r.Xattr.Value)
		l := dumpLine{T: "xattr", Ino: uint64(r.Ino), Value64: &v}
		l.Name, l.NameB64 = bytesField(r.Xattr.Name)
		return d.put(l)
	}
	return fmt.Errorf("%w: dump record type %d", ErrInvalid, r.Type)
}

// Close writes the end record and flushes. It does not close the
// underlying writer.
func (d *DumpWriter) Close() error {
	n := d.records
	if err := d.put(dumpLine{T: "end", Records: n}); err != nil {
		return err
	}
	if err := d.w.Flush(); err != nil {
		d.err = fmt.Errorf("dump: %w", err)
	}
	return d.err
}

// DumpReader reads a dump record by record.
type DumpReader struct {
	s       *bufio.Scanner
	line    int
	records uint64
	done    bool
}

// NewDumpReader reads and checks the header. A dump of another format or a
// newer version is refused with ErrCorrupt.
func NewDumpReader(r io.Reader) (*DumpReader, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), maxDumpLine)
	d := &DumpReader{s: s}
	l, err := d.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: dump is empty", ErrCorrupt)
		}
		return nil, err
	}
	if l.T != "header" || l.Format != DumpFormat {
		return nil, fmt.Errorf("%w: not an %s dump", ErrCorrupt, DumpFormat)
	}
	if l.Version < 1 || l.Version > DumpVersion {
		return nil, fmt.Errorf("%w: dump version %d, this build reads %d", ErrCorrupt, l.Version, DumpVersion)
	}
	return d, nil
}

func (d *DumpReader) next() (dumpLine, error) {
	for d.s.Scan() {
		d.line++
		b := bytes.TrimSpace(d.s.Bytes())
		if len(b) == 0 {
			continue
		}
		var l dumpLine
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return dumpLine{}, fmt.Errorf("%w: dump line %d: %v", ErrCorrupt, d.line, err)
		}
		if dec.More() {
			return dumpLine{}, fmt.Errorf("%w: dump line %d: more than one record", ErrCorrupt, d.line)
		}
		return l, nil
	}
	if err := d.s.Err(); err != nil {
		return dumpLine{}, fmt.Errorf("%w: dump line %d: %v", ErrCorrupt, d.line+1, err)
	}
	return dumpLine{}, io.EOF
}

// Next returns the next record, or io.EOF after the end record. A dump that
// stops without its end record, or whose record count disagrees, is
// ErrCorrupt.
func (d *DumpReader) Next() (DumpRecord, error) {
	if d.done {
		return DumpRecord{}, io.EOF
	}
	l, err := d.next()
	if errors.Is(err, io.EOF) {
		return DumpRecord{}, fmt.Errorf("%w: dump truncated after line %d (no end record)", ErrCorrupt, d.line)
	}
	if err != nil {
		return DumpRecord{}, err
	}
	if l.T == "end" {
		if l.Records != d.records {
			return DumpRecord{}, fmt.Errorf("%w: dump has %d records, its end record says %d", ErrCorrupt, d.records, l.Records)
		}
		if _, err := d.next(); !errors.Is(err, io.EOF) {
			return DumpRecord{}, fmt.Errorf("%w: dump line %d: data after the end record", ErrCorrupt, d.line)
		}
		d.done = true
		return DumpRecord{}, io.EOF
	}
	r, err := recordFromLine(l)
	if err != nil {
		return DumpRecord{}, fmt.Errorf("dump line %d: %w", d.line, err)
	}
	d.records++
	return r, nil
}

func recordFromLine(l dumpLine) (DumpRecord, error) {
	bad := func(format string, args ...any) (DumpRecord, error) {
		return DumpRecord{}, corruptf("%s record: "+format, append([]any{l.T}, args...)...)
	}
	switch l.T {
	case "counter":
		if l.Name == nil || *l.Name == "" || l.Value == nil {
			return bad("needs name and value")
		}
		return DumpRecord{Type: RecordCounter, Name: *l.Name, Value: *l.Value}, nil
	case "inode":
		kind, ok := kindFromName(l.Kind)
		if !ok {
			return bad("kind %q", l.Kind)
		}
		if l.Ino == 0 || l.Nlink == nil || l.Atime == nil || l.Mtime == nil || l.Ctime == nil {
			return bad("needs ino, nlink and times")
		}
		target, err := fromBytesField(l.Target, l.TgtB64, "target")
		if err != nil {
			return DumpRecord{}, err
		}
		if l.Mode&^07777 != 0 {
			return bad("mode %#o", l.Mode)
		}
		if kind != KindDir && l.Parent != 0 {
			return bad("a %s has no parent", kind)
		}
		a := Attr{
			Ino: Ino(l.Ino), Kind: kind, Mode: l.Mode, Uid: l.Uid, Gid: l.Gid, Nlink: *l.Nlink,
			Size: l.Size, Atime: *l.Atime, Mtime: *l.Mtime, Ctime: *l.Ctime,
			FileID: l.FileID, Appender: l.Append, Gen: l.Gen, Target: target, Rdev: l.Rdev,
		}
		if l.Rdev != 0 && kind != KindCharDev && kind != KindBlockDev {
			return bad("a %s has no rdev", kind)
		}
		return DumpRecord{Type: RecordInode, Attr: a, Parent: Ino(l.Parent)}, nil
	case "dentry":
		kind, ok := kindFromName(l.Kind)
		if !ok {
			return bad("kind %q", l.Kind)
		}
		name, err := fromBytesField(l.Name, l.NameB64, "name")
		if err != nil {
			return DumpRecord{}, err
		}
		if err := CheckName(name); err != nil {
			return DumpRecord{}, corruptf("dentry record: %v", err)
		}
		if l.Parent == 0 || l.Ino == 0 {
			return bad("needs parent and ino")
		}
		return DumpRecord{Type: RecordDentry, Parent: Ino(l.Parent), Name: name, Ino: Ino(l.Ino), Kind: kind}, nil
	case "orphan":
		if l.Ino == 0 {
			return bad("needs ino")
		}
		return DumpRecord{Type: RecordOrphan, Ino: Ino(l.Ino)}, nil
	case "pending":
		reason, ok := reasonFromName(l.Reason)
		if !ok {
			return bad("reason %q", l.Reason)
		}
		if l.FileID == "" || l.Since == nil {
			return bad("needs file_id and since")
		}
		return DumpRecord{Type: RecordPending, Pending: Pending{FileID: l.FileID, Reason: reason, Session: l.Session, Since: *l.Since}}, nil
	case "xattr":
		name, err := fromBytesField(l.Name, l.NameB64, "name")
		if err != nil {
			return DumpRecord{}, err
		}
		if err := checkXattrName(name); err != nil {
			return DumpRecord{}, corruptf("xattr record: %v", err)
		}
		if l.Ino == 0 || l.Value64 == nil {
			return bad("needs ino and value_b64")
		}
		v, err := base64.StdEncoding.DecodeString(*l.Value64)
		if err != nil {
			return bad("value_b64: %v", err)
		}
		if len(v) > MaxXattrValueLen {
			return bad("value of %d bytes", len(v))
		}
		return DumpRecord{Type: RecordXattr, Ino: Ino(l.Ino), Xattr: Xattr{Name: name, Value: v}}, nil
	}
	return bad("unknown type")
}

// writeXattrs writes one inode's encoded attributes as xattr records.
func writeXattrs(dw *DumpWriter, ino Ino, v []byte) error {
	xs, err := decodeXattrs(ino, v)
	if err != nil {
		return err
	}
	for _, x := range xs {
		if err := dw.Write(DumpRecord{Type: RecordXattr, Ino: ino, Xattr: x}); err != nil {
			return err
		}
	}
	return nil
}

// xattrLoader gathers a dump's xattr records, which may come in any order,
// into one value per inode for Load.
type xattrLoader map[Ino][]Xattr

func (l xattrLoader) add(rec DumpRecord) error {
	xs := l[rec.Ino]
	i, ok := slices.BinarySearchFunc(xs, rec.Xattr.Name, compareXattrName)
	if ok {
		return corruptf("dump: xattr %q of inode %d twice", rec.Xattr.Name, rec.Ino)
	}
	l[rec.Ino] = slices.Insert(xs, i, rec.Xattr)
	if xattrsSize(l[rec.Ino]) > MaxXattrTotal {
		return corruptf("dump: inode %d has more than %d bytes of xattrs", rec.Ino, MaxXattrTotal)
	}
	return nil
}

// each hands over every inode's encoded attributes in inode order.
func (l xattrLoader) each(fn func(ino Ino, v []byte) error) error {
	for _, ino := range slices.Sorted(maps.Keys(l)) {
		if err := fn(ino, encodeXattrs(l[ino])); err != nil {
			return err
		}
	}
	return nil
}
