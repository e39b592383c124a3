package fdfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
)

// startCluster starts a local cluster closed at the end of the test.
func startCluster(t testing.TB, opts localcluster.Options) *localcluster.Cluster {
	return localcluster.ForTest(t, opts)
}

// newClient returns a client for trackers; after the test it checks that
// Close leaves no connection open.
func newClient(t testing.TB, cfg fdfs.Config) *fdfs.Client {
	t.Helper()
	cl, err := fdfs.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		if n := cl.OpenConns(); n != 0 {
			t.Errorf("after Close: %d connections still open", n)
		}
	})
	return cl
}

func upload(t testing.TB, cl *fdfs.Client, group, ext string, data []byte) string {
	t.Helper()
	id, err := cl.Upload(context.Background(), group, ext, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("upload to %q: %v", group, err)
	}
	return id
}

func download(t testing.TB, cl *fdfs.Client, id string, off, length int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := cl.Download(context.Background(), id, off, length, &buf)
	if err != nil {
		t.Fatalf("download %s [%d,+%d): %v", id, off, length, err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("download %s: reported %d bytes, wrote %d", id, n, buf.Len())
	}
	return buf.Bytes()
}

// pattern is n bytes that differ at every offset of a small period.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestRoundTrips runs every command the client has against the localcluster
// cluster and checks what comes back.
func TestRoundTrips(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{})
	cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}})
	ctx := context.Background()
	data := pattern(100_000)
	storageAddr := map[string]string{}
	for _, st := range cluster.Storages() {
		storageAddr[st.Group()] = st.Addr()
	}

	t.Run("ActiveTest", func(t *testing.T) {
		if err := cl.ActiveTest(ctx, cluster.TrackerAddr()); err != nil {
			t.Fatalf("tracker: %v", err)
		}
		if err := cl.ActiveTest(ctx, storageAddr["group2"]); err != nil {
			t.Fatalf("storage: %v", err)
		}
	})
	t.Run("ListGroups", func(t *testing.T) {
		gs, err := cl.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range gs {
			names = append(names, g.Name)
			if g.StorageCount != 1 || g.TotalMB <= 0 {
				t.Errorf("%s: %d storages, %d MB total", g.Name, g.StorageCount, g.TotalMB)
			}
		}
		if got := strings.Join(names, ","); got != "group1,group2,group3" {
			t.Fatalf("groups %s", got)
		}
	})
	t.Run("ListOneGroup", func(t *testing.T) {
		g, err := cl.ListOneGroup(ctx, "group2")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(storageAddr["group2"])
		if g.Name != "group2" || g.StorageCount != 1 || fmt.Sprint(g.StoragePort) != port {
			t.Fatalf("got %+v, want group2 with one storage on port %s", g, port)
		}
	})
	t.Run("ListStorages", func(t *testing.T) {
		ss, err := cl.ListStorages(ctx, "group3", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) != 1 || ss[0].Status != fdfs.FdfsStorageStatusActive ||
			net.JoinHostPort(ss[0].IPAddr, fmt.Sprint(ss[0].StoragePort)) != storageAddr["group3"] {
			t.Fatalf("got %+v, want the one active storage at %s", ss, storageAddr["group3"])
		}
	})
	t.Run("QueryStore", func(t *testing.T) {
		st, err := cl.QueryStore(ctx, "group3")
		if err != nil {
			t.Fatal(err)
		}
		if st.Group != "group3" || st.ServerAddr.String() != storageAddr["group3"] {
			t.Fatalf("with group: %+v", st)
		}
		st, err = cl.QueryStore(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if storageAddr[st.Group] != st.ServerAddr.String() {
			t.Fatalf("without group: %+v names a storage of another group", st)
		}
	})
	t.Run("QueryStoreAll", func(t *testing.T) {
		for _, group := range []string{"group1", ""} {
			all, err := cl.QueryStoreAll(ctx, group)
			if err != nil {
				t.Fatalf("%q: %v", group, err)
			}
			if len(all) != 1 || storageAddr[all[0].Group] != all[0].ServerAddr.String() || group != "" && all[0].Group != group {
				t.Fatalf("%q: %+v", group, all)
			}
		}
	})

	id := ""
	t.Run("Upload", func(t *testing.T) {
		id = upload(t, cl, "group1", "tar", data)
		fid, err := fdfs.ParseFileID(id)
		if err != nil {
			t.Fatal(err)
		}
		if fid.Group != "group1" || fid.Ext != "tar" || !strings.HasSuffix(id, ".tar") || fid.Appender {
			t.Fatalf("id %s: %+v", id, fid)
		}
		if fid.Size != int64(len(data)) || fid.CRC32 != crc32.ChecksumIEEE(data) {
			t.Fatalf("id %s encodes size %d crc %08x", id, fid.Size, fid.CRC32)
		}
		noExt := upload(t, cl, "group1", "", data[:10])
		if fid, err := fdfs.ParseFileID(noExt); err != nil || fid.Ext != "" {
			t.Fatalf("no ext: %s %+v %v", noExt, fid, err)
		}
	})
	if id == "" {
		t.FailNow()
	}
	t.Run("QueryFetch", func(t *testing.T) {
		for name, q := range map[string]func(context.Context, string) (fdfs.ServerAddr, error){
			"fetch": cl.QueryFetch, "update": cl.QueryUpdate,
		} {
			a, err := q(ctx, id)
			if err != nil || a.String() != storageAddr["group1"] {
				t.Fatalf("%s: %v %v, want %s", name, a, err, storageAddr["group1"])
			}
		}
		all, err := cl.QueryFetchAll(ctx, id)
		if err != nil || len(all) != 1 || all[0].String() != storageAddr["group1"] {
			t.Fatalf("fetch all: %v %v", all, err)
		}
	})
	t.Run("Download", func(t *testing.T) {
		n := int64(len(data))
		for _, r := range []struct{ name, off, length int64 }{
			{0, 0, 0}, {1, 0, 1000}, {2, 40_000, 12_345}, {3, n - 777, 0}, {4, n - 10, 10}, {5, n - 10, 100}, {6, n - 1, 1},
		} {
			got := download(t, cl, id, r.off, r.length)
			end := n
			if r.length > 0 && r.off+r.length < n {
				end = r.off + r.length
			}
			if !bytes.Equal(got, data[r.off:end]) {
				t.Errorf("range %d [%d,+%d): %d bytes, not the file's [%d,%d)", r.name, r.off, r.length, len(got), r.off, end)
			}
		}
	})
	t.Run("QueryFileInfo", func(t *testing.T) {
		fi, err := cl.QueryFileInfo(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if fi.FileSize != int64(len(data)) || uint32(fi.CRC32) != crc32.ChecksumIEEE(data) || fi.SourceIP != "127.0.0.1" ||
			time.Since(fi.CreateTime()) > time.Hour {
			t.Fatalf("got %+v", fi)
		}
	})
	t.Run("Metadata", func(t *testing.T) {
		// Upstream answers ENOENT for a file that never had metadata.
		if m, err := cl.GetMetadata(ctx, id); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("fresh file: %v %v, want ENOENT", m, err)
		}
		set := func(meta map[string]string, flag byte) {
			t.Helper()
			if err := cl.SetMetadata(ctx, id, meta, flag); err != nil {
				t.Fatalf("set %c %v: %v", flag, meta, err)
			}
		}
		check := func(want string) {
			t.Helper()
			m, err := cl.GetMetadata(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(m); got != want {
				t.Fatalf("metadata %s, want %s", got, want)
			}
		}
		set(map[string]string{"width": "1024", "height": "768"}, fdfs.MetaOverwrite)
		check("map[height:768 width:1024]")
		set(map[string]string{"height": "600", "color": "red"}, fdfs.MetaMerge)
		check("map[color:red height:600 width:1024]")
		set(map[string]string{"mode": "0644"}, fdfs.MetaOverwrite)
		check("map[mode:0644]")
		if err := cl.SetMetadata(ctx, id, map[string]string{"a": "x\x01y"}, fdfs.MetaMerge); err == nil {
			t.Fatal("a value with the record separator was sent")
		}
		if err := cl.SetMetadata(ctx, id, nil, 'X'); err == nil {
			t.Fatal("flag 'X' was sent")
		}
	})
	t.Run("Appender", func(t *testing.T) {
		part1, part2 := []byte("appender-part-1\n"), []byte("part-2\n")
		aid, err := cl.UploadAppender(ctx, "group2", "txt", bytes.NewReader(part1), int64(len(part1)))
		if err != nil {
			t.Fatal(err)
		}
		if fid, err := fdfs.ParseFileID(aid); err != nil || !fid.Appender || fid.Group != "group2" || fid.Ext != "txt" {
			t.Fatalf("appender id %s: %+v %v", aid, fid, err)
		}
		want := append(append([]byte(nil), part1...), part2...)
		if err := cl.Append(ctx, aid, bytes.NewReader(part2), int64(len(part2))); err != nil {
			t.Fatal(err)
		}
		if got := download(t, cl, aid, 0, 0); !bytes.Equal(got, want) {
			t.Fatalf("after append: %q", got)
		}
		// Overwrite in the middle, then at the end (which extends).
		if err := cl.Modify(ctx, aid, 2, strings.NewReader("PP"), 2); err != nil {
			t.Fatal(err)
		}
		if err := cl.Modify(ctx, aid, int64(len(want)), strings.NewReader("END"), 3); err != nil {
			t.Fatal(err)
		}
		want = append(want, "END"...)
		copy(want[2:], "PP")
		if got := download(t, cl, aid, 0, 0); !bytes.Equal(got, want) {
			t.Fatalf("after modify: %q, want %q", got, want)
		}
		if err := cl.Truncate(ctx, aid, 5); err != nil {
			t.Fatal(err)
		}
		if err := cl.Truncate(ctx, aid, 8); err != nil {
			t.Fatal(err)
		}
		want = append(want[:5:5], 0, 0, 0)
		if got := download(t, cl, aid, 0, 0); !bytes.Equal(got, want) {
			t.Fatalf("after truncate: %q, want %q", got, want)
		}
		fi, err := cl.QueryFileInfo(ctx, aid)
		if err != nil || fi.FileSize != int64(len(want)) {
			t.Fatalf("file info %+v %v", fi, err)
		}
		nid, err := cl.RegenerateAppenderFilename(ctx, aid)
		if err != nil {
			t.Fatal(err)
		}
		if fid, err := fdfs.ParseFileID(nid); err != nil || fid.Appender || nid == aid || fid.Ext != "txt" {
			t.Fatalf("regenerated %s from %s: %+v %v", nid, aid, fid, err)
		}
		if got := download(t, cl, nid, 0, 0); !bytes.Equal(got, want) {
			t.Fatalf("regenerated file: %q", got)
		}
		if err := cl.Append(ctx, nid, strings.NewReader("x"), 1); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("append to a normal file: %v, want EINVAL", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if err := cl.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err := cl.Download(ctx, id, 0, 0, io.Discard)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("download after delete: %v", err)
		}
	})
	// Every exchange above ran one after another: one connection per
	// server at most.
	if n := cl.OpenConns(); n > 4 {
		t.Errorf("%d connections open for 1 tracker and 3 storages", n)
	}
}

// TestErrorStatuses checks that a server's errno reaches the caller as that
// errno, and that the connection that carried it is reused.
func TestErrorStatuses(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{})
	cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}})
	ctx := context.Background()
	id := upload(t, cl, "group1", "txt", []byte("gone soon"))
	if err := cl.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	notExist := []struct {
		name string
		call func() error
	}{
		{"ListOneGroup", func() error { _, err := cl.ListOneGroup(ctx, "nogroup"); return err }},
		{"ListStorages", func() error { _, err := cl.ListStorages(ctx, "nogroup", ""); return err }},
		{"QueryStore", func() error { _, err := cl.QueryStore(ctx, "nogroup"); return err }},
		{"QueryStoreAll", func() error { _, err := cl.QueryStoreAll(ctx, "nogroup"); return err }},
		{"Upload", func() error { _, err := cl.Upload(ctx, "nogroup", "", strings.NewReader("x"), 1); return err }},
		{"QueryFetch", func() error { _, err := cl.QueryFetch(ctx, "nogroup/"+strings.SplitN(id, "/", 2)[1]); return err }},
		{"Download", func() error { _, err := cl.Download(ctx, id, 0, 0, io.Discard); return err }},
		{"QueryFileInfo", func() error { _, err := cl.QueryFileInfo(ctx, id); return err }},
		{"GetMetadata", func() error { _, err := cl.GetMetadata(ctx, id); return err }},
		{"SetMetadata", func() error { return cl.SetMetadata(ctx, id, map[string]string{"a": "b"}, fdfs.MetaMerge) }},
		{"Delete", func() error { return cl.Delete(ctx, id) }},
	}
	for _, tc := range notExist {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var se *fdfs.StatusError
			if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.ENOENT) || !errors.As(err, &se) || se.Status != 2 {
				t.Fatalf("got %v, want status 2 matching fs.ErrNotExist and ENOENT", err)
			}
		})
	}
	t.Run("FailNext", func(t *testing.T) {
		for _, f := range []struct {
			cmd    byte
			status syscall.Errno
			call   func() error
		}{
			{fdfs.StorageProtoCmdUploadFile, syscall.ENOSPC, func() error {
				_, err := cl.Upload(ctx, "group1", "", strings.NewReader("abc"), 3)
				return err
			}},
			{fdfs.TrackerProtoCmdServiceQueryStoreWithGroupOne, syscall.EBUSY, func() error {
				_, err := cl.QueryStore(ctx, "group2")
				return err
			}},
			{fdfs.TrackerProtoCmdServerListAllGroups, syscall.EIO, func() error { _, err := cl.ListGroups(ctx); return err }},
		} {
			cluster.FailNext(f.cmd, byte(f.status))
			err := f.call()
			var se *fdfs.StatusError
			if !errors.Is(err, f.status) || !errors.As(err, &se) || se.Errno() != f.status || se.Cmd != f.cmd {
				t.Errorf("%s: got %v, want status %d", fdfs.CmdName(f.cmd), err, f.status)
			}
			if err := f.call(); err != nil {
				t.Errorf("%s after the failure: %v", fdfs.CmdName(f.cmd), err)
			}
		}
	})
	// The statuses left their connections usable: one per server is all
	// this test needed.
	if n := cl.OpenConns(); n > 4 {
		t.Errorf("%d connections open, want at most 4", n)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTrackerFailover(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Trackers: 3, Groups: []string{"group1"}})
	addrs := cluster.TrackerAddrs()
	cl := newClient(t, fdfs.Config{Trackers: append([]string{deadAddr(t)}, addrs...), ConnectTimeout: time.Second})
	ctx := context.Background()
	id := upload(t, cl, "group1", "bin", []byte("through the second tracker"))
	cluster.StopTracker(0) // the one that just answered
	if got := download(t, cl, id, 0, 0); string(got) != "through the second tracker" {
		t.Fatalf("downloaded %q", got)
	}
	if _, err := cl.ListGroups(ctx); err != nil {
		t.Fatal(err)
	}
	cluster.StopTracker(1)
	cluster.StopTracker(2)
	_, err := cl.ListGroups(ctx)
	if err == nil || !strings.Contains(err.Error(), "no tracker answered") {
		t.Fatalf("every tracker down: %v", err)
	}
	if err := cluster.StartTracker(0); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ListGroups(ctx); err != nil {
		t.Fatalf("after a tracker came back: %v", err)
	}
}

