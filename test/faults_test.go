package test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
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
	c := cluster(t, localcluster.Options{Trackers: 3})
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
	c := cluster(t, localcluster.Options{Groups: []string{"group1"}, StoragesPerGroup: 2})
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
		dropCaches(t)
		if got := sum(t, m.path("group1", name)); got != sumBytes(want[name]) {
			t.Fatalf("%s with storage %d down: content differs", name, i)
		}
		// New files go to the storage that is up.
		data := pattern(2<<20, byte(20+i))
		p := m.path("group1", fmt.Sprintf("while-%d-down", i))
		if err := writeFile(p, data); err != nil {
			t.Fatalf("write with storage %d down: %v", i, err)
		}
		if got := sum(t, p); got != sumBytes(data) {
			t.Fatalf("%s: content differs", p)
		}
		if err := down.Restart(); err != nil {
			t.Fatal(err)
		}
	}
}

// streamUntilFailure writes data to f in 256 KiB writes, calling midway
// once half of it is written, and returns the first error of a write or of
// close.
func streamUntilFailure(f *os.File, data []byte, midway func()) error {
	const step = 256 << 10
	for off := 0; off < len(data); off += step {
		if off == len(data)/2 {
			midway()
		}
		if _, err := f.Write(data[off:min(off+step, len(data))]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// TestFaultStorageDiesDuringWrite: the only storage of a group stops while
// a large file is being streamed into it. The write or the close says EIO
// within the network timeout, the name keeps what it had, and the uploaded
// part is deleted from FastDFS by the next mount or `index check --repair`.
func TestFaultStorageDiesDuringWrite(t *testing.T) {
	data := t.TempDir()
	c := cluster(t, localcluster.Options{Groups: []string{"group1"}, DataDir: data})
	st := c.Storages()[0]
	stDir := filepath.Join(data, "group1", "storage0")
	// 1 MiB chunks: the 8 MiB files below are several streamed requests.
	addr := freePort(t)
	m := startMount(t, c, append(fastFail, "--write-buffer", "4194304", "--metrics", addr)...)
	// The storage is stopped once the mount has the answer to the stream's
	// first request, the appender upload. Stopped while that request is
	// under way, the storage could keep the file and lose only the answer:
	// a file whose ID nobody ever learns, which no journal can name.
	const appenderUploads = `fdfsfs_fdfs_command_duration_seconds_count{command="UPLOAD_APPENDER_FILE"}`
	stopAfterUpload := func(uploads float64) func() {
		return func() {
			deadline := time.Now().Add(30 * time.Second)
			for scrape(t, addr)[appenderUploads] <= uploads && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			st.Stop()
		}
	}
	old := pattern(2<<20, 1)
	if err := writeFile(m.path("group1", "old.bin"), old); err != nil {
		t.Fatal(err)
	}
	before := countFiles(t, stDir)

	cases := []struct {
		name  string
		flags int
	}{
		{"new.bin", os.O_CREATE | os.O_EXCL | os.O_WRONLY},
		{"old.bin", os.O_TRUNC | os.O_WRONLY},
	}
	for i, tc := range cases {
		uploads := scrape(t, addr)[appenderUploads]
		f, err := os.OpenFile(m.path("group1", tc.name), tc.flags, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		within(t, 60*time.Second, "write with the storage down", func() {
			werr = streamUntilFailure(f, pattern(8<<20, byte(20+i)), stopAfterUpload(uploads))
		})
		if !errors.Is(werr, syscall.EIO) {
			t.Errorf("%s: write/close with the storage down: %v, want EIO\n", tc.name, werr)
		}
		if err := st.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	// A storage that refuses one modify in the middle of the stream.
	c.FailNext(fdfs.StorageProtoCmdModifyFile, byte(syscall.EIO))
	err := writeFile(m.path("group1", "refused.bin"), pattern(6<<20, 30))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("write/close with a refused modify: %v, want EIO", err)
	}
	if fi, err := os.Stat(m.path("group1", "refused.bin")); err != nil || fi.Size() != 0 {
		t.Errorf("refused.bin after the failed write: %v; want an empty file", err)
	}
	// The new name exists, as create made it, and is empty; the old one
	// has its old content.
	if fi, err := os.Stat(m.path("group1", "new.bin")); err != nil || fi.Size() != 0 {
		t.Errorf("new.bin after the failed write: %v; want an empty file", err)
	}
	if got := sum(t, m.path("group1", "old.bin")); got != sumBytes(old) {
		t.Errorf("old.bin lost its content after a failed overwrite")
	}
	m.stop()
	out := run(t, append([]string{"index", "check"}, m.indexArgs(c)...)...)
	if !strings.Contains(out, "upload never claimed") {
		t.Errorf("index check does not report the uploads cut short:\n%s", out)
	}
	out = run(t, append([]string{"index", "check", "--repair"}, m.indexArgs(c)...)...)
	if after := countFiles(t, stDir); after != before {
		t.Errorf("storage holds %d files after repair, %d before the failed writes\n%s", after, before, out)
	}
	out = run(t, append([]string{"index", "check"}, m.indexArgs(c)...)...)
	if !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("index check after repair:\n%s", out)
	}
}

// TestFaultTrackerDownAtMount: with no tracker reachable the mount still
// starts; names and attributes come from the index, content fails with EIO,
// and everything works again once the tracker is back.
func TestFaultTrackerDownAtMount(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, fastFail...)
	data := pattern(500000, 3)
	os.MkdirAll(m.path("group1", "d"), 0o755)
	if err := writeFile(m.path("group1", "d", "f.bin"), data); err != nil {
		t.Fatal(err)
	}
	m.stop()
	c.StopTracker(0)
	m.start()

	if out := strings.Fields(sh(t, "ls "+m.dir)); strings.Join(out, " ") != "group1 group2 group3" {
		t.Errorf("ls root with the tracker down = %q", out)
	}
	out := sh(t, "ls -l "+m.path("group1", "d"))
	if !strings.Contains(out, "500000") || !strings.Contains(out, "f.bin") {
		t.Errorf("ls -l with the tracker down:\n%s", out)
	}
	if fi, err := os.Stat(m.path("group1", "d", "f.bin")); err != nil || fi.Size() != int64(len(data)) {
		t.Errorf("stat with the tracker down: %v", err)
	}
	var rerr, werr error
	within(t, 30*time.Second, "read and write with the tracker down", func() {
		_, rerr = os.ReadFile(m.path("group1", "d", "f.bin"))
		werr = writeFile(m.path("group1", "d", "new.txt"), []byte("new"))
	})
	if !errors.Is(rerr, syscall.EIO) {
		t.Errorf("read with the tracker down: %v, want EIO", rerr)
	}
	if !errors.Is(werr, syscall.EIO) {
		t.Errorf("write with the tracker down: %v, want EIO", werr)
	}

	if err := c.StartTracker(0); err != nil {
		t.Fatal(err)
	}
	dropCaches(t)
	if got := sum(t, m.path("group1", "d", "f.bin")); got != sumBytes(data) {
		t.Error("content differs after the tracker came back")
	}
	if err := writeFile(m.path("group2", "after.txt"), []byte("after")); err != nil {
		t.Fatalf("write after the tracker came back: %v", err)
	}
	if b, err := os.ReadFile(m.path("group2", "after.txt")); err != nil || string(b) != "after" {
		t.Errorf("read back after the tracker came back: %q, %v", b, err)
	}
}

// TestFaultSlowCluster: servers that answer later than --network-timeout
// make reads and closes fail with EIO instead of hanging; once they answer
// in time again, so does the mount.
func TestFaultSlowCluster(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, fastFail...)
	data := pattern(300000, 4)
	if err := writeFile(m.path("group1", "f.bin"), data); err != nil {
		t.Fatal(err)
	}
	c.SetDelay(5 * time.Second)
	var rerr, werr error
	within(t, 60*time.Second, "read and write with slow servers", func() {
		_, rerr = os.ReadFile(m.path("group1", "f.bin"))
		werr = writeFile(m.path("group1", "g.bin"), []byte("slow"))
	})
	c.SetDelay(0)
	if !errors.Is(rerr, syscall.EIO) {
		t.Errorf("read with slow servers: %v, want EIO", rerr)
	}
	if !errors.Is(werr, syscall.EIO) {
		t.Errorf("write with slow servers: %v, want EIO", werr)
	}
	if got := sum(t, m.path("group1", "f.bin")); got != sumBytes(data) {
		t.Error("content differs once the servers are fast again")
	}
	if err := writeFile(m.path("group1", "g.bin"), []byte("fast")); err != nil {
		t.Errorf("write once the servers are fast again: %v", err)
	}
}

// TestFaultGroupFull: a full group refuses new content with ENOSPC, small
// files and streamed ones alike; the other groups keep working.
func TestFaultGroupFull(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, append(fastFail, "--write-buffer", "4194304")...)
	old := []byte("written before the group filled up")
	if err := writeFile(m.path("group2", "old.txt"), old); err != nil {
		t.Fatal(err)
	}
	c.SetFull("group2", true)
	for _, size := range []int{100, 5 << 20} {
		err := writeFile(m.path("group2", "new.bin"), pattern(size, 5))
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%d bytes into a full group: %v, want ENOSPC", size, err)
		}
	}
	if err := writeFile(m.path("group2", "old.txt"), []byte("overwrite")); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("overwrite in a full group: %v, want ENOSPC", err)
	}
	if b, err := os.ReadFile(m.path("group2", "old.txt")); err != nil || string(b) != string(old) {
		t.Errorf("old.txt after the refused overwrite: %q, %v", b, err)
	}
	for _, g := range []string{"group1", "group3"} {
		data := pattern(3<<20, 6)
		if err := writeFile(m.path(g, "ok.bin"), data); err != nil {
			t.Fatalf("%s with group2 full: %v", g, err)
		}
		if got := sum(t, m.path(g, "ok.bin")); got != sumBytes(data) {
			t.Errorf("%s: content differs", g)
		}
	}
	c.SetFull("group2", false)
	if err := writeFile(m.path("group2", "new.bin"), []byte("room again")); err != nil {
		t.Errorf("group2 with room again: %v", err)
	}
}

