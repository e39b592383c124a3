package fdfs

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ServerAddr is a storage (or tracker) address as the tracker reports it.
type ServerAddr struct {
	IP   string
	Port int
}

// String returns "ip:port", with brackets around an IPv6 address.
func (a ServerAddr) String() string { return net.JoinHostPort(a.IP, strconv.Itoa(a.Port)) }

// StorageAddr is where an upload goes: a storage, its group and the store
// path the tracker chose on it.
type StorageAddr struct {
	Group string
	ServerAddr
	StorePathIndex byte
}

// addrFieldSize returns the width of an address field in a tracker query
// response for the given C address size (IPv4AddressSize or IPv6AddressSize;
// 0 means IPv4).
func addrFieldSize(ipSize int) int {
	if ipSize == IPv6AddressSize {
		return IPv6AddressFieldSize
	}
	return IPv4AddressFieldSize
}

func appendServer(b []byte, s ServerAddr, ipSize int) []byte {
	b = appendFixed(b, s.IP, addrFieldSize(ipSize))
	return appendInt64(b, int64(s.Port))
}

func readServer(r *reader, ipSize int) ServerAddr {
	ip := r.str(addrFieldSize(ipSize))
	port := r.int64()
	if r.err == nil && (port < 0 || port > 65535) {
		r.err = protocolErrorf("port %d out of range", port)
	}
	return ServerAddr{IP: ip, Port: int(port)}
}

// GroupRequest is the body of LIST_ONE_GROUP (90), QUERY_STORE_WITH_GROUP_ONE
// (104) and QUERY_STORE_WITH_GROUP_ALL (107): a group name NUL-padded to 16
// bytes.
type GroupRequest struct {
	Group string
}

func (m GroupRequest) Append(b []byte) []byte {
	return appendFixed(b, m.Group, FdfsGroupNameMaxLen)
}

func DecodeGroupRequest(body []byte) (GroupRequest, error) {
	if len(body) != FdfsGroupNameMaxLen {
		return GroupRequest{}, protocolErrorf("group request is %d bytes, want %d", len(body), FdfsGroupNameMaxLen)
	}
	return GroupRequest{Group: cString(body)}, nil
}

// ListStoragesRequest is the body of LIST_STORAGE (92): the group (16 bytes)
// and, optionally, one storage id without padding (at most 15 bytes).
type ListStoragesRequest struct {
	Group     string
	StorageID string
}

func (m ListStoragesRequest) Append(b []byte) []byte {
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	id := m.StorageID
	if len(id) >= FdfsStorageIDMaxSize {
		id = id[:FdfsStorageIDMaxSize-1]
	}
	return append(b, id...)
}

func DecodeListStoragesRequest(body []byte) (ListStoragesRequest, error) {
	if len(body) < FdfsGroupNameMaxLen || len(body) >= FdfsGroupNameMaxLen+FdfsStorageIDMaxSize {
		return ListStoragesRequest{}, protocolErrorf("list storages request is %d bytes, want %d to %d",
			len(body), FdfsGroupNameMaxLen, FdfsGroupNameMaxLen+FdfsStorageIDMaxSize-1)
	}
	return ListStoragesRequest{
		Group:     cString(body[:FdfsGroupNameMaxLen]),
		StorageID: cString(body[FdfsGroupNameMaxLen:]),
	}, nil
}

// FileRequest is the body shared by every request that names one file: the
// group (16 bytes) and the remote filename ("M00/..."), unpadded. The
// tracker's QUERY_FETCH_ONE (102), QUERY_UPDATE (103) and QUERY_FETCH_ALL
// (105) and the storage's DELETE_FILE (12), GET_METADATA (15) and
// QUERY_FILE_INFO (22) all use it.
type FileRequest struct {
	Group    string
	Filename string
}

func (m FileRequest) Append(b []byte) []byte {
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	return append(b, m.Filename...)
}

