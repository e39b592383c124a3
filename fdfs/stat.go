package fdfs

import (
	"fmt"
	"strconv"
	"strings"
)

// Storage status values (FDFS_STORAGE_STATUS_*), in the order upstream
// relies on.
const (
	FdfsStorageStatusInit      = 0
	FdfsStorageStatusWaitSync  = 1
	FdfsStorageStatusSyncing   = 2
	FdfsStorageStatusIPChanged = 3
	FdfsStorageStatusDeleted   = 4
	FdfsStorageStatusOffline   = 5
	FdfsStorageStatusOnline    = 6
	FdfsStorageStatusActive    = 7
	FdfsStorageStatusRecovery  = 9
	FdfsStorageStatusNone      = 99
)

// StatLayout is one byte layout of the TrackerGroupStat and
// TrackerStorageStat records that LIST_ONE_GROUP, LIST_ALL_GROUPS and
// LIST_STORAGE return. The records changed size several times between
// releases; every member is a char array, so there is never padding.
type StatLayout int

const (
	// StatLayoutV5_11 is the classic layout of V5.11 to V6.10: 105/612 bytes,
	// with domain_name, the HTTP port, active_count, a 16-byte IP and a
	// 6-byte version.
	StatLayoutV5_11 StatLayout = iota + 1
	// StatLayoutV6_11: the IP fields grew to 46 bytes (105/642).
	StatLayoutV6_11
	// StatLayoutV6_12: the version field grew from 6 to 8 bytes (105/644).
	StatLayoutV6_12
	// StatLayoutV6_13_0: the HTTP fields went away, rw_mode came, readable
	// and writable counts replaced active_count (105/509).
	StatLayoutV6_13_0
	// StatLayoutV6_13_1: reserved_mb was added to both records (113/517).
	StatLayoutV6_13_1
	// StatLayoutV6_15IPv4: since V6.15 the tracker picks the IP width by
	// response_ip_addr_size; 16-byte IPs give 113/487.
	StatLayoutV6_15IPv4
	// StatLayoutV6_15IPv6: 46-byte IPs give 113/517, the same bytes as
	// StatLayoutV6_13_1.
	StatLayoutV6_15IPv6
)

type statLayoutInfo struct {
	name        string
	groupSize   int
	storageSize int
	ipSize      int
	versionSize int
	classic     bool // domain_name, HTTP port, active_count; no rw_mode
	reserved    bool // reserved_mb present
}

var statLayouts = map[StatLayout]statLayoutInfo{
	StatLayoutV5_11:     {"V5.11-V6.10", 105, 612, IPv4AddressSize, 6, true, false},
	StatLayoutV6_11:     {"V6.11", 105, 642, IPv6AddressSize, 6, true, false},
	StatLayoutV6_12:     {"V6.12", 105, 644, IPv6AddressSize, 8, true, false},
	StatLayoutV6_13_0:   {"V6.13.0", 105, 509, IPv6AddressSize, 8, false, false},
	StatLayoutV6_13_1:   {"V6.13.1-V6.13.2", 113, 517, IPv6AddressSize, 8, false, true},
	StatLayoutV6_15IPv4: {"V6.15+ IPv4", 113, 487, IPv4AddressSize, 8, false, true},
	StatLayoutV6_15IPv6: {"V6.15+ IPv6", 113, 517, IPv6AddressSize, 8, false, true},
}

// storageDetectOrder is the order in which decoders try layouts whose size
// divides a body: the current release first, 487 before 517 as the C client
// does. StatLayoutV6_13_1 is left out because StatLayoutV6_15IPv6 has the
// same bytes.
var storageDetectOrder = []StatLayout{
	StatLayoutV6_15IPv4, StatLayoutV6_15IPv6, StatLayoutV6_13_0,
	StatLayoutV6_12, StatLayoutV6_11, StatLayoutV5_11,
}

