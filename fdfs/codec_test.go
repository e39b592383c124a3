package fdfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// roundTrip checks that re-encoding a decoded request gives the captured bytes.
func roundTrip(t *testing.T, want []byte, got []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("re-encoded body differs\n got % x\nwant % x", got, want)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

const (
	fixtureRemote   = "M00/00/A0/fwAAAWsGuzeADm3SAAAAG5tQi30758.txt"
	fixtureAppender = "M00/00/A0/fwAAAWsGuzqEZGnoAAAAAHBp7QQ343.txt"
	fixtureContent  = "Hello FastDFS wire fixture\n"
)

// TestFixtures decodes every captured frame, checks the values against the
// fixture README, and re-encodes each request byte for byte.
func TestFixtures(t *testing.T) {
	checks := map[string]func(t *testing.T, fx fixture){
		"01-list-all-groups": func(t *testing.T, fx fixture) {
			roundTrip(t, fx.request.body, nil)
			groups, layout, err := DecodeGroupStats(fx.response.body, 0)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "layout", layout, StatLayoutV6_15IPv4)
			if len(groups) != 3 {
				t.Fatalf("got %d groups", len(groups))
			}
			want := GroupStat{Name: "group1", TotalMB: 258019, FreeMB: 79010, ReservedMB: 25801,
				StorageCount: 1, StoragePort: 23000, ReadableServerCount: 1, WritableServerCount: 1,
				StorePathCount: 1, SubdirCountPerPath: 256, CurrentTrunkFileID: -1}
			eq(t, "group1", groups[0], want)
			want.Name, want.StoragePort = "group3", 23002
			eq(t, "group3", groups[2], want)
			var again []byte
			for _, g := range groups {
				again = g.Append(again, layout)
			}
			roundTrip(t, fx.response.body, again)
		},
		"02-list-storages": func(t *testing.T, fx fixture) {
			req, err := DecodeListStoragesRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "req", req, ListStoragesRequest{Group: "group1"})
			roundTrip(t, fx.request.body, req.Append(nil))
			st, layout, err := DecodeStorageStats(fx.response.body, 0)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "layout", layout, StatLayoutV6_15IPv4)
			if len(st) != 1 {
				t.Fatalf("got %d storages", len(st))
			}
			s := st[0]
			eq(t, "status", s.Status, FdfsStorageStatusActive)
			eq(t, "rw_mode", s.RWMode, 6)
			eq(t, "id", s.ID, "127.0.0.1")
			eq(t, "ip", s.IPAddr, "127.0.0.1")
			eq(t, "src_id", s.SrcID, "")
			eq(t, "version", s.Version, "6.16.1")
			eq(t, "join", s.JoinTime, 1795602717)
			eq(t, "up", s.UpTime, 1795602855)
			eq(t, "total", s.TotalMB, 258019)
			eq(t, "free", s.FreeMB, 79010)
			eq(t, "reserved", s.ReservedMB, 25801)
			eq(t, "upload_priority", s.UploadPriority, 10)
			eq(t, "store_path_count", s.StorePathCount, 1)
			eq(t, "subdir", s.SubdirCountPerPath, 256)
			eq(t, "port", s.StoragePort, 23000)
			eq(t, "connections", s.Stat.Connections, ConnectionStat{64, 0, 3})
			eq(t, "success_upload_count", s.Stat.SuccessUploadCount, 16012)
			eq(t, "last_heart_beat_time", s.Stat.LastHeartBeatTime, 1795603246)
			eq(t, "trunk", s.IfTrunkServer, false)
			roundTrip(t, fx.response.body, s.Append(nil, layout))
		},
		"03-list-one-group": func(t *testing.T, fx fixture) {
			req, err := DecodeGroupRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "group", req.Group, "group1")
			roundTrip(t, fx.request.body, req.Append(nil))
			g, err := DecodeGroupStat(fx.response.body, StatLayoutV6_15IPv4)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "total", g.TotalMB, 258019)
			eq(t, "trunk file id", g.CurrentTrunkFileID, -1)
		},
		"06-query-store-without-group-one": func(t *testing.T, fx fixture) {
			roundTrip(t, fx.request.body, nil)
			m, err := DecodeQueryStoreResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "resp", m, QueryStoreResponse{Group: "group1", Server: ServerAddr{"127.0.0.1", 23000}, IPSize: IPv4AddressSize})
			roundTrip(t, fx.response.body, m.Append(nil))
		},
		"07-query-store-with-group-one": func(t *testing.T, fx fixture) {
			req, err := DecodeGroupRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, fx.request.body, req.Append(nil))
			m, err := DecodeQueryStoreResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "storage", m.Storage(), StorageAddr{Group: "group2", ServerAddr: ServerAddr{"127.0.0.1", 23001}})
		},
		"09-query-store-with-group-all": func(t *testing.T, fx fixture) {
			req, err := DecodeGroupRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "group", req.Group, "group3")
			roundTrip(t, fx.request.body, req.Append(nil))
			m, err := DecodeQueryStoreAllResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Storages(), []StorageAddr{{Group: "group3", ServerAddr: ServerAddr{"127.0.0.1", 23002}}}) {
				t.Fatalf("got %+v", m)
			}
			roundTrip(t, fx.response.body, m.Append(nil))
		},
		"10-query-store-without-group-all": func(t *testing.T, fx fixture) {
			roundTrip(t, fx.request.body, nil)
			m, err := DecodeQueryStoreAllResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "n", len(m.Servers), 1)
			eq(t, "server", m.Servers[0], ServerAddr{"127.0.0.1", 23000})
		},
		"11-query-fetch-one": func(t *testing.T, fx fixture) {
			checkFileRequest(t, fx, "group1", fixtureRemote)
			m, err := DecodeQueryFetchResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "resp", m, QueryFetchResponse{Group: "group1", Server: ServerAddr{"127.0.0.1", 23000}, IPSize: IPv4AddressSize})
			roundTrip(t, fx.response.body, m.Append(nil))
		},
		"12-query-fetch-all": func(t *testing.T, fx fixture) {
			checkFileRequest(t, fx, "group1", fixtureRemote)
			m, err := DecodeQueryFetchAllResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Servers, []ServerAddr{{"127.0.0.1", 23000}}) || m.Group != "group1" {
				t.Fatalf("got %+v", m)
			}
			roundTrip(t, fx.response.body, m.Append(nil))
		},
		"13-query-update": func(t *testing.T, fx fixture) {
			checkFileRequest(t, fx, "group1", fixtureRemote)
			m, err := DecodeQueryFetchResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "server", m.Server.String(), "127.0.0.1:23000")
		},
		"15-upload-file": func(t *testing.T, fx fixture) {
			req := checkContentRequest(t, fx, fixtureContent)
			eq(t, "req", req.(UploadFileRequest), UploadFileRequest{StorePathIndex: 0, FileSize: 27, Ext: "txt"})
			checkFileIDResponse(t, fx, "group1", fixtureRemote)
		},
		"16-upload-appender-file": func(t *testing.T, fx fixture) {
			req := checkContentRequest(t, fx, "appender-part-1\n")
			eq(t, "req", req.(UploadFileRequest), UploadFileRequest{FileSize: 16, Ext: "txt"})
			checkFileIDResponse(t, fx, "group1", fixtureAppender)
		},
		"17-append-file": func(t *testing.T, fx fixture) {
			req := checkContentRequest(t, fx, "part-2\n")
			eq(t, "req", req.(AppendFileRequest), AppendFileRequest{Filename: fixtureAppender, Size: 7})
		},
		"18-modify-file": func(t *testing.T, fx fixture) {
			content := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"
			req := checkContentRequest(t, fx, content)
			eq(t, "req", req.(ModifyFileRequest), ModifyFileRequest{Filename: "M00/00/A0/fwAAAWsGuzuEfS51AAAAAFbNphk124.txt", Offset: 96, Size: 64})
		},
		"19-truncate-file": func(t *testing.T, fx fixture) {
			req, err := DecodeTruncateFileRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "req", req, TruncateFileRequest{Filename: "M00/00/A0/fwAAAWsGuzuEfS51AAAAAFbNphk124.txt", Size: 32})
			roundTrip(t, fx.request.body, req.Append(nil))
		},
		"20-download-file": func(t *testing.T, fx fixture) {
			req, err := DecodeDownloadFileRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "req", req, DownloadFileRequest{Group: "group1", Filename: fixtureRemote})
			roundTrip(t, fx.request.body, req.Append(nil))
			eq(t, "content", string(fx.response.body), fixtureContent)
		},
		"21-download-file-range": func(t *testing.T, fx fixture) {
			req, err := DecodeDownloadFileRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "req", req, DownloadFileRequest{Offset: 6, Length: 7, Group: "group1", Filename: fixtureRemote})
			roundTrip(t, fx.request.body, req.Append(nil))
			eq(t, "content", string(fx.response.body), fixtureContent[6:13])
		},
		"22-set-metadata-overwrite": func(t *testing.T, fx fixture) {
			req := checkSetMetadata(t, fx)
			eq(t, "flag", req.Flag, MetaOverwrite)
			if !reflect.DeepEqual(req.Meta, []MetaEntry{{"width", "1024"}, {"height", "768"}}) {
				t.Fatalf("meta %+v", req.Meta)
			}
		},
		"23-set-metadata-merge": func(t *testing.T, fx fixture) {
			req := checkSetMetadata(t, fx)
			eq(t, "flag", req.Flag, MetaMerge)
			if !reflect.DeepEqual(req.Meta, []MetaEntry{{"height", "600"}, {"color", "red"}}) {
				t.Fatalf("meta %+v", req.Meta)
			}
		},
		"24-get-metadata": func(t *testing.T, fx fixture) {
			checkFileRequest(t, fx, "group1", fixtureRemote)
			meta, err := DecodeMetadata(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"color": "red", "height": "600", "width": "1024"}
			if !reflect.DeepEqual(MetaToMap(meta), want) {
				t.Fatalf("meta %+v", meta)
			}
			// The storage keeps them sorted by name, as MetaFromMap does.
			roundTrip(t, fx.response.body, AppendMetadata(nil, MetaFromMap(want)))
		},
		"25-query-file-info": func(t *testing.T, fx fixture) {
			checkFileRequest(t, fx, "group1", fixtureAppender)
			m, err := DecodeQueryFileInfoResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "resp", m, QueryFileInfoResponse{FileSize: 23, CreateTimestamp: 0x6b06bb3a, CRC32: 0x495ba6fd, SourceIP: "127.0.0.1", IPSize: IPv4AddressSize})
			roundTrip(t, fx.response.body, m.Append(nil))
		},
		"26-regenerate-appender-filename": func(t *testing.T, fx fixture) {
			req, err := DecodeRegenerateAppenderFilenameRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "filename", req.Filename, fixtureAppender)
			roundTrip(t, fx.request.body, req.Append(nil))
			checkFileIDResponse(t, fx, "group1", "M00/00/A0/fwAAAWsGuzyARp_UAAAAF0lbpv0343.txt")
		},
		"27-delete-file": func(t *testing.T, fx fixture) {
			checkFileRequest(t, fx, "group1", fixtureRemote)
		},
		"28-delete-file-nonexistent": func(t *testing.T, fx fixture) {
			checkFileRequest(t, fx, "group1", fixtureRemote)
		},
		"29-download-file-nonexistent": func(t *testing.T, fx fixture) {
			req, err := DecodeDownloadFileRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, fx.request.body, req.Append(nil))
		},
		"30-query-file-info-nonexistent": func(t *testing.T, fx fixture) {
			checkFileRequest(t, fx, "group1", fixtureAppender)
		},
		"32-upload-slave-file": func(t *testing.T, fx fixture) {
			req := checkContentRequest(t, fx, fixtureContent)
			master := "M00/00/A0/fwAAAWsGuz6AAOsqAAAAG5tQi30880.txt"
			eq(t, "req", req.(UploadSlaveFileRequest), UploadSlaveFileRequest{MasterFilename: master, FileSize: 27, PrefixName: "_big", Ext: "txt"})
			slave := "M00/00/A0/fwAAAWsGuz6AAOsqAAAAG5tQi30880_big.txt"
			checkFileIDResponse(t, fx, "group1", slave)
			name, err := SlaveRemoteName(master, "_big", "txt")
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "slave name", name, slave)
		},
		"33-get-tracker-leader": func(t *testing.T, fx fixture) {
			roundTrip(t, fx.request.body, nil)
			m, err := DecodeGetLeaderResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "leader", m.Leader, ServerAddr{"127.0.0.2", 22122})
			roundTrip(t, fx.response.body, m.Append(nil))
		},
		"34-tracker-cluster-stat": func(t *testing.T, fx fixture) {
			req, err := DecodeTrackerClusterStatRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, fx.request.body, req.Append(nil))
			m, err := DecodeTrackerClusterStatResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Trackers) != 1 {
				t.Fatalf("got %+v", m)
			}
			eq(t, "tracker", m.Trackers[0], TrackerInfo{Host: "127.0.0.2:22122", IsLeader: true, IsActive: true,
				Connections: ConnectionStat{256, 3, 5}, Version: "6.16.1", UpTime: 1795602855})
		},
		"35-storage-cluster-stat": func(t *testing.T, fx fixture) {
			req, err := DecodeStorageClusterStatRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, fx.request.body, req.Append(nil))
			m, err := DecodeStorageClusterStatResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Storages) != 3 || m.UseStorageID || m.UseTrunkFile {
				t.Fatalf("got %+v", m)
			}
			eq(t, "storage 0", m.Storages[0], StorageInfo{ID: "127.0.0.1", Host: "127.0.0.1:23000", Status: FdfsStorageStatusActive,
				Connections: ConnectionStat{64, 0, 3}, Version: "6.16.1", UpTime: 1795602855, LastHeartbeatTime: 1795603256})
			eq(t, "storage 2 host", m.Storages[2].Host, "127.0.0.1:23002")
		},
		"36-volumn-stat": func(t *testing.T, fx fixture) {
			req, err := DecodeVolumnStatRequest(fx.request.body)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, fx.request.body, req.Append(nil))
			m, err := DecodeVolumnStatResponse(fx.response.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Groups) != 3 {
				t.Fatalf("got %+v", m)
			}
			eq(t, "group1", m.Groups[0], VolumnInfo{Group: "group1", TotalMB: 258019, FreeMB: 79010, ReservedMB: 25801, AvailMB: 53209, IsDiskAvailable: true})
			eq(t, "group3 name", m.Groups[2].Group, "group3")
		},
	}
	// Frames with an empty body on both sides, or an error status, need
	// only the header checks below.
	noBody := map[string]bool{"14-tracker-active-test": true, "31-storage-active-test": true}
	errorGroup := map[string]bool{"04-list-one-group-nonexistent": true, "05-list-storages-nonexistent-group": true,
		"08-query-store-with-group-one-nonexistent": true}

	names := allFixtureNames(t)
	if len(names) != 38 {
		t.Fatalf("found %d fixtures, want 38", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			fx := loadFixture(t, name)
			// Every response has cmd 100; its header re-encodes exactly.
			eq(t, "response cmd", fx.response.header.Cmd, TrackerProtoCmdResp)
			roundTrip(t, fx.request.raw[:HeaderSize], fx.request.header.Append(nil))
			roundTrip(t, fx.response.raw[:HeaderSize], fx.response.header.Append(nil))
			if _, ok := cmdNames[fx.request.header.Cmd]; !ok {
				t.Errorf("no name for cmd %d", fx.request.header.Cmd)
			}
			switch {
			case fx.request.header.Cmd == StorageProtoCmdFetchOnePathBinlog:
				checkBinlogFixture(t, fx)
			case fx.response.header.Status != 0:
				eq(t, "status", fx.response.header.Status, 2)
				eq(t, "error body", len(fx.response.body), 0)
				err := error(&StatusError{Cmd: fx.request.header.Cmd, Status: fx.response.header.Status})
				if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EINVAL) {
					t.Errorf("%v does not map to ENOENT alone", err)
				}
				if errorGroup[name] {
					req, err := DecodeGroupRequest(fx.request.body[:FdfsGroupNameMaxLen])
					if err != nil {
						t.Fatal(err)
					}
					eq(t, "group", req.Group, "nogroup")
					roundTrip(t, fx.request.body, req.Append(nil))
				}
				if check := checks[name]; check != nil {
					check(t, fx)
				}
			case noBody[name]:
				eq(t, "request body", len(fx.request.body), 0)
				eq(t, "response body", len(fx.response.body), 0)
				eq(t, "cmd", fx.request.header.Cmd, FdfsProtoCmdActiveTest)
			default:
				check := checks[name]
				if check == nil {
					t.Fatalf("no check for %s", name)
				}
				check(t, fx)
			}
		})
	}
}

