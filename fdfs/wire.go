package fdfs

import (
	"bytes"
	"encoding/binary"
)

// appendFixed appends s cut or NUL-padded to exactly n bytes, the way the C
// code fills its char arrays.
func appendFixed(b []byte, s string, n int) []byte {
	if len(s) > n {
		s = s[:n]
	}
	b = append(b, s...)
	for i := len(s); i < n; i++ {
		b = append(b, 0)
	}
	return b
}

func appendInt64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendInt32(b []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(b, uint32(v))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// cString returns the bytes of a fixed field up to its first NUL. Servers
// leave stale memory after the NUL, so nothing past it is meaningful.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func getInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
func getInt32(b []byte) int32 { return int32(binary.BigEndian.Uint32(b)) }

var zeroField [512]byte

// reader walks a body whose total length the caller has already checked, or
// records the first shortfall. Decoders check r.err once at the end, so a
// short body can never index out of range.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err == nil && (n < 0 || len(r.b)-r.off < n) {
		r.err = protocolErrorf("body too short: need %d bytes at offset %d of %d", n, r.off, len(r.b))
	}
	if r.err != nil {
		// Fixed-width reads still get zeros to decode; long ones get nothing.
		if n >= 0 && n <= len(zeroField) {
			return zeroField[:n]
		}
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) int64() int64     { return getInt64(r.take(8)) }
func (r *reader) int32() int32     { return getInt32(r.take(4)) }
func (r *reader) byte() byte       { return r.take(1)[0] }
func (r *reader) str(n int) string { return cString(r.take(n)) }
func (r *reader) rest() []byte     { p := r.take(len(r.b) - r.off); return p }
func (r *reader) remaining() int   { return len(r.b) - r.off }
func (r *reader) bool() bool       { return r.byte() != 0 }

// done reports the first error, or one for bytes left over.
func (r *reader) done() error {
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.b) {
		return protocolErrorf("%d unexpected trailing bytes", len(r.b)-r.off)
	}
	return nil
}
