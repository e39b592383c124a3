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
