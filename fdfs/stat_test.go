package fdfs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleStorageStat() StorageStat {
	s := StorageStat{
		Status: FdfsStorageStatusActive, RWMode: 6, ID: "100001", IPAddr: "192.168.1.20",
		DomainName: "img.example.com", SrcID: "100002", Version: "6.12.1",
		JoinTime: 1700000000, UpTime: 1700000100, TotalMB: 1000, FreeMB: 400, ReservedMB: 50,
		UploadPriority: 10, StorePathCount: 2, SubdirCountPerPath: 256, CurrentWritePath: 1,
		StoragePort: 23000, StorageHTTPPort: 8888, IfTrunkServer: true,
	}
	s.Stat.Connections = ConnectionStat{AllocCount: 64, CurrentCount: 2, MaxCount: 9}
	for i, p := range s.Stat.fields() {
		*p = int64(1000 + i)
	}
	return s
}

// stripStorage zeroes what layout l cannot carry, and cuts the version to
// its width.
func stripStorage(s StorageStat, l StatLayout) StorageStat {
	i, _ := l.info()
	if i.classic {
		s.RWMode = 0
	} else {
		s.DomainName, s.StorageHTTPPort = "", 0
	}
	if !i.reserved {
		s.ReservedMB = 0
	}
	if len(s.Version) > i.versionSize {
		s.Version = s.Version[:i.versionSize]
	}
	return s
}

// TestStatLayoutOffsets checks sizes and field offsets worked out by hand
// from each tag's tracker_proto.h (all members are chars, so no padding).
func TestStatLayoutOffsets(t *testing.T) {
	tests := []struct {
		layout                      StatLayout
		group, storage              int
		ipOff, portOff, statOff     int // in the storage record
		httpOff                     int // 0: none
		groupPortOff, groupCountOff int // sz_storage_port, and active or readable count
	}{
		{StatLayoutV5_11, 105, 612, 17, 247, 263, 255, 49, 65},
		{StatLayoutV6_11, 105, 642, 17, 277, 293, 285, 49, 65},
		{StatLayoutV6_12, 105, 644, 17, 279, 295, 287, 49, 65},
		{StatLayoutV6_13_0, 105, 509, 18, 152, 160, 0, 49, 57},
		{StatLayoutV6_13_1, 113, 517, 18, 160, 168, 0, 57, 65},
		{StatLayoutV6_15IPv4, 113, 487, 18, 130, 138, 0, 57, 65},
		{StatLayoutV6_15IPv6, 113, 517, 18, 160, 168, 0, 57, 65},
	}
	for _, tt := range tests {
		t.Run(tt.layout.String(), func(t *testing.T) {
			eq(t, "group size", tt.layout.GroupStatSize(), tt.group)
			eq(t, "storage size", tt.layout.StorageStatSize(), tt.storage)
			s := sampleStorageStat()
			b := s.Append(nil, tt.layout)
			eq(t, "encoded", len(b), tt.storage)
			eq(t, "ip", cString(b[tt.ipOff:tt.ipOff+16]), "192.168.1.20")
			eq(t, "port", getInt64(b[tt.portOff:]), 23000)
			eq(t, "alloc count", getInt32(b[tt.statOff:]), 64)
			eq(t, "heart beat", getInt64(b[tt.statOff+12+41*8:]), 1041)
			eq(t, "trunk", b[len(b)-1], 1)
			if tt.httpOff != 0 {
				eq(t, "http port", getInt64(b[tt.httpOff:]), 8888)
			}
			got, err := DecodeStorageStat(b, tt.layout)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "decoded", got, stripStorage(s, tt.layout))

			g := GroupStat{Name: "group7", TotalMB: 1, FreeMB: 2, ReservedMB: 3, TrunkFreeMB: 4, StorageCount: 5,
				StoragePort: 23000, StorageHTTPPort: 8888, ActiveCount: 7, ReadableServerCount: 7, WritableServerCount: 6,
				CurrentWriteServer: 1, StorePathCount: 2, SubdirCountPerPath: 256, CurrentTrunkFileID: -1}
			gb := g.Append(nil, tt.layout)
			eq(t, "group encoded", len(gb), tt.group)
			eq(t, "group port", getInt64(gb[tt.groupPortOff:]), 23000)
			eq(t, "group count", getInt64(gb[tt.groupCountOff:]), 7)
			eq(t, "trunk file id", getInt64(gb[len(gb)-8:]), -1)
			gg, err := DecodeGroupStat(gb, tt.layout)
			if err != nil {
				t.Fatal(err)
			}
			i, _ := tt.layout.info()
			want := g
			if i.classic {
				want.ReadableServerCount, want.WritableServerCount = 0, 0
			} else {
				want.StorageHTTPPort, want.ActiveCount = 0, 0
			}
			if !i.reserved {
				want.ReservedMB = 0
			}
			eq(t, "group decoded", gg, want)
		})
	}
}

