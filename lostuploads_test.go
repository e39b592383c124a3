package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
	"fdfsfs/index"
)

// TestLostUploadsLeavesKnownFiles: of the files created since the time,
// --lost-since names only the one nothing knows; a named file, a file of
// the by-ID view (index adopt) and an index backup are not lost uploads.
// --repair refuses to delete while a mount's session is alive (its uploads
// not named yet look lost), and deletes the lost file once none is.
func TestLostUploadsLeavesKnownFiles(t *testing.T) {
	ctx := t.Context()
	cl, err := localcluster.Start(localcluster.Options{Groups: []string{"group1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, err := fdfs.NewClient(fdfs.Config{Trackers: []string{cl.TrackerAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	idx, err := index.OpenBadger("", index.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()

	// FastDFS keeps creation times in whole seconds.
	since := time.Now().Truncate(time.Second)
	upload := func(body string) string {
		id, err := c.Upload(ctx, "group1", "bin", strings.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	lost := upload("lost")
	named := upload("named")
	if _, err := idx.Create(ctx, index.RootIno, "named.bin", index.Attr{Kind: index.KindFile, Mode: 0o644, FileID: named, Size: 5}); err != nil {
		t.Fatal(err)
	}
	adopted := upload("adopted")
	if _, err := idx.AdoptBatch(ctx, []index.ByIDEntry{{FileID: adopted, Origin: index.ByIDAdopted, Size: 7, Mtime: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	backup, err := backupIndex(ctx, idx, c, "group1")
	if err != nil {
		t.Fatal(err)
	}

	got, err := lostUploads(ctx, idx, c, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != lost {
		t.Fatalf("lostUploads = %q, want only %s (named %s, adopted %s, backup %s)", got, lost, named, adopted, backup)
	}

	exists := func(id string) bool {
		t.Helper()
		_, err := c.QueryFileInfo(ctx, id)
		return err == nil
	}
	if _, err := idx.RegisterSession(ctx, "host-b:42:/mnt", time.Hour); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = checkLostUploads(ctx, &out, idx, c, since, true)
	if err == nil || !strings.Contains(err.Error(), "host-b:42:/mnt") {
		t.Errorf("--repair with a mount's session alive: %v, want a refusal naming the session", err)
	}
	if !exists(lost) {
		t.Fatal("--repair deleted an upload while a mount that may still name it was alive")
	}

	if err := idx.EndSession(ctx, "host-b:42:/mnt"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := checkLostUploads(ctx, &out, idx, c, since, true); err != nil {
		t.Fatalf("--repair with no mount: %v\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "lost uploads deleted: 1\n") || exists(lost) {
		t.Errorf("--repair did not delete the lost upload:\n%s", &out)
	}
	for _, id := range []string{named, adopted, backup} {
		if !exists(id) {
			t.Errorf("--repair deleted %s, which the index knows", id)
		}
	}
}