// TestFaultKillDuringCopy: the mount is killed with SIGKILL while many small
// files are being copied in. After a remount every file whose close
// returned 0 reads back as written, every other name is empty or whole, and
// `index check` finds nothing `--repair` cannot fix.
func TestFaultKillDuringCopy(t *testing.T) {
	n := 2000
	if os.Getenv("FDFSFS_LONG") == "1" {
		n = 10000
	}
	data := t.TempDir()
	c := cluster(t, localcluster.Options{DataDir: data})
	m := startMount(t, c, fastFail...)
	const subdirs = 20
	for i := 0; i < subdirs; i++ {
		if err := os.MkdirAll(m.path("group1", "many", fmt.Sprintf("d%02d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	name := func(i int) string { return fmt.Sprintf("many/d%02d/f%05d.txt", i%subdirs, i) }
	content := func(i int) []byte { return pattern(100+i%4000, byte(i)) }

	var (
		mu     sync.Mutex
		closed = map[int]bool{} // files whose close returned 0
		killed atomic.Bool
	)
	// Four writers, so that the kill finds several files in flight.
	const writers = 4
	var wg sync.WaitGroup
	var count atomic.Int64
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				err := writeFile(m.path("group1", name(i)), content(i))
				if err != nil {
					if !killed.Load() {
						t.Errorf("writing %s before the kill: %v", name(i), err)
					}
					return
				}
				mu.Lock()
				closed[i] = true
				mu.Unlock()
				count.Add(1)
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
wait:
	for count.Load() < int64(n/2) {
		select {
		case <-allDone:
			break wait
		case <-time.After(time.Millisecond):
		}
	}
	killed.Store(true)
	m.kill()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(closed) == n {
		t.Fatalf("all %d files were written before the kill; nothing was cut short", n)
	}
	t.Logf("%d of %d files closed before the kill", len(closed), n)

	m.start()
	seen, stored := 0, 0
	err := filepath.WalkDir(m.path("group1", "many"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		seen++
		var i int
		if _, err := fmt.Sscanf(d.Name(), "f%05d.txt", &i); err != nil {
			return fmt.Errorf("unexpected name %s", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		whole := sumBytes(b) == sumBytes(content(i))
		if whole {
			stored++
		}
		if closed[i] && !whole {
			return fmt.Errorf("%s: closed before the kill, reads %d bytes that differ", p, len(b))
		}
		if !closed[i] && len(b) != 0 && !whole {
			return fmt.Errorf("%s: cut short by the kill, reads %d bytes: neither empty nor whole", p, len(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every file whose close returned 0, by its name and its bytes.
	lost := 0
	for i := range closed {
		b, err := os.ReadFile(m.path("group1", name(i)))
		switch {
		case err != nil:
			t.Errorf("%s: closed before the kill: %v", name(i), err)
		case !bytes.Equal(b, content(i)):
			t.Errorf("%s: closed before the kill, reads %d bytes that differ from the %d written", name(i), len(b), len(content(i)))
		default:
			continue
		}
		if lost++; lost == 10 {
			t.Fatalf("stopping after %d lost files (%d names after the remount, %d files closed)", lost, seen, len(closed))
		}
	}
	m.stop()
	// The remount deleted the journalled uploads the kill left without a
	// name. An upload the storage finished after the mount died, before it
	// learnt the file ID, cannot be known to anyone: at most one per writer.
	files := countFiles(t, filepath.Join(data, "group1", "storage0"))
	if files < stored || files > stored+writers {
		t.Errorf("group1's storage holds %d files, %d names have content (%d writers)", files, stored, writers)
	}
	t.Logf("unreferenced FastDFS files left by the kill: %d", files-stored)

	// The remount's recovery left nothing for check to find.
	if out := run(t, append([]string{"index", "check"}, m.indexArgs(c)...)...); !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("index check after the crash and a remount:\n%s", out)
	}
	run(t, append([]string{"index", "check", "--repair"}, m.indexArgs(c)...)...)
	if out := run(t, append([]string{"index", "check"}, m.indexArgs(c)...)...); !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("index check after --repair:\n%s", out)
	}
}

// TestFaultReadOnly: with -o ro every change fails with EROFS and reads
// work.
func TestFaultReadOnly(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, fastFail...)
	data := pattern(200000, 7)
	os.MkdirAll(m.path("group1", "d"), 0o755)
	if err := writeFile(m.path("group1", "d", "f.txt"), data); err != nil {
		t.Fatal(err)
	}
	sh(t, "setfattr -n user.k -v v "+m.path("group1", "d", "f.txt"))
	m.stop()
	m.args = append(m.args, "-o", "ro")
	m.start()

	f := m.path("group1", "d", "f.txt")
	changes := map[string]func() error{
		"create":   func() error { return os.WriteFile(m.path("group1", "d", "new"), nil, 0o644) },
		"write":    func() error { return writeFile(f, []byte("x")) },
		"append":   func() error { _, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND, 0); return err },
		"mkdir":    func() error { return os.Mkdir(m.path("group1", "e"), 0o755) },
		"rename":   func() error { return os.Rename(f, m.path("group1", "d", "g.txt")) },
		"unlink":   func() error { return os.Remove(f) },
		"rmdir":    func() error { return syscall.Rmdir(m.path("group1", "d")) },
		"chmod":    func() error { return os.Chmod(f, 0o600) },
		"chown":    func() error { return os.Chown(f, 1, 1) },
		"utimes":   func() error { return os.Chtimes(f, time.Now(), time.Now()) },
		"symlink":  func() error { return os.Symlink("f.txt", m.path("group1", "d", "s")) },
		"link":     func() error { return os.Link(f, m.path("group1", "d", "h")) },
		"truncate": func() error { return os.Truncate(f, 10) },
		"setxattr": func() error {
			return syscall.Setxattr(f, "user.k", []byte("w"), 0)
		},
		"removexattr": func() error { return syscall.Removexattr(f, "user.k") },
	}
	for name, change := range changes {
		if err := change(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s on a read-only mount: %v, want EROFS", name, err)
		}
	}
	if got := sum(t, f); got != sumBytes(data) {
		t.Error("read on a read-only mount: content differs")
	}
	if out := sh(t, "ls "+m.path("group1", "d")); strings.TrimSpace(out) != "f.txt" {
		t.Errorf("ls on a read-only mount = %q", out)
	}
	if out := sh(t, "getfattr --only-values -n user.k "+f); out != "v" {
		t.Errorf("getfattr on a read-only mount = %q", out)
	}
}

// TestFaultOddInput: malformed by-ID paths are ENOENT (not EIO), names
// over 255 bytes ENAMETOOLONG, names with odd bytes and a deep tree work.
func TestFaultOddInput(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, fastFail...)
	src := filepath.Join(t.TempDir(), "real.txt")
	os.WriteFile(src, []byte("real"), 0o644)
	id := strings.TrimSpace(run(t, "put", "--tracker", c.TrackerAddr(), "--group", "group1", src))
	base := filepath.Base(id) // a valid name of group1/M00/HH/HH/

	t.Run("malformed by-ID paths", func(t *testing.T) {
		for _, p := range []string{
			"group1/M00/00/00/x",
			"group1/M00/00/00/" + strings.Repeat("A", 200),
			"group1/M00/00/00/" + base[:len(base)-1] + "Z",       // not the stored file
			"group1/M00/00/00/" + strings.Repeat("=", len(base)), // not base64
			"group1/M00/0G/00/" + base,
			"group1/M00/000/00/" + base,
			"group1/MFF/00/00/" + base, // a store path the group does not have
			"group9/M00/00/00/" + base, // no such group
		} {
			_, err := os.Stat(m.path(p))
			if !errors.Is(err, syscall.ENOENT) {
				t.Errorf("stat %s: %v, want ENOENT", p, err)
			}
			if _, err := os.ReadFile(m.path(p)); err == nil {
				t.Errorf("read %s succeeded", p)
			} else if errors.Is(err, syscall.EIO) {
				t.Errorf("read %s: %v, want ENOENT", p, err)
			}
		}
		if b, err := os.ReadFile(m.path(id)); err != nil || string(b) != "real" {
			t.Errorf("the real ID %s: %q, %v", id, b, err)
		}
	})

	t.Run("name too long", func(t *testing.T) {
		long := strings.Repeat("n", 256)
		for what, op := range map[string]func() error{
			"create":  func() error { return os.WriteFile(m.path("group1", long), nil, 0o644) },
			"mkdir":   func() error { return os.Mkdir(m.path("group1", long), 0o755) },
			"rename":  func() error { return os.Rename(m.path("group1", "M00"), m.path("group1", long)) },
			"symlink": func() error { return os.Symlink("x", m.path("group1", long)) },
			"stat":    func() error { _, err := os.Stat(m.path("group1", long)); return err },
		} {
			if err := op(); !errors.Is(err, syscall.ENAMETOOLONG) {
				t.Errorf("%s of a 256-byte name: %v, want ENAMETOOLONG", what, err)
			}
		}
	})

	t.Run("odd bytes in names", func(t *testing.T) {
		names := []string{"ctl\x01x", "hi\xffbyte", "new\nline", `"double"`, "'single'", "back\\slash", " lead and trail ", "*?[glob]", "..."}
		for _, n := range names {
			if err := writeFile(m.path("group2", n), []byte(n)); err != nil {
				t.Errorf("%q: %v", n, err)
			}
		}
		os.Mkdir(m.path("group2", "dir\x01\xff\n"), 0o755)
		ents, err := os.ReadDir(m.path("group2"))
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, e := range ents {
			have[e.Name()] = true
		}
		for _, n := range append(names, "dir\x01\xff\n") {
			if !have[n] {
				t.Errorf("%q not listed", n)
			}
		}
		for _, n := range names {
			if b, err := os.ReadFile(m.path("group2", n)); err != nil || string(b) != n {
				t.Errorf("%q reads %q, %v", n, b, err)
			}
		}
		m.remount()
		for _, n := range names {
			if b, err := os.ReadFile(m.path("group2", n)); err != nil || string(b) != n {
				t.Errorf("%q after a remount reads %q, %v", n, b, err)
			}
		}
	})

	t.Run("100 levels deep", func(t *testing.T) {
		parts := []string{m.dir, "group3"}
		for i := 0; i < 100; i++ {
			parts = append(parts, fmt.Sprintf("l%d", i))
		}
		deep := filepath.Join(parts...)
		if err := os.MkdirAll(deep, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeFile(filepath.Join(deep, "bottom"), []byte("deep")); err != nil {
			t.Fatal(err)
		}
		out := sh(t, "find "+m.path("group3", "l0")+" | wc -l")
		if strings.TrimSpace(out) != "101" {
			t.Errorf("find lists %s entries, want 101", strings.TrimSpace(out))
		}
		if b, err := os.ReadFile(filepath.Join(deep, "bottom")); err != nil || string(b) != "deep" {
			t.Errorf("bottom reads %q, %v", b, err)
		}
		sh(t, "rm -r "+m.path("group3", "l0"))
	})
}

// procStats reads what the mount process holds: resident memory, open file
// descriptors and, of those, sockets (its TCP connections to FastDFS).
// Not counted: Badger's files under the index dir (it keeps each table
// open, more as the index grows) and pipes (go-fuse keeps a pool of pipe
// pairs for splice, as many as requests ran at once).
func procStats(t *testing.T, pid int, indexDir string) (rssKB int64, fds, sockets int) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &rssKB)
		}
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if strings.HasPrefix(target, indexDir+"/") || strings.HasPrefix(target, "pipe:") {
			continue
		}
		fds++
		if strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return rssKB, fds, sockets
}

// TestFaultLoad: 16 writers and 16 readers for 10 s (60 s with
// FDFSFS_LONG=1). Every file whose close returned 0 reads back with the
// same sha256, memory stays bounded, and descriptors and connections go
// back to about where they started.
func TestFaultLoad(t *testing.T) {
	duration := 10 * time.Second
	if os.Getenv("FDFSFS_LONG") == "1" {
		duration = 60 * time.Second
	}
	const (
		writers, readers = 16, 16
		keep             = 6 // files each writer keeps; older ones are removed
		// The README says the mount's RSS stayed at 125-160 MiB; the
		// bound adds a quarter for noise (GC timing, a shared machine).
		readmeRSSMiB = 160
		rssBoundKB   = readmeRSSMiB << 10 * 5 / 4
	)
	c := cluster(t, localcluster.Options{})
	// 1 MiB chunks: the larger files are streamed in several requests. The
	// journal sweep runs at each group refresh: every 200ms here, so that
	// it meets commits in flight.
	m := startMount(t, c, append(fastFail, "--write-buffer", "4194304", "--group-refresh", "200ms")...)
	pid := m.cmd.Process.Pid
	indexDir := filepath.Join(m.state, "index")
	for _, g := range []string{"group1", "group2", "group3"} {
		if err := writeFile(m.path(g, "warm"), []byte("warm")); err != nil {
			t.Fatal(err)
		}
		os.ReadFile(m.path(g, "warm"))
	}
	_, fds0, sockets0 := procStats(t, pid, indexDir)

	type file struct {
		size int
		seed byte
	}
	sizes := []int{100, 4 << 10, 100 << 10, 1<<20 + 7, 3<<20 + 5}
	var (
		mu    sync.Mutex
		files = map[string]file{} // closed successfully and not removed
		names []string
	)
	var written, read, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := m.path(fmt.Sprintf("group%d", w%3+1), fmt.Sprintf("w%02d", w))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Error(err)
				return
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f := file{size: sizes[(w+i)%len(sizes)], seed: byte(w*31 + i)}
				p := filepath.Join(dir, fmt.Sprintf("f%05d", i))
				if err := writeFile(p, pattern(f.size, f.seed)); err != nil {
					t.Errorf("writing %s: %v", p, err)
					failed.Add(1)
					return
				}
				written.Add(1)
				mu.Lock()
				files[p] = f
				names = append(names, p)
				old := filepath.Join(dir, fmt.Sprintf("f%05d", i-keep))
				_, had := files[old]
				delete(files, old)
				mu.Unlock()
				if had {
					if err := os.Remove(old); err != nil {
						t.Errorf("removing %s: %v", old, err)
					}
				}
			}
		}()
	}
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				if len(names) == 0 {
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				p := names[(r*7919+i*104729)%len(names)]
				f, ok := files[p]
				mu.Unlock()
				if !ok {
					continue
				}
				b, err := os.ReadFile(p)
				if err != nil {
					mu.Lock()
					_, still := files[p]
					mu.Unlock()
					if still || !errors.Is(err, syscall.ENOENT) {
						t.Errorf("reading %s: %v", p, err)
						failed.Add(1)
						return
					}
					continue
				}
				if sumBytes(b) != sumBytes(pattern(f.size, f.seed)) {
					t.Errorf("%s: %d bytes read back differ from the %d written", p, len(b), f.size)
					failed.Add(1)
					return
				}
				read.Add(1)
			}
		}()
	}
	var maxRSS int64
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) && failed.Load() == 0 {
		rss, _, _ := procStats(t, pid, indexDir)
		maxRSS = max(maxRSS, rss)
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	within(t, 2*time.Minute, "the writers and readers", wg.Wait)
	t.Logf("%v: %d files written, %d read back; mount RSS at most %d MiB", duration, written.Load(), read.Load(), maxRSS>>10)
	switch {
	case raceBinary:
		t.Logf("a race-detector build: its RSS is not held to the README's %d MiB", readmeRSSMiB)
	case maxRSS > rssBoundKB:
		t.Errorf("mount RSS reached %d MiB; the README says at most %d MiB (bound with noise: %d MiB)", maxRSS>>10, readmeRSSMiB, rssBoundKB>>10)
	}
	if written.Load() == 0 || read.Load() == 0 {
		t.Fatalf("nothing happened: %d written, %d read", written.Load(), read.Load())
	}

	// Every file still named reads back as written, from the storages (the
	// page cache dropped).
	dropCaches(t)
	mu.Lock()
	for p, f := range files {
		if got := sum(t, p); got != sumBytes(pattern(f.size, f.seed)) {
			t.Errorf("%s differs after the load", p)
		}
	}
	mu.Unlock()

	// Idle pools keep at most 8 connections per server (4 servers here).
	const idleConns = 8 * 4
	var fds, sockets int
	settle := time.Now().Add(20 * time.Second)
	for {
		_, fds, sockets = procStats(t, pid, indexDir)
		if fds-sockets <= fds0-sockets0+2 && sockets <= sockets0+idleConns || time.Now().After(settle) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("descriptors: %d before (%d sockets), %d after (%d sockets)", fds0, sockets0, fds, sockets)
	if fds-sockets > fds0-sockets0+2 {
		t.Errorf("the mount holds %d descriptors other than sockets after the load, %d before", fds-sockets, fds0-sockets0)
	}
	if sockets > sockets0+idleConns {
		t.Errorf("the mount holds %d sockets after the load, %d before", sockets, sockets0)
	}
}

// TestFaultIndexBackupRestore: the index, backed up into the cluster, is
// rebuilt from its file ID after the local copy is lost.
func TestFaultIndexBackupRestore(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, fastFail...)
	src := t.TempDir()
	for name, data := range map[string][]byte{
		"a.txt":            []byte("alpha\n"),
		"empty":            nil,
		"d/b.jpg":          pattern(300<<10, 1),
		"d/sub/c d.md":     []byte("with a space\n"),
		"d/sub/big.bin":    pattern(9<<20+1, 2),
		"d/sub/deeper/e":   pattern(4096, 3),
		"d/odd\x01\xff\n.": []byte("odd"),
	} {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a.txt", filepath.Join(src, "link"))
	sh(t, "cp -a "+src+" "+m.path("group2", "tree"))
	sh(t, "diff -r "+src+" "+m.path("group2", "tree"))
	m.stop()

	id := strings.TrimSpace(run(t, append([]string{"index", "backup", "--group", "group1"}, m.indexArgs(c)...)...))
	if !strings.HasPrefix(id, "group1/M00/") {
		t.Fatalf("index backup printed %q, want a group1 file ID", id)
	}
	if err := os.RemoveAll(filepath.Join(m.state, "index")); err != nil {
		t.Fatal(err)
	}
	run(t, append([]string{"index", "restore", id}, m.indexArgs(c)...)...)
	m.start()
	dropCaches(t)
	sh(t, "diff -r --no-dereference "+src+" "+m.path("group2", "tree"))
	if out := sh(t, "stat -c %a "+m.path("group2", "tree", "a.txt")); strings.TrimSpace(out) != "640" {
		t.Errorf("mode after restore = %s, want 640", out)
	}
	m.stop()
	if out := run(t, append([]string{"index", "check"}, m.indexArgs(c)...)...); !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("index check after restore:\n%s", out)
	}
}

