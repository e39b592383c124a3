package fdfs

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"
)

// Reading without the tracker. A file ID names the storage that created
// the file (its IPv4 address or its server id) and when. With the group's
// storage list (LIST_STORAGE), kept for Config.StorageListTTL, the client
// picks a storage the way the tracker does for QUERY_FETCH_ONE
// (tracker_mem_get_storage_by_filename in tracker/tracker_mem.c) and reads
// from it directly, saving a tracker round trip per file:
//
//   - Appender and slave files are read from their source storage only, when
//     it is readable: their content changes in place, and a replica may lag.
//   - A normal file's content never changes under its ID. It is read from
//     a readable storage that is its source, or that has had time to get
//     the copy by the tracker's own test: the file is older than
//     storage_sync_file_max_delay, or the storage's last_synced_timestamp
//     is past the file's creation, or has reached it and the file is older
//     than storage_sync_file_max_time (tracker.conf defaults, one day and
//     five minutes). Several such storages take turns, as the tracker's
//     round robin does.
//
// "Now" in those tests is the tracker's: the storages' latest heartbeat in
// the list plus the list's age, which lags the tracker's clock, so the tests
// err towards the source. Changes (QUERY_UPDATE) go to the source storage
// when it is active and writable, as the tracker sends them.
//
// Whatever the list says, a storage that answers ENOENT (a replica without
// the copy yet) or cannot be reached sends the request through the tracker
// as before; one that could not be reached is also skipped for downFor.

// Tracker defaults the direct choice mirrors (tracker.conf).
const (
	syncFileMaxDelay = 86400 * time.Second // storage_sync_file_max_delay
	syncFileMaxTime  = 300 * time.Second   // storage_sync_file_max_time
)

// downFor is how long a storage that could not be reached is left out of
// direct choices. The tracker notices a dead storage after its
// check_active_interval (120 s by default) and its list says so then.
const downFor = 30 * time.Second

// Bits of rw_mode (V6.13+): R_OK and W_OK.
const (
	rwModeRead  = 4
	rwModeWrite = 2
)

// groupView is one group's storage list as the tracker gave it.
type groupView struct {
	storages []StorageStat
	rwKnown  bool      // the records carry rw_mode (V6.13 and later)
	fetched  time.Time // when the list arrived
	ok       bool      // a list has arrived
	// expires is when the list is fetched again; refreshing is set while
	// one caller does so (the others use the old list meanwhile).
	expires    time.Time
	refreshing bool
}

// trackerNow estimates the tracker's clock at local time now from the
// latest heartbeat it recorded: never later than the tracker's own.
func (v *groupView) trackerNow(now time.Time) time.Time {
	var beat int64
	for i := range v.storages {
		beat = max(beat, v.storages[i].Stat.LastHeartBeatTime)
	}
	if beat <= 0 {
		return now
	}
	est := time.Unix(beat, 0).Add(now.Sub(v.fetched))
	if est.After(now) {
		return now
	}
	return est
}

func (v *groupView) readable(s *StorageStat) bool {
	return s.Status == FdfsStorageStatusActive && (!v.rwKnown || s.RWMode&rwModeRead != 0)
}

func (v *groupView) writable(s *StorageStat) bool {
	return s.Status == FdfsStorageStatusActive && (!v.rwKnown || s.RWMode&rwModeWrite != 0)
}

// source returns the record of the storage that created id, or nil. A
// source known by IP address only is found when one storage of the group
// has that address (FastDFS gives the storages of a group one port, so
// their addresses differ; the local cluster's share 127.0.0.1).
func (v *groupView) source(id FileID) *StorageStat {
	var found *StorageStat
	if id.SourceID != 0 {
		want := strconv.FormatUint(uint64(id.SourceID), 10)
		for i := range v.storages {
			if v.storages[i].ID == want {
				return &v.storages[i]
			}
		}
		return nil
	}
	if id.SourceIP == nil {
		return nil
	}
	want := id.SourceIP.String()
	for i := range v.storages {
		if v.storages[i].IPAddr == want {
			if found != nil {
				return nil
			}
			found = &v.storages[i]
		}
	}
	return found
}

func storageAddr(s *StorageStat) (ServerAddr, bool) {
	if s.IPAddr == "" || s.StoragePort <= 0 || s.StoragePort > 65535 || net.ParseIP(s.IPAddr) == nil {
		return ServerAddr{}, false
	}
	return ServerAddr{IP: s.IPAddr, Port: int(s.StoragePort)}, true
}

