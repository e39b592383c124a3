package test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"fdfsfs/fdfs/localcluster"
)

// The tests here replay what real programs did that broke on the mount:
// a POSIX suite making every kind of file, git with a symlink, an editor's
// atomic save, cp -a, rsync -aX and mv between groups.

// TestSpecialFiles: FIFOs, sockets and devices are made on the mount, work
// as the kernel serves them, take the usual name and attribute changes, and
// survive a remount.
func TestSpecialFiles(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	g := m.path("group1")

	fifo := filepath.Join(g, "fifo")
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatalf("mkfifo on the mount: %v", err)
	}
	t.Run("a FIFO passes data between two processes", func(t *testing.T) {
		within(t, 30*time.Second, "the FIFO exchange", func() {
			reader := exec.Command("cat", fifo)
			var out bytes.Buffer
			reader.Stdout = &out
			if err := reader.Start(); err != nil {
				t.Fatal(err)
			}
			sh(t, "printf 'through the pipe' > '"+fifo+"'")
			if err := reader.Wait(); err != nil {
				t.Fatal(err)
			}
			if out.String() != "through the pipe" {
				t.Errorf("read %q from the FIFO", out.String())
			}
		})
	})

	sock := filepath.Join(g, "sock")
	t.Run("a unix socket is bound, connected to and listed", func(t *testing.T) {
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatalf("bind on the mount: %v", err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		defer l.Close()
		go func() {
			if conn, err := l.Accept(); err == nil {
				conn.Write([]byte("hello"))
				conn.Close()
			}
		}()
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("connect on the mount: %v", err)
		}
		b, _ := io.ReadAll(conn)
		conn.Close()
		if string(b) != "hello" {
			t.Errorf("read %q through the socket", b)
		}
	})

	chr, blk := filepath.Join(g, "null"), filepath.Join(g, "loop")
	if os.Geteuid() == 0 {
		if err := syscall.Mknod(chr, syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatalf("mknod c on the mount: %v", err)
		}
		if err := syscall.Mknod(blk, syscall.S_IFBLK|0o600, int(unix.Mkdev(259, 70000))); err != nil {
			t.Fatalf("mknod b on the mount: %v", err)
		}
		if err := os.Chmod(chr, 0o666); err != nil { // past the umask
			t.Fatal(err)
		}
	}

	check := func(t *testing.T, when string) {
		t.Helper()
		want := map[string]string{"fifo": "fifo 640 0:0", "sock": "socket"}
		if os.Geteuid() == 0 {
			want["null"] = "character special file 666 1:3"
			want["loop"] = "block special file 600 103:11170"
		}
		for name, w := range want {
			out := strings.TrimSpace(sh(t, "stat -c '%F %a %t:%T' '"+filepath.Join(g, name)+"'"))
			if !strings.HasPrefix(out, w) {
				t.Errorf("%s: stat %s = %q, want %q", when, name, out, w)
			}
		}
	}
	check(t, "after mknod")

	t.Run("rename, link, chmod, chown, utimens, unlink", func(t *testing.T) {
		if err := os.Mkdir(filepath.Join(g, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		moved := filepath.Join(g, "d", "fifo2")
		sh(t, "mkfifo '"+filepath.Join(g, "f2")+"' && mv '"+filepath.Join(g, "f2")+"' '"+moved+"' && "+
			"ln '"+moved+"' '"+filepath.Join(g, "f2-link")+"' && chmod 600 '"+moved+"' && chown 1234:5678 '"+moved+"' && "+
			"touch -h -d '2021-02-03 04:05:06' '"+moved+"'")
		out := strings.TrimSpace(sh(t, "stat -c '%F %a %u:%g %h %Y' '"+filepath.Join(g, "f2-link")+"'"))
		if want := "fifo 600 1234:5678 2 " + ts(t, "2021-02-03 04:05:06"); out != want {
			t.Errorf("the fifo after the changes: %q, want %q", out, want)
		}
		sh(t, "rm '"+moved+"' '"+filepath.Join(g, "f2-link")+"'")
		if _, err := os.Lstat(moved); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("removed fifo: %v", err)
		}
	})

	m.remount()
	check(t, "after a remount")
	m.stop()
	if out := run(t, append([]string{"index", "check"}, m.indexArgs(c)...)...); !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("index check:\n%s", out)
	}
}

// ts is the Unix time of a local date, as stat %Y prints it.
func ts(t *testing.T, date string) string {
	return strings.TrimSpace(sh(t, "date -d '"+date+"' +%s"))
}