// waitReplicated waits until every storage of the cluster holds id.
func waitReplicated(t testing.TB, cluster *localcluster.Cluster, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, st := range cluster.Storages() {
		for !st.Has(id) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never reached %s", id, st.Addr())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestStorageFailover(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}, StoragesPerGroup: 2})
	cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}, ConnectTimeout: time.Second})
	ctx := context.Background()
	data := pattern(300_000)
	id := upload(t, cl, "group1", "dat", data)
	waitReplicated(t, cluster, id)
	named, err := cl.QueryFetch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var stopped, other *localcluster.Storage
	for _, st := range cluster.Storages() {
		if st.Addr() == named.String() {
			stopped = st
		} else {
			other = st
		}
	}
	if stopped == nil {
		t.Fatalf("QueryFetch named %s, not a storage of the cluster", named)
	}

	// Seen through a tracker that has not noticed yet (upstream notices
	// only when heartbeats stop), the dead storage is still named first.
	stale := staleTracker(t, cluster.TrackerAddr(), named, fdfs.ServerAddr{IP: "127.0.0.1", Port: portOf(other.Addr())})
	staleCl := newClient(t, fdfs.Config{Trackers: []string{stale}, ConnectTimeout: time.Second})

	stopped.Stop()
	for name, c := range map[string]*fdfs.Client{"tracker knows": cl, "tracker has not noticed": staleCl} {
		if got := download(t, c, id, 0, 0); !bytes.Equal(got, data) {
			t.Errorf("%s: download got %d bytes, not the file", name, len(got))
		}
		if got := download(t, c, id, 1000, 5000); !bytes.Equal(got, data[1000:6000]) {
			t.Errorf("%s: ranged download got the wrong bytes", name)
		}
		fi, err := c.QueryFileInfo(ctx, id)
		if err != nil || fi.FileSize != int64(len(data)) {
			t.Errorf("%s: file info %+v %v", name, fi, err)
		}
		// Nothing of the content was read before the dial failed, so the
		// upload goes to the other writable storage.
		nid, err := c.Upload(ctx, "group1", "", bytes.NewReader(data[:5000]), 5000)
		if err != nil {
			t.Errorf("%s: upload: %v", name, err)
		} else if !other.Has(nid) {
			t.Errorf("%s: upload %s is not on the running storage", name, nid)
		}
	}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}

