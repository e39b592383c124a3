package test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"fdfsfs/fdfs/localcluster"
)

// TestMountTree drives one mount with the tools a user reaches for.
func TestMountTree(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	// allow_other: the permission tests run commands as other users.
	m := startMount(t, c, "-o", "allow_other")

	t.Run("groups at the root", func(t *testing.T) {
		out := sh(t, "ls "+m.dir)
		if got := strings.Fields(out); strings.Join(got, " ") != "group1 group2 group3" {
			t.Fatalf("ls root = %q, want group1 group2 group3", got)
		}
		if err := os.Mkdir(m.path("group9"), 0o755); !errors.Is(err, syscall.EPERM) {
			t.Fatalf("mkdir at the root: %v, want EPERM", err)
		}
		if err := os.WriteFile(m.path("x.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EPERM) {
			t.Fatalf("create at the root: %v, want EPERM", err)
		}
	})

	t.Run("cp -r in, diff -r out", func(t *testing.T) {
		src := t.TempDir()
		tree := map[string][]byte{
			"a.txt":                   []byte("hello\n"),
			"empty":                   nil,
			"dir/b.jpg":               pattern(300<<10, 1),
			"dir/sub/c with space.md": []byte("spaces and ünïcödé\n"),
			"dir/sub/big.bin":         pattern(9<<20+123, 2), // several write chunks
			"dir/sub/deeper/d":        pattern(4096, 3),
		}
		for name, data := range tree {
			p := filepath.Join(src, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sh(t, "cp -r "+src+" "+m.path("group2", "tree"))
		sh(t, "diff -r "+src+" "+m.path("group2", "tree"))
		for name, data := range tree {
			if got := sum(t, m.path("group2", "tree", name)); got != sumBytes(data) {
				t.Errorf("%s: checksum differs", name)
			}
		}
		out := sh(t, "cd "+m.path("group2", "tree")+" && ls -R")
		for _, want := range []string{"a.txt", "big.bin", "c with space.md", "deeper:"} {
			if !strings.Contains(out, want) {
				t.Errorf("ls -R lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("file IDs keep the extension", func(t *testing.T) {
		p := m.path("group1", "photo.jpg")
		if err := os.WriteFile(p, pattern(1000, 4), 0o644); err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+p))
		if !strings.HasPrefix(id, "group1/M00/") || !strings.HasSuffix(id, ".jpg") {
			t.Fatalf("file id %q: want group1/M00/...jpg", id)
		}
	})

	t.Run("mv files and directories", func(t *testing.T) {
		g := m.path("group2")
		os.MkdirAll(filepath.Join(g, "mv/src/inner"), 0o755)
		data := pattern(70000, 5)
		os.WriteFile(filepath.Join(g, "mv/src/inner/f"), data, 0o644)
		sh(t, "mv "+filepath.Join(g, "mv/src")+" "+filepath.Join(g, "mv/dst"))
		sh(t, "mv "+filepath.Join(g, "mv/dst/inner/f")+" "+filepath.Join(g, "mv/dst/g"))
		if got := sum(t, filepath.Join(g, "mv/dst/g")); got != sumBytes(data) {
			t.Fatal("content changed by mv")
		}
		if _, err := os.Stat(filepath.Join(g, "mv/src")); !os.IsNotExist(err) {
			t.Fatalf("old dir still there: %v", err)
		}
		// rename over an existing file replaces it
		os.WriteFile(filepath.Join(g, "mv/x"), []byte("old"), 0o644)
		os.WriteFile(filepath.Join(g, "mv/y"), []byte("new"), 0o644)
		if err := os.Rename(filepath.Join(g, "mv/y"), filepath.Join(g, "mv/x")); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(g, "mv/x")); string(b) != "new" {
			t.Fatalf("after rename over: %q", b)
		}
	})

	t.Run("rename across groups is EXDEV and mv copies", func(t *testing.T) {
		p := m.path("group1", "cross.txt")
		os.WriteFile(p, []byte("crossing"), 0o644)
		err := os.Rename(p, m.path("group3", "cross.txt"))
		if !errors.Is(err, syscall.EXDEV) {
			t.Fatalf("rename across groups: %v, want EXDEV", err)
		}
		sh(t, "mv "+p+" "+m.path("group3", "cross.txt"))
		if b, _ := os.ReadFile(m.path("group3", "cross.txt")); string(b) != "crossing" {
			t.Fatalf("after mv: %q", b)
		}
		id := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+m.path("group3", "cross.txt")))
		if !strings.HasPrefix(id, "group3/") {
			t.Fatalf("moved file lives in %q, want group3", id)
		}
	})

	t.Run("rm -r and rmdir", func(t *testing.T) {
		g := m.path("group2")
		os.MkdirAll(filepath.Join(g, "rm/a/b"), 0o755)
		os.WriteFile(filepath.Join(g, "rm/a/b/f"), []byte("x"), 0o644)
		if err := syscall.Rmdir(filepath.Join(g, "rm/a")); !errors.Is(err, syscall.ENOTEMPTY) {
			t.Fatalf("rmdir non-empty: %v, want ENOTEMPTY", err)
		}
		sh(t, "rm -r "+filepath.Join(g, "rm"))
		if _, err := os.Stat(filepath.Join(g, "rm")); !os.IsNotExist(err) {
			t.Fatalf("after rm -r: %v", err)
		}
	})

	t.Run("appends, dd conv=notrunc, truncate", func(t *testing.T) {
		p := m.path("group1", "log.txt")
		sh(t, "echo one > "+p+" && echo two >> "+p+" && echo three >> "+p)
		if b, _ := os.ReadFile(p); string(b) != "one\ntwo\nthree\n" {
			t.Fatalf(">> appends: %q", b)
		}
		big := pattern(3<<20, 6)
		q := m.path("group1", "dd.bin")
		os.WriteFile(q, big, 0o644)
		sh(t, "printf XYZW | dd of="+q+" bs=1 seek=1000000 conv=notrunc status=none")
		copy(big[1000000:], "XYZW")
		if got := sum(t, q); got != sumBytes(big) {
			t.Fatal("dd conv=notrunc: content differs")
		}
		sh(t, "truncate -s 100 "+q)
		if b, _ := os.ReadFile(q); !bytes.Equal(b, big[:100]) {
			t.Fatalf("truncate down: %d bytes", len(b))
		}
		sh(t, "truncate -s 5000 "+q)
		want := append(append([]byte(nil), big[:100]...), make([]byte, 4900)...)
		if b, _ := os.ReadFile(q); !bytes.Equal(b, want) {
			t.Fatalf("truncate up: %d bytes, zeros expected after 100", len(b))
		}
		// write past the end leaves a hole of zeros
		f, _ := os.OpenFile(q, os.O_WRONLY, 0)
		f.WriteAt([]byte("END"), 8000)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want = append(append(want, make([]byte, 3000)...), "END"...)
		if b, _ := os.ReadFile(q); !bytes.Equal(b, want) {
			t.Fatalf("write past end: %d bytes", len(b))
		}
		// O_TRUNC rewrite
		os.WriteFile(q, []byte("short"), 0o644)
		if b, _ := os.ReadFile(q); string(b) != "short" {
			t.Fatalf("O_TRUNC: %q", b)
		}
	})

	t.Run("hard and symbolic links", func(t *testing.T) {
		g := m.path("group3")
		os.WriteFile(filepath.Join(g, "orig"), []byte("linked"), 0o644)
		sh(t, "cd "+g+" && ln orig hard && ln -s orig soft")
		if b, _ := os.ReadFile(filepath.Join(g, "hard")); string(b) != "linked" {
			t.Fatalf("hard link reads %q", b)
		}
		if b, _ := os.ReadFile(filepath.Join(g, "soft")); string(b) != "linked" {
			t.Fatalf("symlink reads %q", b)
		}
		if target, _ := os.Readlink(filepath.Join(g, "soft")); target != "orig" {
			t.Fatalf("readlink = %q", target)
		}
		var st syscall.Stat_t
		syscall.Stat(filepath.Join(g, "orig"), &st)
		if st.Nlink != 2 {
			t.Fatalf("nlink = %d, want 2", st.Nlink)
		}
		os.Remove(filepath.Join(g, "orig"))
		if b, _ := os.ReadFile(filepath.Join(g, "hard")); string(b) != "linked" {
			t.Fatalf("after unlinking the first name: %q", b)
		}
	})

	t.Run("unlinked file stays readable while open", func(t *testing.T) {
		p := m.path("group3", "open-unlinked")
		os.WriteFile(p, []byte("still here"), 0o644)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		os.Remove(p)
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		if string(b[:n]) != "still here" {
			t.Fatalf("read after unlink: %q", b[:n])
		}
	})

	t.Run("chmod and chown by a non-root user", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to switch users")
		}
		// t.TempDir makes 0700 directories; others must pass through
		// them to reach the mount.
		for d := filepath.Dir(m.dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
		g := m.path("group1")
		os.Mkdir(filepath.Join(g, "owned"), 0o755)
		sh(t, "chown 1234:1234 "+filepath.Join(g, "owned"))
		out, err := exec.Command("setpriv", "--reuid=1234", "--regid=1234", "--clear-groups", "bash", "-c",
			"echo mine > "+filepath.Join(g, "owned/f")+" && chmod 600 "+filepath.Join(g, "owned/f")+" && stat -c '%a %u %g' "+filepath.Join(g, "owned/f")).CombinedOutput()
		if err != nil {
			t.Fatalf("as uid 1234: %v\n%s", err, out)
		}
		if strings.TrimSpace(string(out)) != "600 1234 1234" {
			t.Fatalf("stat = %q, want 600 1234 1234", out)
		}
		// another user is refused by the permissions
		out, err = exec.Command("setpriv", "--reuid=4321", "--regid=4321", "--clear-groups", "cat", filepath.Join(g, "owned/f")).CombinedOutput()
		if err == nil {
			t.Fatalf("uid 4321 read a 0600 file of uid 1234: %s", out)
		}
	})

	t.Run("xattrs are mirrored into FastDFS metadata", func(t *testing.T) {
		p := m.path("group2", "meta.txt")
		os.WriteFile(p, []byte("m"), 0o644)
		sh(t, "setfattr -n user.author -v alice "+p)
		sh(t, "setfattr -n user.width -v 640 "+p)
		out := sh(t, "getfattr -d "+p)
		for _, want := range []string{`user.author="alice"`, `user.width="640"`} {
			if !strings.Contains(out, want) {
				t.Errorf("getfattr -d lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, "user.fdfs.") {
			t.Errorf("getfattr -d lists a virtual attribute:\n%s", out)
		}
		id := sh(t, "getfattr -n user.fdfs.file_id --only-values "+p)
		if meta := run(t, append([]string{"meta", "get", id}, trackerArgs(c)...)...); !strings.Contains(meta, "alice") || !strings.Contains(meta, "640") {
			t.Errorf("FastDFS metadata of %s:\n%s", id, meta)
		}
		sh(t, "setfattr -x user.width "+p)
		if out := sh(t, "getfattr -d "+p); strings.Contains(out, "user.width") {
			t.Errorf("user.width still there after removal:\n%s", out)
		}
		shErr(t, "setfattr -n user.fdfs.file_id -v x "+p)
		// metadata survives an overwrite of the content
		os.WriteFile(p, []byte("new content"), 0o644)
		if out := sh(t, "getfattr -n user.author --only-values "+p); out != "alice" {
			t.Errorf("after overwrite user.author = %q", out)
		}
	})

	t.Run("df per group and at the root", func(t *testing.T) {
		var root, g syscall.Statfs_t
		if err := syscall.Statfs(m.dir, &root); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Statfs(m.path("group1"), &g); err != nil {
			t.Fatal(err)
		}
		if g.Blocks == 0 || root.Blocks != 3*g.Blocks {
			t.Fatalf("root blocks %d, group1 blocks %d: want root = 3 × group", root.Blocks, g.Blocks)
		}
		sh(t, "df "+m.path("group1"))
	})

	t.Run("odd names", func(t *testing.T) {
		g := m.path("group1")
		names := []string{strings.Repeat("n", 255), "tab\there", "ünï cödé ✓", "-dash", "new\nline"}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(g, n), []byte(n), 0o644); err != nil {
				t.Fatalf("%q: %v", n, err)
			}
		}
		ents, _ := os.ReadDir(g)
		have := map[string]bool{}
		for _, e := range ents {
			have[e.Name()] = true
		}
		for _, n := range names {
			if !have[n] {
				t.Errorf("%q not listed", n)
			}
			if b, _ := os.ReadFile(filepath.Join(g, n)); string(b) != n {
				t.Errorf("%q reads %q", n, b)
			}
		}
		if err := os.WriteFile(filepath.Join(g, strings.Repeat("n", 256)), nil, 0o644); !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("256-byte name: %v, want ENAMETOOLONG", err)
		}
	})
}

