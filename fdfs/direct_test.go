package fdfs_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
)

// exchanges records what a client sent where, through Config.Observe.
type exchanges struct {
	mu  sync.Mutex
	cmd []byte
	at  []string
	err []error
}

func (x *exchanges) observe(cmd byte, addr string, took time.Duration, sent, received int64, err error) {
	x.mu.Lock()
	x.cmd, x.at, x.err = append(x.cmd, cmd), append(x.at, addr), append(x.err, err)
	x.mu.Unlock()
}

// count returns how many exchanges of cmd went to addr ("" for any) since
// the last reset.
func (x *exchanges) count(cmd byte, addr string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for i, c := range x.cmd {
		if c == cmd && (addr == "" || x.at[i] == addr) {
			n++
		}
	}
	return n
}

func (x *exchanges) reset() {
	x.mu.Lock()
	x.cmd, x.at, x.err = nil, nil, nil
	x.mu.Unlock()
}

// TestDirectRead: with StorageListTTL, reads, metadata, file info and
// changes of a file go to the storage its ID names without asking the
// tracker where; the storage list is asked for once per TTL. Without it,
// every file costs a QUERY_FETCH_ONE, as before.
func TestDirectRead(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}})
	var x exchanges
	cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}, StorageListTTL: time.Hour, Observe: x.observe})
	ctx := context.Background()
	storage := cluster.Storages()[0].Addr()
	var ids [][]byte
	var names []string
	for i := range 5 {
		data := pattern(4096 + i)
		ids = append(ids, data)
		names = append(names, upload(t, cl, "group1", "txt", data))
	}
	x.reset()
	for i, id := range names {
		if got := download(t, cl, id, 0, 0); !bytes.Equal(got, ids[i]) {
			t.Fatalf("%s: wrong content", id)
		}
		if got := download(t, cl, id, 100, 50); !bytes.Equal(got, ids[i][100:150]) {
			t.Fatalf("%s: wrong range", id)
		}
		if fi, err := cl.QueryFileInfo(ctx, id); err != nil || fi.FileSize != int64(len(ids[i])) {
			t.Fatalf("%s: file info %+v %v", id, fi, err)
		}
		if err := cl.SetMetadata(ctx, id, map[string]string{"k": "v"}, fdfs.MetaOverwrite); err != nil {
			t.Fatalf("%s: set metadata: %v", id, err)
		}
		if m, err := cl.GetMetadata(ctx, id); err != nil || m["k"] != "v" {
			t.Fatalf("%s: metadata %v %v", id, m, err)
		}
	}
	for _, cmd := range []byte{fdfs.TrackerProtoCmdServiceQueryFetchOne, fdfs.TrackerProtoCmdServiceQueryFetchAll, fdfs.TrackerProtoCmdServiceQueryUpdate} {
		if n := x.count(cmd, ""); n != 0 {
			t.Errorf("%d %s exchanges, want none", n, fdfs.CmdName(cmd))
		}
	}
	if n := x.count(fdfs.TrackerProtoCmdServerListStorage, ""); n != 1 {
		t.Errorf("storage list asked %d times, want once", n)
	}
	if n := x.count(fdfs.StorageProtoCmdDownloadFile, storage); n != 10 {
		t.Errorf("%d downloads from %s, want 10", n, storage)
	}

	// A deleted file is ENOENT, after the tracker confirmed it.
	if err := cl.Delete(ctx, names[0]); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := cl.Download(ctx, names[0], 0, 0, &buf); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("download of a deleted file: %v, want ENOENT", err)
	}
	if n := x.count(fdfs.TrackerProtoCmdServiceQueryUpdate, ""); n != 0 {
		t.Errorf("delete asked the tracker %d times where the file is", n)
	}

	var plainX exchanges
	plain := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}, Observe: plainX.observe})
	for _, id := range names[1:] {
		download(t, plain, id, 0, 0)
	}
	if n := plainX.count(fdfs.TrackerProtoCmdServiceQueryFetchOne, ""); n != 4 {
		t.Errorf("without StorageListTTL: %d QUERY_FETCH_ONE for 4 files, want 4", n)
	}
	if n := plainX.count(fdfs.TrackerProtoCmdServerListStorage, ""); n != 0 {
		t.Errorf("without StorageListTTL the storage list was asked for %d times", n)
	}
}