// staleTracker is a tracker proxy that answers QUERY_FETCH_ONE and
// QUERY_STORE_WITH_GROUP_ONE with first, and their _ALL forms with first
// and then second, the way a tracker answers before it has noticed that
// first is gone; it passes every other request to the real tracker.
func staleTracker(t testing.TB, real string, first, second fdfs.ServerAddr) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cn.Close()
				var up net.Conn
				defer func() {
					if up != nil {
						up.Close()
					}
				}()
				for {
					h, err := fdfs.ReadHeader(cn, 1<<20)
					if err != nil {
						return
					}
					body := make([]byte, h.Length)
					if _, err := io.ReadFull(cn, body); err != nil {
						return
					}
					var resp []byte
					switch h.Cmd {
					case fdfs.TrackerProtoCmdServiceQueryFetchOne:
						m, _ := fdfs.DecodeFileRequest(body)
						resp = fdfs.QueryFetchResponse{Group: m.Group, Server: first}.Append(nil)
					case fdfs.TrackerProtoCmdServiceQueryFetchAll:
						m, _ := fdfs.DecodeFileRequest(body)
						resp = fdfs.QueryFetchAllResponse{Group: m.Group, Servers: []fdfs.ServerAddr{first, second}}.Append(nil)
					case fdfs.TrackerProtoCmdServiceQueryStoreWithGroupOne:
						m, _ := fdfs.DecodeGroupRequest(body)
						resp = fdfs.QueryStoreResponse{Group: m.Group, Server: first}.Append(nil)
					case fdfs.TrackerProtoCmdServiceQueryStoreWithGroupAll:
						m, _ := fdfs.DecodeGroupRequest(body)
						resp = fdfs.QueryStoreAllResponse{Group: m.Group, Servers: []fdfs.ServerAddr{first, second}}.Append(nil)
					default:
						if up == nil {
							if up, err = net.Dial("tcp", real); err != nil {
								return
							}
						}
						up.Write(append(h.Append(nil), body...))
						rh, err := fdfs.ReadHeader(up, 1<<20)
						if err != nil {
							return
						}
						rb := make([]byte, rh.Length)
						if _, err := io.ReadFull(up, rb); err != nil {
							return
						}
						cn.Write(append(rh.Append(nil), rb...))
						continue
					}
					cn.Write(append(fdfs.Header{Length: int64(len(resp)), Cmd: fdfs.TrackerProtoCmdResp}.Append(nil), resp...))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// slowReader hands out bytes in small pieces with a pause before each, so
// a call spends most of its time outside network I/O.
type slowReader struct{ pause time.Duration }

func (r slowReader) Read(p []byte) (int, error) {
	time.Sleep(r.pause)
	n := min(len(p), 1024)
	clear(p[:n])
	return n, nil
}

// TestCancel checks that cancelling the context ends a call at once,
// whether it waits for an answer or is busy streaming content.
func TestCancel(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}})
	cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}})
	id := upload(t, cl, "group1", "", []byte("some bytes"))
	run := func(name string, call func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- call(ctx) }()
		time.Sleep(100 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: got %v, want context.Canceled", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still running 10s after the cancel", name)
		}
	}
	cluster.SetDelay(time.Minute)
	run("waiting for the tracker", func(ctx context.Context) error { _, err := cl.ListGroups(ctx); return err })
	run("waiting for the storage", func(ctx context.Context) error { _, err := cl.QueryFileInfo(ctx, id); return err })
	cluster.SetDelay(0)
	run("streaming an upload", func(ctx context.Context) error {
		_, err := cl.Upload(ctx, "group1", "", slowReader{time.Millisecond}, 1<<30)
		return err
	})
	run("streaming a download to a slow writer", func(ctx context.Context) error {
		big := upload(t, cl, "group1", "", pattern(4<<20))
		_, err := cl.Download(ctx, big, 0, 0, slowWriter{50 * time.Millisecond})
		return err
	})
	if _, err := cl.ListGroups(context.Background()); err != nil {
		t.Fatalf("after the cancels: %v", err)
	}
}

