package test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
)

// putFiles uploads files with `fdfsfs put` (not through a mount) and
// returns their IDs.
func putFiles(t *testing.T, c *localcluster.Cluster, group string, contents ...[]byte) []string {
	t.Helper()
	var ids []string
	for i, data := range contents {
		src := filepath.Join(t.TempDir(), "f"+string(rune('a'+i))+".bin")
		os.WriteFile(src, data, 0o644)
		ids = append(ids, strings.TrimSpace(run(t, "put", "--tracker", c.TrackerAddr(), "--group", group, src)))
	}
	return ids
}

func lsGroup(t *testing.T, c *localcluster.Cluster, group string) []string {
	t.Helper()
	ids := strings.Fields(run(t, "ls", "--tracker", c.TrackerAddr(), group))
	slices.Sort(ids)
	return ids
}

// TestLsGroup: `fdfsfs ls` lists what other clients uploaded, --long
// decodes it, and a missing group fails naming it.
func TestLsGroup(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	ids := putFiles(t, c, "group2", pattern(1000, 1), pattern(2000, 2))
	slices.Sort(ids)
	if got := lsGroup(t, c, "group2"); !slices.Equal(got, ids) {
		t.Fatalf("ls group2 = %v, want %v", got, ids)
	}
	long := run(t, "ls", "--long", "--tracker", c.TrackerAddr(), "group2")
	for _, line := range strings.Split(strings.TrimSpace(long), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || (f[0] != "1000" && f[0] != "2000") || f[2] != "127.0.0.1" || f[3] != "file" || !slices.Contains(ids, f[4]) {
			t.Errorf("ls --long line %q", line)
		}
	}
	out, err := exec.Command(binary, "ls", "--tracker", c.TrackerAddr(), "group1", "nosuch").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nosuch") {
		t.Fatalf("ls of a missing group: %v\n%s", err, out)
	}
}