func DecodeFileRequest(body []byte) (FileRequest, error) {
	if len(body) <= FdfsGroupNameMaxLen {
		return FileRequest{}, protocolErrorf("file request is %d bytes, want more than %d", len(body), FdfsGroupNameMaxLen)
	}
	return FileRequest{
		Group:    cString(body[:FdfsGroupNameMaxLen]),
		Filename: string(body[FdfsGroupNameMaxLen:]),
	}, nil
}

// QueryStoreResponse answers QUERY_STORE_WITHOUT_GROUP_ONE (101) and
// QUERY_STORE_WITH_GROUP_ONE (104): group (16), IP (15 or 45), port (8),
// store path index (1) = 40 or 70 bytes.
type QueryStoreResponse struct {
	Group          string
	Server         ServerAddr
	StorePathIndex byte
	IPSize         int // IPv4AddressSize (also for 0) or IPv6AddressSize
}

func (m QueryStoreResponse) Append(b []byte) []byte {
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	b = appendServer(b, m.Server, m.IPSize)
	return append(b, m.StorePathIndex)
}

func DecodeQueryStoreResponse(body []byte) (QueryStoreResponse, error) {
	var ipSize int
	switch len(body) {
	case FdfsGroupNameMaxLen + IPv4AddressFieldSize + 8 + 1:
		ipSize = IPv4AddressSize
	case FdfsGroupNameMaxLen + IPv6AddressFieldSize + 8 + 1:
		ipSize = IPv6AddressSize
	default:
		return QueryStoreResponse{}, protocolErrorf("query store response is %d bytes, want 40 or 70", len(body))
	}
	r := reader{b: body}
	m := QueryStoreResponse{IPSize: ipSize}
	m.Group = r.str(FdfsGroupNameMaxLen)
	m.Server = readServer(&r, ipSize)
	m.StorePathIndex = r.byte()
	return m, r.done()
}

// Storage returns the response as the address an upload goes to.
func (m QueryStoreResponse) Storage() StorageAddr {
	return StorageAddr{Group: m.Group, ServerAddr: m.Server, StorePathIndex: m.StorePathIndex}
}

// QueryStoreAllResponse answers QUERY_STORE_WITHOUT_GROUP_ALL (106) and
// QUERY_STORE_WITH_GROUP_ALL (107): group (16), then IP and port for each
// writable storage, then one store path index for all of them.
type QueryStoreAllResponse struct {
	Group          string
	Servers        []ServerAddr
	StorePathIndex byte
	IPSize         int
}

func (m QueryStoreAllResponse) Append(b []byte) []byte {
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	for _, s := range m.Servers {
		b = appendServer(b, s, m.IPSize)
	}
	return append(b, m.StorePathIndex)
}

// DecodeQueryStoreAllResponse tells the address width from the length,
// trying IPv4 first as the C client does.
func DecodeQueryStoreAllResponse(body []byte) (QueryStoreAllResponse, error) {
	list := len(body) - FdfsGroupNameMaxLen - 1
	ipSize, n, err := serverListSize(list)
	if err != nil {
		return QueryStoreAllResponse{}, fmt.Errorf("query store all response of %d bytes: %w", len(body), err)
	}
	r := reader{b: body}
	m := QueryStoreAllResponse{IPSize: ipSize, Servers: make([]ServerAddr, n)}
	m.Group = r.str(FdfsGroupNameMaxLen)
	for i := range m.Servers {
		m.Servers[i] = readServer(&r, ipSize)
	}
	m.StorePathIndex = r.byte()
	return m, r.done()
}

// Storages returns one upload address per server.
func (m QueryStoreAllResponse) Storages() []StorageAddr {
	out := make([]StorageAddr, len(m.Servers))
	for i, s := range m.Servers {
		out[i] = StorageAddr{Group: m.Group, ServerAddr: s, StorePathIndex: m.StorePathIndex}
	}
	return out
}