func (l StatLayout) info() (statLayoutInfo, bool) {
	i, ok := statLayouts[l]
	return i, ok
}

func (l StatLayout) String() string {
	if i, ok := l.info(); ok {
		return i.name
	}
	return "StatLayout(" + strconv.Itoa(int(l)) + ")"
}

// Valid reports whether l is one of the known layouts.
func (l StatLayout) Valid() bool { _, ok := l.info(); return ok }

// GroupStatSize is the size of one TrackerGroupStat record in this layout.
func (l StatLayout) GroupStatSize() int { i, _ := l.info(); return i.groupSize }

// StorageStatSize is the size of one TrackerStorageStat record in this layout.
func (l StatLayout) StorageStatSize() int { i, _ := l.info(); return i.storageSize }

// statVersions maps the version strings ParseStatLayout accepts.
var statVersions = []struct {
	version string
	layout  StatLayout
}{
	{"5.11", StatLayoutV5_11},
	{"6.10", StatLayoutV5_11},
	{"6.11", StatLayoutV6_11},
	{"6.12", StatLayoutV6_12},
	{"6.13.0", StatLayoutV6_13_0},
	{"6.13.1", StatLayoutV6_13_1},
	{"6.16", StatLayoutV6_15IPv4},
	{"6.16-ipv6", StatLayoutV6_15IPv6},
}

// ParseStatLayout returns the layout a FastDFS release uses, from a version
// such as "6.12", "V6.13.0" or "6.16". Releases inside a supported range map
// to it ("6.0x" and "6.9.x" to the classic layout, "6.13.2" to "6.13.1",
// "6.15.x" and "6.16.x" to "6.16"). A "-ipv6" suffix on 6.15 or later picks
// the 46-byte IP fields that response_ip_addr_size = IPv6 gives.
func ParseStatLayout(version string) (StatLayout, error) {
	v := strings.ToLower(strings.TrimSpace(version))
	v = strings.TrimPrefix(v, "v")
	ipv6 := strings.HasSuffix(v, "-ipv6")
	v = strings.TrimSuffix(v, "-ipv6")
	parts := strings.Split(v, ".")
	nums := make([]int, 3)
	ok := len(parts) >= 2 && len(parts) <= 3
	for i := 0; ok && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		ok = err == nil && n >= 0
		nums[i] = n
	}
	if ok {
		major, minor, patch := nums[0], nums[1], nums[2]
		var l StatLayout
		switch {
		case major == 5 && minor >= 11, major == 6 && minor <= 10:
			l = StatLayoutV5_11
		case major == 6 && minor == 11:
			l = StatLayoutV6_11
		case major == 6 && minor == 12:
			l = StatLayoutV6_12
		case major == 6 && minor == 13 && len(parts) == 3 && patch == 0:
			l = StatLayoutV6_13_0
		case major == 6 && minor == 13 && patch >= 1:
			l = StatLayoutV6_13_1
		case major == 6 && (minor == 15 || minor == 16):
			l = StatLayoutV6_15IPv4
			if ipv6 {
				l = StatLayoutV6_15IPv6
			}
		}
		if l != 0 && (!ipv6 || l == StatLayoutV6_15IPv6) {
			return l, nil
		}
	}
	supported := make([]string, len(statVersions))
	for i, s := range statVersions {
		supported[i] = s.version
	}
	return 0, fmt.Errorf("fdfs: unknown FastDFS version %q for the stat layout; supported: %s", version, strings.Join(supported, ", "))
}

// GroupStat is one TrackerGroupStat record: a group's space and servers.
// Fields a layout lacks are zero.
type GroupStat struct {
	Name                string
	TotalMB             int64
	FreeMB              int64
	ReservedMB          int64 // since V6.13.1
	TrunkFreeMB         int64
	StorageCount        int64
	StoragePort         int64
	StorageHTTPPort     int64 // classic layouts only
	ActiveCount         int64 // classic layouts only
	ReadableServerCount int64 // since V6.13
	WritableServerCount int64 // since V6.13
	CurrentWriteServer  int64
	StorePathCount      int64
	SubdirCountPerPath  int64
	CurrentTrunkFileID  int64
}