// TestAdopt: files uploaded by `fdfsfs put` appear in the by-ID tree after
// `index adopt`, read back, refuse rm and writes, take a name with ln;
// files written through the mount appear there too; a file deleted with
// `fdfsfs rm` leaves at the next adopt.
func TestAdopt(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	m.stop() // a Badger index is one process's at a time
	contents := [][]byte{pattern(5000, 3), pattern(70000, 4), pattern(10, 5)}
	ids := putFiles(t, c, "group1", contents...)
	adoptArgs := append([]string{"index", "adopt"}, m.indexArgs(c)...)
	out := run(t, append(adoptArgs, "group1")...)
	if !strings.Contains(out, "group1: 3 added, 0 removed, 0 unchanged in ") {
		t.Fatalf("adopt summary %q", out)
	}
	if out := run(t, append(adoptArgs, "group1")...); !strings.Contains(out, "group1: 0 added, 0 removed, 3 unchanged") {
		t.Fatalf("second adopt %q", out)
	}
	m.start()

	dir := m.path(filepath.Dir(ids[0]))
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range names {
		listed = append(listed, "group1/M00/00/00/"+e.Name())
	}
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(listed, want) {
		t.Fatalf("ls %s = %v, want %v", dir, listed, want)
	}
	for _, p := range []string{"group1/M00", "group1/M00/00"} {
		ents, err := os.ReadDir(m.path(p))
		if err != nil || len(ents) == 0 {
			t.Fatalf("ls %s: %v, %v", p, ents, err)
		}
	}
	// The group lists its names only: a copy or du of it meets no file twice.
	if got := sh(t, "ls "+m.path("group1")); strings.Contains(got, "M00") {
		t.Fatalf("group1 lists M00: %q", got)
	}
	for i, id := range ids {
		fi, err := os.Stat(m.path(id))
		if err != nil || fi.Size() != int64(len(contents[i])) || fi.Mode().Perm() != 0o444 {
			t.Fatalf("stat %s: %v, %v", id, fi, err)
		}
		if got := sum(t, m.path(id)); got != sumBytes(contents[i]) {
			t.Fatalf("%s reads other bytes", id)
		}
	}
	// Read-only: nothing in the by-ID tree changes.
	for what, err := range map[string]error{
		"unlink":   os.Remove(m.path(ids[0])),
		"rm -rf":   exec.Command("rm", "-rf", m.path("group1/M00")).Run(),
		"create":   os.WriteFile(m.path("group1/M00/00/00/new.txt"), []byte("x"), 0o644),
		"truncate": os.Truncate(m.path(ids[0]), 0),
		"chmod":    os.Chmod(m.path(ids[0]), 0o644),
		"rename":   os.Rename(m.path(ids[0]), m.path("group1/renamed")),
		"mkdir":    os.Mkdir(m.path("group1/M00/00/00/d"), 0o755),
	} {
		if err == nil {
			t.Errorf("%s in the by-ID tree succeeded", what)
		}
		if what != "rm -rf" && !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	if err := os.Rename(m.path("group1"), m.path("group1/M00/00/00/x")); err == nil {
		t.Error("rename into the by-ID tree succeeded")
	}
	for _, id := range ids {
		if _, err := os.Stat(m.path(id)); err != nil {
			t.Fatalf("%s gone after refused changes: %v", id, err)
		}
	}
	if got := lsGroup(t, c, "group1"); !slices.Equal(got, want) {
		t.Fatalf("the group lost files: %v", got)
	}

	// ln gives an adopted file a name, without an upload.
	os.Mkdir(m.path("group1", "named"), 0o755)
	if err := os.Link(m.path(ids[1]), m.path("group1", "named", "photo.jpg")); err != nil {
		t.Fatalf("ln: %v", err)
	}
	if got := sum(t, m.path("group1", "named", "photo.jpg")); got != sumBytes(contents[1]) {
		t.Fatal("the linked name reads other bytes")
	}
	if v := getxattr(t, m.path("group1", "named", "photo.jpg"), "user.fdfs.file_id"); v != ids[1] {
		t.Fatalf("user.fdfs.file_id = %q, want %q", v, ids[1])
	}
	if err := os.Link(m.path(ids[1]), m.path("group1", "named", "again.jpg")); err != nil {
		t.Fatalf("second ln: %v", err)
	}
	var st syscall.Stat_t
	syscall.Stat(m.path("group1", "named", "photo.jpg"), &st)
	if st.Nlink != 2 {
		t.Fatalf("two names of one adopted file: nlink %d, want 2", st.Nlink)
	}
	syscall.Stat(m.path(ids[1]), &st)
	if st.Nlink != 1 {
		t.Fatalf("by-ID entry nlink %d: a view is no link", st.Nlink)
	}
	if got := lsGroup(t, c, "group1"); len(got) != 3 {
		t.Fatalf("ln uploaded something: %v", got)
	}

	// A file written through the mount shows in the by-ID tree.
	if err := writeFile(m.path("group1", "named", "written.txt"), []byte("through the mount")); err != nil {
		t.Fatal(err)
	}
	wid := getxattr(t, m.path("group1", "named", "written.txt"), "user.fdfs.file_id")
	if b, err := os.ReadFile(m.path(wid)); err != nil || string(b) != "through the mount" {
		t.Fatalf("by-ID path of a written file: %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(m.path(filepath.Dir(wid))); !slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.Name() == filepath.Base(wid) }) {
		t.Fatalf("%s is not listed", wid)
	}
	// Removing its last name deletes it from FastDFS and from the view.
	os.Remove(m.path("group1", "named", "written.txt"))
	eventually(t, "the deleted file leaves the group", func() error {
		if slices.Contains(lsGroup(t, c, "group1"), wid) {
			return errors.New("still listed")
		}
		return nil
	})
	eventually(t, "the deleted file's by-ID path goes (after the kernel's entry timeout)", func() error {
		if _, err := os.Stat(m.path(wid)); !os.IsNotExist(err) {
			return fmt.Errorf("stat: %v", err)
		}
		return nil
	})

	// fdfsfs rm an adopted file: the next adopt removes its entry.
	m.stop()
	run(t, "rm", "--tracker", c.TrackerAddr(), ids[2])
	if out := run(t, append(adoptArgs, "group1")...); !strings.Contains(out, "group1: 0 added, 1 removed, 2 unchanged") {
		t.Fatalf("adopt after rm: %q", out)
	}
	m.start()
	if ents, _ := os.ReadDir(dir); len(ents) != 2 || slices.ContainsFunc(ents, func(e os.DirEntry) bool { return "group1/M00/00/00/"+e.Name() == ids[2] }) {
		t.Fatalf("after rm and adopt: %v", ents)
	}
	// The named, adopted file is still there and readable.
	if got := sum(t, m.path("group1", "named", "again.jpg")); got != sumBytes(contents[1]) {
		t.Fatal("named adopted file lost")
	}
}

// TestAdoptInterval: a mount with --adopt-interval lists files other
// clients upload without anyone running index adopt.
func TestAdoptInterval(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, "-o", "adopt_interval=200ms", "--attr-timeout", "0s")
	id := putFiles(t, c, "group3", pattern(4321, 8))[0]
	eventually(t, id+" listed", func() error {
		ents, err := os.ReadDir(m.path(filepath.Dir(id)))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.Name() == filepath.Base(id) {
				return nil
			}
		}
		return errors.New("not yet")
	})
	if fi, err := os.Stat(m.path(id)); err != nil || fi.Size() != 4321 {
		t.Fatalf("stat: %v, %v", fi, err)
	}
	run(t, "rm", "--tracker", c.TrackerAddr(), id)
	eventually(t, id+" gone", func() error {
		ents, _ := os.ReadDir(m.path(filepath.Dir(id)))
		for _, e := range ents {
			if e.Name() == filepath.Base(id) {
				return errors.New("still listed")
			}
		}
		return nil
	})
	if !strings.Contains(m.log.String(), "group3: 1 added") {
		t.Errorf("no adopt summary in the log:\n%s", m.log)
	}
}