// serverListSize works out the address width and count of a list of IP and
// port pairs from its length in bytes. At least one pair is required.
func serverListSize(n int) (ipSize, count int, err error) {
	const v4, v6 = IPv4AddressFieldSize + 8, IPv6AddressFieldSize + 8
	switch {
	case n > 0 && n%v4 == 0:
		return IPv4AddressSize, n / v4, nil
	case n > 0 && n%v6 == 0:
		return IPv6AddressSize, n / v6, nil
	}
	return 0, 0, protocolErrorf("server list of %d bytes is no multiple of %d (IPv4) or %d (IPv6)", n, v4, v6)
}

// QueryFetchResponse answers QUERY_FETCH_ONE (102) and QUERY_UPDATE (103):
// group (16), IP (15 or 45), port (8) = 39 or 69 bytes.
type QueryFetchResponse struct {
	Group  string
	Server ServerAddr
	IPSize int
}

func (m QueryFetchResponse) Append(b []byte) []byte {
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	return appendServer(b, m.Server, m.IPSize)
}

func DecodeQueryFetchResponse(body []byte) (QueryFetchResponse, error) {
	var ipSize int
	switch len(body) {
	case FdfsGroupNameMaxLen + IPv4AddressFieldSize + 8:
		ipSize = IPv4AddressSize
	case FdfsGroupNameMaxLen + IPv6AddressFieldSize + 8:
		ipSize = IPv6AddressSize
	default:
		return QueryFetchResponse{}, protocolErrorf("query fetch response is %d bytes, want 39 or 69", len(body))
	}
	r := reader{b: body}
	m := QueryFetchResponse{IPSize: ipSize}
	m.Group = r.str(FdfsGroupNameMaxLen)
	m.Server = readServer(&r, ipSize)
	return m, r.done()
}

// QueryFetchAllResponse answers QUERY_FETCH_ALL (105): group (16), then IP
// and port for every storage that holds the file.
type QueryFetchAllResponse struct {
	Group   string
	Servers []ServerAddr
	IPSize  int
}

func (m QueryFetchAllResponse) Append(b []byte) []byte {
	b = appendFixed(b, m.Group, FdfsGroupNameMaxLen)
	for _, s := range m.Servers {
		b = appendServer(b, s, m.IPSize)
	}
	return b
}

func DecodeQueryFetchAllResponse(body []byte) (QueryFetchAllResponse, error) {
	ipSize, n, err := serverListSize(len(body) - FdfsGroupNameMaxLen)
	if err != nil {
		return QueryFetchAllResponse{}, fmt.Errorf("query fetch all response of %d bytes: %w", len(body), err)
	}
	r := reader{b: body}
	m := QueryFetchAllResponse{IPSize: ipSize, Servers: make([]ServerAddr, n)}
	m.Group = r.str(FdfsGroupNameMaxLen)
	for i := range m.Servers {
		m.Servers[i] = readServer(&r, ipSize)
	}
	return m, r.done()
}

// GetLeaderResponse answers GET_LEADER (95): the leader as "ip:port" text,
// with no padding and no NUL.
type GetLeaderResponse struct {
	Leader ServerAddr
}

func (m GetLeaderResponse) Append(b []byte) []byte {
	return append(b, m.Leader.String()...)
}

func DecodeGetLeaderResponse(body []byte) (GetLeaderResponse, error) {
	// +2 leaves room for the brackets around an IPv6 address.
	if len(body) == 0 || len(body) > FdfsMaxIPPortSize+2 {
		return GetLeaderResponse{}, protocolErrorf("leader response is %d bytes, want 1 to %d", len(body), FdfsMaxIPPortSize+2)
	}
	addr, err := parseHostPort(cString(body))
	if err != nil {
		return GetLeaderResponse{}, err
	}
	return GetLeaderResponse{Leader: addr}, nil
}