// int64Fields lists the 8-byte fields after the name in layout order.
func (g *GroupStat) int64Fields(i statLayoutInfo) []*int64 {
	f := []*int64{&g.TotalMB, &g.FreeMB}
	if i.reserved {
		f = append(f, &g.ReservedMB)
	}
	f = append(f, &g.TrunkFreeMB, &g.StorageCount, &g.StoragePort)
	if i.classic {
		f = append(f, &g.StorageHTTPPort, &g.ActiveCount)
	} else {
		f = append(f, &g.ReadableServerCount, &g.WritableServerCount)
	}
	return append(f, &g.CurrentWriteServer, &g.StorePathCount, &g.SubdirCountPerPath, &g.CurrentTrunkFileID)
}

// Append appends the record in layout l (an unknown layout appends nothing).
func (g GroupStat) Append(b []byte, l StatLayout) []byte {
	i, ok := l.info()
	if !ok {
		return b
	}
	b = appendFixed(b, g.Name, FdfsGroupNameMaxLen+1)
	for _, p := range g.int64Fields(i) {
		b = appendInt64(b, *p)
	}
	return b
}

// DecodeGroupStat decodes exactly one record in layout l.
func DecodeGroupStat(body []byte, l StatLayout) (GroupStat, error) {
	i, ok := l.info()
	if !ok {
		return GroupStat{}, fmt.Errorf("fdfs: unknown stat layout %d", int(l))
	}
	if len(body) != i.groupSize {
		return GroupStat{}, protocolErrorf("group stat is %d bytes, %s has %d", len(body), i.name, i.groupSize)
	}
	r := reader{b: body}
	var g GroupStat
	g.Name = r.str(FdfsGroupNameMaxLen + 1)
	for _, p := range g.int64Fields(i) {
		*p = r.int64()
	}
	return g, r.done()
}

// DecodeGroupStats decodes the records of a LIST_ALL_GROUPS (or
// LIST_ONE_GROUP) body. Only the 113-byte and 105-byte sizes exist, but two
// 105-byte layouts mean different things: hint, when it is a 105-byte
// layout, says which; otherwise 105 is read as the classic layout, which
// far more releases use. It returns the layout used.
func DecodeGroupStats(body []byte, hint StatLayout) ([]GroupStat, StatLayout, error) {
	candidates := []StatLayout{StatLayoutV6_15IPv4, StatLayoutV5_11}
	if i, ok := hint.info(); ok && i.groupSize == 105 {
		candidates[1] = hint
	}
	var tried []string
	for _, l := range candidates {
		size := l.GroupStatSize()
		tried = append(tried, fmt.Sprintf("%d (%s)", size, l))
		if len(body)%size != 0 {
			continue
		}
		out := make([]GroupStat, len(body)/size)
		for k := range out {
			g, err := DecodeGroupStat(body[k*size:(k+1)*size], l)
			if err != nil {
				return nil, 0, err
			}
			out[k] = g
		}
		return out, l, nil
	}
	return nil, 0, protocolErrorf("group stat body of %d bytes fits none of the record sizes tried: %s", len(body), strings.Join(tried, ", "))
}

