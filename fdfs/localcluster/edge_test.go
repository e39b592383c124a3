package localcluster

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"fdfsfs/fdfs"
)

// storageWire wraps a raw connection to a storage with one helper per
// command; each returns the status and the body.
type storageWire struct {
	*wire
	group string
}

func newStorageWire(t *testing.T, st *Storage) *storageWire {
	return &storageWire{wire: dialWire(t, st.Addr()), group: st.Group()}
}

func (w *storageWire) download(name string, offset, length int64) (byte, []byte) {
	h, body := w.call(fdfs.StorageProtoCmdDownloadFile, 0,
		fdfs.DownloadFileRequest{Offset: offset, Length: length, Group: w.group, Filename: name}.Append(nil))
	return h.Status, body
}

func (w *storageWire) modify(name string, offset int64, data []byte) byte {
	body := fdfs.ModifyFileRequest{Filename: name, Offset: offset, Size: int64(len(data))}.Append(nil)
	h, _ := w.call(fdfs.StorageProtoCmdModifyFile, 0, append(body, data...))
	return h.Status
}

func (w *storageWire) appendData(name string, data []byte) byte {
	body := fdfs.AppendFileRequest{Filename: name, Size: int64(len(data))}.Append(nil)
	h, _ := w.call(fdfs.StorageProtoCmdAppendFile, 0, append(body, data...))
	return h.Status
}

func (w *storageWire) truncate(name string, size int64) byte {
	h, _ := w.call(fdfs.StorageProtoCmdTruncateFile, 0, fdfs.TruncateFileRequest{Filename: name, Size: size}.Append(nil))
	return h.Status
}

func (w *storageWire) fileCmd(cmd byte, name string) (byte, []byte) {
	h, body := w.call(cmd, 0, fdfs.FileRequest{Group: w.group, Filename: name}.Append(nil))
	return h.Status, body
}

func (w *storageWire) setMeta(name string, flag byte, meta map[string]string) byte {
	h, _ := w.call(fdfs.StorageProtoCmdSetMetadata, 0,
		fdfs.SetMetadataRequest{Flag: flag, Group: w.group, Filename: name, Meta: fdfs.MetaFromMap(meta)}.Append(nil))
	return h.Status
}

// missingName returns a name like name (same directories, same length)
// that no upload produced: one random digit before the extension differs.
func missingName(name string) string {
	b := []byte(name)
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		i = len(b)
	}
	b[i-1] = '0' + (b[i-1]-'0'+1)%10
	return string(b)
}

const (
	statusOK     = 0
	statusENOENT = byte(syscall.ENOENT)
	statusEINVAL = byte(syscall.EINVAL)
	statusEEXIST = byte(syscall.EEXIST)
	statusENOSPC = byte(syscall.ENOSPC)
)

// TestDownloadEdgeCases is the download table of the fixtures' README.
func TestDownloadEdgeCases(t *testing.T) {
	c := startCluster(t, Options{Groups: []string{"group1"}})
	st := storageOf(t, c, "group1")
	content := []byte("0123456789abcdefghij") // 20 bytes
	name := upload(t, st, fdfs.StorageProtoCmdUploadFile, "bin", content)
	empty := upload(t, st, fdfs.StorageProtoCmdUploadFile, "", nil)
	w := newStorageWire(t, st)
	for _, tc := range []struct {
		name           string
		file           string
		offset, length int64
		status         byte
		want           []byte
	}{
		{"whole", name, 0, 0, statusOK, content},
		{"from 5 to the end", name, 5, 0, statusOK, content[5:]},
		{"count past the end is cut", name, 15, 10, statusOK, content[15:]},
		{"count over the size", name, 0, 100, statusOK, content},
		{"middle", name, 6, 7, statusOK, content[6:13]},
		{"last byte", name, 19, 1, statusOK, content[19:]},
		{"offset at the end", name, 20, 0, statusEINVAL, nil},
		{"offset at the end with a count", name, 20, 5, statusEINVAL, nil},
		{"offset past the end", name, 25, 1, statusEINVAL, nil},
		{"empty file", empty, 0, 0, statusEINVAL, nil},
		{"missing file", missingName(name), 0, 0, statusENOENT, nil},
		{"malformed name", "M00/ZZ/00/x", 0, 0, statusEINVAL, nil},
		{"other store path", "M01" + name[3:], 0, 0, statusEINVAL, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := w.download(tc.file, tc.offset, tc.length)
			if status != tc.status || !bytes.Equal(body, tc.want) {
				t.Fatalf("status %d body %q, want %d %q", status, body, tc.status, tc.want)
			}
		})
	}
	t.Run("other group", func(t *testing.T) {
		w := &storageWire{wire: dialWire(t, st.Addr()), group: "group2"}
		if status, _ := w.download(name, 0, 0); status != statusEINVAL {
			t.Fatalf("status %d, want EINVAL", status)
		}
	})
}