func checkFileRequest(t *testing.T, fx fixture, group, filename string) {
	t.Helper()
	req, err := DecodeFileRequest(fx.request.body)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "file request", req, FileRequest{Group: group, Filename: filename})
	roundTrip(t, fx.request.body, req.Append(nil))
}

func checkFileIDResponse(t *testing.T, fx fixture, group, filename string) {
	t.Helper()
	m, err := DecodeFileIDResponse(fx.response.body)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "file id", m, FileIDResponse{Group: group, Filename: filename})
	roundTrip(t, fx.response.body, m.Append(nil))
	if _, err := ParseFileID(m.FileID()); err != nil {
		t.Errorf("returned file id: %v", err)
	}
}

// checkContentRequest splits a content-carrying request into its prefix and
// content the way a server reads it, decodes the prefix, re-encodes it, and
// returns the decoded prefix.
func checkContentRequest(t *testing.T, fx fixture, content string) any {
	t.Helper()
	cmd := fx.request.header.Cmd
	fixed := FixedPrefixLen(cmd)
	n, err := PrefixLen(cmd, fx.request.body[:fixed])
	if err != nil {
		t.Fatal(err)
	}
	prefix, got := fx.request.body[:n], fx.request.body[n:]
	eq(t, "content", string(got), content)
	var m interface {
		Append([]byte) []byte
		PrefixLen() int
	}
	var size int64
	switch cmd {
	case StorageProtoCmdUploadFile, StorageProtoCmdUploadAppenderFile:
		r, err := DecodeUploadFileRequest(prefix)
		if err != nil {
			t.Fatal(err)
		}
		m, size = r, r.FileSize
	case StorageProtoCmdUploadSlaveFile:
		r, err := DecodeUploadSlaveFileRequest(prefix)
		if err != nil {
			t.Fatal(err)
		}
		m, size = r, r.FileSize
	case StorageProtoCmdAppendFile:
		r, err := DecodeAppendFileRequest(prefix)
		if err != nil {
			t.Fatal(err)
		}
		m, size = r, r.Size
	case StorageProtoCmdModifyFile:
		r, err := DecodeModifyFileRequest(prefix)
		if err != nil {
			t.Fatal(err)
		}
		m, size = r, r.Size
	default:
		t.Fatalf("cmd %d carries no content", cmd)
	}
	eq(t, "prefix len", m.PrefixLen(), n)
	eq(t, "content size", size, int64(len(content)))
	roundTrip(t, fx.request.body, append(m.Append(nil), content...))
	return m
}

