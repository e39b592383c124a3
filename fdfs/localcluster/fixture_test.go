package localcluster

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"fdfsfs/fdfs"
)

// span is a byte range of a response body that legitimately differs from
// the capture (ports, times, disk sizes, counters, random name parts).
type span struct{ from, to int }

// checkAgainst compares a response with the captured one: same status,
// same body length, and the same bytes outside the spans that differ by
// nature.
func checkAgainst(t *testing.T, f fixture, h fdfs.Header, body []byte, differ ...span) {
	t.Helper()
	want := f.respHeader()
	if h.Status != want.Status {
		t.Fatalf("%s: status %d, captured %d", f.name, h.Status, want.Status)
	}
	if int64(len(body)) != want.Length {
		t.Fatalf("%s: body %d bytes, captured %d", f.name, len(body), want.Length)
	}
	got, exp := append([]byte(nil), body...), append([]byte(nil), f.respBody()...)
	for _, s := range differ {
		for i := s.from; i < s.to && i < len(got); i++ {
			got[i], exp[i] = 0, 0
		}
	}
	if !bytes.Equal(got, exp) {
		t.Errorf("%s: body differs outside the expected spans\n got %x\nwant %x", f.name, got, exp)
	}
}

// withName replaces a captured remote name in a request with one of ours
// of the same length, so the body length stays what was captured.
func withName(t *testing.T, f fixture, captured, ours string) []byte {
	t.Helper()
	if len(captured) != len(ours) {
		t.Fatalf("%s: name %q and %q differ in length", f.name, captured, ours)
	}
	if !bytes.Contains(f.request, []byte(captured)) {
		t.Fatalf("%s: request does not name %q", f.name, captured)
	}
	return bytes.ReplaceAll(f.request, []byte(captured), []byte(ours))
}

// Names in the captured requests.
const (
	capturedNormal   = "M00/00/A0/fwAAAWsGuzeADm3SAAAAG5tQi30758.txt"
	capturedAppender = "M00/00/A0/fwAAAWsGuzqEZGnoAAAAAHBp7QQ343.txt"
	capturedApp64    = "M00/00/A0/fwAAAWsGuzuEfS51AAAAAFbNphk124.txt"
	capturedMaster   = "M00/00/A0/fwAAAWsGuz6AAOsqAAAAG5tQi30880.txt"
)

// Offsets within records that hold ports, times, sizes or counters.
var (
	groupStatVarying = []span{{17, 49}, {57, 65}} // total, free, reserved, trunk free; port
	queryPort        = span{31, 39}               // after group (16) and IP (15)
)