// parseHostPort splits "ip:port" as the tracker writes it; an IPv6 address
// may come with or without brackets.
func parseHostPort(s string) (ServerAddr, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return ServerAddr{}, protocolErrorf("address %q has no port", s)
	}
	host, portText := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]"), s[i+1:]
	if host == "" {
		return ServerAddr{}, protocolErrorf("address %q has no host", s)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return ServerAddr{}, protocolErrorf("address %q has a bad port", s)
	}
	return ServerAddr{IP: host, Port: port}, nil
}

// TrackerClusterStatRequest is the body of TRACKER_CLUSTER_STAT (96),
// TrackerStatFilter: which trackers to list.
type TrackerClusterStatRequest struct {
	FilterBy byte // FdfsTrackerStatFilterBy* bits; 0 lists all
	IsActive bool
	IsLeader bool
}

// Filter bits of the cluster stat requests (tracker_types.h).
const (
	FdfsTrackerStatFilterByIsActive        = 1
	FdfsTrackerStatFilterByIsLeader        = 2
	FdfsStorageStatFilterByIsTrunkServer   = 1
	FdfsStorageStatFilterByStatus          = 2
	FdfsVolumnStatFilterByIsDiskAvailable  = 1
	FdfsVolumnStatFilterByIsTrunkAvailable = 2
	FdfsVolumnStatFilterByIsSpaceAvailable = 4
)

func (m TrackerClusterStatRequest) Append(b []byte) []byte {
	b = append(b, m.FilterBy)
	b = appendBool(b, m.IsActive)
	return appendBool(b, m.IsLeader)
}

func DecodeTrackerClusterStatRequest(body []byte) (TrackerClusterStatRequest, error) {
	r := reader{b: body}
	m := TrackerClusterStatRequest{FilterBy: r.byte(), IsActive: r.bool(), IsLeader: r.bool()}
	return m, r.done()
}

// ConnectionStat is the connection counters a server reports about itself.
type ConnectionStat struct {
	AllocCount, CurrentCount, MaxCount int32
}

func (c ConnectionStat) append(b []byte) []byte {
	b = appendInt32(b, c.AllocCount)
	b = appendInt32(b, c.CurrentCount)
	return appendInt32(b, c.MaxCount)
}

func readConnectionStat(r *reader) ConnectionStat {
	return ConnectionStat{AllocCount: r.int32(), CurrentCount: r.int32(), MaxCount: r.int32()}
}

// TrackerInfo is one record of the TRACKER_CLUSTER_STAT response
// (TrackerClusterStatRespBodyPart, 90 bytes).
type TrackerInfo struct {
	Host              string // "ip:port"
	IsLeader          bool
	IsActive          bool
	Connections       ConnectionStat
	Version           string
	UpTime            int64 // unix seconds
	LastHeartbeatTime int64 // unix seconds
}

const trackerInfoSize = FdfsMaxIPPortSize + 2 + 12 + 8 + 8 + 8

// TrackerClusterStatResponse answers TRACKER_CLUSTER_STAT (96): a count (1
// byte) and that many TrackerInfo records.
type TrackerClusterStatResponse struct {
	Trackers []TrackerInfo
}

func (m TrackerClusterStatResponse) Append(b []byte) []byte {
	b = append(b, byte(len(m.Trackers)))
	for _, t := range m.Trackers {
		b = appendFixed(b, t.Host, FdfsMaxIPPortSize)
		b = appendBool(b, t.IsLeader)
		b = appendBool(b, t.IsActive)
		b = t.Connections.append(b)
		b = appendFixed(b, t.Version, 8)
		b = appendInt64(b, t.UpTime)
		b = appendInt64(b, t.LastHeartbeatTime)
	}
	return b
}