// TestSymlinkSize: a symlink's size is its target's length, so git sees a
// committed symlink as unchanged.
func TestSymlinkSize(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	g := m.path("group1")
	target := "some/where/ünï"
	link := filepath.Join(g, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(link, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(target)) || st.Blocks > 8 {
		t.Errorf("lstat: size %d blocks %d, want size %d and a few blocks at most", st.Size, st.Blocks, len(target))
	}
	if got, err := os.Readlink(link); err != nil || got != target {
		t.Errorf("readlink = %q, %v", got, err)
	}

	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (.ci/run installs it)")
	}
	repo := filepath.Join(g, "repo")
	git := "cd '" + repo + "' && git -c user.name=t -c user.email=t@example.com "
	sh(t, "mkdir '"+repo+"' && cd '"+repo+"' && git init -q && echo hi > file && ln -s file link && mkdir sub && ln -s ../file sub/up")
	sh(t, git+"add -A && "+git+"commit -q -m one")
	if out := sh(t, git+"status --porcelain"); out != "" {
		t.Errorf("git status after the first commit:\n%s", out)
	}
	sh(t, git+"mv link link2 && "+git+"mv sub dir && "+git+"commit -q -m two")
	if out := sh(t, git+"status --porcelain"); out != "" {
		t.Errorf("git status after git mv and commit:\n%s", out)
	}
	m.remount()
	if out := sh(t, git+"status --porcelain"); out != "" {
		t.Errorf("git status after a remount:\n%s", out)
	}
	if out := sh(t, git+"fsck --no-progress 2>&1"); strings.Contains(out, "error") {
		t.Errorf("git fsck:\n%s", out)
	}
}

// TestAtomicSave: the pattern editors and atomic-write libraries use —
// write a temp file, fsync it, rename it over the old one, fsync the
// directory — succeeds at every step.
func TestAtomicSave(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	dir := m.path("group2", "docs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, "notes.txt")
	for i, content := range []string{"first version\n", "second, longer version\n"} {
		tmp := filepath.Join(dir, ".notes.txt.tmp")
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(content); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("save %d: fsync of the temp file: %v", i, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, final); err != nil {
			t.Fatal(err)
		}
		d, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			t.Errorf("save %d: fsync of the directory: %v", i, err)
		}
		if err := unix.Fdatasync(int(d.Fd())); err != nil {
			t.Errorf("save %d: fdatasync of the directory: %v", i, err)
		}
		d.Close()
		if b, err := os.ReadFile(final); err != nil || string(b) != content {
			t.Errorf("save %d reads back %q, %v", i, b, err)
		}
	}
	for _, p := range []string{m.dir, m.path("group2")} {
		d, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			t.Errorf("fsync of %s: %v", p, err)
		}
		d.Close()
	}
	if _, err := exec.LookPath("sync"); err == nil {
		sh(t, "sync -d '"+final+"' && sync -f '"+dir+"'")
	}
	m.remount()
	if b, err := os.ReadFile(final); err != nil || string(b) != "second, longer version\n" {
		t.Errorf("after a remount %q, %v", b, err)
	}
}

