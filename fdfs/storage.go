package fdfs

import (
	"bytes"
	"encoding/binary"
	"sort"
	"time"
)

// MaxFilenameLen bounds a remote filename inside a request. Upstream clients
// and servers keep filenames in 128-byte buffers.
const MaxFilenameLen = 128

func checkFilenameLen(n int64) error {
	if n <= 0 || n > MaxFilenameLen {
		return protocolErrorf("filename length %d out of range 1..%d", n, MaxFilenameLen)
	}
	return nil
}

func checkSize(what string, n int64) error {
	if n < 0 {
		return protocolErrorf("negative %s %d", what, n)
	}
	return nil
}

// Fixed parts of the requests that carry file content. The server reads this
// many bytes first, then asks PrefixLen how long the whole prefix is.
const (
	UploadFileRequestLen           = 1 + 8 + FdfsFileExtNameMaxLen
	UploadSlaveFileRequestFixedLen = 8 + 8 + FdfsFilePrefixMaxLen + FdfsFileExtNameMaxLen
	AppendFileRequestFixedLen      = 8 + 8
	ModifyFileRequestFixedLen      = 8 + 8 + 8
)

// FixedPrefixLen returns how many bytes a server reads before it can tell the
// length of the prefix of a content-carrying request, or 0 for commands that
// carry no content.
func FixedPrefixLen(cmd byte) int {
	switch cmd {
	case StorageProtoCmdUploadFile, StorageProtoCmdUploadAppenderFile:
		return UploadFileRequestLen
	case StorageProtoCmdUploadSlaveFile:
		return UploadSlaveFileRequestFixedLen
	case StorageProtoCmdAppendFile:
		return AppendFileRequestFixedLen
	case StorageProtoCmdModifyFile:
		return ModifyFileRequestFixedLen
	}
	return 0
}

// PrefixLen returns the length of the whole prefix (everything before the
// content) given its first FixedPrefixLen(cmd) bytes.
func PrefixLen(cmd byte, fixed []byte) (int, error) {
	n := FixedPrefixLen(cmd)
	if n == 0 {
		return 0, protocolErrorf("%s carries no file content", CmdName(cmd))
	}
	if len(fixed) < n {
		return 0, protocolErrorf("%s prefix is %d bytes, want at least %d", CmdName(cmd), len(fixed), n)
	}
	if cmd == StorageProtoCmdUploadFile || cmd == StorageProtoCmdUploadAppenderFile {
		return n, nil
	}
	nameLen := getInt64(fixed)
	if err := checkFilenameLen(nameLen); err != nil {
		return 0, err
	}
	return n + int(nameLen), nil
}

// UploadFileRequest is the prefix of UPLOAD_FILE (11) and
// UPLOAD_APPENDER_FILE (23): store path index (1), file size (8), extension
// (6, NUL padded). FileSize bytes of content follow it.
type UploadFileRequest struct {
	StorePathIndex byte
	FileSize       int64
	Ext            string // without the dot, at most 6 bytes
}

// PrefixLen is the length of the encoded prefix.
func (m UploadFileRequest) PrefixLen() int { return UploadFileRequestLen }

func (m UploadFileRequest) Append(b []byte) []byte {
	b = append(b, m.StorePathIndex)
	b = appendInt64(b, m.FileSize)
	return appendFixed(b, m.Ext, FdfsFileExtNameMaxLen)
}

func DecodeUploadFileRequest(prefix []byte) (UploadFileRequest, error) {
	r := reader{b: prefix}
	m := UploadFileRequest{StorePathIndex: r.byte(), FileSize: r.int64(), Ext: r.str(FdfsFileExtNameMaxLen)}
	if err := r.done(); err != nil {
		return UploadFileRequest{}, err
	}
	return m, checkSize("file size", m.FileSize)
}

// UploadSlaveFileRequest is the prefix of UPLOAD_SLAVE_FILE (21): master
// filename length (8), file size (8), prefix name (16), extension (6), the
// master filename; FileSize bytes of content follow it.
type UploadSlaveFileRequest struct {
	MasterFilename string // "M00/..." without the group
	FileSize       int64
	PrefixName     string // e.g. "_big", at most 16 bytes
	Ext            string
}

func (m UploadSlaveFileRequest) PrefixLen() int {
	return UploadSlaveFileRequestFixedLen + len(m.MasterFilename)
}