func DecodeTrackerClusterStatResponse(body []byte) (TrackerClusterStatResponse, error) {
	if len(body) < 1 || len(body) != 1+int(body[0])*trackerInfoSize {
		return TrackerClusterStatResponse{}, protocolErrorf("tracker cluster stat response is %d bytes, no count and %d-byte records", len(body), trackerInfoSize)
	}
	r := reader{b: body}
	m := TrackerClusterStatResponse{Trackers: make([]TrackerInfo, r.byte())}
	for i := range m.Trackers {
		t := &m.Trackers[i]
		t.Host = r.str(FdfsMaxIPPortSize)
		t.IsLeader = r.bool()
		t.IsActive = r.bool()
		t.Connections = readConnectionStat(&r)
		t.Version = r.str(8)
		t.UpTime = r.int64()
		t.LastHeartbeatTime = r.int64()
	}
	return m, r.done()
}

// StorageClusterStatRequest is the body of STORAGE_CLUSTER_STAT (97),
// StorageStatFilter.
type StorageClusterStatRequest struct {
	FilterBy      byte // FdfsStorageStatFilterBy* bits; 0 lists all
	OpType        byte // how Status is compared
	Status        byte
	IsTrunkServer bool
}

func (m StorageClusterStatRequest) Append(b []byte) []byte {
	b = append(b, m.FilterBy, m.OpType, m.Status)
	return appendBool(b, m.IsTrunkServer)
}

func DecodeStorageClusterStatRequest(body []byte) (StorageClusterStatRequest, error) {
	r := reader{b: body}
	m := StorageClusterStatRequest{FilterBy: r.byte(), OpType: r.byte(), Status: r.byte(), IsTrunkServer: r.bool()}
	return m, r.done()
}

// StorageInfo is one record of the STORAGE_CLUSTER_STAT response
// (StorageClusterStatRespBodyPart, 106 bytes).
type StorageInfo struct {
	ID                string
	Host              string // "ip:port"
	IsTrunkServer     bool
	Status            byte // FdfsStorageStatus*
	Connections       ConnectionStat
	Version           string
	UpTime            int64
	LastHeartbeatTime int64
}

const storageInfoSize = FdfsStorageIDMaxSize + FdfsMaxIPPortSize + 2 + 12 + 8 + 8 + 8

// StorageClusterStatResponse answers STORAGE_CLUSTER_STAT (97):
// use_storage_id (1), use_trunk_file (1), count (4), then the records.
type StorageClusterStatResponse struct {
	UseStorageID bool
	UseTrunkFile bool
	Storages     []StorageInfo
}

func (m StorageClusterStatResponse) Append(b []byte) []byte {
	b = appendBool(b, m.UseStorageID)
	b = appendBool(b, m.UseTrunkFile)
	b = appendInt32(b, int32(len(m.Storages)))
	for _, s := range m.Storages {
		b = appendFixed(b, s.ID, FdfsStorageIDMaxSize)
		b = appendFixed(b, s.Host, FdfsMaxIPPortSize)
		b = appendBool(b, s.IsTrunkServer)
		b = append(b, s.Status)
		b = s.Connections.append(b)
		b = appendFixed(b, s.Version, 8)
		b = appendInt64(b, s.UpTime)
		b = appendInt64(b, s.LastHeartbeatTime)
	}
	return b
}

func DecodeStorageClusterStatResponse(body []byte) (StorageClusterStatResponse, error) {
	const head = 6
	if len(body) < head || (len(body)-head)%storageInfoSize != 0 ||
		int64(getInt32(body[2:6])) != int64((len(body)-head)/storageInfoSize) {
		return StorageClusterStatResponse{}, protocolErrorf("storage cluster stat response of %d bytes does not hold its count of %d-byte records", len(body), storageInfoSize)
	}
	r := reader{b: body}
	m := StorageClusterStatResponse{UseStorageID: r.bool(), UseTrunkFile: r.bool()}
	m.Storages = make([]StorageInfo, r.int32())
	for i := range m.Storages {
		s := &m.Storages[i]
		s.ID = r.str(FdfsStorageIDMaxSize)
		s.Host = r.str(FdfsMaxIPPortSize)
		s.IsTrunkServer = r.bool()
		s.Status = r.byte()
		s.Connections = readConnectionStat(&r)
		s.Version = r.str(8)
		s.UpTime = r.int64()
		s.LastHeartbeatTime = r.int64()
	}
	return m, r.done()
}