// TestXattrs: extended attributes hold any bytes, as ext4 answers them.
func TestXattrs(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	g := m.path("group1")
	f := filepath.Join(g, "photo.jpg")
	if err := os.WriteFile(f, []byte("jpeg bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(path, name string) ([]byte, error) {
		buf := make([]byte, 128<<10)
		n, err := syscall.Getxattr(path, name, buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}

	binary := []byte{0x61, 0x00, 0x62, 0x8f, 0xff}
	big := pattern(64<<10, 9)
	long := "user." + strings.Repeat("x", 250)
	set := map[string][]byte{"user.bin": binary, "user.big": big, long: []byte("long name"), "user.author": []byte("alice"), "trusted.t": {0}}
	for i := range 100 {
		set["user.many"+string(rune('a'+i%26))+strings.Repeat("z", i/26)] = []byte{byte(i)}
	}
	for name, v := range set {
		if err := syscall.Setxattr(f, name, v, 0); err != nil {
			t.Fatalf("setxattr %s (%d bytes): %v", name, len(v), err)
		}
	}
	if out := sh(t, "setfattr -n user.hex -v 0x6100628fff '"+f+"' && getfattr -n user.hex -e hex --only-values '"+f+"' | od -An -tx1"); strings.Join(strings.Fields(out), "") != "6100628fff" {
		t.Errorf("setfattr 0x6100628fff reads back %q", out)
	}
	set["user.hex"] = binary

	check := func(t *testing.T, when string) {
		t.Helper()
		for name, want := range set {
			if v, err := get(f, name); err != nil || !bytes.Equal(v, want) {
				t.Errorf("%s: %s reads back %d bytes (%v), want %d", when, name, len(v), err, len(want))
			}
		}
		buf := make([]byte, 64<<10)
		n, err := syscall.Listxattr(f, buf)
		if err != nil {
			t.Fatal(err)
		}
		listed := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
		if len(listed) != len(set) {
			t.Errorf("%s: listxattr gives %d names, want %d", when, len(listed), len(set))
		}
		for _, name := range listed {
			if _, ok := set[name]; !ok {
				t.Errorf("%s: listxattr lists %q, which was never set", when, name)
			}
		}
	}
	check(t, "after setting")

	t.Run("errors as ext4 gives them", func(t *testing.T) {
		if _, err := syscall.Getxattr(f, "user.big", make([]byte, 10)); !errors.Is(err, syscall.ERANGE) {
			t.Errorf("short buffer: %v, want ERANGE", err)
		}
		if n, err := syscall.Getxattr(f, "user.big", nil); err != nil || n != len(big) {
			t.Errorf("size query: %d, %v; want %d", n, err, len(big))
		}
		if _, err := get(f, "user.missing"); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("missing name: %v, want ENODATA", err)
		}
		if err := syscall.Setxattr(f, "user.huge", make([]byte, 64<<10+1), 0); !errors.Is(err, syscall.E2BIG) {
			t.Errorf("a value over 64 KiB: %v, want E2BIG", err)
		}
		if err := syscall.Setxattr(f, "user.bin", []byte("x"), unix.XATTR_CREATE); !errors.Is(err, syscall.EEXIST) {
			t.Errorf("XATTR_CREATE of a set name: %v, want EEXIST", err)
		}
		if err := syscall.Setxattr(f, "user.nope", []byte("x"), unix.XATTR_REPLACE); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("XATTR_REPLACE of a missing name: %v, want ENODATA", err)
		}
		if err := syscall.Removexattr(f, "user.nope"); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("removing a missing name: %v, want ENODATA", err)
		}
		if err := syscall.Setxattr(f, "user.d", []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Removexattr(f, "user.d"); err != nil {
			t.Errorf("removexattr: %v", err)
		}
		if _, err := get(f, "user.d"); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("a removed name: %v, want ENODATA", err)
		}
	})

	t.Run("virtual attributes are readable, unlisted and fixed", func(t *testing.T) {
		id, err := get(f, "user.fdfs.file_id")
		if err != nil || !strings.HasPrefix(string(id), "group1/M00/") {
			t.Fatalf("user.fdfs.file_id = %q, %v", id, err)
		}
		if out := sh(t, "getfattr -d -m - '"+f+"'"); strings.Contains(out, "fdfs.") {
			t.Errorf("getfattr -d lists a virtual attribute:\n%s", out)
		}
		if err := syscall.Setxattr(f, "user.fdfs.file_id", []byte("x"), 0); !errors.Is(err, syscall.EPERM) {
			t.Errorf("setting user.fdfs.file_id: %v, want EPERM", err)
		}
		if err := syscall.Removexattr(f, "user.fdfs.file_id"); !errors.Is(err, syscall.EPERM) {
			t.Errorf("removing user.fdfs.file_id: %v, want EPERM", err)
		}
		// A short user.* value is mirrored into the FastDFS metadata, for
		// other FastDFS clients; one FastDFS cannot hold exactly is not.
		meta := run(t, append([]string{"meta", "get", string(id)}, trackerArgs(c)...)...)
		if !strings.Contains(meta, "author") || !strings.Contains(meta, "alice") || strings.Contains(meta, "bin") || strings.Contains(meta, "big") {
			t.Errorf("FastDFS metadata of the file:\n%s", meta)
		}
	})

	t.Run("directories, symlinks and special files", func(t *testing.T) {
		d := filepath.Join(g, "dir")
		os.Mkdir(d, 0o755)
		if err := syscall.Setxattr(d, "user.dir", binary, 0); err != nil {
			t.Fatalf("setxattr on a dir: %v", err)
		}
		if v, err := get(d, "user.dir"); err != nil || !bytes.Equal(v, binary) {
			t.Errorf("dir attribute: %x, %v", v, err)
		}
		l := filepath.Join(g, "link")
		os.Symlink("photo.jpg", l)
		if err := unix.Lsetxattr(l, "trusted.l", []byte("on the link"), 0); err != nil {
			t.Errorf("trusted.* on a symlink: %v", err)
		}
		if err := unix.Lsetxattr(l, "user.l", []byte("x"), 0); !errors.Is(err, syscall.EPERM) {
			t.Errorf("user.* on a symlink: %v, want EPERM as on any Linux file system", err)
		}
	})

	m.remount()
	check(t, "after a remount")
	if v, err := get(filepath.Join(g, "dir"), "user.dir"); err != nil || !bytes.Equal(v, binary) {
		t.Errorf("dir attribute after a remount: %x, %v", v, err)
	}
}

