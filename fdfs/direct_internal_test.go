package fdfs

import (
	"net"
	"testing"
	"time"
)

// TestPickRead checks the direct choice against the tracker's rule in
// tracker_mem_get_storage_by_filename, one case per clause.
func TestPickRead(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fresh := now.Add(-10 * time.Second) // a file created 10 s ago
	storage := func(ip string, port int64, status byte, synced int64) StorageStat {
		return StorageStat{ID: ip, IPAddr: ip, StoragePort: port, Status: status, RWMode: rwModeRead | rwModeWrite,
			Stat: StorageCounters{LastSyncedTimestamp: synced, LastHeartBeatTime: now.Unix()}}
	}
	src := storage("10.0.0.1", 23000, FdfsStorageStatusActive, 0)
	peer := storage("10.0.0.2", 23000, FdfsStorageStatusActive, 0)
	peerSynced := storage("10.0.0.2", 23000, FdfsStorageStatusActive, fresh.Unix()+1)
	peerAtFile := storage("10.0.0.2", 23000, FdfsStorageStatusActive, fresh.Unix())
	srcOffline := storage("10.0.0.1", 23000, FdfsStorageStatusOffline, 0)
	srcWriteOnly := src
	srcWriteOnly.RWMode = rwModeWrite
	byID := func(s StorageStat, id string) StorageStat { s.ID = id; return s }

	file := func(created time.Time, mod func(*FileID)) FileID {
		f := FileID{Group: "g", SourceIP: net.IPv4(10, 0, 0, 1).To4(), CreateTime: created, Size: 4096}
		if mod != nil {
			mod(&f)
		}
		return f
	}
	appender := func(f *FileID) { f.Appender, f.Size = true, -1 }
	slave := func(f *FileID) { f.Slave, f.Size = true, -1 }
	sourceID := func(f *FileID) { f.SourceIP, f.SourceID = nil, 100002 }
	a1 := ServerAddr{IP: "10.0.0.1", Port: 23000}
	a2 := ServerAddr{IP: "10.0.0.2", Port: 23000}

	cases := []struct {
		name     string
		storages []StorageStat
		classic  bool // records without rw_mode
		id       FileID
		down     []ServerAddr
		want     []ServerAddr // the choices over several turns; none: ask the tracker
	}{
		{"new file: the source only", []StorageStat{src, peer}, false, file(fresh, nil), nil, []ServerAddr{a1}},
		{"new file, source offline: the tracker", []StorageStat{srcOffline, peer}, false, file(fresh, nil), nil, nil},
		{"new file, source down here: the tracker", []StorageStat{src, peer}, false, file(fresh, nil), []ServerAddr{a1}, nil},
		{"new file, source not readable (rw_mode)", []StorageStat{srcWriteOnly, peer}, false, file(fresh, nil), nil, nil},
		{"rw_mode is not read from classic records", []StorageStat{srcWriteOnly, peer}, true, file(fresh, nil), nil, []ServerAddr{a1}},
		{"peer synced past the file: both take turns", []StorageStat{src, peerSynced}, false, file(fresh, nil), nil, []ServerAddr{a1, a2}},
		{"peer synced to the file's second, file younger than max_time", []StorageStat{src, peerAtFile}, false, file(fresh, nil), nil, []ServerAddr{a1}},
		{"peer synced to the file's second, file older than max_time", []StorageStat{src, storage("10.0.0.2", 23000, FdfsStorageStatusActive, now.Add(-time.Hour).Unix())},
			false, file(now.Add(-time.Hour), nil), nil, []ServerAddr{a1, a2}},
		{"file older than max_delay: every readable storage", []StorageStat{src, peer}, false, file(now.Add(-25*time.Hour), nil), nil, []ServerAddr{a1, a2}},
		{"old file, source offline: the peer", []StorageStat{srcOffline, peer}, false, file(now.Add(-25*time.Hour), nil), nil, []ServerAddr{a2}},
		{"appender: the source even when old", []StorageStat{src, peerSynced}, false, file(now.Add(-25*time.Hour), appender), nil, []ServerAddr{a1}},
		{"appender, source offline: the tracker", []StorageStat{srcOffline, peer}, false, file(now.Add(-25*time.Hour), appender), nil, nil},
		{"slave: the source", []StorageStat{src, peerSynced}, false, file(fresh, slave), nil, []ServerAddr{a1}},
		{"server id in the name", []StorageStat{byID(src, "100001"), byID(peer, "100002")}, false, file(fresh, sourceID), nil, []ServerAddr{a2}},
		{"server id unknown to the list: the tracker", []StorageStat{byID(src, "100001")}, false, file(fresh, sourceID), nil, nil},
		{"two storages with the source's address: the tracker", []StorageStat{src, storage("10.0.0.1", 23001, FdfsStorageStatusActive, 0)}, false, file(fresh, nil), nil, nil},
		{"no port in the record: the tracker", []StorageStat{storage("10.0.0.1", 0, FdfsStorageStatusActive, 0)}, false, file(fresh, nil), nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &groupView{storages: tc.storages, rwKnown: !tc.classic, fetched: now, ok: true}
			down := func(a ServerAddr) bool {
				for _, d := range tc.down {
					if d == a {
						return true
					}
				}
				return false
			}
			got := map[ServerAddr]bool{}
			for turn := range uint64(4) {
				a, ok := v.pickRead(tc.id, now, turn, down)
				if !ok {
					if len(tc.want) != 0 {
						t.Fatalf("turn %d: no choice, want %v", turn, tc.want)
					}
					continue
				}
				got[a] = true
			}
			if len(got) != len(tc.want) {
				t.Fatalf("chose %v over 4 turns, want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if !got[w] {
					t.Errorf("never chose %v; chose %v", w, got)
				}
			}
		})
	}
}

