package fdfs

import (
	"encoding/binary"
	"fmt"
	"io"
)

// HeaderSize is the size of the header that starts every request and every
// response: the body length (8 bytes, big-endian), the command and the status.
const HeaderSize = 10

// Header is the fixed part of a frame. Length counts the body only.
type Header struct {
	Length int64
	Cmd    byte
	Status byte
}

// Append appends the 10 header bytes to b.
func (h Header) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(h.Length))
	return append(b, h.Cmd, h.Status)
}

// DecodeHeader decodes the first 10 bytes of b. It refuses a negative length.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, protocolErrorf("header is %d bytes, want %d", len(b), HeaderSize)
	}
	h := Header{
		Length: int64(binary.BigEndian.Uint64(b)),
		Cmd:    b[8],
		Status: b[9],
	}
	if h.Length < 0 {
		return Header{}, protocolErrorf("negative body length %d", h.Length)
	}
	return h, nil
}

// ReadHeader reads one header from r and refuses a body longer than maxBody
// before anyone allocates room for it. A short read is returned as is
// (io.EOF, io.ErrUnexpectedEOF or the network error).
func ReadHeader(r io.Reader, maxBody int64) (Header, error) {
	var buf [HeaderSize]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return Header{}, err
	}
	h, err := DecodeHeader(buf[:])
	if err != nil {
		return Header{}, err
	}
	if h.Length > maxBody {
		return Header{}, protocolErrorf("body length %d over the limit of %d (cmd %d)", h.Length, maxBody, h.Cmd)
	}
	return h, nil
}

// String formats the header the way the fixtures' comments do.
func (h Header) String() string {
	return fmt.Sprintf("pkg_len=%d cmd=%d status=%d", h.Length, h.Cmd, h.Status)
}