// trackerArgs are the flags that point a CLI command at the cluster.
func trackerArgs(c *localcluster.Cluster) []string {
	var args []string
	for _, a := range c.TrackerAddrs() {
		args = append(args, "--tracker", a)
	}
	return args
}

// TestCopyTools: cp -a, rsync -aX and mv carry a tree with attributes and
// special files into the mount, out of it and between groups, without a
// complaint, and the copies out carry no attribute of the mount's own.
func TestCopyTools(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	src := engineTree(t)
	out := t.TempDir()

	quiet := func(t *testing.T, script string) {
		t.Helper()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Fatalf("%s: %v\nstderr:\n%s", script, err, stderr.Bytes())
		}
	}
	t.Run("cp -a in and out", func(t *testing.T) {
		quiet(t, "cp -a '"+src+"' '"+m.path("group1", "cp")+"'")
		sameTree(t, src, m.path("group1", "cp"))
		quiet(t, "cp -a '"+m.path("group1", "cp")+"' '"+filepath.Join(out, "cp")+"'")
		sameTree(t, src, filepath.Join(out, "cp"))
	})
	t.Run("mv between groups", func(t *testing.T) {
		quiet(t, "mv '"+m.path("group1", "cp")+"' '"+m.path("group3", "moved")+"'")
		sameTree(t, src, m.path("group3", "moved"))
		if _, err := os.Lstat(m.path("group1", "cp")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the source of mv is still there: %v", err)
		}
	})
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed (.ci/run installs it)")
	}
	t.Run("rsync -aX in and out", func(t *testing.T) {
		quiet(t, "rsync -aHX '"+src+"/' '"+m.path("group2", "rs")+"/'")
		sameTree(t, src, m.path("group2", "rs"))
		quiet(t, "rsync -aHX '"+m.path("group2", "rs")+"/' '"+filepath.Join(out, "rs")+"/'")
		sameTree(t, src, filepath.Join(out, "rs"))
		// A second run finds nothing to do.
		if got := sh(t, "rsync -aHXi '"+src+"/' '"+m.path("group2", "rs")+"/'"); got != "" {
			t.Errorf("a second rsync -aHX changes:\n%s", got)
		}
	})
}

// TestZeroMode: a mode of 0000 is shown and enforced as 0000 (pjdfstest
// open/26.t): another user can neither read the file nor look into the
// directory.
func TestZeroMode(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, "-o", "allow_other")
	g := m.path("group1")
	f := filepath.Join(g, "closed")
	fd, err := syscall.Open(f, syscall.O_CREAT|syscall.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Write(fd, []byte("secret"))
	syscall.Close(fd)
	d := filepath.Join(g, "shut")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, "inside"), []byte("x"), 0o644)
	if err := os.Chmod(d, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(g, 0o777); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{f: "0 regular file", d: "0 directory"} {
		if out := strings.TrimSpace(sh(t, "stat -c '%a %F' '"+p+"'")); out != want {
			t.Errorf("stat %s = %q, want %q", p, out, want)
		}
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux) to act as another user")
	}
	as := "setpriv --reuid=65534 --regid=65534 --clear-groups "
	if out, err := exec.Command("bash", "-c", as+"cat '"+f+"'").CombinedOutput(); err == nil {
		t.Errorf("another user read a 0000 file: %s", out)
	}
	if out, err := exec.Command("bash", "-c", as+"stat '"+filepath.Join(d, "inside")+"'").CombinedOutput(); err == nil {
		t.Errorf("another user looked into a 0000 directory: %s", out)
	}
}
