package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"fdfsfs/fdfs/localcluster"
)

// freePort returns a loopback address nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// scrape reads /metrics and returns each sample line's value by its name
// with labels, as Prometheus's text format writes it.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// TestMountOperations checks what an operator relies on: the metrics a
// mount serves with --metrics, and the nginx URL of a file with
// --http-base.
func TestMountOperations(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	addr := freePort(t)
	m := startMount(t, c, "--metrics", addr, "--http-base", "group2=http://host:8887")

	t.Run("metrics move with cp and cat", func(t *testing.T) {
		before := scrape(t, addr)
		data := pattern(700<<10, 9)
		src := filepath.Join(t.TempDir(), "m.bin")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sh(t, "cp "+src+" "+m.path("group1", "m.bin"))
		if got := sum(t, m.path("group1", "m.bin")); got != sumBytes(data) {
			t.Fatal("read back differs")
		}
		sh(t, "cat "+m.path("group1", "m.bin")+" >/dev/null")
		after := scrape(t, addr)

		if up := after["fdfsfs_uploaded_bytes_total"] - before["fdfsfs_uploaded_bytes_total"]; up < float64(len(data)) {
			t.Errorf("uploaded bytes grew by %v, want >= %d", up, len(data))
		}
		for _, op := range []string{"lookup", "create", "write", "flush", "read"} {
			if n := after[`fdfsfs_fuse_ops_total{op="`+op+`"}`]; n <= 0 {
				t.Errorf("FUSE op %s counted %v times, want > 0", op, n)
			}
		}
		if n := after[`fdfsfs_fdfs_command_duration_seconds_count{command="UPLOAD_FILE"}`]; n < 1 {
			t.Errorf("UPLOAD_FILE histogram count = %v, want >= 1", n)
		}
		if n := after[`fdfsfs_fdfs_command_duration_seconds_count{command="SERVICE_QUERY_STORE_WITH_GROUP_ONE"}`]; n < 1 {
			t.Errorf("tracker query histogram count = %v, want >= 1", n)
		}
		if n := after["fdfsfs_fdfs_open_connections"]; n < 1 {
			t.Errorf("open connections = %v, want >= 1 (pooled)", n)
		}
		if _, ok := after["fdfsfs_cache_hits_total"]; !ok {
			t.Error("no fdfsfs_cache_hits_total")
		}
		if n := after["fdfsfs_uploads_in_flight"]; n != 0 {
			t.Errorf("uploads in flight after close = %v, want 0", n)
		}
		// A refused request is counted by its errno (mkdir at the root is
		// EPERM: groups are made by deploying storages).
		if err := os.Mkdir(m.path("group9"), 0o755); err == nil {
			t.Fatal("mkdir at the root succeeded")
		}
		if n := scrape(t, addr)[`fdfsfs_fuse_errors_total{errno="EPERM",op="mkdir"}`]; n < 1 {
			t.Errorf("mkdir EPERM errors = %v, want >= 1", n)
		}
	})

	t.Run("user.fdfs.url is the http base and the file ID", func(t *testing.T) {
		p := m.path("group2", "pic.jpg")
		if err := os.WriteFile(p, pattern(1234, 5), 0o644); err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+p))
		url := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.url "+p))
		if want := "http://host:8887/" + id; url != want || !strings.HasPrefix(url, "http://host:8887/group2/M00/") {
			t.Fatalf("user.fdfs.url = %q, want %q (http://host:8887/group2/M00/...)", url, want)
		}
		// Virtual: read by name, never listed, so copies never carry it.
		if list := sh(t, "getfattr -d -m - "+p); strings.Contains(list, "user.fdfs.url") {
			t.Errorf("getfattr -d lists user.fdfs.url:\n%s", list)
		}
		// A group with no base has no URL.
		q := m.path("group1", "nourl.txt")
		if err := os.WriteFile(q, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out := shErr(t, "getfattr --only-values -n user.fdfs.url "+q); !strings.Contains(out, "No such attribute") {
			t.Errorf("user.fdfs.url in a group without --http-base: %s", out)
		}
	})
}
