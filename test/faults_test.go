package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fdfsfs/fdfs/fdfstest"
)

// Faults, bad input and load: the mount keeps working where it can, fails
// fast with the errno a disk would give where it cannot, and never loses
// content whose close() returned 0.

// fastFail is the network timeout of the mounts under test, so that a dead
// server costs seconds, not the default 30.
var fastFail = []string{"--network-timeout", "2s"}

// TestFaultTrackerFailover: the first tracker is down; every operation goes
// to the next one.
func TestFaultTrackerFailover(t *testing.T) {
	c := cluster(t, fdfstest.Options{Trackers: 3})
	c.StopTracker(0)
	m := startMount(t, c, fastFail...)
	src := filepath.Join(t.TempDir(), "in.bin")
	data := pattern(3<<20+17, 1)
	os.WriteFile(src, data, 0o644)
	sh(t, "cp "+src+" "+m.path("group1", "a.bin"))
	sh(t, "cp "+src+" "+m.path("group2", "b.bin"))
	for _, p := range []string{"group1/a.bin", "group2/b.bin"} {
		if got := sum(t, m.path(p)); got != sumBytes(data) {
			t.Fatalf("%s: content differs", p)
		}
	}
	if out := sh(t, "ls "+m.path("group1")); strings.TrimSpace(out) != "a.bin" {
		t.Fatalf("ls group1 = %q", out)
	}
	if out := strings.Fields(sh(t, "ls "+m.dir)); strings.Join(out, " ") != "group1 group2 group3" {
		t.Fatalf("ls root = %q", out)
	}
	id := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+m.path("group1", "a.bin")))
	sh(t, "rm "+m.path("group1", "a.bin"))
	if _, err := os.Stat(m.path("group1", "a.bin")); !os.IsNotExist(err) {
		t.Fatalf("after rm: %v", err)
	}
	// rm deleted the FastDFS file too.
	for _, st := range c.Storages() {
		if st.Group() == "group1" && st.Has(id) {
			t.Fatalf("%s still on the storage after rm", id)
		}
	}
}

// TestFaultStorageDownReadsFromPeer: a group of two storages loses either
// one; reads of replicated files go to the other.
func TestFaultStorageDownReadsFromPeer(t *testing.T) {
	c := cluster(t, fdfstest.Options{Groups: []string{"group1"}, StoragesPerGroup: 2})
	m := startMount(t, c, fastFail...)
	sts := c.Storages()
	want := map[string][]byte{}
	for i, name := range []string{"first", "second", "third"} {
		data := pattern(1<<20+i, byte(10+i))
		if err := writeFile(m.path("group1", name), data); err != nil {
			t.Fatal(err)
		}
		want[name] = data
	}
	for name := range want {
		id := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+m.path("group1", name)))
		deadline := time.Now().Add(20 * time.Second)
		for !(sts[0].Has(id) && sts[1].Has(id)) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not on both storages after 20s", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := sum(t, m.path("group1", "first")); got != sumBytes(want["first"]) {
		t.Fatal("first: content differs")
	}
	// Each file below is read for the first time (not in the block cache)
	// while one of the two storages is down.
	for i, name := range []string{"second", "third"} {
		down := sts[i]
		down.Stop()
		dropCaches()
		if got := sum(t, m.path("group1", name)); got != sumBytes(want[name]) {
			t.Fatalf("%s with storage %d down: content differs", name, i)
		}
		if err := down.Restart(); err != nil {
			t.Fatal(err)
		}
	}
}