// VolumnStatRequest is the body of STORAGE_VOLUMN_STAT (98), VolumnStatFilter
// (the upstream spelling of "volume" is kept in the names).
type VolumnStatRequest struct {
	FilterBy         byte // FdfsVolumnStatFilterBy* bits; 0 lists all
	IsDiskAvailable  bool
	IsTrunkAvailable bool
	IsSpaceAvailable bool
}

func (m VolumnStatRequest) Append(b []byte) []byte {
	b = append(b, m.FilterBy)
	b = appendBool(b, m.IsDiskAvailable)
	b = appendBool(b, m.IsTrunkAvailable)
	return appendBool(b, m.IsSpaceAvailable)
}

func DecodeVolumnStatRequest(body []byte) (VolumnStatRequest, error) {
	r := reader{b: body}
	m := VolumnStatRequest{FilterBy: r.byte(), IsDiskAvailable: r.bool(), IsTrunkAvailable: r.bool(), IsSpaceAvailable: r.bool()}
	return m, r.done()
}

// VolumnInfo is one record of the STORAGE_VOLUMN_STAT response
// (StorageVolumnStatRespBodyPart, 59 bytes): space per group in MB.
type VolumnInfo struct {
	Group            string
	TotalMB          int64
	FreeMB           int64
	ReservedMB       int64
	AvailMB          int64
	TrunkFreeMB      int64
	IsDiskAvailable  bool
	IsTrunkAvailable bool
}

const volumnInfoSize = FdfsGroupNameMaxLen + 1 + 5*8 + 2

// VolumnStatResponse answers STORAGE_VOLUMN_STAT (98): use_trunk_file (1),
// count (4), then the records.
type VolumnStatResponse struct {
	UseTrunkFile bool
	Groups       []VolumnInfo
}

func (m VolumnStatResponse) Append(b []byte) []byte {
	b = appendBool(b, m.UseTrunkFile)
	b = appendInt32(b, int32(len(m.Groups)))
	for _, g := range m.Groups {
		b = appendFixed(b, g.Group, FdfsGroupNameMaxLen+1)
		b = appendInt64(b, g.TotalMB)
		b = appendInt64(b, g.FreeMB)
		b = appendInt64(b, g.ReservedMB)
		b = appendInt64(b, g.AvailMB)
		b = appendInt64(b, g.TrunkFreeMB)
		b = appendBool(b, g.IsDiskAvailable)
		b = appendBool(b, g.IsTrunkAvailable)
	}
	return b
}

func DecodeVolumnStatResponse(body []byte) (VolumnStatResponse, error) {
	const head = 5
	if len(body) < head || (len(body)-head)%volumnInfoSize != 0 ||
		int64(getInt32(body[1:5])) != int64((len(body)-head)/volumnInfoSize) {
		return VolumnStatResponse{}, protocolErrorf("volumn stat response of %d bytes does not hold its count of %d-byte records", len(body), volumnInfoSize)
	}
	r := reader{b: body}
	m := VolumnStatResponse{UseTrunkFile: r.bool()}
	m.Groups = make([]VolumnInfo, r.int32())
	for i := range m.Groups {
		g := &m.Groups[i]
		g.Group = r.str(FdfsGroupNameMaxLen + 1)
		g.TotalMB = r.int64()
		g.FreeMB = r.int64()
		g.ReservedMB = r.int64()
		g.AvailMB = r.int64()
		g.TrunkFreeMB = r.int64()
		g.IsDiskAvailable = r.bool()
		g.IsTrunkAvailable = r.bool()
	}
	return m, r.done()
}