type slowWriter struct{ pause time.Duration }

func (w slowWriter) Write(p []byte) (int, error) { time.Sleep(w.pause); return len(p), nil }

// TestNetworkTimeout: a server that accepts and never answers fails the
// call after NetworkTimeout, without a deadline on the context.
func TestNetworkTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(io.Discard, cn); cn.Close() }()
		}
	}()
	cl := newClient(t, fdfs.Config{Trackers: []string{ln.Addr().String()}, NetworkTimeout: 300 * time.Millisecond})
	start := time.Now()
	_, err = cl.ListGroups(context.Background())
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a timeout", err)
	}
	if took < 300*time.Millisecond || took > 10*time.Second {
		t.Fatalf("failed after %v with a 300ms network timeout", took)
	}
	if n := cl.OpenConns(); n != 0 {
		t.Fatalf("the timed-out connection is still open (%d)", n)
	}
}

func TestLoadClientConf(t *testing.T) {
	write := func(t *testing.T, text string) string {
		p := filepath.Join(t.TempDir(), "client.conf")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("good", func(t *testing.T) {
		cfg, err := fdfs.LoadClientConf(write(t, `# connect timeout in seconds
connect_timeout = 7
network_timeout=45
base_path = /opt/fastdfs
tracker_server = 10.0.0.1:22122
tracker_server=10.0.0.2:22123
tracker_server = 10.0.1.1,10.0.1.2:22124
tracker_server = [::1]:22125
log_level = info
use_connection_pool = false
#include http.conf
http.tracker_server_port = 80
`))
		if err != nil {
			t.Fatal(err)
		}
		want := "10.0.0.1:22122 10.0.0.2:22123 10.0.1.1:22124 10.0.1.2:22124 [::1]:22125"
		if got := strings.Join(cfg.Trackers, " "); got != want {
			t.Errorf("trackers %s, want %s", got, want)
		}
		if cfg.ConnectTimeout != 7*time.Second || cfg.NetworkTimeout != 45*time.Second {
			t.Errorf("timeouts %v %v", cfg.ConnectTimeout, cfg.NetworkTimeout)
		}
		if _, err := fdfs.NewClient(cfg); err != nil {
			t.Errorf("NewClient refused the loaded config: %v", err)
		}
	})
	for _, bad := range []struct{ text, want string }{
		{"tracker_server = 10.0.0.1\n", "no port"},
		{"tracker_server = 10.0.0.1:http\n", "bad port"},
		{"tracker_server = 10.0.0.1:70000\n", "bad port"},
		{"tracker_server = :22122\n", "empty host"},
		{"tracker_server = 10.0.0.1:22122\nnetwork_timeout = 30s\n", "network_timeout"},
		{"tracker_server = 10.0.0.1:22122\nconnect_timeout = 0\n", "connect_timeout"},
		{"tracker_server = 10.0.0.1:22122\nconnect_timeout = -1\n", "connect_timeout"},
		{"tracker_server 10.0.0.1:22122\n", "no '='"},
		{"base_path = /tmp\n", "no tracker_server"},
	} {
		_, err := fdfs.LoadClientConf(write(t, bad.text))
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "client.conf") {
			t.Errorf("%q: got %v, want an error naming the file and saying %q", bad.text, err, bad.want)
		}
	}
	if _, err := fdfs.LoadClientConf(filepath.Join(t.TempDir(), "missing.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestObserve: the hook sees every exchange with its bytes, headers
// included, and its error.
func TestObserve(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}})
	type seen struct {
		cmd            byte
		addr           string
		sent, received int64
		err            error
	}
	var mu sync.Mutex
	var got []seen
	dead := deadAddr(t)
	cl := newClient(t, fdfs.Config{Trackers: []string{dead, cluster.TrackerAddr()},
		Observe: func(cmd byte, addr string, took time.Duration, sent, received int64, err error) {
			mu.Lock()
			got = append(got, seen{cmd, addr, sent, received, err})
			mu.Unlock()
		}})
	id := upload(t, cl, "group1", "txt", make([]byte, 1000))
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("%d exchanges observed, want 3: %+v", len(got), got)
	}
	if g := got[0]; g.addr != dead || g.err == nil || g.sent != 0 || g.received != 0 {
		t.Errorf("dead tracker: %+v", g)
	}
	if g := got[1]; g.cmd != fdfs.TrackerProtoCmdServiceQueryStoreWithGroupOne || g.addr != cluster.TrackerAddr() ||
		g.err != nil || g.sent != 10+16 || g.received != 10+40 {
		t.Errorf("query store: %+v", g)
	}
	wantReceived := int64(10 + 16 + len(id) - len("group1/"))
	if g := got[2]; g.cmd != fdfs.StorageProtoCmdUploadFile || g.addr != cluster.Storages()[0].Addr() ||
		g.err != nil || g.sent != 10+15+1000 || g.received != wantReceived {
		t.Errorf("upload: %+v, want %d bytes sent and %d received", g, 10+15+1000, wantReceived)
	}
}

