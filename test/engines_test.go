package test

import (
	"bufio"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"fdfsfs/fdfs/localcluster"
)

// engineTree builds, in a local dir, the tree the engine tests carry from
// one index to another: content, empty files, odd modes, nested dirs with
// their own modes, symlinks (to a file, to a dir, dangling, absolute), a
// hard link pair, a FIFO, a unix socket, a character and a block device,
// and extended attributes (binary, empty, 2,000 bytes, on a file and a dir).
func engineTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "tree")
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"a.txt", []byte("alpha\n"), 0o644},
		{"empty", nil, 0o600},
		{"run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"d/b.bin", pattern(300<<10, 11), 0o640},
		{"d/sub/c d.md", []byte("with a space\n"), 0o444},
		{"d/sub/deeper/e", pattern(4096, 12), 0o604},
		{"private/secret", []byte("s\n"), 0o400},
	}
	for _, f := range files {
		p := filepath.Join(src, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for dir, mode := range map[string]os.FileMode{"private": 0o700, "d/sub": 0o750, "emptydir": os.ModeSticky | 0o777} {
		if err := os.Chmod(filepath.Join(src, dir), mode); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"link":         "a.txt",
		"d/up":         "../a.txt",
		"dirlink":      "d/sub",
		"dangling":     "no/such/file",
		"d/sub/abs":    "/etc/hostname",
		"d/sub/spaced": "c d.md",
	} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(src, "d", "b.bin"), filepath.Join(src, "hard.bin")); err != nil {
		t.Fatal(err)
	}
	makeSpecials(t, filepath.Join(src, "special"))
	// rsync leaves a new symlink's or special file's time as created when
	// it falls in the same second as its source's (ext4 to ext4 alike), so
	// those in a tree made just now would copy with the wrong time: they
	// are dated back, to a time with nanoseconds.
	past := []unix.Timespec{unix.NsecToTimespec(1614834367123456789), unix.NsecToTimespec(1614834367123456789)}
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Type().IsRegular() || d.IsDir() {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, past, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
	// A local ext4 holds one block of attributes per file, so the large
	// value here is 2,000 bytes; TestXattrs sets 64 KiB on the mount.
	for _, x := range []struct {
		path, name string
		value      []byte
	}{
		{"a.txt", "user.bin", []byte{0x61, 0x00, 0x62, 0x8f, 0xff}},
		{"a.txt", "user.big", pattern(2000, 5)},
		{"a.txt", "user.empty", nil},
		{"d", "user.dir", []byte("here")},
		{"d/sub/deeper/e", "trusted.t", []byte{0}},
	} {
		if err := syscall.Setxattr(filepath.Join(src, x.path), x.name, x.value, 0); err != nil {
			t.Fatalf("setxattr %s %s: %v", x.path, x.name, err)
		}
	}
	return src
}

// makeSpecials makes, in dir, one file of each kind that has no content: a
// FIFO, a unix socket, and (as root) a character and a block device.
func makeSpecials(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = syscall.Bind(fd, &syscall.SockaddrUnix{Name: filepath.Join(dir, "sock")})
	syscall.Close(fd)
	if err != nil {
		t.Fatalf("bind a unix socket in %s: %v", dir, err)
	}
	if os.Geteuid() != 0 {
		return
	}
	if err := syscall.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(filepath.Join(dir, "loop"), syscall.S_IFBLK|0o600, int(unix.Mkdev(7, 1234))); err != nil {
		t.Fatal(err)
	}
}

// treeShape lists what diff -r does not compare: each entry's kind and
// mode, a non-directory's link count, modification time and symlink target.
// Directories' link counts are left out: they follow the local file system's
// rules, not the tree's.
func treeShape(t *testing.T, dir string) string {
	t.Helper()
	return sh(t, "cd '"+dir+"' && { find . -type d -printf '%p %y %m\\n'; "+
		"find . ! -type d -printf '%p %y %m %n %TY-%Tm-%Td+%TH:%TM:%TS %l\\n'; "+
		"find . \\( -type c -o -type b \\) -exec stat -c '%n rdev %t:%T' {} +; "+
		"find . -type l -exec stat -c '%n size %s' {} +; } | LC_ALL=C sort")
}

// treeXattrs lists every user.* and trusted.* attribute under dir, in hex.
func treeXattrs(t *testing.T, dir string) string {
	t.Helper()
	return sh(t, "cd '"+dir+"' && getfattr -R -h -d -m '^(user|trusted)\\.' -e hex . 2>/dev/null")
}

// sameTree checks that the mounted copy holds the source tree: the same
// names, content, kinds, modes, symlink targets and mtimes, and the two
// names of the hard link on one inode.
func sameTree(t *testing.T, src, copy string) {
	t.Helper()
	dropCaches(t)
	// diff compares no FIFO, socket or device; treeShape does.
	sh(t, "diff -r --no-dereference -x special '"+src+"' '"+copy+"'")
	if want, got := treeShape(t, src), treeShape(t, copy); want != got {
		t.Errorf("tree differs from the source\nsource:\n%s\ncopy:\n%s", want, got)
	}
	if want, got := treeXattrs(t, src), treeXattrs(t, copy); want != got {
		t.Errorf("xattrs differ from the source\nsource:\n%.2000s\ncopy:\n%.2000s", want, got)
	}
	inos := strings.Fields(sh(t, "stat -c %i '"+filepath.Join(copy, "d", "b.bin")+"' '"+filepath.Join(copy, "hard.bin")+"'"))
	if len(inos) != 2 || inos[0] != inos[1] {
		t.Errorf("hard link pair on inodes %q, want one", inos)
	}
}

// unstartedMount is startMount's mount, not yet started, so that a test can
// load its index first: engine names the index (--meta URL), or is empty
// for the Badger directory under the mount's state dir.
func unstartedMount(t *testing.T, c *localcluster.Cluster, engine ...string) *mount {
	t.Helper()
	needFUSE(t)
	m := &mount{t: t, dir: t.TempDir(), state: t.TempDir()}
	if len(engine) == 0 {
		engine = []string{"--index", filepath.Join(m.state, "index")}
	}
	m.args = append([]string{"mount"}, engine...)
	m.args = append(m.args, "--cache", filepath.Join(m.state, "cache"), "--log-level", "debug")
	for _, a := range c.TrackerAddrs() {
		m.args = append(m.args, "--tracker", a)
	}
	t.Cleanup(m.stop)
	return m
}

// copyIndex pipes `fdfsfs VERB dump FROM...` into `fdfsfs VERB load TO...`,
// as the README tells users to (VERB index; meta is the old spelling), and
// returns what both said on stderr.
func copyIndex(t *testing.T, verb string, from, to []string) string {
	t.Helper()
	q := func(args []string) string {
		s := ""
		for _, a := range args {
			s += " '" + a + "'"
		}
		return s
	}
	return sh(t, "{ '"+binary+"' "+verb+" dump"+q(from)+" | '"+binary+"' "+verb+" load"+q(to)+"; } 2>&1")
}

// flushRedis empties the test's Redis database (FLUSHDB), as losing the
// shared index would.
func flushRedis(t *testing.T, redisURL string) {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("FLUSHDB\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("FLUSHDB answered %q, %v", line, err)
	}
}

// TestEngineDumpLoad carries one tree from Badger to Redis and back with
// index dump | index load (and back with the old spelling, meta dump |
// meta load); every copy mounts and holds the same tree.
func TestEngineDumpLoad(t *testing.T) {
	redisURL := redisServer(t)
	c := cluster(t, localcluster.Options{})
	src := engineTree(t)

	badger := startMount(t, c)
	sh(t, "cp -a '"+src+"' '"+badger.path("group2", "tree")+"'")
	sameTree(t, src, badger.path("group2", "tree"))
	badger.stop()

	if out := copyIndex(t, "index", []string{"--index", filepath.Join(badger.state, "index")}, []string{"--meta", redisURL}); out != "" {
		t.Errorf("index dump | index load said %q", out)
	}
	shared := unstartedMount(t, c, "--meta", redisURL)
	shared.start()
	sameTree(t, src, shared.path("group2", "tree"))
	// The copy is a working tree, not a read-only snapshot.
	for _, p := range []string{shared.path("group2", "tree", "a.txt"), filepath.Join(src, "a.txt")} {
		sh(t, "echo more >> '"+p+"' && touch -d '2020-01-02 03:04:05.5' '"+p+"'")
	}
	shared.stop()

	back := unstartedMount(t, c)
	backIndex := filepath.Join(back.state, "index")
	out := copyIndex(t, "meta", []string{"--meta", redisURL}, []string{"--index", backIndex})
	for _, verb := range []string{"dump", "load"} {
		if want := "'meta " + verb + "' is deprecated: use 'fdfsfs index " + verb + "'"; !strings.Contains(out, want) {
			t.Errorf("meta %s does not say %q; it said %q", verb, want, out)
		}
	}
	back.start()
	sameTree(t, src, back.path("group2", "tree"))
	back.stop()

	if out := run(t, "index", "check", "--index", backIndex); !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("index check of the Badger copy:\n%s", out)
	}
}

