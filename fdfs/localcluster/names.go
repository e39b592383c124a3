package localcluster

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"fdfsfs/fdfs"
)

// nameInfo is what a storage reads back from one of its file names.
type nameInfo struct {
	sourceIP string
	crc32    uint32
	appender bool
	slave    bool
}

func decodeName(remote string) (nameInfo, error) {
	f, err := fdfs.ParseRemoteFilename(remote)
	if err != nil {
		return nameInfo{}, syscall.EINVAL
	}
	// The CRC32 of appender and slave names is left zero: the storage
	// computes it from the content instead.
	info := nameInfo{crc32: f.CRC32, appender: f.Appender, slave: f.Slave}
	if f.SourceIP != nil {
		info.sourceIP = f.SourceIP.String()
	} else {
		// A server id: upstream reports the address the id maps to.
		info.sourceIP = storageIP
	}
	return info, nil
}

// formattedExtLen is the tail after the 27 base64 characters: random digits
// that pad the extension to 6 bytes, then ".ext" (7 digits without one).
const formattedExtLen = fdfs.FdfsFileExtNameMaxLen + 1

// newRemoteName builds a name in the real format with fdfs.GenerateRemoteName,
// then puts in the round-robin sub-directories a V6 storage uses by default
// (file_distribute_path_mode = 0; GenerateRemoteName hashes instead) and,
// when formattedExt is not empty, the digits-and-extension tail of an old
// name (regenerate keeps it). size < 0 marks an appender file. A non-zero
// serverID goes into the name instead of the storage's address.
func newRemoteName(serverID uint32, high, low int, t time.Time, size int64, crc uint32, ext, formattedExt string) (string, error) {
	name, err := fdfs.GenerateRemoteName(fdfs.NameParams{
		StorePathIndex: 0,
		SourceIP:       net.ParseIP(storageIP),
		SourceID:       serverID,
		CreateTime:     t,
		Size:           max(size, 0),
		Appender:       size < 0,
		CRC32:          crc,
		Ext:            ext,
	})
	if err != nil {
		return "", syscall.EINVAL
	}
	b := []byte(name)
	copy(b[4:6], fmt.Sprintf("%02X", high))
	copy(b[7:9], fmt.Sprintf("%02X", low))
	if formattedExt != "" {
		b = append(b[:logicPathLen+fdfs.FdfsFilenameBase64Length], formattedExt...)
	}
	return string(b), nil
}

// splitForRegenerate returns the sub-directories and the formatted
// extension of a name, which a regenerated name keeps.
func splitForRegenerate(remote string) (high, low int, formattedExt string) {
	high = hexByte(remote[4], remote[5])
	low = hexByte(remote[7], remote[8])
	return high, low, remote[len(remote)-formattedExtLen:]
}

func hexByte(a, b byte) int { return hexDigit(a)<<4 | hexDigit(b) }

func hexDigit(c byte) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c-'A') + 10
}