// TestTrackerNow: the tracker's clock is estimated from its latest
// heartbeat, and never ahead of the local one.
func TestTrackerNow(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v := &groupView{fetched: now.Add(-5 * time.Second), storages: []StorageStat{
		{Stat: StorageCounters{LastHeartBeatTime: now.Add(-40 * time.Second).Unix()}},
		{Stat: StorageCounters{LastHeartBeatTime: now.Add(-20 * time.Second).Unix()}},
	}}
	if got, want := v.trackerNow(now), now.Add(-15*time.Second); !got.Equal(want) {
		t.Errorf("trackerNow = %v, want %v (latest heartbeat plus the list's age)", got, want)
	}
	ahead := &groupView{fetched: now, storages: []StorageStat{{Stat: StorageCounters{LastHeartBeatTime: now.Add(time.Hour).Unix()}}}}
	if got := ahead.trackerNow(now); !got.Equal(now) {
		t.Errorf("trackerNow with the tracker's clock ahead = %v, want the local %v", got, now)
	}
	if got := (&groupView{fetched: now}).trackerNow(now); !got.Equal(now) {
		t.Errorf("trackerNow without heartbeats = %v, want %v", got, now)
	}
}

// TestPickUpdate: changes go to the source when it is active and writable.
func TestPickUpdate(t *testing.T) {
	src := StorageStat{ID: "10.0.0.1", IPAddr: "10.0.0.1", StoragePort: 23000, Status: FdfsStorageStatusActive, RWMode: rwModeRead | rwModeWrite}
	id := FileID{Group: "g", SourceIP: net.IPv4(10, 0, 0, 1).To4(), CreateTime: time.Now(), Size: 1}
	none := func(ServerAddr) bool { return false }
	v := &groupView{storages: []StorageStat{src}, rwKnown: true, ok: true}
	if a, ok := v.pickUpdate(id, none); !ok || a != (ServerAddr{IP: "10.0.0.1", Port: 23000}) {
		t.Errorf("active writable source: %v %v", a, ok)
	}
	readOnly := src
	readOnly.RWMode = rwModeRead
	if _, ok := (&groupView{storages: []StorageStat{readOnly}, rwKnown: true, ok: true}).pickUpdate(id, none); ok {
		t.Error("a read-only source was chosen for a change")
	}
	offline := src
	offline.Status = FdfsStorageStatusOffline
	if _, ok := (&groupView{storages: []StorageStat{offline}, rwKnown: true, ok: true}).pickUpdate(id, none); ok {
		t.Error("an offline source was chosen for a change")
	}
}