// TestDirectReadSourceDown: storages with server ids (so that a file ID
// tells the two storages of a group apart). Files are read from their
// source; once it is stopped, while the client's list still says ACTIVE,
// the failed connection sends the read through the tracker to the other
// storage, and later reads skip the dead one at once. New files whose copy
// has not reached the other storage are never read from there.
func TestDirectReadSourceDown(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{Groups: []string{"group1"}, StoragesPerGroup: 2, StorageIDs: true})
	var x exchanges
	cl := newClient(t, fdfs.Config{Trackers: []string{cluster.TrackerAddr()}, StorageListTTL: time.Hour,
		ConnectTimeout: time.Second, Observe: x.observe})
	ctx := context.Background()
	sources := map[string]*localcluster.Storage{}
	for _, st := range cluster.Storages() {
		sources[st.Addr()] = st
	}
	sourceOf := func(id string) *localcluster.Storage {
		t.Helper()
		f, err := fdfs.ParseFileID(id)
		if err != nil || f.SourceID == 0 {
			t.Fatalf("%s: no server id in the name (%v)", id, err)
		}
		return cluster.Storages()[f.SourceID-100001]
	}

	// Replication paused: a new file is on its source alone, and every
	// read must find it there.
	cluster.PauseReplication(true)
	data := pattern(70_000)
	id := upload(t, cl, "group1", "bin", data)
	src := sourceOf(id)
	if !src.Has(id) {
		t.Fatalf("%s is not on the storage its name names", id)
	}
	x.reset()
	for range 6 {
		if got := download(t, cl, id, 0, 0); !bytes.Equal(got, data) {
			t.Fatal("wrong content from the source")
		}
	}
	if n := x.count(fdfs.StorageProtoCmdDownloadFile, src.Addr()); n != 6 {
		t.Errorf("%d of 6 downloads from the source %s", n, src.Addr())
	}
	if n := x.count(fdfs.TrackerProtoCmdServiceQueryFetchOne, ""); n != 0 {
		t.Errorf("%d QUERY_FETCH_ONE, want none", n)
	}
	cluster.PauseReplication(false)
	waitReplicated(t, cluster, id)

	// The source goes down; the client's storage list, an hour fresh,
	// still says ACTIVE.
	src.Stop()
	defer src.Restart()
	x.reset()
	if got := download(t, cl, id, 0, 0); !bytes.Equal(got, data) {
		t.Fatal("wrong content after the source went down")
	}
	if n := x.count(fdfs.StorageProtoCmdDownloadFile, src.Addr()); n != 1 {
		t.Errorf("%d download attempts at the stopped source, want 1 (the failed dial)", n)
	}
	if n := x.count(fdfs.TrackerProtoCmdServiceQueryFetchOne, ""); n != 1 {
		t.Errorf("%d QUERY_FETCH_ONE after the failed dial, want 1", n)
	}
	x.reset()
	if got := download(t, cl, id, 5, 1000); !bytes.Equal(got, data[5:1005]) {
		t.Fatal("wrong range after the source went down")
	}
	if fi, err := cl.QueryFileInfo(ctx, id); err != nil || fi.FileSize != int64(len(data)) {
		t.Errorf("file info with the source down: %+v %v", fi, err)
	}
	if _, err := cl.GetMetadata(ctx, id); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("metadata with the source down: %v", err)
	}
	if n := x.count(fdfs.StorageProtoCmdDownloadFile, src.Addr()) + x.count(fdfs.StorageProtoCmdQueryFileInfo, src.Addr()) +
		x.count(fdfs.StorageProtoCmdGetMetadata, src.Addr()); n != 0 {
		t.Errorf("%d more exchanges tried the stopped source", n)
	}
}