func (m UploadSlaveFileRequest) Append(b []byte) []byte {
	b = appendInt64(b, int64(len(m.MasterFilename)))
	b = appendInt64(b, m.FileSize)
	b = appendFixed(b, m.PrefixName, FdfsFilePrefixMaxLen)
	b = appendFixed(b, m.Ext, FdfsFileExtNameMaxLen)
	return append(b, m.MasterFilename...)
}

func DecodeUploadSlaveFileRequest(prefix []byte) (UploadSlaveFileRequest, error) {
	r := reader{b: prefix}
	nameLen := r.int64()
	m := UploadSlaveFileRequest{FileSize: r.int64(), PrefixName: r.str(FdfsFilePrefixMaxLen), Ext: r.str(FdfsFileExtNameMaxLen)}
	if r.err == nil {
		r.err = checkFilenameLen(nameLen)
	}
	if r.err == nil {
		m.MasterFilename = string(r.take(int(nameLen)))
	}
	if err := r.done(); err != nil {
		return UploadSlaveFileRequest{}, err
	}
	return m, checkSize("file size", m.FileSize)
}

// AppendFileRequest is the prefix of APPEND_FILE (24): filename length (8),
// append size (8), the appender filename; Size bytes of content follow it.
type AppendFileRequest struct {
	Filename string
	Size     int64
}

func (m AppendFileRequest) PrefixLen() int { return AppendFileRequestFixedLen + len(m.Filename) }

func (m AppendFileRequest) Append(b []byte) []byte {
	b = appendInt64(b, int64(len(m.Filename)))
	b = appendInt64(b, m.Size)
	return append(b, m.Filename...)
}

func DecodeAppendFileRequest(prefix []byte) (AppendFileRequest, error) {
	r := reader{b: prefix}
	nameLen := r.int64()
	m := AppendFileRequest{Size: r.int64()}
	if r.err == nil {
		r.err = checkFilenameLen(nameLen)
	}
	if r.err == nil {
		m.Filename = string(r.take(int(nameLen)))
	}
	if err := r.done(); err != nil {
		return AppendFileRequest{}, err
	}
	return m, checkSize("append size", m.Size)
}

// ModifyFileRequest is the prefix of MODIFY_FILE (34): filename length (8),
// offset (8), size (8), the appender filename; Size bytes of content follow.
type ModifyFileRequest struct {
	Filename string
	Offset   int64
	Size     int64
}

func (m ModifyFileRequest) PrefixLen() int { return ModifyFileRequestFixedLen + len(m.Filename) }

func (m ModifyFileRequest) Append(b []byte) []byte {
	b = appendInt64(b, int64(len(m.Filename)))
	b = appendInt64(b, m.Offset)
	b = appendInt64(b, m.Size)
	return append(b, m.Filename...)
}

func DecodeModifyFileRequest(prefix []byte) (ModifyFileRequest, error) {
	r := reader{b: prefix}
	nameLen := r.int64()
	m := ModifyFileRequest{Offset: r.int64(), Size: r.int64()}
	if r.err == nil {
		r.err = checkFilenameLen(nameLen)
	}
	if r.err == nil {
		m.Filename = string(r.take(int(nameLen)))
	}
	if err := r.done(); err != nil {
		return ModifyFileRequest{}, err
	}
	if err := checkSize("offset", m.Offset); err != nil {
		return ModifyFileRequest{}, err
	}
	return m, checkSize("modify size", m.Size)
}

// TruncateFileRequest is the body of TRUNCATE_FILE (36): filename length (8),
// new size (8), the appender filename.
type TruncateFileRequest struct {
	Filename string
	Size     int64
}

func (m TruncateFileRequest) Append(b []byte) []byte {
	b = appendInt64(b, int64(len(m.Filename)))
	b = appendInt64(b, m.Size)
	return append(b, m.Filename...)
}

func DecodeTruncateFileRequest(body []byte) (TruncateFileRequest, error) {
	r := reader{b: body}
	nameLen := r.int64()
	m := TruncateFileRequest{Size: r.int64()}
	if r.err == nil {
		r.err = checkFilenameLen(nameLen)
	}
	if r.err == nil {
		m.Filename = string(r.take(int(nameLen)))
	}
	if err := r.done(); err != nil {
		return TruncateFileRequest{}, err
	}
	return m, checkSize("truncate size", m.Size)
}