// pickRead chooses a storage to read id from by the tracker's rule (see
// above), skipping those down reports, with turn picking among several. ok
// is false when the list allows no choice: the tracker decides then.
func (v *groupView) pickRead(id FileID, now time.Time, turn uint64, down func(ServerAddr) bool) (ServerAddr, bool) {
	src := v.source(id)
	if id.Appender || id.Slave {
		if src == nil || !v.readable(src) {
			return ServerAddr{}, false
		}
		a, ok := storageAddr(src)
		if !ok || down(a) {
			return ServerAddr{}, false
		}
		return a, true
	}
	now = v.trackerNow(now)
	created := id.CreateTime.Unix()
	age := now.Unix() - created
	old := age > int64(syncFileMaxDelay/time.Second)
	var eligible []ServerAddr
	for i := range v.storages {
		s := &v.storages[i]
		if !v.readable(s) {
			continue
		}
		synced := s.Stat.LastSyncedTimestamp
		if s != src && !old && synced <= created &&
			!(synced+1 >= created && age > int64(syncFileMaxTime/time.Second)) {
			continue
		}
		if a, ok := storageAddr(s); ok && !down(a) {
			eligible = append(eligible, a)
		}
	}
	if len(eligible) == 0 {
		return ServerAddr{}, false
	}
	return eligible[turn%uint64(len(eligible))], true
}

// pickUpdate returns id's source storage when it is active and writable.
func (v *groupView) pickUpdate(id FileID, down func(ServerAddr) bool) (ServerAddr, bool) {
	src := v.source(id)
	if src == nil || !v.writable(src) {
		return ServerAddr{}, false
	}
	a, ok := storageAddr(src)
	if !ok || down(a) {
		return ServerAddr{}, false
	}
	return a, true
}

// view returns group's storage list, fetching it when it is missing or
// older than Config.StorageListTTL. While one caller fetches, the others
// use the previous list, or none. A failed fetch is tried again after the
// TTL; the previous list serves meanwhile.
func (c *Client) view(ctx context.Context, group string) *groupView {
	ttl := c.cfg.StorageListTTL
	if ttl <= 0 {
		return nil
	}
	now := time.Now()
	c.viewsMu.Lock()
	v := c.views[group]
	if v != nil && (now.Before(v.expires) || v.refreshing) {
		c.viewsMu.Unlock()
		if !v.ok {
			return nil
		}
		return v
	}
	refreshing := &groupView{refreshing: true}
	if v != nil {
		cp := *v
		cp.refreshing = true
		refreshing = &cp
	}
	if c.views == nil {
		c.views = make(map[string]*groupView)
	}
	c.views[group] = refreshing
	c.viewsMu.Unlock()

	storages, layout, err := c.listStorages(ctx, group, "")
	next := *refreshing
	next.refreshing = false
	next.expires = time.Now().Add(ttl)
	if err == nil {
		next.storages, next.ok, next.fetched = storages, true, time.Now()
		info, _ := layout.info()
		next.rwKnown = !info.classic
	} else {
		c.cfg.Logger.Debug("fdfs: storage list unavailable; reads ask the tracker", "group", group, "err", err)
	}
	c.viewsMu.Lock()
	c.views[group] = &next
	c.viewsMu.Unlock()
	if !next.ok {
		return nil
	}
	return &next
}

// isDown reports whether a storage failed lately (see downFor).
func (c *Client) isDown(a ServerAddr) bool {
	c.viewsMu.Lock()
	defer c.viewsMu.Unlock()
	until, ok := c.down[a.String()]
	if ok && time.Now().After(until) {
		delete(c.down, a.String())
		return false
	}
	return ok
}

// markDown leaves addr out of direct choices for downFor.
func (c *Client) markDown(addr string) {
	c.viewsMu.Lock()
	if c.down == nil {
		c.down = make(map[string]time.Time)
	}
	c.down[addr] = time.Now().Add(downFor)
	c.viewsMu.Unlock()
}

// directRead names a storage to read id from without the tracker, if the
// group's list allows one.
func (c *Client) directRead(ctx context.Context, id FileID) (ServerAddr, bool) {
	v := c.view(ctx, id.Group)
	if v == nil {
		return ServerAddr{}, false
	}
	return v.pickRead(id, time.Now(), c.readTurn.Add(1), c.isDown)
}

// directUpdate names the storage to change id on without the tracker, if
// the group's list allows it.
func (c *Client) directUpdate(ctx context.Context, id FileID) (ServerAddr, bool) {
	v := c.view(ctx, id.Group)
	if v == nil {
		return ServerAddr{}, false
	}
	return v.pickUpdate(id, c.isDown)
}

// directFailed reports whether err from a storage chosen without the
// tracker calls for asking the tracker: the storage lacks the file (a
// replica not yet synced answers ENOENT) or could not be reached (it is
// then left out for a while).
func (c *Client) directFailed(addr string, err error) bool {
	if err == nil {
		return false
	}
	if retryable(err) {
		c.markDown(addr)
		return true
	}
	var se *StatusError
	return errors.As(err, &se) && se.Errno() == syscall.ENOENT
}