// TestAppenderEdgeCases is the appender table of the fixtures' README.
func TestAppenderEdgeCases(t *testing.T) {
	c := startCluster(t, Options{Groups: []string{"group1"}})
	st := storageOf(t, c, "group1")
	w := newStorageWire(t, st)
	ten := []byte("0123456789")
	newAppender := func() string {
		return upload(t, st, fdfs.StorageProtoCmdUploadAppenderFile, "log", ten)
	}
	content := func(name string) []byte {
		t.Helper()
		status, body := w.download(name, 0, 0)
		if status == statusEINVAL {
			return []byte{} // an empty file cannot be downloaded
		}
		if status != statusOK {
			t.Fatalf("download: status %d", status)
		}
		return body
	}

	t.Run("modify across the end extends", func(t *testing.T) {
		name := newAppender()
		if s := w.modify(name, 8, []byte("XYZ")); s != statusOK {
			t.Fatalf("status %d", s)
		}
		if got := content(name); string(got) != "01234567XYZ" {
			t.Fatalf("content %q", got)
		}
		if s := w.modify(name, 11, []byte("!")); s != statusOK {
			t.Fatalf("modify at the end: status %d", s)
		}
		if got := content(name); string(got) != "01234567XYZ!" {
			t.Fatalf("content %q", got)
		}
	})
	t.Run("modify with a hole is refused", func(t *testing.T) {
		name := newAppender()
		if s := w.modify(name, 15, []byte("x")); s != statusEINVAL {
			t.Fatalf("status %d, want EINVAL", s)
		}
		if got := content(name); !bytes.Equal(got, ten) {
			t.Fatalf("file changed: %q", got)
		}
	})
	t.Run("truncate up, down, to zero", func(t *testing.T) {
		name := newAppender()
		if s := w.appendData(name, []byte("abc")); s != statusOK {
			t.Fatalf("append: status %d", s)
		}
		if s := w.truncate(name, 20); s != statusOK {
			t.Fatalf("truncate 13 -> 20: status %d", s)
		}
		if got := content(name); string(got) != "0123456789abc\x00\x00\x00\x00\x00\x00\x00" {
			t.Fatalf("content %q", got)
		}
		if s := w.truncate(name, 4); s != statusOK {
			t.Fatalf("truncate 20 -> 4: status %d", s)
		}
		if got := content(name); string(got) != "0123" {
			t.Fatalf("content %q", got)
		}
		if s := w.truncate(name, 0); s != statusOK {
			t.Fatalf("truncate 4 -> 0: status %d", s)
		}
		if s, _ := w.download(name, 0, 0); s != statusEINVAL {
			t.Fatalf("download of the emptied file: status %d, want EINVAL", s)
		}
	})
	t.Run("truncate to the same size is refused", func(t *testing.T) {
		name := newAppender()
		if s := w.truncate(name, 10); s != statusEINVAL {
			t.Fatalf("status %d, want EINVAL", s)
		}
	})
	t.Run("normal files cannot change", func(t *testing.T) {
		name := upload(t, st, fdfs.StorageProtoCmdUploadFile, "log", ten)
		if s := w.modify(name, 0, []byte("x")); s != statusEINVAL {
			t.Errorf("modify: status %d", s)
		}
		if s := w.truncate(name, 3); s != statusEINVAL {
			t.Errorf("truncate: status %d", s)
		}
		if s := w.appendData(name, []byte("x")); s != statusEINVAL {
			t.Errorf("append: status %d", s)
		}
		if got := content(name); !bytes.Equal(got, ten) {
			t.Fatalf("file changed: %q", got)
		}
	})
	t.Run("empty uploads and appending to an empty appender", func(t *testing.T) {
		upload(t, st, fdfs.StorageProtoCmdUploadFile, "", nil)
		name := upload(t, st, fdfs.StorageProtoCmdUploadAppenderFile, "", nil)
		if s := w.appendData(name, []byte("first")); s != statusOK {
			t.Fatalf("append: status %d", s)
		}
		if got := content(name); string(got) != "first" {
			t.Fatalf("content %q", got)
		}
	})
	t.Run("missing appender", func(t *testing.T) {
		name := newAppender()
		if s, _ := w.fileCmd(fdfs.StorageProtoCmdDeleteFile, name); s != statusOK {
			t.Fatalf("delete: %d", s)
		}
		for what, s := range map[string]byte{
			"append":   w.appendData(name, []byte("x")),
			"modify":   w.modify(name, 0, []byte("x")),
			"truncate": w.truncate(name, 1),
		} {
			if s != statusENOENT {
				t.Errorf("%s: status %d, want ENOENT", what, s)
			}
		}
	})
}

