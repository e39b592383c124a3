package localcluster

import (
	"context"
	"testing"

	"fdfsfs/fdfs"
)

// TestStorageIDs: with Options.StorageIDs each storage's name carries its
// server id, LIST_STORAGE reports it as the id and filters by it, and file
// info still gives the storage's address as the source.
func TestStorageIDs(t *testing.T) {
	c := startCluster(t, Options{Groups: []string{"group1", "group2"}, StoragesPerGroup: 2, StorageIDs: true})
	c.PauseReplication(true)
	defer c.PauseReplication(false)
	cl, err := fdfs.NewClient(fdfs.Config{Trackers: []string{c.TrackerAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	want := map[string][]string{"group1": {"100001", "100002"}, "group2": {"100003", "100004"}}
	for group, ids := range want {
		ss, err := cl.ListStorages(ctx, group, "")
		if err != nil || len(ss) != 2 || ss[0].ID != ids[0] || ss[1].ID != ids[1] || ss[0].IPAddr != storageIP {
			t.Fatalf("%s: storages %+v, %v; want ids %v", group, ss, err, ids)
		}
		one, err := cl.ListStorages(ctx, group, ids[1])
		if err != nil || len(one) != 1 || one[0].ID != ids[1] {
			t.Errorf("%s: list of storage %s: %+v %v", group, ids[1], one, err)
		}
	}
	for i, st := range c.Storages() {
		name := upload(t, st, fdfs.StorageProtoCmdUploadFile, "txt", []byte("content"))
		f, err := fdfs.ParseRemoteFilename(name)
		if err != nil || f.SourceID != uint32(firstServerID+i) || f.SourceIP != nil {
			t.Errorf("storage %d: name %s has source id %d ip %v (%v), want %d", i, name, f.SourceID, f.SourceIP, err, firstServerID+i)
		}
		info, err := cl.QueryFileInfo(ctx, st.Group()+"/"+name)
		if err != nil || info.SourceIP != storageIP {
			t.Errorf("storage %d: file info %+v %v", i, info, err)
		}
	}
}