// DownloadFileRequest is the body of DOWNLOAD_FILE (14): offset (8), byte
// count (8, 0 = to the end), group (16), filename. The response body is the
// raw bytes.
type DownloadFileRequest struct {
	Offset   int64
	Length   int64
	Group    string
	Filename string
}

func (m DownloadFileRequest) Append(b []byte) []byte {
	b = appendInt64(b, m.Offset)
	b = appendInt64(b, m.Length)
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	return append(b, m.Filename...)
}

func DecodeDownloadFileRequest(body []byte) (DownloadFileRequest, error) {
	if len(body) <= 16+FdfsGroupNameMaxLen || len(body) > 16+FdfsGroupNameMaxLen+MaxFilenameLen {
		return DownloadFileRequest{}, protocolErrorf("download request is %d bytes", len(body))
	}
	r := reader{b: body}
	m := DownloadFileRequest{Offset: r.int64(), Length: r.int64(), Group: r.str(FdfsGroupNameMaxLen)}
	m.Filename = string(r.rest())
	if err := r.done(); err != nil {
		return DownloadFileRequest{}, err
	}
	if err := checkSize("offset", m.Offset); err != nil {
		return DownloadFileRequest{}, err
	}
	return m, checkSize("download length", m.Length)
}

// MetaEntry is one metadata name and value.
type MetaEntry struct {
	Name  string
	Value string
}