func TestMetadata(t *testing.T) {
	c := startCluster(t, Options{Groups: []string{"group1"}})
	st := storageOf(t, c, "group1")
	w := newStorageWire(t, st)
	name := upload(t, st, fdfs.StorageProtoCmdUploadFile, "jpg", []byte("img"))
	get := func() (byte, map[string]string) {
		s, body := w.fileCmd(fdfs.StorageProtoCmdGetMetadata, name)
		entries, err := fdfs.DecodeMetadata(body)
		if err != nil {
			t.Fatal(err)
		}
		return s, fdfs.MetaToMap(entries)
	}
	if s, _ := get(); s != statusENOENT {
		t.Fatalf("metadata of a file without any: status %d, want ENOENT", s)
	}
	if s := w.setMeta(name, fdfs.MetaOverwrite, map[string]string{"width": "1024", "height": "768"}); s != statusOK {
		t.Fatalf("overwrite: %d", s)
	}
	if s := w.setMeta(name, fdfs.MetaMerge, map[string]string{"height": "600", "color": "red"}); s != statusOK {
		t.Fatalf("merge: %d", s)
	}
	s, body := w.fileCmd(fdfs.StorageProtoCmdGetMetadata, name)
	if s != statusOK || string(body) != "color\x02red\x01height\x02600\x01width\x021024" {
		t.Fatalf("merged: %d %q", s, body)
	}
	if s := w.setMeta(name, fdfs.MetaOverwrite, map[string]string{"only": "this"}); s != statusOK {
		t.Fatalf("overwrite: %d", s)
	}
	if _, m := get(); len(m) != 1 || m["only"] != "this" {
		t.Fatalf("after overwrite: %v", m)
	}
	long := string(bytes.Repeat([]byte("n"), 70))
	if s := w.setMeta(name, fdfs.MetaMerge, map[string]string{long: string(bytes.Repeat([]byte("v"), 300))}); s != statusOK {
		t.Fatalf("merge long: %d", s)
	}
	if _, m := get(); len(m[long[:64]]) != 256 {
		t.Fatalf("long name and value are not cut to 64 and 256: %v", m)
	}
	if s := w.setMeta(name, fdfs.MetaMerge, nil); s != statusOK {
		t.Fatalf("empty merge: %d", s)
	}
	if _, m := get(); len(m) != 2 {
		t.Fatalf("an empty merge changed the metadata: %v", m)
	}
	if s := w.setMeta(name, fdfs.MetaOverwrite, nil); s != statusOK {
		t.Fatalf("empty overwrite: %d", s)
	}
	if s, _ := get(); s != statusENOENT {
		t.Fatalf("an empty overwrite leaves metadata: status %d", s)
	}
	if s := w.setMeta(missingName(name), fdfs.MetaOverwrite, map[string]string{"a": "b"}); s != statusENOENT {
		t.Fatalf("metadata of a missing file: status %d", s)
	}
	// Deleting the file deletes its metadata.
	w.setMeta(name, fdfs.MetaOverwrite, map[string]string{"a": "b"})
	if s, _ := w.fileCmd(fdfs.StorageProtoCmdDeleteFile, name); s != statusOK {
		t.Fatal(s)
	}
	p, _ := st.store.path(name)
	if _, _, err := st.store.stat(name[:len(name)] + metaSuffix); err == nil {
		t.Fatalf("metadata file %s survived the delete", p+metaSuffix)
	}
}