// StorageCounters is FDFSStorageStatBuff: the connection counters and the
// operation counters a storage reports (348 bytes in every layout).
type StorageCounters struct {
	Connections ConnectionStat

	TotalUploadCount       int64
	SuccessUploadCount     int64
	TotalAppendCount       int64
	SuccessAppendCount     int64
	TotalModifyCount       int64
	SuccessModifyCount     int64
	TotalTruncateCount     int64
	SuccessTruncateCount   int64
	TotalSetMetaCount      int64
	SuccessSetMetaCount    int64
	TotalDeleteCount       int64
	SuccessDeleteCount     int64
	TotalDownloadCount     int64
	SuccessDownloadCount   int64
	TotalGetMetaCount      int64
	SuccessGetMetaCount    int64
	TotalCreateLinkCount   int64
	SuccessCreateLinkCount int64
	TotalDeleteLinkCount   int64
	SuccessDeleteLinkCount int64
	TotalUploadBytes       int64
	SuccessUploadBytes     int64
	TotalAppendBytes       int64
	SuccessAppendBytes     int64
	TotalModifyBytes       int64
	SuccessModifyBytes     int64
	TotalDownloadBytes     int64
	SuccessDownloadBytes   int64
	TotalSyncInBytes       int64
	SuccessSyncInBytes     int64
	TotalSyncOutBytes      int64
	SuccessSyncOutBytes    int64
	TotalFileOpenCount     int64
	SuccessFileOpenCount   int64
	TotalFileReadCount     int64
	SuccessFileReadCount   int64
	TotalFileWriteCount    int64
	SuccessFileWriteCount  int64
	LastSourceUpdate       int64 // unix seconds
	LastSyncUpdate         int64
	LastSyncedTimestamp    int64
	LastHeartBeatTime      int64
}

// StorageCountersSize is the size of FDFSStorageStatBuff.
const StorageCountersSize = 12 + 42*8

func (c *StorageCounters) fields() []*int64 {
	return []*int64{
		&c.TotalUploadCount, &c.SuccessUploadCount,
		&c.TotalAppendCount, &c.SuccessAppendCount,
		&c.TotalModifyCount, &c.SuccessModifyCount,
		&c.TotalTruncateCount, &c.SuccessTruncateCount,
		&c.TotalSetMetaCount, &c.SuccessSetMetaCount,
		&c.TotalDeleteCount, &c.SuccessDeleteCount,
		&c.TotalDownloadCount, &c.SuccessDownloadCount,
		&c.TotalGetMetaCount, &c.SuccessGetMetaCount,
		&c.TotalCreateLinkCount, &c.SuccessCreateLinkCount,
		&c.TotalDeleteLinkCount, &c.SuccessDeleteLinkCount,
		&c.TotalUploadBytes, &c.SuccessUploadBytes,
		&c.TotalAppendBytes, &c.SuccessAppendBytes,
		&c.TotalModifyBytes, &c.SuccessModifyBytes,
		&c.TotalDownloadBytes, &c.SuccessDownloadBytes,
		&c.TotalSyncInBytes, &c.SuccessSyncInBytes,
		&c.TotalSyncOutBytes, &c.SuccessSyncOutBytes,
		&c.TotalFileOpenCount, &c.SuccessFileOpenCount,
		&c.TotalFileReadCount, &c.SuccessFileReadCount,
		&c.TotalFileWriteCount, &c.SuccessFileWriteCount,
		&c.LastSourceUpdate, &c.LastSyncUpdate,
		&c.LastSyncedTimestamp, &c.LastHeartBeatTime,
	}
}

// StorageStat is one TrackerStorageStat record: a storage server's state,
// space and counters. Fields a layout lacks are zero.
type StorageStat struct {
	Status             byte // FdfsStorageStatus*
	RWMode             byte // since V6.13: R_OK (4) | W_OK (2)
	ID                 string
	IPAddr             string
	DomainName         string // classic layouts only
	SrcID              string
	Version            string
	JoinTime           int64 // unix seconds
	UpTime             int64 // unix seconds
	TotalMB            int64
	FreeMB             int64
	ReservedMB         int64 // since V6.13.1
	UploadPriority     int64
	StorePathCount     int64
	SubdirCountPerPath int64
	CurrentWritePath   int64
	StoragePort        int64
	StorageHTTPPort    int64 // classic layouts only
	Stat               StorageCounters
	IfTrunkServer      bool
}