func checkSetMetadata(t *testing.T, fx fixture) SetMetadataRequest {
	t.Helper()
	req, err := DecodeSetMetadataRequest(fx.request.body)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "group", req.Group, "group1")
	eq(t, "filename", req.Filename, fixtureRemote)
	roundTrip(t, fx.request.body, req.Append(nil))
	return req
}

// checkBinlogFixture checks the layout of a captured command 26 exchange:
// group name (16) and store path index (1) in the request; on success a
// streamed answer whose last 8 bytes give the length of the lines before
// them, on error status 22 and no body.
func checkBinlogFixture(t *testing.T, fx fixture) {
	t.Helper()
	eq(t, "request body", len(fx.request.body), FdfsGroupNameMaxLen+1)
	req, err := DecodeGroupRequest(fx.request.body[:FdfsGroupNameMaxLen])
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "group", req.Group, "group3")
	if fx.response.header.Status != 0 {
		eq(t, "status", fx.response.header.Status, 22)
		eq(t, "error body", len(fx.response.body), 0)
		err := error(&StatusError{Cmd: fx.request.header.Cmd, Status: fx.response.header.Status})
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%v does not map to EINVAL", err)
		}
		return
	}
	eq(t, "streamed length", fx.response.header.Length, streamedLength)
	body := fx.response.body
	if len(body) < FdfsProtoPkgLenSize {
		t.Fatalf("body of %d bytes has no trailer", len(body))
	}
	lines := body[:len(body)-FdfsProtoPkgLenSize]
	eq(t, "trailer", int64(binary.BigEndian.Uint64(body[len(lines):])), int64(len(lines)))
	eq(t, "lines", strings.Count(string(lines), "\n"), 2)
}