func TestQueryFileInfo(t *testing.T) {
	c := startCluster(t, Options{Groups: []string{"group1"}})
	st := storageOf(t, c, "group1")
	w := newStorageWire(t, st)
	content := []byte("some content")
	name := upload(t, st, fdfs.StorageProtoCmdUploadFile, "txt", content)
	s, body := w.fileCmd(fdfs.StorageProtoCmdQueryFileInfo, name)
	info, err := fdfs.DecodeQueryFileInfoResponse(body)
	if s != statusOK || err != nil {
		t.Fatalf("status %d, %v", s, err)
	}
	fi, _, _ := st.store.stat(name)
	if info.FileSize != 12 || info.SourceIP != "127.0.0.1" || info.CreateTimestamp != fi.ModTime().Unix() ||
		uint32(info.CRC32) != 0x431f313f {
		t.Errorf("info %+v", info)
	}
	// An appender's CRC32 is computed from the content, unless flag 1 asks
	// not to; a CRC32 with the high bit set comes sign-extended, as upstream
	// passes it through a C int.
	app := upload(t, st, fdfs.StorageProtoCmdUploadAppenderFile, "txt", []byte("abc"))
	h, body := w.call(fdfs.StorageProtoCmdQueryFileInfo, 0, fdfs.FileRequest{Group: "group1", Filename: app}.Append(nil))
	info, _ = fdfs.DecodeQueryFileInfoResponse(body)
	if h.Status != 0 || info.FileSize != 3 || info.CRC32 != int64(int32(0x352441c2)) {
		t.Errorf("appender info %+v", info)
	}
	h, body = w.call(fdfs.StorageProtoCmdQueryFileInfo, fdfs.FdfsQueryFinfoFlagsNotCalcCRC32, fdfs.FileRequest{Group: "group1", Filename: app}.Append(nil))
	info, _ = fdfs.DecodeQueryFileInfoResponse(body)
	if h.Status != 0 || info.CRC32 != 0 || info.FileSize != 3 {
		t.Errorf("appender info without CRC32 %+v", info)
	}
	neg := upload(t, st, fdfs.StorageProtoCmdUploadAppenderFile, "", []byte("ab")) // crc32 0x9e83486d
	_, body = w.fileCmd(fdfs.StorageProtoCmdQueryFileInfo, neg)
	if info, _ = fdfs.DecodeQueryFileInfoResponse(body); info.CRC32 != int64(int32(-1635563411)) || info.CRC32 >= 0 {
		t.Errorf("high-bit CRC32 sent as %d", info.CRC32)
	}
}

func TestIPv6Layout(t *testing.T) {
	c := startCluster(t, Options{Groups: []string{"group1"}, Layout: fdfs.StatLayoutV6_15IPv6})
	st := storageOf(t, c, "group1")
	tw := dialWire(t, c.TrackerAddr())
	h, body := tw.call(fdfs.TrackerProtoCmdServiceQueryStoreWithoutGroupOne, 0, nil)
	if h.Status != 0 || len(body) != 70 {
		t.Fatalf("query store: %d, %d bytes, want 70", h.Status, len(body))
	}
	h, body = tw.call(fdfs.TrackerProtoCmdServerListStorage, 0, fdfs.ListStoragesRequest{Group: "group1"}.Append(nil))
	if h.Status != 0 || len(body) != 517 {
		t.Fatalf("list storages: %d, %d bytes, want 517", h.Status, len(body))
	}
	name := upload(t, st, fdfs.StorageProtoCmdUploadFile, "", []byte("x"))
	s, body := newStorageWire(t, st).fileCmd(fdfs.StorageProtoCmdQueryFileInfo, name)
	if s != 0 || len(body) != 70 {
		t.Fatalf("query file info: %d, %d bytes, want 70", s, len(body))
	}
	h, body = tw.call(fdfs.TrackerProtoCmdServiceQueryFetchOne, 0, fdfs.FileRequest{Group: "group1", Filename: name}.Append(nil))
	if h.Status != 0 || len(body) != 69 {
		t.Fatalf("query fetch: %d, %d bytes, want 69", h.Status, len(body))
	}
}

