package localcluster

import (
	"fmt"
	"syscall"
	"time"

	"fdfsfs/fdfs"
)

// tracker is one tracker server. All trackers of a cluster share one view
// of the groups; the first one running is the leader.
type tracker struct {
	c     *Cluster
	index int
	srv   *server
}

// serverVersion is what the servers report, as the captured V6.16.1 cluster.
const serverVersion = "6.16.1"

// Values a default V6.16.1 storage reports about itself.
const (
	uploadPriority     = 10
	storePathCount     = 1
	rwModeBoth         = 4 | 2 // R_OK | W_OK
	storageHTTPPort    = 8888  // classic layouts only; http.server_port's default
	taskAllocCount     = 64    // connection buffers upstream allocates up front
	currentTrunkFileID = -1    // the tracker sends -1 when trunk files are off
)

func newTracker(c *Cluster, index, port int) *tracker {
	t := &tracker{c: c, index: index}
	t.srv = newServer(c, fmt.Sprintf("tracker %d", index), port, t.handle)
	return t
}

func (t *tracker) handle(req *request) (response, error) {
	body, err := req.readAll()
	if err != nil {
		return response{}, err
	}
	switch req.hdr.Cmd {
	case fdfs.TrackerProtoCmdServerListOneGroup:
		return t.listOneGroup(body), nil
	case fdfs.TrackerProtoCmdServerListAllGroups:
		return t.listAllGroups(body), nil
	case fdfs.TrackerProtoCmdServerListStorage:
		return t.listStorages(body), nil
	case fdfs.TrackerProtoCmdServiceQueryStoreWithoutGroupOne,
		fdfs.TrackerProtoCmdServiceQueryStoreWithGroupOne,
		fdfs.TrackerProtoCmdServiceQueryStoreWithoutGroupAll,
		fdfs.TrackerProtoCmdServiceQueryStoreWithGroupAll:
		return t.queryStore(req.hdr.Cmd, body), nil
	case fdfs.TrackerProtoCmdServiceQueryFetchOne,
		fdfs.TrackerProtoCmdServiceQueryUpdate,
		fdfs.TrackerProtoCmdServiceQueryFetchAll:
		return t.queryFetchUpdate(req.hdr.Cmd, body), nil
	case fdfs.TrackerProtoCmdServerGetLeader:
		return t.getLeader(body), nil
	case fdfs.TrackerProtoCmdServerTrackerClusterStat:
		return t.trackerClusterStat(body), nil
	case fdfs.TrackerProtoCmdServerStorageClusterStat:
		return t.storageClusterStat(body), nil
	case fdfs.TrackerProtoCmdServerStorageVolumnStat:
		return t.volumnStat(body), nil
	case fdfs.FdfsProtoCmdActiveTest:
		if len(body) != 0 {
			return fail(syscall.EINVAL), nil
		}
		return ok(nil), nil
	}
	t.srv.log.Debug("unknown command", "cmd", req.hdr.Cmd)
	return fail(syscall.EINVAL), nil
}