// TestCapturedTrackerFrames sends the captured tracker requests byte for
// byte and compares the answers with the captured ones.
func TestCapturedTrackerFrames(t *testing.T) {
	c := startCluster(t, Options{})
	w := dialWire(t, c.TrackerAddr())

	t.Run("01-list-all-groups", func(t *testing.T) {
		f := loadFixture(t, "01")
		h, body := w.roundTrip(f.request)
		var differ []span
		for i := 0; i < 3; i++ {
			for _, s := range groupStatVarying {
				differ = append(differ, span{i*113 + s.from, i*113 + s.to})
			}
		}
		checkAgainst(t, f, h, body, differ...)
		gs, layout, err := fdfs.DecodeGroupStats(body, 0)
		if err != nil || layout != fdfs.StatLayoutV6_15IPv4 || len(gs) != 3 {
			t.Fatalf("decode: %v %v %d", err, layout, len(gs))
		}
		for i, g := range gs {
			if want := int64(c.Storages()[i].srv.listenPort()); g.StoragePort != want {
				t.Errorf("%s: port %d, want %d", g.Name, g.StoragePort, want)
			}
			if g.TotalMB <= 0 || g.FreeMB <= 0 || g.ReservedMB != g.TotalMB/10 {
				t.Errorf("%s: space %d/%d/%d", g.Name, g.TotalMB, g.FreeMB, g.ReservedMB)
			}
		}
	})
	t.Run("02-list-storages", func(t *testing.T) {
		f := loadFixture(t, "02")
		h, body := w.roundTrip(f.request)
		// Status, rw_mode, id, ip, src_id and version match; the rest are
		// times, sizes, the port and counters.
		checkAgainst(t, f, h, body, span{58, 98}, span{130, 138}, span{138, 486})
		ss, _, err := fdfs.DecodeStorageStats(body, 0)
		if err != nil || len(ss) != 1 {
			t.Fatalf("decode: %v", err)
		}
		s := ss[0]
		if s.Status != fdfs.FdfsStorageStatusActive || s.Version != "6.16.1" || s.IPAddr != "127.0.0.1" ||
			s.StoragePort != int64(storageOf(t, c, "group1").srv.listenPort()) || s.UploadPriority != 10 ||
			s.StorePathCount != 1 || s.SubdirCountPerPath != 256 {
			t.Errorf("record: %+v", s)
		}
	})
	t.Run("03-list-one-group", func(t *testing.T) {
		f := loadFixture(t, "03")
		h, body := w.roundTrip(f.request)
		checkAgainst(t, f, h, body, groupStatVarying...)
	})
	for _, n := range []string{"04", "05", "08"} {
		t.Run(n+"-nonexistent-group", func(t *testing.T) {
			f := loadFixture(t, n)
			h, body := w.roundTrip(f.request)
			checkAgainst(t, f, h, body)
		})
	}
	for _, n := range []string{"06", "07", "09", "10"} {
		t.Run(n+"-query-store", func(t *testing.T) {
			f := loadFixture(t, n)
			h, body := w.roundTrip(f.request)
			// Without a group the groups take turns; the capture got group1.
			differ := []span{queryPort}
			if f.reqHeader().Length == 0 {
				differ = append(differ, span{0, 16})
			}
			checkAgainst(t, f, h, body, differ...)
			m, err := fdfs.DecodeQueryStoreResponse(body)
			if err != nil {
				t.Fatal(err)
			}
			if want := storageOf(t, c, m.Group).srv.listenPort(); m.Server.Port != want {
				t.Errorf("port %d, want %s's %d", m.Server.Port, m.Group, want)
			}
		})
	}
	t.Run("14-tracker-active-test", func(t *testing.T) {
		f := loadFixture(t, "14")
		h, body := w.roundTrip(f.request)
		checkAgainst(t, f, h, body)
	})
	t.Run("33-get-tracker-leader", func(t *testing.T) {
		f := loadFixture(t, "33")
		h, body := w.roundTrip(f.request)
		// The capture's leader was 127.0.0.2:22122; ours has another port.
		if h.Status != 0 || string(body) != c.TrackerAddr() {
			t.Fatalf("leader %q status %d, want %q", body, h.Status, c.TrackerAddr())
		}
	})
	t.Run("34-tracker-cluster-stat", func(t *testing.T) {
		f := loadFixture(t, "34")
		h, body := w.roundTrip(f.request)
		// host (the capture has garbage after its NUL), counters, times.
		checkAgainst(t, f, h, body, span{1, 53}, span{55, 67}, span{75, 91})
		m, err := fdfs.DecodeTrackerClusterStatResponse(body)
		if err != nil || len(m.Trackers) != 1 || m.Trackers[0].Host != c.TrackerAddr() || !m.Trackers[0].IsLeader {
			t.Fatalf("decode: %v %+v", err, m)
		}
	})
	t.Run("35-storage-cluster-stat", func(t *testing.T) {
		f := loadFixture(t, "35")
		h, body := w.roundTrip(f.request)
		var differ []span
		for i := 0; i < 3; i++ {
			at := 6 + i*106
			// id and host have garbage after the NUL in the capture;
			// counters and times differ.
			differ = append(differ, span{at, at + 68}, span{at + 70, at + 82}, span{at + 90, at + 106})
		}
		checkAgainst(t, f, h, body, differ...)
		m, err := fdfs.DecodeStorageClusterStatResponse(body)
		if err != nil || len(m.Storages) != 3 {
			t.Fatalf("decode: %v", err)
		}
		for i, s := range m.Storages {
			if s.ID != "127.0.0.1" || s.Host != c.Storages()[i].Addr() || s.Status != fdfs.FdfsStorageStatusActive {
				t.Errorf("storage %d: %+v", i, s)
			}
		}
	})
	t.Run("36-volumn-stat", func(t *testing.T) {
		f := loadFixture(t, "36")
		h, body := w.roundTrip(f.request)
		var differ []span
		for i := 0; i < 3; i++ {
			at := 5 + i*59
			// The capture has garbage after the group name's NUL; the
			// space figures are another disk's.
			differ = append(differ, span{at, at + 57})
		}
		checkAgainst(t, f, h, body, differ...)
		m, err := fdfs.DecodeVolumnStatResponse(body)
		if err != nil || len(m.Groups) != 3 || m.Groups[2].Group != "group3" {
			t.Fatalf("decode: %v %+v", err, m)
		}
	})
}