func TestCompatLayouts(t *testing.T) {
	for _, l := range []fdfs.StatLayout{fdfs.StatLayoutV5_11, fdfs.StatLayoutV6_12, fdfs.StatLayoutV6_13_0, fdfs.StatLayoutV6_13_1} {
		t.Run(l.String(), func(t *testing.T) {
			c := startCluster(t, Options{Groups: []string{"g1", "g2"}, Layout: l})
			tw := dialWire(t, c.TrackerAddr())
			h, body := tw.call(fdfs.TrackerProtoCmdServerListAllGroups, 0, nil)
			if h.Status != 0 || len(body) != 2*l.GroupStatSize() {
				t.Fatalf("list groups: %d, %d bytes, want 2 x %d", h.Status, len(body), l.GroupStatSize())
			}
			gs, _, err := fdfs.DecodeGroupStats(body, l)
			if err != nil || gs[1].Name != "g2" || gs[1].StorageCount != 1 {
				t.Fatalf("decode: %v %+v", err, gs)
			}
			h, body = tw.call(fdfs.TrackerProtoCmdServerListStorage, 0, fdfs.ListStoragesRequest{Group: "g1"}.Append(nil))
			if h.Status != 0 || len(body) != l.StorageStatSize() {
				t.Fatalf("list storages: %d, %d bytes, want %d", h.Status, len(body), l.StorageStatSize())
			}
			ss, _, err := fdfs.DecodeStorageStats(body, l)
			if err != nil || ss[0].Status != fdfs.FdfsStorageStatusActive || ss[0].IPAddr != "127.0.0.1" {
				t.Fatalf("decode: %v %+v", err, ss)
			}
		})
	}
}

func TestStorageErrors(t *testing.T) {
	c := startCluster(t, Options{Groups: []string{"group1"}})
	st := storageOf(t, c, "group1")
	w := newStorageWire(t, st)
	master := upload(t, st, fdfs.StorageProtoCmdUploadFile, "txt", []byte("master"))
	slave := func(master, prefix, ext string) (byte, string) {
		body := fdfs.UploadSlaveFileRequest{MasterFilename: master, FileSize: 2, PrefixName: prefix, Ext: ext}.Append(nil)
		h, resp := w.call(fdfs.StorageProtoCmdUploadSlaveFile, 0, append(body, "sl"...))
		if h.Status != 0 {
			return h.Status, ""
		}
		return 0, string(resp[16:])
	}
	if s, name := slave(master, "_150x150", "jpg"); s != statusOK || name != master[:len(master)-4]+"_150x150.jpg" {
		t.Fatalf("slave: %d %q", s, name)
	}
	if s, _ := slave(master, "_150x150", "jpg"); s != statusEEXIST {
		t.Errorf("second slave: status %d, want EEXIST", s)
	}
	if s, _ := slave(master, "", "jpg"); s != statusEINVAL {
		t.Errorf("empty prefix: status %d, want EINVAL", s)
	}
	if s, _ := slave(master, "a/b", "jpg"); s != statusEINVAL {
		t.Errorf("bad prefix: status %d, want EINVAL", s)
	}
	if s, _ := slave(missingName(master), "_x", "jpg"); s != statusENOENT {
		t.Errorf("missing master: status %d, want ENOENT", s)
	}
	// Upload with a store path other than 0 or 255 (-1, "you choose").
	body := fdfs.UploadFileRequest{StorePathIndex: 1, FileSize: 1, Ext: "txt"}.Append(nil)
	if h, _ := w.call(fdfs.StorageProtoCmdUploadFile, 0, append(body, 'x')); h.Status != statusEINVAL {
		t.Errorf("store path 1: status %d", h.Status)
	}
	body = fdfs.UploadFileRequest{StorePathIndex: 0xFF, FileSize: 1, Ext: "txt"}.Append(nil)
	if h, _ := w.call(fdfs.StorageProtoCmdUploadFile, 0, append(body, 'x')); h.Status != statusOK {
		t.Errorf("store path -1: status %d", h.Status)
	}
	// A size that disagrees with the body, and a bad extension.
	body = fdfs.UploadFileRequest{FileSize: 5, Ext: "txt"}.Append(nil)
	if h, _ := w.call(fdfs.StorageProtoCmdUploadFile, 0, append(body, 'x')); h.Status != statusEINVAL {
		t.Errorf("size mismatch: status %d", h.Status)
	}
	body = fdfs.UploadFileRequest{FileSize: 1, Ext: "a/b"}.Append(nil)
	if h, _ := w.call(fdfs.StorageProtoCmdUploadFile, 0, append(body, 'x')); h.Status != statusEINVAL {
		t.Errorf("bad extension: status %d", h.Status)
	}
	if h, _ := w.call(fdfs.StorageProtoCmdUploadFile, 0, []byte{0, 1}); h.Status != statusEINVAL {
		t.Errorf("short upload: status %d", h.Status)
	}
	// Regenerate on a normal file, on a missing one; unknown command.
	if h, _ := w.call(fdfs.StorageProtoCmdRegenerateAppenderFilename, 0, []byte(master)); h.Status != statusEINVAL {
		t.Errorf("regenerate a normal file: status %d", h.Status)
	}
	if h, _ := w.call(fdfs.StorageProtoCmdRegenerateAppenderFilename, 0, []byte(missingName(master))); h.Status != statusENOENT {
		t.Errorf("regenerate a missing file: status %d", h.Status)
	}
	if h, _ := w.call(77, 0, []byte("junk")); h.Status != statusEINVAL {
		t.Errorf("unknown command: status %d", h.Status)
	}
	if h, _ := w.call(fdfs.FdfsProtoCmdActiveTest, 0, []byte("x")); h.Status != statusEINVAL {
		t.Errorf("active test with a body: status %d", h.Status)
	}
	// The connection is still in step after all of the above.
	if s, body := w.download(master, 0, 0); s != 0 || string(body) != "master" {
		t.Fatalf("download after errors: %d %q", s, body)
	}
}

