package fdfs

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// FETCH_ONE_PATH_BINLOG (26) is how a storage rebuilding a lost disk learns
// from a peer which files one store path holds (storage_do_fetch_binlog in
// storage/storage_disk_recovery.c; the server side is
// storage_server_fetch_one_path_binlog in storage/storage_service.c). It is
// the only way over the network to list what a group holds.
//
// Request body: group name (16, NUL padded), store path index (1). A group
// that is not the storage's or an index past its store_path_count is status
// 22 (EINVAL) with no body. Otherwise the header announces
// InfiniteFileSize, the body is one line per file that still exists on that
// store path, in binlog order, then 8 bytes (big-endian) giving the length
// of the lines before them, and the storage closes the connection:
//
//	<create time> C|c <remote filename>\n
//	<create time> L|l <remote filename> M<xx>/<target's path below the store path>\n
//
// C is a file created at this storage (its source), c one it holds as a
// replica; L and l are the same for symbolic links (CREATE_LINK), with the
// file they point to. Renames (REGENERATE_APPENDER_FILENAME) are sent as
// creates under the new name, and a deleted file is left out.

// InfiniteFileSize is the body length a server announces for a stream whose
// length it does not know in advance (INFINITE_FILE_SIZE).
const InfiniteFileSize = int64(1) << 58

// Operation letters of the binlog lines (storage/storage_sync.h) that
// FETCH_ONE_PATH_BINLOG sends.
const (
	StorageOpTypeSourceCreateFile  byte = 'C'
	StorageOpTypeReplicaCreateFile byte = 'c'
	StorageOpTypeSourceCreateLink  byte = 'L'
	StorageOpTypeReplicaCreateLink byte = 'l'
)

// FetchOnePathBinlogRequestLen is the body length the storage insists on.
const FetchOnePathBinlogRequestLen = FdfsGroupNameMaxLen + 1

// FetchOnePathBinlogRequest is the body of FETCH_ONE_PATH_BINLOG (26).
type FetchOnePathBinlogRequest struct {
	Group          string
	StorePathIndex byte
}

func (m FetchOnePathBinlogRequest) Append(b []byte) []byte {
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	return append(b, m.StorePathIndex)
}

func DecodeFetchOnePathBinlogRequest(body []byte) (FetchOnePathBinlogRequest, error) {
	r := reader{b: body}
	m := FetchOnePathBinlogRequest{Group: r.str(FdfsGroupNameMaxLen), StorePathIndex: r.byte()}
	return m, r.done()
}

// BinlogLine is one line of a FETCH_ONE_PATH_BINLOG stream.
type BinlogLine struct {
	Timestamp int64  // the binlog record's time: when the file was created (or renamed) there
	Op        byte   // StorageOpType*
	Filename  string // "M00/00/0A/..." as the storage commands take it
	// Target is the file a link points to ("M00/..."); "" for a file.
	Target string
}

// IsLink reports whether the line is a symbolic link (L or l).
func (l BinlogLine) IsLink() bool {
	return l.Op == StorageOpTypeSourceCreateLink || l.Op == StorageOpTypeReplicaCreateLink
}

// IsSource reports whether the storage that sent the line created the
// file (C or L) rather than holding a replica (c or l).
func (l BinlogLine) IsSource() bool {
	return l.Op == StorageOpTypeSourceCreateFile || l.Op == StorageOpTypeSourceCreateLink
}

// Append appends the line and its '\n', as the storage writes it.
func (l BinlogLine) Append(b []byte) []byte {
	b = strconv.AppendInt(b, l.Timestamp, 10)
	b = append(b, ' ', l.Op, ' ')
	b = append(b, l.Filename...)
	if l.IsLink() {
		b = append(b, ' ')
		b = append(b, l.Target...)
	}
	return append(b, '\n')
}

// maxBinlogLine bounds one line without its '\n': a 20-digit time, the
// operation, two names of at most MaxFilenameLen and three spaces fit well
// within it.
const maxBinlogLine = 512