// MetaFromMap returns the entries of m sorted by name, the order the storage
// keeps them in.
func MetaFromMap(m map[string]string) []MetaEntry {
	out := make([]MetaEntry, 0, len(m))
	for k, v := range m {
		out = append(out, MetaEntry{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// MetaToMap turns entries into a map; a later entry wins over an earlier one.
func MetaToMap(entries []MetaEntry) map[string]string {
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[e.Name] = e.Value
	}
	return m
}

// AppendMetadata encodes entries in the order given: name 0x02 value,
// records separated by 0x01. Use MetaFromMap for the sorted order.
func AppendMetadata(b []byte, entries []MetaEntry) []byte {
	for i, e := range entries {
		if i > 0 {
			b = append(b, FdfsRecordSeparator)
		}
		b = append(b, e.Name...)
		b = append(b, FdfsFieldSeparator)
		b = append(b, e.Value...)
	}
	return b
}

// DecodeMetadata splits a metadata body (the GET_METADATA response, or the
// tail of SET_METADATA) into entries in wire order. As in the C code, a
// record without a field separator is skipped and everything after a NUL is
// ignored.
func DecodeMetadata(body []byte) ([]MetaEntry, error) {
	if i := bytes.IndexByte(body, 0); i >= 0 {
		body = body[:i]
	}
	if len(body) == 0 {
		return nil, nil
	}
	var out []MetaEntry
	for rec := range bytes.SplitSeq(body, []byte{FdfsRecordSeparator}) {
		name, value, ok := bytes.Cut(rec, []byte{FdfsFieldSeparator})
		if !ok {
			continue
		}
		out = append(out, MetaEntry{Name: string(name), Value: string(value)})
	}
	return out, nil
}

// SetMetadataRequest is the body of SET_METADATA (13): filename length (8),
// metadata length (8), flag (1, 'O' overwrite or 'M' merge), group (16),
// filename, metadata.
type SetMetadataRequest struct {
	Flag     byte
	Group    string
	Filename string
	Meta     []MetaEntry
}

func (m SetMetadataRequest) Append(b []byte) []byte {
	b = appendInt64(b, int64(len(m.Filename)))
	lenAt := len(b)
	b = appendInt64(b, 0)
	b = append(b, m.Flag)
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	b = append(b, m.Filename...)
	metaAt := len(b)
	b = AppendMetadata(b, m.Meta)
	binary.BigEndian.PutUint64(b[lenAt:], uint64(len(b)-metaAt))
	return b
}

func DecodeSetMetadataRequest(body []byte) (SetMetadataRequest, error) {
	r := reader{b: body}
	nameLen := r.int64()
	metaLen := r.int64()
	m := SetMetadataRequest{Flag: r.byte(), Group: r.str(FdfsGroupNameMaxLen)}
	if r.err == nil {
		r.err = checkFilenameLen(nameLen)
	}
	if r.err == nil && (metaLen < 0 || metaLen != int64(r.remaining())-nameLen) {
		r.err = protocolErrorf("metadata length %d does not match the %d bytes after the filename", metaLen, int64(r.remaining())-nameLen)
	}
	if r.err == nil {
		m.Filename = string(r.take(int(nameLen)))
		m.Meta, r.err = DecodeMetadata(r.rest())
	}
	if err := r.done(); err != nil {
		return SetMetadataRequest{}, err
	}
	if m.Flag != MetaOverwrite && m.Flag != MetaMerge {
		return SetMetadataRequest{}, protocolErrorf("set metadata flag %q is neither 'O' nor 'M'", m.Flag)
	}
	return m, nil
}

// RegenerateAppenderFilenameRequest is the body of
// REGENERATE_APPENDER_FILENAME (38): the appender filename alone, no group.
type RegenerateAppenderFilenameRequest struct {
	Filename string
}

func (m RegenerateAppenderFilenameRequest) Append(b []byte) []byte {
	return append(b, m.Filename...)
}

func DecodeRegenerateAppenderFilenameRequest(body []byte) (RegenerateAppenderFilenameRequest, error) {
	if err := checkFilenameLen(int64(len(body))); err != nil {
		return RegenerateAppenderFilenameRequest{}, err
	}
	return RegenerateAppenderFilenameRequest{Filename: string(body)}, nil
}

// FileIDResponse answers the commands that create a name: UPLOAD_FILE (11),
// UPLOAD_SLAVE_FILE (21), UPLOAD_APPENDER_FILE (23) and
// REGENERATE_APPENDER_FILENAME (38): group (16) and the new filename.
type FileIDResponse struct {
	Group    string
	Filename string
}

// FileID returns "group/filename".
func (m FileIDResponse) FileID() string { return m.Group + "/" + m.Filename }

func (m FileIDResponse) Append(b []byte) []byte {
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	return append(b, m.Filename...)
}

func DecodeFileIDResponse(body []byte) (FileIDResponse, error) {
	if len(body) <= FdfsGroupNameMaxLen || len(body) > FdfsGroupNameMaxLen+MaxFilenameLen {
		return FileIDResponse{}, protocolErrorf("file id response is %d bytes", len(body))
	}
	m := FileIDResponse{Group: cString(body[:FdfsGroupNameMaxLen]), Filename: string(body[FdfsGroupNameMaxLen:])}
	if m.Group == "" {
		return FileIDResponse{}, protocolErrorf("file id response has an empty group")
	}
	return m, nil
}

// QueryFileInfoResponse answers QUERY_FILE_INFO (22): file size (8), create
// timestamp (8), crc32 (8), source IP (16 or 46, NUL terminated) = 40 or 70
// bytes.
type QueryFileInfoResponse struct {
	FileSize        int64
	CreateTimestamp int64
	CRC32           int64
	SourceIP        string
	IPSize          int // IPv4AddressSize (also for 0) or IPv6AddressSize
}

func (m QueryFileInfoResponse) Append(b []byte) []byte {
	b = appendInt64(b, m.FileSize)
	b = appendInt64(b, m.CreateTimestamp)
	b = appendInt64(b, m.CRC32)
	size := IPv4AddressSize
	if m.IPSize == IPv6AddressSize {
		size = IPv6AddressSize
	}
	return appendFixed(b, m.SourceIP, size)
}

func DecodeQueryFileInfoResponse(body []byte) (QueryFileInfoResponse, error) {
	var ipSize int
	switch len(body) {
	case 24 + IPv4AddressSize:
		ipSize = IPv4AddressSize
	case 24 + IPv6AddressSize:
		ipSize = IPv6AddressSize
	default:
		return QueryFileInfoResponse{}, protocolErrorf("query file info response is %d bytes, want 40 or 70", len(body))
	}
	r := reader{b: body}
	m := QueryFileInfoResponse{FileSize: r.int64(), CreateTimestamp: r.int64(), CRC32: r.int64(), SourceIP: r.str(ipSize), IPSize: ipSize}
	if err := r.done(); err != nil {
		return QueryFileInfoResponse{}, err
	}
	return m, checkSize("file size", m.FileSize)
}

// CreateTime returns the creation timestamp as a time.
func (m QueryFileInfoResponse) CreateTime() time.Time { return time.Unix(m.CreateTimestamp, 0) }