// TestEngineRedisBackupRestore: a Redis index backed up into the cluster
// comes back, after the database is lost, from its file ID.
func TestEngineRedisBackupRestore(t *testing.T) {
	redisURL := redisServer(t)
	c := cluster(t, localcluster.Options{})
	src := engineTree(t)
	trackers := []string{}
	for _, a := range c.TrackerAddrs() {
		trackers = append(trackers, "--tracker", a)
	}

	m := unstartedMount(t, c, "--meta", redisURL)
	m.start()
	sh(t, "cp -a '"+src+"' '"+m.path("group1", "tree")+"'")
	sameTree(t, src, m.path("group1", "tree"))
	m.stop()

	id := strings.TrimSpace(run(t, append([]string{"index", "backup", "--group", "group2", "--meta", redisURL}, trackers...)...))
	if !strings.HasPrefix(id, "group2/M00/") {
		t.Fatalf("index backup printed %q, want a group2 file ID", id)
	}
	flushRedis(t, redisURL)
	if out := shErr(t, "'"+binary+"' index dump --meta '"+redisURL+"'"); !strings.Contains(out, "empty") {
		t.Fatalf("index dump after FLUSHDB: %s, want an empty store", out)
	}

	run(t, append([]string{"index", "restore", id, "--meta", redisURL}, trackers...)...)
	m.start()
	sameTree(t, src, m.path("group1", "tree"))
	m.stop()
	if out := run(t, "index", "check", "--meta", redisURL); !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("index check after restore:\n%s", out)
	}
}