// findGroup returns the group of that name, or nil.
func (c *Cluster) findGroup(name string) *group {
	for _, g := range c.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// active returns the storages of a group that are up: the trackers call
// them ACTIVE, readable and writable; the others OFFLINE.
func (g *group) active() []*Storage {
	var out []*Storage
	for _, st := range g.storages {
		if st.srv.isRunning() {
			out = append(out, st)
		}
	}
	return out
}

func (st *Storage) status() byte {
	if st.srv.isRunning() {
		return fdfs.FdfsStorageStatusActive
	}
	return fdfs.FdfsStorageStatusOffline
}

// groupSpace returns a group's space the way the tracker sums it up: the
// smallest storage counts (tracker_mem's group free_mb is the minimum).
func (c *Cluster) groupSpace(g *group) (total, free int64) {
	list := g.active()
	if len(list) == 0 {
		list = g.storages
	}
	for i, st := range list {
		t, f := c.capacity(st)
		if i == 0 || f < free {
			total, free = t, f
		}
	}
	return total, free
}

func (c *Cluster) groupStat(g *group) fdfs.GroupStat {
	total, free := c.groupSpace(g)
	active := int64(len(g.active()))
	c.mu.Lock()
	writeServer := int64(g.writeServer)
	c.mu.Unlock()
	return fdfs.GroupStat{
		Name:                g.name,
		TotalMB:             total,
		FreeMB:              free,
		ReservedMB:          reservedMB(total),
		StorageCount:        int64(len(g.storages)),
		StoragePort:         int64(g.storages[0].srv.listenPort()),
		StorageHTTPPort:     storageHTTPPort,
		ActiveCount:         active,
		ReadableServerCount: active,
		WritableServerCount: active,
		CurrentWriteServer:  writeServer,
		StorePathCount:      storePathCount,
		SubdirCountPerPath:  subdirsPerLevel,
		CurrentTrunkFileID:  currentTrunkFileID,
	}
}

func (t *tracker) layout() fdfs.StatLayout {
	if t.c.opts.Layout.Valid() {
		return t.c.opts.Layout
	}
	return fdfs.StatLayoutV6_15IPv4
}

// listOneGroup answers LIST_ONE_GROUP (90): one TrackerGroupStat.
func (t *tracker) listOneGroup(body []byte) response {
	m, err := fdfs.DecodeGroupRequest(body)
	if err != nil {
		return fail(syscall.EINVAL)
	}
	g := t.c.findGroup(m.Group)
	if g == nil {
		return fail(syscall.ENOENT)
	}
	return ok(t.c.groupStat(g).Append(nil, t.layout()))
}

// listAllGroups answers LIST_ALL_GROUPS (91): every group, sorted by name.
func (t *tracker) listAllGroups(body []byte) response {
	if len(body) != 0 {
		return fail(syscall.EINVAL)
	}
	var out []byte
	for _, g := range t.c.groups {
		out = t.c.groupStat(g).Append(out, t.layout())
	}
	return ok(out)
}

// listStorages answers LIST_STORAGE (92): the storages of a group, or the
// one with the storage id that follows the group name.
func (t *tracker) listStorages(body []byte) response {
	m, err := fdfs.DecodeListStoragesRequest(body)
	if err != nil {
		return fail(syscall.EINVAL)
	}
	g := t.c.findGroup(m.Group)
	if g == nil {
		return fail(syscall.ENOENT)
	}
	var out []byte
	for _, st := range g.storages {
		if m.StorageID != "" && m.StorageID != st.id() {
			continue
		}
		out = t.c.storageStat(st).Append(out, t.layout())
	}
	if m.StorageID != "" && len(out) == 0 {
		return fail(syscall.ENOENT)
	}
	return ok(out)
}

func (c *Cluster) storageStat(st *Storage) fdfs.StorageStat {
	total, free := c.capacity(st)
	s := &st.stats
	now := time.Now().Unix()
	heartbeat := now
	if !st.srv.isRunning() {
		heartbeat = st.srv.startTime().Unix()
	}
	return fdfs.StorageStat{
		Status:             st.status(),
		RWMode:             rwModeBoth,
		ID:                 st.id(),
		IPAddr:             storageIP,
		Version:            serverVersion,
		JoinTime:           c.created.Unix(),
		UpTime:             st.srv.startTime().Unix(),
		TotalMB:            total,
		FreeMB:             free,
		ReservedMB:         reservedMB(total),
		UploadPriority:     uploadPriority,
		StorePathCount:     storePathCount,
		SubdirCountPerPath: subdirsPerLevel,
		StoragePort:        int64(st.srv.listenPort()),
		StorageHTTPPort:    storageHTTPPort,
		Stat: fdfs.StorageCounters{
			Connections: st.srv.connectionStat(),

			TotalUploadCount:      s.upload.total.Load(),
			SuccessUploadCount:    s.upload.success.Load(),
			TotalAppendCount:      s.appendFile.total.Load(),
			SuccessAppendCount:    s.appendFile.success.Load(),
			TotalModifyCount:      s.modify.total.Load(),
			SuccessModifyCount:    s.modify.success.Load(),
			TotalTruncateCount:    s.truncate.total.Load(),
			SuccessTruncateCount:  s.truncate.success.Load(),
			TotalSetMetaCount:     s.setMeta.total.Load(),
			SuccessSetMetaCount:   s.setMeta.success.Load(),
			TotalDeleteCount:      s.deleteFile.total.Load(),
			SuccessDeleteCount:    s.deleteFile.success.Load(),
			TotalDownloadCount:    s.download.total.Load(),
			SuccessDownloadCount:  s.download.success.Load(),
			TotalGetMetaCount:     s.getMeta.total.Load(),
			SuccessGetMetaCount:   s.getMeta.success.Load(),
			TotalUploadBytes:      s.uploadBytes.total.Load(),
			SuccessUploadBytes:    s.uploadBytes.success.Load(),
			TotalAppendBytes:      s.appendBytes.total.Load(),
			SuccessAppendBytes:    s.appendBytes.success.Load(),
			TotalModifyBytes:      s.modifyBytes.total.Load(),
			SuccessModifyBytes:    s.modifyBytes.success.Load(),
			TotalDownloadBytes:    s.downloadBytes.total.Load(),
			SuccessDownloadBytes:  s.downloadBytes.success.Load(),
			TotalSyncInBytes:      s.syncInBytes.Load(),
			SuccessSyncInBytes:    s.syncInBytes.Load(),
			TotalSyncOutBytes:     s.syncOutBytes.Load(),
			SuccessSyncOutBytes:   s.syncOutBytes.Load(),
			TotalFileOpenCount:    s.fileOpen.total.Load(),
			SuccessFileOpenCount:  s.fileOpen.success.Load(),
			TotalFileReadCount:    s.fileRead.total.Load(),
			SuccessFileReadCount:  s.fileRead.success.Load(),
			TotalFileWriteCount:   s.fileWrite.total.Load(),
			SuccessFileWriteCount: s.fileWrite.success.Load(),
			LastSourceUpdate:      s.lastSourceUpdate.Load(),
			LastSyncUpdate:        s.lastSyncUpdate.Load(),
			LastSyncedTimestamp:   s.lastSyncedTimestamp.Load(),
			LastHeartBeatTime:     heartbeat,
		},
	}
}

// connectionStat reports the connection counters upstream keeps.
func (s *server) connectionStat() fdfs.ConnectionStat {
	return fdfs.ConnectionStat{
		AllocCount:   int32(max(taskAllocCount, s.peak.Load())),
		CurrentCount: int32(s.current.Load()),
		MaxCount:     int32(s.peak.Load()),
	}
}

func storageAddr(st *Storage) fdfs.ServerAddr {
	return fdfs.ServerAddr{IP: storageIP, Port: st.srv.listenPort()}
}

// queryStore answers the four QUERY_STORE commands: which storage (or all
// writable storages) of which group an upload goes to. Without a group the
// groups take turns (store_lookup = 0, round robin), skipping groups with
// no storage up or no space.
func (t *tracker) queryStore(cmd byte, body []byte) response {
	withGroup := cmd == fdfs.TrackerProtoCmdServiceQueryStoreWithGroupOne ||
		cmd == fdfs.TrackerProtoCmdServiceQueryStoreWithGroupAll
	all := cmd == fdfs.TrackerProtoCmdServiceQueryStoreWithoutGroupAll ||
		cmd == fdfs.TrackerProtoCmdServiceQueryStoreWithGroupAll
	c := t.c
	var g *group
	if withGroup {
		m, err := fdfs.DecodeGroupRequest(body)
		if err != nil {
			return fail(syscall.EINVAL)
		}
		if g = c.findGroup(m.Group); g == nil || len(g.active()) == 0 {
			return fail(syscall.ENOENT)
		}
		if c.isFull(g.name) {
			return fail(syscall.ENOSPC)
		}
	} else {
		if len(body) != 0 {
			return fail(syscall.EINVAL)
		}
		var err error
		if g, err = c.pickWriteGroup(); err != nil {
			return fail(err)
		}
	}
	active := g.active()
	if len(active) == 0 {
		return fail(syscall.ENOENT)
	}
	if all {
		m := fdfs.QueryStoreAllResponse{Group: g.name, IPSize: c.ipSize}
		for _, st := range active {
			m.Servers = append(m.Servers, storageAddr(st))
		}
		return ok(m.Append(nil))
	}
	c.mu.Lock()
	i := g.writeServer % len(active)
	g.writeServer = (i + 1) % len(active)
	c.mu.Unlock()
	return ok(fdfs.QueryStoreResponse{Group: g.name, Server: storageAddr(active[i]), IPSize: c.ipSize}.Append(nil))
}

// pickWriteGroup chooses the group for an upload without one.
func (c *Cluster) pickWriteGroup() (*group, error) {
	c.mu.Lock()
	start := c.writeGroup
	c.mu.Unlock()
	haveActive := false
	for k := range c.groups {
		i := (start + k) % len(c.groups)
		g := c.groups[i]
		if len(g.active()) == 0 {
			continue
		}
		haveActive = true
		if c.isFull(g.name) {
			continue
		}
		c.mu.Lock()
		c.writeGroup = (i + 1) % len(c.groups)
		c.mu.Unlock()
		return g, nil
	}
	if !haveActive {
		return nil, syscall.ENOENT
	}
	return nil, syscall.ENOSPC
}

// queryFetchUpdate answers QUERY_FETCH_ONE (102), QUERY_UPDATE (103) and
// QUERY_FETCH_ALL (105). Only storages that hold the file are named, so a
// file still being copied to a peer is fetched from where it is. When no
// storage holds it the tracker still answers, as upstream does (it works
// the storage out from the name); the storage then says ENOENT.
func (t *tracker) queryFetchUpdate(cmd byte, body []byte) response {
	c := t.c
	if len(body) < fdfs.FdfsGroupNameMaxLen+22 || len(body) >= fdfs.FdfsGroupNameMaxLen+128 {
		return fail(syscall.EINVAL)
	}
	m, err := fdfs.DecodeFileRequest(body)
	if err != nil {
		return fail(syscall.EINVAL)
	}
	g := c.findGroup(m.Group)
	if g == nil {
		return fail(syscall.ENOENT)
	}
	active := g.active()
	if len(active) == 0 {
		return fail(syscall.ENOENT)
	}
	var holders []*Storage
	var source *Storage
	for _, st := range active {
		if st.store.exists(m.Filename) {
			holders = append(holders, st)
			if source == nil && st.isSource(m.Filename) {
				source = st
			}
		}
	}
	if cmd == fdfs.TrackerProtoCmdServiceQueryFetchAll {
		if len(holders) == 0 {
			holders = active[:1]
		}
		r := fdfs.QueryFetchAllResponse{Group: g.name, IPSize: c.ipSize}
		for _, st := range holders {
			r.Servers = append(r.Servers, storageAddr(st))
		}
		return ok(r.Append(nil))
	}
	var pick *Storage
	switch {
	case len(holders) == 0:
		pick = active[0]
	case cmd == fdfs.TrackerProtoCmdServiceQueryUpdate:
		// Updates go to the source storage while it is up, as upstream.
		pick = holders[0]
		if source != nil {
			pick = source
		}
	default:
		info, err := decodeName(m.Filename)
		if err == nil && (info.appender || info.slave) && source != nil {
			// Appender and slave files are read from the source first.
			pick = source
			break
		}
		c.mu.Lock()
		i := g.readServer % len(holders)
		g.readServer = (g.readServer + 1) % len(g.storages)
		c.mu.Unlock()
		pick = holders[i]
	}
	return ok(fdfs.QueryFetchResponse{Group: g.name, Server: storageAddr(pick), IPSize: c.ipSize}.Append(nil))
}

// leader returns the first tracker that is running.
func (c *Cluster) leader() *tracker {
	for _, t := range c.trackers {
		if t.srv.isRunning() {
			return t
		}
	}
	return nil
}

// getLeader answers GET_LEADER (95) with "ip:port" of the leader.
func (t *tracker) getLeader(body []byte) response {
	if len(body) != 0 {
		return fail(syscall.EINVAL)
	}
	l := t.c.leader()
	if l == nil {
		return fail(syscall.ENOENT)
	}
	return ok(fdfs.GetLeaderResponse{Leader: fdfs.ServerAddr{IP: storageIP, Port: l.srv.listenPort()}}.Append(nil))
}

// trackerClusterStat answers TRACKER_CLUSTER_STAT (96). Only the leader
// answers; the others say EOPNOTSUPP, as upstream.
func (t *tracker) trackerClusterStat(body []byte) response {
	f, err := fdfs.DecodeTrackerClusterStatRequest(body)
	if err != nil {
		return fail(syscall.EINVAL)
	}
	if t.c.leader() != t {
		return fail(syscall.EOPNOTSUPP)
	}
	var r fdfs.TrackerClusterStatResponse
	now := time.Now().Unix()
	for _, o := range t.c.trackers {
		info := fdfs.TrackerInfo{
			Host:              o.srv.addr(),
			IsLeader:          o == t,
			IsActive:          o.srv.isRunning(),
			Connections:       o.srv.connectionStat(),
			Version:           serverVersion,
			UpTime:            o.srv.startTime().Unix(),
			LastHeartbeatTime: now,
		}
		if f.FilterBy&fdfs.FdfsTrackerStatFilterByIsLeader != 0 && info.IsLeader != f.IsLeader {
			continue
		}
		if f.FilterBy&fdfs.FdfsTrackerStatFilterByIsActive != 0 && info.IsActive != f.IsActive {
			continue
		}
		r.Trackers = append(r.Trackers, info)
	}
	return ok(r.Append(nil))
}

// storageClusterStat answers STORAGE_CLUSTER_STAT (97): every storage of
// every group, optionally filtered by status ('=' or '!').
func (t *tracker) storageClusterStat(body []byte) response {
	f, err := fdfs.DecodeStorageClusterStatRequest(body)
	if err != nil {
		return fail(syscall.EINVAL)
	}
	var r fdfs.StorageClusterStatResponse
	for _, g := range t.c.groups {
		for _, st := range g.storages {
			status := st.status()
			if f.FilterBy&fdfs.FdfsStorageStatFilterByStatus != 0 {
				switch {
				case f.OpType == '=' && status != f.Status,
					f.OpType == '!' && status == f.Status,
					f.OpType != '=' && f.OpType != '!':
					continue
				}
			}
			heartbeat := time.Now().Unix()
			if !st.srv.isRunning() {
				heartbeat = st.srv.startTime().Unix()
			}
			r.Storages = append(r.Storages, fdfs.StorageInfo{
				ID:                st.id(),
				Host:              st.srv.addr(),
				Status:            status,
				Connections:       st.srv.connectionStat(),
				Version:           serverVersion,
				UpTime:            st.srv.startTime().Unix(),
				LastHeartbeatTime: heartbeat,
			})
		}
	}
	return ok(r.Append(nil))
}

// volumnStat answers STORAGE_VOLUMN_STAT (98): space per group.
func (t *tracker) volumnStat(body []byte) response {
	f, err := fdfs.DecodeVolumnStatRequest(body)
	if err != nil {
		return fail(syscall.EINVAL)
	}
	var r fdfs.VolumnStatResponse
	for _, g := range t.c.groups {
		total, free := t.c.groupSpace(g)
		reserved := reservedMB(total)
		v := fdfs.VolumnInfo{
			Group:           g.name,
			TotalMB:         total,
			FreeMB:          free,
			ReservedMB:      reserved,
			IsDiskAvailable: free > reserved,
		}
		if v.IsDiskAvailable {
			v.AvailMB = free - reserved
		}
		if f.FilterBy&fdfs.FdfsVolumnStatFilterByIsDiskAvailable != 0 && v.IsDiskAvailable != f.IsDiskAvailable {
			continue
		}
		if f.FilterBy&fdfs.FdfsVolumnStatFilterByIsSpaceAvailable != 0 && v.IsDiskAvailable != f.IsSpaceAvailable {
			continue
		}
		r.Groups = append(r.Groups, v)
	}
	return ok(r.Append(nil))
}

// ipSizeOf returns the width of address fields in query and file-info
// responses for a stat layout: the IPv6 layouts (and the releases whose
// IP_ADDRESS_SIZE was 46) use 46 bytes, the others 16.
func ipSizeOf(l fdfs.StatLayout) int {
	switch l {
	case fdfs.StatLayoutV6_11, fdfs.StatLayoutV6_12, fdfs.StatLayoutV6_13_0,
		fdfs.StatLayoutV6_13_1, fdfs.StatLayoutV6_15IPv6:
		return fdfs.IPv6AddressSize
	}
	return fdfs.IPv4AddressSize
}
