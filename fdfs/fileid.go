package fdfs

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// The 27 characters after the directories encode 20 bytes in base64 with
// '-' and '_' for 62 and 63 (libfastcommon's base64_init_ex(ctx, 0, '-',
// '_', '.')), without padding.
var fileNameEncoding = base64.RawURLEncoding

// Bits of the 8-byte size field in a name (tracker_types.h, storage_service.c).
const (
	appenderFileSizeFlag = int64(1) << 58 // INFINITE_FILE_SIZE = FDFS_APPENDER_FILE_SIZE
	trunkFileMarkSize    = int64(1) << 59 // FDFS_TRUNK_FILE_MARK_SIZE
	// normalLogicFilenameLen is the length of "M00/00/A0/" + 27 + the
	// formatted extension (7 bytes with or without an extension).
	normalLogicFilenameLen = FdfsLogicFilePathLen + FdfsFilenameBase64Length + FdfsFileExtNameMaxLen + 1
	trunkLogicFilenameLen  = normalLogicFilenameLen + FdfsTrunkFileInfoLen
)

// ErrBadFileID is wrapped by every error about a malformed file ID.
var ErrBadFileID = errors.New("fdfs: malformed file id")

// FileID is a parsed file ID such as "group1/M00/00/A0/fwAAAWsGuzeADm3SAAAAG5tQi30758.txt",
// with what the name itself encodes, decoded the way fdfs_file_info does
// without asking a server.
type FileID struct {
	Group          string
	StorePathIndex int
	Remote         string // "M00/00/A0/...": the filename the storage commands take
	Ext            string // without the dot; "" when there is none

	// SourceIP is the IPv4 address of the storage that created the file, or
	// nil when the name carries a storage server id instead (SourceID).
	SourceIP   net.IP
	SourceID   uint32
	CreateTime time.Time
	// Size and CRC32 are only known for a normal file. For an appender or
	// slave file, Size is -1 and CRC32 is 0: ask the storage (QueryFileInfo).
	Size     int64
	CRC32    uint32
	Appender bool
	Trunk    bool
	Slave    bool
}

// String returns "group/remote".
func (f FileID) String() string { return f.Group + "/" + f.Remote }

func badFileID(id, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrBadFileID, id, fmt.Sprintf(format, args...))
}

// ValidGroupName reports whether name is a legal group name: 1 to 16 ASCII
// letters and digits (fdfs_validate_group_name).
func ValidGroupName(name string) bool {
	if name == "" || len(name) > FdfsGroupNameMaxLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func hexVal(c byte) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c-'A') + 10
}

// ParseFileID splits and decodes a file ID. It checks the group name, the
// "Mxx/XX/XX/" path, the 27 base64 characters and the characters of the rest.
func ParseFileID(id string) (FileID, error) {
	group, remote, ok := strings.Cut(id, "/")
	if !ok {
		return FileID{}, badFileID(id, "no '/' after the group")
	}
	if !ValidGroupName(group) {
		return FileID{}, badFileID(id, "group %q is not 1-16 letters and digits", group)
	}
	f, err := parseRemote(id, remote)
	if err != nil {
		return FileID{}, err
	}
	f.Group = group
	return f, nil
}

// ParseRemoteFilename decodes a remote filename ("M00/...") with no group.
func ParseRemoteFilename(remote string) (FileID, error) {
	return parseRemote(remote, remote)
}