func TestDecodeStatsDetect(t *testing.T) {
	s := sampleStorageStat()
	for _, l := range []StatLayout{StatLayoutV5_11, StatLayoutV6_11, StatLayoutV6_12, StatLayoutV6_13_0, StatLayoutV6_15IPv4, StatLayoutV6_15IPv6} {
		body := s.Append(s.Append(nil, l), l)
		got, used, err := DecodeStorageStats(body, 0)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		eq(t, l.String()+" layout", used, l)
		if !reflect.DeepEqual(got, []StorageStat{stripStorage(s, l), stripStorage(s, l)}) {
			t.Errorf("%s: decoded %+v", l, got)
		}
	}
	// 517 bytes: V6.13.1 and V6.15 IPv6 are the same bytes.
	got, _, err := DecodeStorageStats(s.Append(nil, StatLayoutV6_13_1), 0)
	if err != nil || got[0] != stripStorage(s, StatLayoutV6_13_1) {
		t.Fatalf("517: %+v, %v", got, err)
	}
	// A hint wins when it fits.
	if _, used, _ := DecodeStorageStats(s.Append(nil, StatLayoutV6_13_1), StatLayoutV6_13_1); used != StatLayoutV6_13_1 {
		t.Errorf("hint ignored: %s", used)
	}
	none, _, err := DecodeStorageStats(nil, 0)
	if err != nil || len(none) != 0 {
		t.Errorf("empty body: %v, %v", none, err)
	}
	_, _, err = DecodeStorageStats(make([]byte, 1000), 0)
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "487 (V6.15+ IPv4)") || !strings.Contains(err.Error(), "612 (V5.11-V6.10)") {
		t.Errorf("error does not list the layouts tried: %v", err)
	}

	g := GroupStat{Name: "g", StorageHTTPPort: 8080, ActiveCount: 1, ReadableServerCount: 2, WritableServerCount: 3}
	// 105 bytes default to the classic meaning; a V6.13.0 hint switches it.
	gs, used, err := DecodeGroupStats(g.Append(nil, StatLayoutV5_11), 0)
	if err != nil || used != StatLayoutV5_11 || gs[0].StorageHTTPPort != 8080 || gs[0].ActiveCount != 1 {
		t.Errorf("classic: %+v %s %v", gs, used, err)
	}
	gs, used, err = DecodeGroupStats(g.Append(nil, StatLayoutV6_13_0), StatLayoutV6_13_0)
	if err != nil || used != StatLayoutV6_13_0 || gs[0].ReadableServerCount != 2 || gs[0].WritableServerCount != 3 {
		t.Errorf("6.13.0: %+v %s %v", gs, used, err)
	}
	if _, _, err := DecodeGroupStats(make([]byte, 100), 0); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "113") {
		t.Errorf("bad group body: %v", err)
	}
}

func TestParseStatLayout(t *testing.T) {
	for v, want := range map[string]StatLayout{
		"5.11": StatLayoutV5_11, "V5.11": StatLayoutV5_11, "6.10": StatLayoutV5_11, "6.06": StatLayoutV5_11, "6.9.5": StatLayoutV5_11,
		"6.11": StatLayoutV6_11, "V6.11.0": StatLayoutV6_11,
		"6.12": StatLayoutV6_12, "6.12.4": StatLayoutV6_12,
		"6.13.0": StatLayoutV6_13_0, "6.13.1": StatLayoutV6_13_1, "6.13.2": StatLayoutV6_13_1,
		"6.15": StatLayoutV6_15IPv4, "6.16": StatLayoutV6_15IPv4, "V6.16.1": StatLayoutV6_15IPv4,
		"6.16-ipv6": StatLayoutV6_15IPv6,
	} {
		got, err := ParseStatLayout(v)
		if err != nil || got != want {
			t.Errorf("ParseStatLayout(%q) = %s, %v; want %s", v, got, err, want)
		}
	}
	for _, v := range []string{"", "6", "6.13", "6.14", "6.17", "5.10", "7.0", "6.12-ipv6", "abc", "6.x"} {
		_, err := ParseStatLayout(v)
		if err == nil || !strings.Contains(err.Error(), "5.11, 6.10, 6.11, 6.12, 6.13.0, 6.13.1, 6.16") {
			t.Errorf("ParseStatLayout(%q) error %v does not list the supported versions", v, err)
		}
	}
}
