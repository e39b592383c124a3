package fdfs_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
)

func listGroup(t *testing.T, cl *fdfs.Client, group string) ([]fdfs.GroupFile, error) {
	t.Helper()
	var out []fdfs.GroupFile
	err := cl.ListGroupFiles(context.Background(), group, func(f fdfs.GroupFile) error {
		out = append(out, f)
		return nil
	})
	return out, err
}

func fileIDs(fs []fdfs.GroupFile) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.FileID)
	}
	slices.Sort(ids)
	return ids
}

// TestListGroupFiles lists what a group holds through the client: the
// files uploaded and not deleted, with their create times and operations;
// another group's files stay out; an unknown group fails naming it.
func TestListGroupFiles(t *testing.T) {
	c := startCluster(t, localcluster.Options{})
	cl := newClient(t, fdfs.Config{Trackers: []string{c.TrackerAddr()}})
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	var want []string
	for i := range 5 {
		want = append(want, upload(t, cl, "group1", "dat", pattern(100+i)))
	}
	app, err := cl.UploadAppender(ctx, "group1", "log", strings.NewReader("x"), 1)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, app)
	if err := cl.Delete(ctx, want[0]); err != nil {
		t.Fatal(err)
	}
	want = want[1:]
	upload(t, cl, "group2", "dat", pattern(10))

	got, err := listGroup(t, cl, "group1")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if ids := fileIDs(got); !slices.Equal(ids, want) {
		t.Fatalf("listed %v\nwant %v", ids, want)
	}
	for _, f := range got {
		if f.Op != fdfs.StorageOpTypeSourceCreateFile || f.Created.Before(before) || f.Created.After(time.Now()) ||
			f.StorePathIndex != 0 || f.Target != "" || f.Storage != c.Storages()[0].Addr() {
			t.Errorf("listed %+v", f)
		}
	}
	if empty, err := listGroup(t, cl, "group3"); err != nil || len(empty) != 0 {
		t.Fatalf("empty group: %v, %v", empty, err)
	}
	_, err = listGroup(t, cl, "nosuch")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("unknown group: %v", err)
	}
	stop := errors.New("stop")
	if err := cl.ListGroupFiles(ctx, "group1", func(fdfs.GroupFile) error { return stop }); err != stop {
		t.Fatalf("fn's error came back as %v", err)
	}
}

// TestListGroupFilesFailover: a storage that fails before listing
// anything is replaced by another storage of the group.
func TestListGroupFilesFailover(t *testing.T) {
	c := startCluster(t, localcluster.Options{Groups: []string{"group1"}, StoragesPerGroup: 2})
	cl := newClient(t, fdfs.Config{Trackers: []string{c.TrackerAddr()}})
	id := upload(t, cl, "group1", "dat", pattern(50))
	waitReplicated(t, c, id)
	c.FailNext(fdfs.StorageProtoCmdFetchOnePathBinlog, 5)
	got, err := listGroup(t, cl, "group1")
	if err != nil || len(got) != 1 || got[0].FileID != id {
		t.Fatalf("%+v, %v", got, err)
	}
	c.FailNext(fdfs.StorageProtoCmdFetchOnePathBinlog, 5)
	c.FailNext(fdfs.StorageProtoCmdFetchOnePathBinlog, 5)
	if _, err := listGroup(t, cl, "group1"); err == nil || !strings.Contains(err.Error(), "no storage listed it") {
		t.Fatalf("both failing: %v", err)
	}
}