func parseRemote(id, remote string) (FileID, error) {
	if len(remote) < normalLogicFilenameLen {
		return FileID{}, badFileID(id, "remote name is %d bytes, shorter than %d", len(remote), normalLogicFilenameLen)
	}
	if len(remote) > MaxFilenameLen {
		return FileID{}, badFileID(id, "remote name is %d bytes, longer than %d", len(remote), MaxFilenameLen)
	}
	p := remote
	if p[0] != 'M' || !isUpperHex(p[1]) || !isUpperHex(p[2]) || p[3] != '/' ||
		!isUpperHex(p[4]) || !isUpperHex(p[5]) || p[6] != '/' ||
		!isUpperHex(p[7]) || !isUpperHex(p[8]) || p[9] != '/' {
		return FileID{}, badFileID(id, "remote name does not start with Mxx/XX/XX/ in upper-case hex")
	}
	for i := FdfsLogicFilePathLen; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return FileID{}, badFileID(id, "byte %q at %d is not a filename character", c, i)
		}
	}
	encoded := p[FdfsLogicFilePathLen : FdfsLogicFilePathLen+FdfsFilenameBase64Length]
	raw, err := fileNameEncoding.DecodeString(encoded)
	if err != nil || len(raw) != 20 {
		return FileID{}, badFileID(id, "%q is not 20 bytes of base64", encoded)
	}
	f := FileID{
		StorePathIndex: hexVal(p[1])<<4 | hexVal(p[2]),
		Remote:         remote,
	}
	tail := p[FdfsLogicFilePathLen+FdfsFilenameBase64Length:]
	if len(p) == trunkLogicFilenameLen {
		tail = tail[FdfsTrunkFileInfoLen:]
	}
	// The padding digits hold no dot, so in a plain name the extension
	// (which may be "tar.gz") starts after the first one. A slave name adds
	// its prefix before its own extension; the last dot is the best guess.
	i := strings.IndexByte(tail, '.')
	if len(p) > normalLogicFilenameLen && len(p) != trunkLogicFilenameLen {
		i = strings.LastIndexByte(tail, '.')
	}
	if i >= 0 {
		f.Ext = tail[i+1:]
	}
	if len(f.Ext) > FdfsFileExtNameMaxLen {
		return FileID{}, badFileID(id, "extension %q is longer than %d bytes", f.Ext, FdfsFileExtNameMaxLen)
	}

	// The C code stores htonl(id) with int2buff on a little-endian host, so
	// an IPv4 address shows its octets in order and a server id reads
	// little-endian; fdfs_get_server_id_type tells them apart by that value.
	if v := binary.LittleEndian.Uint32(raw[0:4]); v > 0 && v <= FdfsMaxServerID {
		f.SourceID = v
	} else {
		f.SourceIP = net.IPv4(raw[0], raw[1], raw[2], raw[3]).To4()
	}
	f.CreateTime = time.Unix(int64(int32(binary.BigEndian.Uint32(raw[4:8]))), 0)
	size := int64(binary.BigEndian.Uint64(raw[8:16]))
	f.Appender = size&appenderFileSizeFlag != 0
	f.Trunk = size&trunkFileMarkSize != 0
	f.Slave = len(remote) > trunkLogicFilenameLen || len(remote) > normalLogicFilenameLen && !f.Trunk
	switch {
	case f.Appender || f.Slave:
		f.Size = -1
	case size < 0 || f.Trunk:
		// The high half is random (bit 63 set) or carries the trunk mark;
		// the low 32 bits are the size.
		f.Size = size & 0xFFFFFFFF
		f.CRC32 = binary.BigEndian.Uint32(raw[16:20])
	default:
		f.Size = size // 4 GiB or more: stored as is
		f.CRC32 = binary.BigEndian.Uint32(raw[16:20])
	}
	return f, nil
}

// FileExt is the one rule for the extension a file ID keeps of a local
// name, so that nginx serves the file with the right type. It is FastDFS's
// client rule (fdfs_get_file_ext_name in client/client_func.c): the text
// after the last dot when that is at most 6 bytes and holds no '/', widened
// to a two-part extension such as "tar.gz" when that still fits in 6 bytes;
// then held to what a storage accepts (fdfs_validate_filename, which the
// upload commands apply: letters, digits, '-', '_' and '.'). Where the C
// client would send an extension the storage refuses ("a.b~c"), FileExt
// falls back to the last part alone, then to none: the upload succeeds
// without one instead of failing. It returns "" when there is none.
func FileExt(name string) string {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return ""
	}
	ext := name[dot+1:]
	if len(ext) > FdfsFileExtNameMaxLen || strings.ContainsRune(ext, '/') || !ValidExt(ext) {
		return ""
	}
	start := max(dot-(FdfsFileExtNameMaxLen-len(ext))-1, 0)
	for p := dot - 1; p > start; p-- {
		if name[p] == '.' {
			if two := name[p+1:]; ValidExt(two) {
				return two
			}
			break
		}
	}
	return ext
}