// Append appends the record in layout l (an unknown layout appends nothing).
func (s StorageStat) Append(b []byte, l StatLayout) []byte {
	i, ok := l.info()
	if !ok {
		return b
	}
	b = append(b, s.Status)
	if !i.classic {
		b = append(b, s.RWMode)
	}
	b = appendFixed(b, s.ID, FdfsStorageIDMaxSize)
	b = appendFixed(b, s.IPAddr, i.ipSize)
	if i.classic {
		b = appendFixed(b, s.DomainName, FdfsDomainNameMaxSize)
	}
	b = appendFixed(b, s.SrcID, FdfsStorageIDMaxSize)
	b = appendFixed(b, s.Version, i.versionSize)
	for _, p := range s.int64Fields(i) {
		b = appendInt64(b, *p)
	}
	b = s.Stat.Connections.append(b)
	for _, p := range s.Stat.fields() {
		b = appendInt64(b, *p)
	}
	return appendBool(b, s.IfTrunkServer)
}

func (s *StorageStat) int64Fields(i statLayoutInfo) []*int64 {
	f := []*int64{&s.JoinTime, &s.UpTime, &s.TotalMB, &s.FreeMB}
	if i.reserved {
		f = append(f, &s.ReservedMB)
	}
	f = append(f, &s.UploadPriority, &s.StorePathCount, &s.SubdirCountPerPath, &s.CurrentWritePath, &s.StoragePort)
	if i.classic {
		f = append(f, &s.StorageHTTPPort)
	}
	return f
}

// DecodeStorageStat decodes exactly one record in layout l.
func DecodeStorageStat(body []byte, l StatLayout) (StorageStat, error) {
	i, ok := l.info()
	if !ok {
		return StorageStat{}, fmt.Errorf("fdfs: unknown stat layout %d", int(l))
	}
	if len(body) != i.storageSize {
		return StorageStat{}, protocolErrorf("storage stat is %d bytes, %s has %d", len(body), i.name, i.storageSize)
	}
	r := reader{b: body}
	var s StorageStat
	s.Status = r.byte()
	if !i.classic {
		s.RWMode = r.byte()
	}
	s.ID = r.str(FdfsStorageIDMaxSize)
	s.IPAddr = r.str(i.ipSize)
	if i.classic {
		s.DomainName = r.str(FdfsDomainNameMaxSize)
	}
	s.SrcID = r.str(FdfsStorageIDMaxSize)
	s.Version = r.str(i.versionSize)
	for _, p := range s.int64Fields(i) {
		*p = r.int64()
	}
	s.Stat.Connections = readConnectionStat(&r)
	for _, p := range s.Stat.fields() {
		*p = r.int64()
	}
	s.IfTrunkServer = r.bool()
	return s, r.done()
}

// DecodeStorageStats decodes the records of a LIST_STORAGE body. When hint is
// a known layout whose size divides the body it is used; otherwise the
// layouts are tried newest first (487 before 517, as the C client does). An
// empty body is no records. It returns the layout used.
func DecodeStorageStats(body []byte, hint StatLayout) ([]StorageStat, StatLayout, error) {
	candidates := storageDetectOrder
	if hint.Valid() {
		candidates = append([]StatLayout{hint}, storageDetectOrder...)
	}
	var tried []string
	for _, l := range candidates {
		size := l.StorageStatSize()
		if len(body)%size != 0 {
			tried = append(tried, fmt.Sprintf("%d (%s)", size, l))
			continue
		}
		out := make([]StorageStat, len(body)/size)
		for k := range out {
			s, err := DecodeStorageStat(body[k*size:(k+1)*size], l)
			if err != nil {
				return nil, 0, err
			}
			out[k] = s
		}
		return out, l, nil
	}
	return nil, 0, protocolErrorf("storage stat body of %d bytes fits none of the record sizes tried: %s", len(body), strings.Join(tried, ", "))
}