func getxattr(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", path, name, err)
	}
	return string(buf[:n])
}

// TestAdoptSharedWhileMounted: with a Redis index, `index adopt` runs while
// two hosts have it mounted, and both list the adopted files; a file one
// host writes shows in the other's by-ID tree.
func TestAdoptSharedWhileMounted(t *testing.T) {
	url := redisServer(t)
	c := cluster(t, localcluster.Options{})
	a := startSharedMount(t, c, url)
	b := startSharedMount(t, c, url)
	ids := putFiles(t, c, "group2", pattern(3000, 6), pattern(4000, 7))
	out := run(t, "index", "adopt", "--meta", url, "--tracker", c.TrackerAddr(), "group2")
	if !strings.Contains(out, "group2: 2 added, 0 removed, 0 unchanged") {
		t.Fatalf("adopt: %q", out)
	}
	for _, m := range []*mount{a, b} {
		for _, id := range ids {
			if _, err := os.Stat(m.path(id)); err != nil {
				t.Fatalf("%s on %s: %v", id, m.dir, err)
			}
		}
		ents, err := os.ReadDir(m.path(filepath.Dir(ids[0])))
		if err != nil || len(ents) != 2 {
			t.Fatalf("listing on %s: %v, %v", m.dir, ents, err)
		}
	}
	if err := writeFile(a.path("group2", "w.txt"), []byte("from host a")); err != nil {
		t.Fatal(err)
	}
	wid := getxattr(t, a.path("group2", "w.txt"), "user.fdfs.file_id")
	eventually(t, "host b lists "+wid, func() error {
		b, err := os.ReadFile(b.path(wid))
		if err != nil || string(b) != "from host a" {
			return fmt.Errorf("%q, %v", b, err)
		}
		return nil
	})
}

// TestAdoptedListingAsksNothing: `ls -l` of a by-ID directory of 10,000
// adopted files takes its sizes and times from the index: no FastDFS
// request. The files are hard links of one empty file under real names in
// the storage's directory (the listing reads names only).
func TestAdoptedListingAsksNothing(t *testing.T) {
	data := t.TempDir()
	c := cluster(t, localcluster.Options{DataDir: data, Groups: []string{"group1"}})
	leaf := filepath.Join(data, "group1", "storage0", "data", "00", "00")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	for i := range n {
		if i%60000 == 0 {
			os.WriteFile(filepath.Join(leaf, "..", "empty"), nil, 0o644)
		}
		name, err := fdfs.GenerateRemoteName(fdfs.NameParams{
			SourceIP: net.IPv4(127, 0, 0, 1), CreateTime: time.Unix(1790000000+int64(i), 0),
			Size: int64(100 + i), CRC32: uint32(i), Ext: "jpg",
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(leaf, "..", "empty"), filepath.Join(leaf, name[10:])); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(leaf, "..", "empty"))
	m := startMount(t, c)
	m.stop()
	if out := run(t, append(append([]string{"index", "adopt"}, m.indexArgs(c)...), "group1")...); !strings.Contains(out, fmt.Sprintf("group1: %d added", n)) {
		t.Fatalf("adopt: %q", out)
	}
	addr := freePort(t)
	m.args = append(m.args, "--metrics", addr)
	m.start()
	asked := func() float64 {
		var sum float64
		for k, v := range scrape(t, addr) {
			if strings.HasPrefix(k, "fdfsfs_fdfs_command_duration_seconds_count{") &&
				!strings.Contains(k, "LIST_ALL_GROUPS") && !strings.Contains(k, "LIST_STORAGE") {
				sum += v // every request but the group refresh's
			}
		}
		return sum
	}
	before := asked()
	out := sh(t, "ls -l "+m.path("group1/M00/00/00"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n+1 { // "total ..." first
		t.Fatalf("ls -l printed %d lines, want %d", len(lines), n+1)
	}
	if !strings.Contains(out, " 100 ") || !strings.Contains(out, fmt.Sprintf(" %d ", 100+n-1)) {
		t.Fatalf("sizes from the names missing in ls -l:\n%s", lines[1])
	}
	if after := asked(); after != before {
		t.Fatalf("ls -l of %d adopted files made %v FastDFS requests", n, after-before)
	}
}