// TestTrackerSilent: a tracker that accepts and never answers costs one
// NetworkTimeout; the next tracker answers, and is asked first from then on.
func TestTrackerSilent(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, cn)
			mu.Unlock()
		}
	}()
	cl := newClient(t, fdfs.Config{Trackers: []string{ln.Addr().String(), cluster.TrackerAddr()}, NetworkTimeout: 300 * time.Millisecond})
	for i := 0; i < 3; i++ {
		if _, err := cl.ListGroups(context.Background()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 1 {
		t.Fatalf("the silent tracker got %d connections, want 1 (then the next one is asked first)", len(conns))
	}
}

// TestCloseDuringCalls: Close while calls are in flight; once they return,
// nothing is left open, and later calls fail.
func TestCloseDuringCalls(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}})
	cl, err := fdfs.NewClient(fdfs.Config{Trackers: []string{cluster.TrackerAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	cluster.SetDelay(20 * time.Millisecond)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				cl.ListGroups(context.Background())
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	cl.Close()
	wg.Wait()
	if n := cl.OpenConns(); n != 0 {
		t.Fatalf("%d connections open after Close and the calls' return", n)
	}
	if _, err := cl.ListGroups(context.Background()); err == nil {
		t.Fatal("a call after Close succeeded")
	}
}

// TestStatLayouts: the client reads clusters of every supported release
// without being told which, even when it lists groups first.
func TestStatLayouts(t *testing.T) {
	for _, l := range []fdfs.StatLayout{fdfs.StatLayoutV5_11, fdfs.StatLayoutV6_11, fdfs.StatLayoutV6_12,
		fdfs.StatLayoutV6_13_0, fdfs.StatLayoutV6_13_1, fdfs.StatLayoutV6_15IPv4, fdfs.StatLayoutV6_15IPv6} {
		t.Run(l.String(), func(t *testing.T) {
			cluster := startCluster(t, localcluster.Options{Groups: []string{"g1", "g2"}, Layout: l})
			cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}})
			ctx := context.Background()
			st := cluster.Storages()[0]
			gs, err := cl.ListGroups(ctx)
			if err != nil {
				t.Fatal(err)
			}
			g := gs[0]
			if len(gs) != 2 || g.Name != "g1" || g.StorageCount != 1 || fmt.Sprint(g.StoragePort) != fmt.Sprint(portOf(st.Addr())) ||
				g.SubdirCountPerPath != 256 || g.StorePathCount != 1 {
				t.Fatalf("groups %+v", gs)
			}
			classic := l <= fdfs.StatLayoutV6_12
			if classic && g.ActiveCount != 1 || !classic && (g.ReadableServerCount != 1 || g.WritableServerCount != 1) {
				t.Fatalf("server counts read with the wrong layout: %+v", g)
			}
			ss, err := cl.ListStorages(ctx, "g2", "")
			if err != nil || len(ss) != 1 || ss[0].IPAddr != "127.0.0.1" || ss[0].Status != fdfs.FdfsStorageStatusActive {
				t.Fatalf("storages %+v %v", ss, err)
			}
			id := upload(t, cl, "g2", "x", []byte("layout"))
			if got := download(t, cl, id, 0, 0); string(got) != "layout" {
				t.Fatalf("downloaded %q", got)
			}
			fi, err := cl.QueryFileInfo(ctx, id)
			if err != nil || fi.SourceIP != "127.0.0.1" || fi.FileSize != 6 {
				t.Fatalf("file info %+v %v", fi, err)
			}
			all, err := cl.QueryFetchAll(ctx, id)
			if err != nil || len(all) != 1 || all[0].IP != "127.0.0.1" {
				t.Fatalf("fetch all %+v %v", all, err)
			}
		})
	}
}