func TestTrackerErrors(t *testing.T) {
	c := startCluster(t, Options{})
	tw := dialWire(t, c.TrackerAddr())
	for _, tc := range []struct {
		name   string
		cmd    byte
		body   []byte
		status byte
	}{
		{"list one group, short body", fdfs.TrackerProtoCmdServerListOneGroup, []byte("group1"), statusEINVAL},
		{"list all groups with a body", fdfs.TrackerProtoCmdServerListAllGroups, []byte("x"), statusEINVAL},
		{"list storages, unknown id", fdfs.TrackerProtoCmdServerListStorage, fdfs.ListStoragesRequest{Group: "group1", StorageID: "10.0.0.9"}.Append(nil), statusENOENT},
		{"store without group, with a body", fdfs.TrackerProtoCmdServiceQueryStoreWithoutGroupOne, []byte("x"), statusEINVAL},
		{"store all, unknown group", fdfs.TrackerProtoCmdServiceQueryStoreWithGroupAll, fdfs.GroupRequest{Group: "nogroup"}.Append(nil), statusENOENT},
		{"fetch, short name", fdfs.TrackerProtoCmdServiceQueryFetchOne, fdfs.FileRequest{Group: "group1", Filename: "M00/00/00/x"}.Append(nil), statusEINVAL},
		{"fetch, unknown group", fdfs.TrackerProtoCmdServiceQueryFetchOne, fdfs.FileRequest{Group: "nogroup", Filename: capturedNormal}.Append(nil), statusENOENT},
		{"update, unknown group", fdfs.TrackerProtoCmdServiceQueryUpdate, fdfs.FileRequest{Group: "nogroup", Filename: capturedNormal}.Append(nil), statusENOENT},
		{"leader with a body", fdfs.TrackerProtoCmdServerGetLeader, []byte("x"), statusEINVAL},
		{"tracker stat, short filter", fdfs.TrackerProtoCmdServerTrackerClusterStat, []byte{0}, statusEINVAL},
		{"unknown command", 200, nil, statusEINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, body := tw.call(tc.cmd, 0, tc.body)
			if h.Status != tc.status || len(body) != 0 {
				t.Fatalf("status %d with %d bytes, want %d and none", h.Status, len(body), tc.status)
			}
		})
	}
	t.Run("list storages with its id", func(t *testing.T) {
		h, body := tw.call(fdfs.TrackerProtoCmdServerListStorage, 0, fdfs.ListStoragesRequest{Group: "group2", StorageID: "127.0.0.1"}.Append(nil))
		if h.Status != 0 || len(body) != 487 {
			t.Fatalf("status %d, %d bytes", h.Status, len(body))
		}
	})
	t.Run("groups take turns", func(t *testing.T) {
		seen := map[string]bool{}
		for range 3 {
			_, body := tw.call(fdfs.TrackerProtoCmdServiceQueryStoreWithoutGroupOne, 0, nil)
			m, err := fdfs.DecodeQueryStoreResponse(body)
			if err != nil {
				t.Fatal(err)
			}
			seen[m.Group] = true
		}
		if len(seen) != 3 {
			t.Fatalf("three uploads went to %v", seen)
		}
	})
}