// DecodeBinlogLine decodes one line without its '\n'. Each name must be a
// well-formed remote filename.
func DecodeBinlogLine(line []byte) (BinlogLine, error) {
	if len(line) > maxBinlogLine {
		return BinlogLine{}, protocolErrorf("binlog line of %d bytes, over %d", len(line), maxBinlogLine)
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 19 {
		return BinlogLine{}, protocolErrorf("binlog line %q: no timestamp", line)
	}
	var ts int64
	for _, c := range line[:sp] {
		if c < '0' || c > '9' {
			return BinlogLine{}, protocolErrorf("binlog line %q: timestamp is not decimal", line)
		}
		ts = ts*10 + int64(c-'0')
	}
	rest := line[sp+1:]
	if len(rest) < 3 || rest[1] != ' ' {
		return BinlogLine{}, protocolErrorf("binlog line %q: no operation", line)
	}
	l := BinlogLine{Timestamp: ts, Op: rest[0]}
	names := rest[2:]
	switch l.Op {
	case StorageOpTypeSourceCreateFile, StorageOpTypeReplicaCreateFile:
		l.Filename = string(names)
	case StorageOpTypeSourceCreateLink, StorageOpTypeReplicaCreateLink:
		i := bytes.IndexByte(names, ' ')
		if i < 0 {
			return BinlogLine{}, protocolErrorf("binlog line %q: a link without its target", line)
		}
		l.Filename, l.Target = string(names[:i]), string(names[i+1:])
		if _, err := ParseRemoteFilename(l.Target); err != nil {
			return BinlogLine{}, protocolErrorf("binlog line %q: link target: %v", line, err)
		}
	default:
		return BinlogLine{}, protocolErrorf("binlog line %q: operation %q is none of C, c, L, l", line, l.Op)
	}
	if _, err := ParseRemoteFilename(l.Filename); err != nil {
		return BinlogLine{}, protocolErrorf("binlog line %q: %v", line, err)
	}
	return l, nil
}

// BinlogReader decodes a FETCH_ONE_PATH_BINLOG body as it arrives, in a
// buffer of fixed size however long the stream is. The last 8 bytes are the
// length of the lines before them, so a line is only handed over once 8 more
// bytes have arrived after it.
type BinlogReader struct {
	r          io.Reader
	buf        []byte
	start, end int   // the bytes of buf not yet decoded
	count      int64 // bytes of the lines handed over, '\n' included
	eof        bool
	err        error // sticky
}

// NewBinlogReader reads a stream body from r (everything after the header,
// up to the end of the connection).
func NewBinlogReader(r io.Reader) *BinlogReader {
	return &BinlogReader{r: r, buf: make([]byte, 64<<10)}
}

// Next returns the next line. At the end of a stream whose trailer matches
// it returns io.EOF. A stream that ends early is an error wrapping
// io.ErrUnexpectedEOF; a malformed one wraps ErrProtocol. Errors are sticky.
func (br *BinlogReader) Next() (BinlogLine, error) {
	if br.err != nil {
		return BinlogLine{}, br.err
	}
	l, err := br.next()
	if err != nil {
		br.err = err
	}
	return l, err
}

// Bytes returns how many bytes of lines have been handed over, '\n' included.
func (br *BinlogReader) Bytes() int64 { return br.count }

func (br *BinlogReader) next() (BinlogLine, error) {
	for {
		pending := br.buf[br.start:br.end]
		i := bytes.IndexByte(pending, '\n')
		if i > maxBinlogLine || i < 0 && len(pending) > maxBinlogLine+FdfsProtoPkgLenSize {
			return BinlogLine{}, protocolErrorf("binlog line longer than %d bytes at stream offset %d", maxBinlogLine, br.count)
		}
		if i >= 0 && len(pending)-(i+1) >= FdfsProtoPkgLenSize {
			line := pending[:i]
			br.start += i + 1
			br.count += int64(i + 1)
			return DecodeBinlogLine(line)
		}
		if br.eof {
			return BinlogLine{}, br.finish(pending)
		}
		if err := br.fill(); err != nil {
			return BinlogLine{}, err
		}
	}
}

// finish checks what is left at the end of the stream: exactly the 8-byte
// length, equal to the bytes of the lines.
func (br *BinlogReader) finish(rest []byte) error {
	switch {
	case len(rest) < FdfsProtoPkgLenSize:
		return fmt.Errorf("fdfs: binlog stream ended after %d bytes, without its length trailer: %w", br.count+int64(len(rest)), io.ErrUnexpectedEOF)
	case len(rest) > FdfsProtoPkgLenSize:
		return fmt.Errorf("fdfs: binlog stream ended inside a line after %d bytes: %w", br.count+int64(len(rest)), io.ErrUnexpectedEOF)
	}
	if n := getInt64(rest); n != br.count {
		return protocolErrorf("binlog stream trailer says %d bytes, %d arrived", n, br.count)
	}
	return io.EOF
}

// fill reads more of the stream, moving the undecoded bytes to the front
// first when the buffer is full.
func (br *BinlogReader) fill() error {
	if br.end == len(br.buf) {
		n := copy(br.buf, br.buf[br.start:br.end])
		br.start, br.end = 0, n
	}
	n, err := br.r.Read(br.buf[br.end:])
	br.end += n
	switch {
	case err == io.EOF:
		br.eof = true
	case err != nil:
		return err
	case n == 0:
		// A reader that returns nothing and no error: try again.
	}
	return nil
}