// TestRemountKeepsNames checks that names, content and inode numbers
// survive an unmount.
func TestRemountKeepsNames(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	want := map[string]string{}
	for i, name := range []string{"group1/a", "group1/d/b.png", "group2/c", "group3/x/y/z"} {
		data := pattern(1000*(i+1), byte(i))
		os.MkdirAll(filepath.Dir(m.path(name)), 0o755)
		if err := os.WriteFile(m.path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = sumBytes(data)
	}
	var before syscall.Stat_t
	syscall.Stat(m.path("group1/d/b.png"), &before)
	m.remount()
	for name, s := range want {
		if got := sum(t, m.path(name)); got != s {
			t.Errorf("%s differs after remount", name)
		}
	}
	var after syscall.Stat_t
	syscall.Stat(m.path("group1/d/b.png"), &after)
	if before.Ino != after.Ino {
		t.Errorf("inode changed across remount: %d -> %d", before.Ino, after.Ino)
	}
}

// TestByIDPath opens a file uploaded with `fdfsfs put` by its file ID.
func TestByIDPath(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	src := filepath.Join(t.TempDir(), "photo.jpg")
	data := pattern(200000, 9)
	os.WriteFile(src, data, 0o644)
	out, err := exec.Command(binary, "put", "--tracker", c.TrackerAddr(), "--group", "group2", src).CombinedOutput()
	if err != nil {
		t.Fatalf("put: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out))
	if got := sum(t, filepath.Join(m.dir, id)); got != sumBytes(data) {
		t.Fatalf("by-ID path %s: content differs", id)
	}
	if err := os.WriteFile(filepath.Join(m.dir, id), []byte("x"), 0o644); err == nil {
		t.Fatal("writing a by-ID path succeeded; want it read-only")
	}
	// Several blocks, read sequentially with readahead: the kernel's reads
	// start mid-block, so their bytes come from two blocks at once.
	big := filepath.Join(t.TempDir(), "big.bin")
	bigData := pattern(3<<20+12345, 11)
	os.WriteFile(big, bigData, 0o644)
	out, err = exec.Command(binary, "put", "--tracker", c.TrackerAddr(), "--group", "group2", big).CombinedOutput()
	if err != nil {
		t.Fatalf("put: %v\n%s", err, out)
	}
	bigID := strings.TrimSpace(string(out))
	for range 2 { // fetched, then from the block cache
		if got := sum(t, filepath.Join(m.dir, bigID)); got != sumBytes(bigData) {
			t.Fatalf("by-ID path %s of %d bytes: content differs", bigID, len(bigData))
		}
	}
	if _, err := os.Stat(m.path("group2/M00/00/00/not-a-file-id")); !os.IsNotExist(err) {
		t.Fatalf("malformed ID: %v, want ENOENT", err)
	}
	// A name in the index that looks like a store path still wins.
	os.Mkdir(m.path("group2", "M01"), 0o755)
	os.WriteFile(m.path("group2", "M01", "mine"), []byte("indexed"), 0o644)
	if b, _ := os.ReadFile(m.path("group2", "M01", "mine")); string(b) != "indexed" {
		t.Fatalf("indexed M01 reads %q", b)
	}
}

// TestListingLarge lists a directory bigger than one scan batch with ls -l
// and checks every entry, then reads it a few entries at a time, rewinds
// and reads it whole.
func TestListingLarge(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	d := m.path("group1", "many")
	os.Mkdir(d, 0o755)
	const n = 2500 // more than two of the mount's scan batches
	sh(t, fmt.Sprintf("cd %s && seq -f f%%04g 0 %d | xargs touch", d, n-1))
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("f%04d", i))
	}
	out := sh(t, "ls -l "+d+" | tail -n +2 | awk '{print $NF}'")
	got := strings.Fields(out)
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("ls -l listed %d entries, want %d", len(got), len(names))
	}

	f, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 2 {
		if es, err := f.ReadDir(7); err != nil || len(es) != 7 {
			t.Fatalf("ReadDir(7) = %d entries, %v", len(es), err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err = f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("after a rewind: %d entries, want %d", len(got), len(names))
	}
}

// TestUnlinkedOpenPurgedAtClose: a file unlinked while open keeps its
// content until its last close, and then loses it from FastDFS too; a
// file closed with its name still there keeps it.
func TestUnlinkedOpenPurgedAtClose(t *testing.T) {
	data := t.TempDir()
	c := cluster(t, localcluster.Options{Groups: []string{"group1"}, DataDir: data})
	stDir := filepath.Join(data, "group1", "storage0")
	m := startMount(t, c)
	keep, gone := m.path("group1", "keep"), m.path("group1", "gone")
	for _, p := range []string{keep, gone} {
		if err := os.WriteFile(p, []byte("content of "+p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if n := countFiles(t, stDir); n != 2 {
		t.Fatalf("while open: %d content files in FastDFS, want 2", n)
	}
	f.Close()
	// Release runs after close returns.
	deadline := time.Now().Add(10 * time.Second)
	for countFiles(t, stDir) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := countFiles(t, stDir); n != 1 {
		t.Fatalf("after the last close: %d content files in FastDFS, want 1", n)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "content of "+keep {
		t.Fatalf("kept file: %q, %v", b, err)
	}
}

// --store-reuse: a negative duration is refused before anything is
// mounted; 0 (ask the tracker for every file) mounts and writes.
func TestStoreReuseFlag(t *testing.T) {
	needFUSE(t)
	c := cluster(t, localcluster.Options{})
	dir := t.TempDir()
	out, err := exec.Command(binary, "mount", "--tracker", c.TrackerAddr(), "--index", t.TempDir(), "--cache", t.TempDir(),
		"--store-reuse", "-1s", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--store-reuse") {
		t.Fatalf("negative --store-reuse: %v, %s", err, out)
	}
	if mounted(dir) {
		t.Fatal("mounted despite the bad flag")
	}
	m := startMount(t, c, "--store-reuse", "0")
	for i := range 3 {
		p := m.path("group1", fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != "content" {
			t.Fatalf("read back %q, %v", got, err)
		}
	}
}

// A file read once is in the block cache on disk: after a remount (which
// empties the kernel's page cache) it reads back whole with every storage
// down.
func TestCachedBlocksOutliveRemount(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	data := pattern(5<<20+123, 7) // several blocks and a short one
	p := m.path("group1", "cached.bin")
	if err := writeFile(p, data); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(p); err != nil || sumBytes(got) != sumBytes(data) {
		t.Fatalf("first read: %v", err)
	}
	m.remount() // the unmount waits for the blocks still queued for disk
	for _, st := range c.Storages() {
		st.Stop()
		defer st.Restart()
	}
	got, err := os.ReadFile(p)
	if err != nil || sumBytes(got) != sumBytes(data) {
		t.Fatalf("read with the storages down after a remount: %d bytes, %v", len(got), err)
	}
	// 1 MiB replies go out with writev, not through a failed splice
	// attempt that go-fuse would log once per read.
	if strings.Contains(m.log.String(), "trySplice") {
		t.Errorf("the mount tried to splice read replies:\n%s", m.log.String())
	}
}

// TestExtensionRuleShared: `fdfsfs put` and a copy into the mount derive a
// file ID's extension by one rule, so a name the storage would refuse as an
// extension ("b~c") uploads either way, and a two-part one is kept.
func TestExtensionRuleShared(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	dir := t.TempDir()
	for name, wantExt := range map[string]string{"a.b~c": "", "x.tar.gz": ".tar.gz", "p.j-g": ".j-g", "q.b~c.gz": ".gz"} {
		src := filepath.Join(dir, name)
		if err := os.WriteFile(src, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		put := strings.TrimSpace(run(t, "put", "--tracker", c.TrackerAddr(), "--group", "group1", src))
		sh(t, "cp '"+src+"' '"+m.path("group1", name)+"'")
		mounted := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id '"+m.path("group1", name)+"'"))
		for what, id := range map[string]string{"put": put, "cp": mounted} {
			base := filepath.Base(id)
			ext := ""
			if i := strings.Index(base, "."); i >= 0 {
				ext = base[i:]
			}
			if ext != wantExt {
				t.Errorf("%s %q: file ID %s, want extension %q", what, name, id, wantExt)
			}
		}
	}
}