// ValidExt reports whether a storage accepts ext in an upload (its
// fdfs_validate_filename): at most 6 bytes of letters, digits, '-', '_' and
// '.'.
func ValidExt(ext string) bool {
	if len(ext) > FdfsFileExtNameMaxLen {
		return false
	}
	for i := 0; i < len(ext); i++ {
		c := ext[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// NameParams are the inputs of GenerateRemoteName.
type NameParams struct {
	StorePathIndex int    // 0..255, the "Mxx" part
	SourceIP       net.IP // IPv4 of the storage that stores the file
	SourceID       uint32 // or its server id (1..2^24-1), used when non-zero
	CreateTime     time.Time
	Size           int64
	Appender       bool
	CRC32          uint32
	Ext            string // without the dot, at most 6 bytes
	// SubdirCountPerPath is the number of directories on each of the two
	// levels (default 256). The directories are picked from a hash of the
	// encoded name, like file_distribute_path_mode = 1.
	SubdirCountPerPath int
	// Rand supplies the random high half of the size field and the padding
	// digits; nil uses the global source.
	Rand *rand.Rand
}

// GenerateRemoteName builds a remote filename ("M00/XX/XX/...") in the same
// format a V6 storage does (storage_gen_filename): the store path, two
// directory levels, 27 base64 characters for source, time, size and crc32,
// random digits that pad the extension to 7 bytes, then ".ext".
func GenerateRemoteName(p NameParams) (string, error) {
	if p.StorePathIndex < 0 || p.StorePathIndex > 255 {
		return "", fmt.Errorf("fdfs: store path index %d out of range", p.StorePathIndex)
	}
	if !ValidExt(p.Ext) {
		return "", fmt.Errorf("fdfs: extension %q is not at most %d filename characters", p.Ext, FdfsFileExtNameMaxLen)
	}
	if p.Size < 0 {
		return "", fmt.Errorf("fdfs: negative file size %d", p.Size)
	}
	intn := rand.IntN
	if p.Rand != nil {
		intn = p.Rand.IntN
	}
	var raw [20]byte
	switch {
	case p.SourceID != 0:
		if p.SourceID > FdfsMaxServerID {
			return "", fmt.Errorf("fdfs: server id %d over %d", p.SourceID, FdfsMaxServerID)
		}
		binary.LittleEndian.PutUint32(raw[0:4], p.SourceID)
	default:
		ip4 := p.SourceIP.To4()
		if ip4 == nil {
			return "", fmt.Errorf("fdfs: source %v is not an IPv4 address", p.SourceIP)
		}
		copy(raw[0:4], ip4)
	}
	binary.BigEndian.PutUint32(raw[4:8], uint32(p.CreateTime.Unix()))
	// COMBINE_RAND_FILE_SIZE: a random high half with bit 63 set over a
	// size below 4 GiB; an appender file keeps only the flag.
	randomHigh := int64(uint32(intn(1<<23))|0x80000000) << 32
	var size int64
	switch {
	case p.Appender:
		size = randomHigh | appenderFileSizeFlag
	case p.Size>>32 != 0:
		size = p.Size
	default:
		size = randomHigh | p.Size
	}
	binary.BigEndian.PutUint64(raw[8:16], uint64(size))
	binary.BigEndian.PutUint32(raw[16:20], p.CRC32)
	encoded := fileNameEncoding.EncodeToString(raw[:])

	subdirs := p.SubdirCountPerPath
	if subdirs <= 0 || subdirs > 256 {
		subdirs = 256
	}
	h := pjwHash(encoded) % (1 << 16)
	high, low := int((h>>8)&0xFF)%subdirs, int(h&0xFF)%subdirs

	var b strings.Builder
	fmt.Fprintf(&b, "M%02X/%02X/%02X/%s", p.StorePathIndex, high, low, encoded)
	pad := FdfsFileExtNameMaxLen - len(p.Ext)
	if p.Ext == "" {
		pad = FdfsFileExtNameMaxLen + 1
	}
	for range pad {
		b.WriteByte(byte('0' + intn(10)))
	}
	if p.Ext != "" {
		b.WriteByte('.')
		b.WriteString(p.Ext)
	}
	return b.String(), nil
}

// SlaveRemoteName returns the name a storage gives a slave file
// (fdfs_gen_slave_filename with the extension from the request): the
// master's remote name without its extension, then prefix, then ".ext" (no
// extension when ext is "").
func SlaveRemoteName(master, prefix, ext string) (string, error) {
	if len(master) < 4+28+FdfsFileExtNameMaxLen || master[0] != 'M' || master[3] != '/' {
		return "", fmt.Errorf("fdfs: master filename %q is invalid", master)
	}
	tail := master[len(master)-(FdfsFileExtNameMaxLen+1):]
	base, masterExt := master, ""
	if i := strings.IndexByte(tail, '.'); i >= 0 {
		cut := len(master) - len(tail) + i
		base, masterExt = master[:cut], master[cut:]
	}
	trueExt := ""
	if ext != "" {
		trueExt = "." + strings.TrimPrefix(ext, ".")
	}
	if trueExt == "" && prefix == "-m" {
		return "", errors.New(`fdfs: prefix "-m" without an extension names the metadata file`)
	}
	if prefix == "" && trueExt == masterExt {
		return "", errors.New("fdfs: a slave file with an empty prefix needs an extension other than the master's")
	}
	return base + prefix + trueExt, nil
}

// pjwHash is the classic PJW (ELF) string hash, as libfastcommon's PJWHash.
func pjwHash(s string) uint32 {
	var h uint32
	for i := 0; i < len(s); i++ {
		h = h<<4 + uint32(s[i])
		if g := h & 0xF0000000; g != 0 {
			h ^= g >> 24
			h &^= g
		}
	}
	return h
}

// Describe says in one line what the name itself carries, as fdfs_file_info
// prints it without asking a server.
func (f FileID) Describe() string {
	var b strings.Builder
	if f.SourceIP != nil {
		fmt.Fprintf(&b, "source_ip=%s", f.SourceIP)
	} else {
		fmt.Fprintf(&b, "source_id=%d", f.SourceID)
	}
	fmt.Fprintf(&b, " created=%s", f.CreateTime.UTC().Format(time.RFC3339))
	switch {
	case f.Appender:
		b.WriteString(" appender (size and crc32 only known to the storage)")
	case f.Slave:
		b.WriteString(" slave (size and crc32 only known to the storage)")
	default:
		fmt.Fprintf(&b, " size=%d crc32=%08x", f.Size, f.CRC32)
	}
	if f.Trunk {
		b.WriteString(" trunk")
	}
	return b.String()
}