// TestServerClosedIdleConnections: a storage restart (here: every server
// dropping its connections) closes the pooled connections; the next upload,
// whose content cannot be sent twice, must not be written into one of them.
func TestServerClosedIdleConnections(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{})
	cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}})
	ctx := context.Background()
	for i := range 3 {
		upload(t, cl, "group1", "txt", pattern(100+i))
	}
	cluster.DropConnections()
	time.Sleep(50 * time.Millisecond) // let the FINs arrive
	for i := range 3 {
		data := pattern(200 + i)
		id, err := cl.Upload(ctx, "group1", "txt", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("upload %d after the server closed the pooled connections: %v", i, err)
		}
		if got := download(t, cl, id, 0, 0); !bytes.Equal(got, data) {
			t.Fatalf("upload %d reads back differently", i)
		}
	}
}

// With Config.StoreReuse, uploads to a group ask the tracker once and reuse
// its answer; an upload that fails on a reused answer drops it, and one the
// storage refused is sent again where the tracker says now.
func TestStoreReuse(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}, StoragesPerGroup: 2})
	var mu sync.Mutex
	queries := 0
	cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}, ConnectTimeout: time.Second,
		StoreReuse: time.Hour,
		Observe: func(cmd byte, addr string, took time.Duration, sent, received int64, err error) {
			if cmd == fdfs.TrackerProtoCmdServiceQueryStoreWithGroupOne {
				mu.Lock()
				queries++
				mu.Unlock()
			}
		}})
	asked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return queries
	}
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		ids = append(ids, upload(t, cl, "group1", "txt", pattern(100+i)))
	}
	if n := asked(); n != 1 {
		t.Fatalf("5 uploads asked the tracker %d times, want 1", n)
	}
	for i, id := range ids {
		var got bytes.Buffer
		if _, err := cl.Download(ctx, id, 0, 0, &got); err != nil || !bytes.Equal(got.Bytes(), pattern(100+i)) {
			t.Fatalf("%s: %v", id, err)
		}
	}

	// The storage refuses one upload (full): the content, readable again,
	// goes where the tracker names now, after one more question.
	cluster.FailNext(fdfs.StorageProtoCmdUploadFile, 28)
	data := pattern(3000)
	id, err := cl.Upload(ctx, "group1", "txt", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("upload after a refusal: %v", err)
	}
	if n := asked(); n != 2 {
		t.Fatalf("tracker asked %d times, want 2", n)
	}
	var got bytes.Buffer
	if _, err := cl.Download(ctx, id, 0, 0, &got); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("download of the resent upload: %v", err)
	}

	// A reader that cannot seek back gets the error, and the next upload
	// asks the tracker again.
	cluster.FailNext(fdfs.StorageProtoCmdUploadFile, 28)
	if _, err := cl.Upload(ctx, "group1", "txt", io.LimitReader(bytes.NewReader(data), 3000), 3000); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("upload of a one-pass reader to a full storage: %v, want ENOSPC", err)
	}
	upload(t, cl, "group1", "txt", data)
	if n := asked(); n != 3 {
		t.Fatalf("tracker asked %d times, want 3", n)
	}

	// The storage named goes away: the upload fails over to the other
	// one, and the answer is not reused again. Replication waits, so that
	// only the storage named holds the file.
	cluster.PauseReplication(true)
	defer cluster.PauseReplication(false)
	last := upload(t, cl, "group1", "txt", data) // on the reused answer
	stopped := 0
	for _, st := range cluster.Storages() {
		if st.Has(last) {
			st.Stop()
			defer st.Restart()
			stopped++
		}
	}
	if stopped != 1 {
		t.Fatalf("%d storages hold the new file before replication, want 1", stopped)
	}
	before := asked()
	upload(t, cl, "group1", "txt", data)
	upload(t, cl, "group1", "txt", data)
	// The first fails over through QUERY_STORE_ALL; the second asks
	// QUERY_STORE afresh instead of reusing the dead storage.
	if n := asked() - before; n != 1 {
		t.Fatalf("after a dead storage the tracker was asked %d times, want 1", n)
	}

	// Without StoreReuse every upload asks.
	plain := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}, ConnectTimeout: time.Second,
		Observe: func(cmd byte, addr string, took time.Duration, sent, received int64, err error) {
			if cmd == fdfs.TrackerProtoCmdServiceQueryStoreWithGroupOne {
				mu.Lock()
				queries++
				mu.Unlock()
			}
		}})
	before = asked()
	for i := range 3 {
		upload(t, plain, "group1", "txt", pattern(10+i))
	}
	if n := asked() - before; n != 3 {
		t.Fatalf("3 uploads without StoreReuse asked %d times, want 3", n)
	}
}

