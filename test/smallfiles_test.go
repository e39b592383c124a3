package test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fdfsfs/fdfs/localcluster"
)

// TestSmallFileRequests counts what copying small files into the mount
// and reading them back (cold: after a remount on an emptied block cache)
// costs in FUSE requests and FastDFS exchanges, per file, with the
// mount's own metrics: a read-only close sends no FLUSH, a file's content
// comes in one download straight from the storage its ID names (no
// QUERY_FETCH_ONE), and each copy is one upload.
func TestSmallFileRequests(t *testing.T) {
	const files = 20
	c := cluster(t, localcluster.Options{})
	addr := freePort(t)
	m := startMount(t, c, "--metrics", addr)
	src := t.TempDir()
	want := map[string][]byte{}
	for i := range files {
		name := fmt.Sprintf("f%02d.txt", i)
		want[name] = pattern(4096, byte(i))
		if err := os.WriteFile(filepath.Join(src, name), want[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	op := func(s map[string]float64, name string) float64 { return s[`fdfsfs_fuse_ops_total{op="`+name+`"}`] }
	cmd := func(s map[string]float64, name string) float64 {
		return s[`fdfsfs_fdfs_command_duration_seconds_count{command="`+name+`"}`]
	}

	if err := os.Mkdir(m.path("group1", "small"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, addr)
	sh(t, "cp -r "+src+"/. "+m.path("group1", "small"))
	after := scrape(t, addr)
	if n := cmd(after, "UPLOAD_FILE") - cmd(before, "UPLOAD_FILE"); n != files {
		t.Errorf("%v uploads for %d files", n, files)
	}
	if n := op(after, "create") - op(before, "create"); n != files {
		t.Errorf("%v creates for %d files", n, files)
	}

	// Cold: a new mount process over an emptied block cache.
	m.stop()
	if err := os.RemoveAll(filepath.Join(m.state, "cache")); err != nil {
		t.Fatal(err)
	}
	m.start()
	dropCaches(t)
	before = scrape(t, addr)
	for name, data := range want {
		got, err := os.ReadFile(m.path("group1", "small", name))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s read back: %v", name, err)
		}
	}
	// RELEASE goes out after close(2) returns; give the last ones a moment.
	deadline := time.Now().Add(5 * time.Second)
	for op(scrape(t, addr), "release")-op(before, "release") < files && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	after = scrape(t, addr)
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"FUSE open", op(after, "open") - op(before, "open"), files},
		{"FUSE read", op(after, "read") - op(before, "read"), files},
		{"FUSE release", op(after, "release") - op(before, "release"), files},
		{"FUSE flush", op(after, "flush") - op(before, "flush"), 0},
		{"DOWNLOAD_FILE", cmd(after, "DOWNLOAD_FILE") - cmd(before, "DOWNLOAD_FILE"), files},
		{"SERVICE_QUERY_FETCH_ONE", cmd(after, "SERVICE_QUERY_FETCH_ONE") - cmd(before, "SERVICE_QUERY_FETCH_ONE"), 0},
	} {
		if c.got != c.want {
			t.Errorf("reading %d files of 4 KiB: %v %s requests, want %v", files, c.got, c.name, c.want)
		}
	}
	// Anything else the kernel asked (lookups of names it had forgotten,
	// getattr) is listed for the record.
	var other []string
	for k, v := range after {
		if strings.HasPrefix(k, "fdfsfs_fuse_ops_total{") && v != before[k] {
			other = append(other, fmt.Sprintf("%s %v", k, v-before[k]))
		}
	}
	t.Logf("FUSE requests while reading %d files: %s", files, strings.Join(other, ", "))
}

// TestSmallFilesReadInOrder: reading a listed directory's small files in
// order (as cat dir/*, tar and cp -r do) fetches the next ones ahead of
// the reader, each file still once; and the small files' content, kept in
// the block cache's packs, survives a remount without another download.
func TestSmallFilesReadInOrder(t *testing.T) {
	const files = 40
	c := cluster(t, localcluster.Options{})
	addr := freePort(t)
	m := startMount(t, c, "--metrics", addr)
	src := t.TempDir()
	want := map[string][]byte{}
	for i := range files {
		name := fmt.Sprintf("f%02d.txt", i)
		want[name] = pattern(3000+i, byte(i))
		if err := os.WriteFile(filepath.Join(src, name), want[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := m.path("group1", "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, "cp -r "+src+"/. "+dir)
	downloads := func() float64 {
		return scrape(t, addr)[`fdfsfs_fdfs_command_duration_seconds_count{command="DOWNLOAD_FILE"}`]
	}

	m.stop()
	if err := os.RemoveAll(filepath.Join(m.state, "cache")); err != nil {
		t.Fatal(err)
	}
	m.start()
	dropCaches(t)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != files {
		t.Fatalf("listing: %d entries, %v", len(ents), err)
	}
	before := downloads()
	readFile := func(name string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want[name]) {
			t.Fatalf("%s read back wrong: %v", name, err)
		}
	}
	readFile(ents[0].Name())
	readFile(ents[1].Name())
	// The second file in order has the next eight fetched ahead.
	deadline := time.Now().Add(5 * time.Second)
	for downloads()-before < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := downloads() - before; n != 10 {
		t.Fatalf("%v downloads after reading two files in order, want 10 (the two and eight ahead)", n)
	}
	for _, e := range ents[2:] {
		readFile(e.Name())
	}
	if n := downloads() - before; n != files {
		t.Errorf("%v downloads for reading %d files in order, want one each", n, files)
	}

	// The same files after a remount over the kept cache: no download,
	// but for blocks that found the cache's write queue full (none,
	// unless the machine is very busy).
	skipped := scrape(t, addr)["fdfsfs_cache_store_skips_total"]
	m.stop() // writes what is queued
	m.start()
	dropCaches(t)
	before = downloads()
	for name := range want {
		readFile(name)
	}
	if n := downloads() - before; n != skipped {
		t.Errorf("%v downloads after a remount over the kept cache, want %v (the blocks not stored)", n, skipped)
	}
}