// TestFaultDroppedConnections: servers that close every pooled connection
// (a restart, an idle timeout on their side) cost nothing visible.
func TestFaultDroppedConnections(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, fastFail...)
	for i := 0; i < 3; i++ {
		data := pattern(200000+i, byte(40+i))
		p := m.path("group1", fmt.Sprintf("f%d", i))
		if err := writeFile(p, data); err != nil {
			t.Fatalf("write %d after dropped connections: %v", i, err)
		}
		dropCaches(t)
		if got := sum(t, p); got != sumBytes(data) {
			t.Fatalf("read %d after dropped connections: content differs", i)
		}
		c.DropConnections()
	}
}

// TestFaultSignalsDuringClose: signals to the closing thread (Go's runtime
// preempts goroutines with SIGURG) interrupt the FUSE request; close() still
// saves the data and returns 0, not EINTR. Only the thread that closes is
// signalled, and the mount's FUSE log must show the kernel's INTERRUPT, so
// the test knows the requests were in fact interrupted.
func TestFaultSignalsDuringClose(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, append([]string{"--debug-fuse"}, fastFail...)...)
	c.SetDelay(300 * time.Millisecond) // each close takes a while
	tid := make(chan int)
	errs := make(chan []error)
	go func() {
		// One OS thread writes, so that the signals reach the caller of
		// close() and nothing else.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		var es []error
		for i := 0; i < 3; i++ {
			es = append(es, writeFile(m.path("group1", fmt.Sprintf("f%d", i)), pattern(1000, byte(i))))
		}
		errs <- es
	}()
	writer := <-tid
	var signals int
	var results []error
signalling:
	for {
		select {
		case results = <-errs:
			break signalling
		case <-time.After(time.Millisecond):
			if err := unix.Tgkill(os.Getpid(), writer, syscall.SIGURG); err != nil {
				t.Fatalf("signalling the writing thread: %v", err)
			}
			signals++
		}
	}
	c.SetDelay(0)
	t.Logf("%d signals sent to the writing thread", signals)
	for i, err := range results {
		if err != nil {
			t.Errorf("close %d with signals arriving: %v", i, err)
			continue
		}
		if got := sum(t, m.path("group1", fmt.Sprintf("f%d", i))); got != sumBytes(pattern(1000, byte(i))) {
			t.Errorf("f%d: content differs", i)
		}
	}
	interrupts := 0
	for _, line := range strings.Split(m.log.String(), "\n") {
		if strings.Contains(line, ": INTERRUPT ") {
			if interrupts == 0 {
				t.Logf("the mount saw: %s", line)
			}
			interrupts++
		}
	}
	if interrupts == 0 {
		t.Errorf("the mount received no INTERRUPT: the signals never interrupted a request (%d sent)", signals)
	}
}