// closingProxy passes requests to the server at real, but closes each
// connection, without an answer, when a second request arrives on it: a
// storage that closed a pooled connection just after the pool checked it.
func closingProxy(t testing.TB, real string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cn.Close()
				up, err := net.Dial("tcp", real)
				if err != nil {
					return
				}
				defer up.Close()
				for n := 0; ; n++ {
					h, err := fdfs.ReadHeader(cn, 64<<20)
					if err != nil {
						return
					}
					body := make([]byte, h.Length)
					if _, err := io.ReadFull(cn, body); err != nil || n == 1 {
						return
					}
					up.Write(append(h.Append(nil), body...))
					rh, err := fdfs.ReadHeader(up, 64<<20)
					if err != nil {
						return
					}
					rb := make([]byte, rh.Length)
					if _, err := io.ReadFull(up, rb); err != nil {
						return
					}
					cn.Write(append(rh.Append(nil), rb...))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// onlyReader hides a reader's Seek.
type onlyReader struct{ io.Reader }

// TestStaleConnectionResendsContent: an upload written into a pooled
// connection that the storage closed sends its content again on a new
// connection when the content seeks back, and fails when it cannot.
func TestStaleConnectionResendsContent(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}})
	storage := cluster.Storages()[0].Addr()
	proxy := fdfs.ServerAddr{IP: "127.0.0.1", Port: portOf(closingProxy(t, storage))}
	tracker := staleTracker(t, cluster.TrackerAddr(), proxy, proxy)
	cl := newClient(t, fdfs.Config{Trackers: []string{tracker}})
	direct := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}})
	ctx := context.Background()
	for i := range 3 {
		data := pattern(1000 + i)
		// Offset the reader: content starts where the reader stands.
		r := bytes.NewReader(append([]byte("skip"), data...))
		r.Seek(4, io.SeekStart)
		id, err := cl.Upload(ctx, "group1", "bin", r, int64(len(data)))
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		if got := download(t, direct, id, 0, 0); !bytes.Equal(got, data) {
			t.Fatalf("upload %d reads back differently", i)
		}
	}
	// The pooled connection has had its one request: the next one breaks.
	data := pattern(999)
	if _, err := cl.Upload(ctx, "group1", "bin", onlyReader{bytes.NewReader(data)}, int64(len(data))); err == nil {
		t.Fatal("an upload whose content cannot be read again was reported as sent after its connection broke")
	}
}

// garbageTracker answers every request with a frame that is not a
// response.
func garbageTracker(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cn.Close()
				h, err := fdfs.ReadHeader(cn, 1<<20)
				if err != nil {
					return
				}
				io.CopyN(io.Discard, cn, h.Length)
				cn.Write(fdfs.Header{Cmd: 42}.Append(nil))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestTrackerFailoverOnProtocolError: a tracker that answers with a
// malformed frame is passed over for the next, as a dead one is.
func TestTrackerFailoverOnProtocolError(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}})
	bad := garbageTracker(t)
	cl := newClient(t, fdfs.Config{Trackers: []string{bad, cluster.TrackerAddr()}})
	gs, err := cl.ListGroups(context.Background())
	if err != nil || len(gs) != 1 {
		t.Fatalf("ListGroups past a garbling tracker: %v, %v", gs, err)
	}
	only := newClient(t, fdfs.Config{Trackers: []string{bad}})
	if _, err := only.ListGroups(context.Background()); !errors.Is(err, fdfs.ErrProtocol) {
		t.Fatalf("ListGroups of a garbling tracker alone: %v, want ErrProtocol", err)
	}
}