// TestCapturedStorageFrames replays the captured storage requests in the
// order the tools sent them, with our file names in place of the captured
// ones, and compares the answers; the tracker queries that name a file run
// against the same files.
func TestCapturedStorageFrames(t *testing.T) {
	c := startCluster(t, Options{})
	st := storageOf(t, c, "group1")
	sw := dialWire(t, st.Addr())
	tw := dialWire(t, c.TrackerAddr())
	nameSpan := span{16 + 10, 16 + 44} // base64 and digits after "M00/XX/XX/"

	// 15: the captured upload itself creates our normal file.
	f15 := loadFixture(t, "15")
	h, body := sw.roundTrip(f15.request)
	checkAgainst(t, f15, h, body, span{16 + 4, 16 + 9}, nameSpan)
	normal := string(body[16:])
	info, err := fdfs.ParseRemoteFilename(normal)
	if err != nil || info.Size != 27 || info.SourceIP.String() != "127.0.0.1" || info.Appender ||
		info.CRC32 != 0x9b508b7d || info.Ext != "txt" {
		t.Fatalf("uploaded name %q decodes to %+v, %v", normal, info, err)
	}

	for _, n := range []string{"11", "12", "13"} {
		f := loadFixture(t, n)
		h, body := tw.roundTrip(withName(t, f, capturedNormal, normal))
		checkAgainst(t, f, h, body, queryPort)
	}
	for _, n := range []string{"20", "21"} {
		f := loadFixture(t, n)
		h, body := sw.roundTrip(withName(t, f, capturedNormal, normal))
		checkAgainst(t, f, h, body) // the content, byte for byte
	}
	for _, n := range []string{"22", "23", "24"} {
		f := loadFixture(t, n)
		h, body := sw.roundTrip(withName(t, f, capturedNormal, normal))
		checkAgainst(t, f, h, body) // 24: the merged metadata, sorted
	}

	// 16, 17, 25, 26, 30: an appender file, appended to, queried, renamed.
	f16 := loadFixture(t, "16")
	h, body = sw.roundTrip(f16.request)
	checkAgainst(t, f16, h, body, span{16 + 4, 16 + 9}, nameSpan)
	appender := string(body[16:])
	if info, err := fdfs.ParseRemoteFilename(appender); err != nil || !info.Appender {
		t.Fatalf("appender name %q: %+v %v", appender, info, err)
	}
	f17 := loadFixture(t, "17")
	h, body = sw.roundTrip(withName(t, f17, capturedAppender, appender))
	checkAgainst(t, f17, h, body)
	f25 := loadFixture(t, "25")
	h, body = sw.roundTrip(withName(t, f25, capturedAppender, appender))
	checkAgainst(t, f25, h, body, span{8, 16}) // size, CRC32 and IP match; not the time
	f26 := loadFixture(t, "26")
	h, body = sw.roundTrip(withName(t, f26, capturedAppender, appender))
	checkAgainst(t, f26, h, body, span{16 + 4, 16 + 9}, nameSpan)
	renamed := string(body[16:])
	if renamed[:10] != appender[:10] || renamed[len(renamed)-7:] != appender[len(appender)-7:] {
		t.Errorf("regenerated %q does not keep the directories and tail of %q", renamed, appender)
	}
	if info, err := fdfs.ParseRemoteFilename(renamed); err != nil || info.Appender || info.Size != 23 || info.CRC32 != 0x495ba6fd {
		t.Errorf("regenerated name decodes to %+v, %v", info, err)
	}
	f30 := loadFixture(t, "30")
	h, body = sw.roundTrip(withName(t, f30, capturedAppender, appender))
	checkAgainst(t, f30, h, body)

	// 18, 19: modify at 96 and truncate to 32, on an appender of 100 bytes.
	app64 := upload(t, st, fdfs.StorageProtoCmdUploadAppenderFile, "txt", bytes.Repeat([]byte("x"), 100))
	for _, n := range []string{"18", "19"} {
		f := loadFixture(t, n)
		h, body := sw.roundTrip(withName(t, f, capturedApp64, app64))
		checkAgainst(t, f, h, body)
	}
	if fi, _, err := st.store.stat(app64); err != nil || fi.Size() != 32 {
		t.Errorf("after modify and truncate: %v, %v", fi, err)
	}

	f31 := loadFixture(t, "31")
	h, body = sw.roundTrip(f31.request)
	checkAgainst(t, f31, h, body)

	// 32: a slave of our normal file.
	f32 := loadFixture(t, "32")
	h, body = sw.roundTrip(withName(t, f32, capturedMaster, normal))
	checkAgainst(t, f32, h, body, span{16 + 4, 16 + 9}, nameSpan)
	if want := strings.TrimSuffix(normal, ".txt") + "_big.txt"; string(body[16:]) != want {
		t.Errorf("slave %q, want %q", body[16:], want)
	}

	// 27, 28, 29: delete, delete again, download the deleted file.
	for _, n := range []string{"27", "28", "29"} {
		f := loadFixture(t, n)
		h, body := sw.roundTrip(withName(t, f, capturedNormal, normal))
		checkAgainst(t, f, h, body)
	}
	// As upstream, the tracker still names a storage for the deleted file.
	f11 := loadFixture(t, "11")
	h, body = tw.roundTrip(withName(t, f11, capturedNormal, normal))
	checkAgainst(t, f11, h, body, queryPort)
}

func TestFixtureCoverage(t *testing.T) {
	// Every captured exchange is replayed by one of the tests above.
	for i := 1; i <= 38; i++ {
		loadFixture(t, fmt.Sprintf("%02d", i))
	}
}
