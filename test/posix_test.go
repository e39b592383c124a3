package test

import (
	"bytes"
	"errors"
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

// TestPOSIX covers the system calls legacy applications use beyond plain
// read and write: mmap, fsync, O_APPEND, O_EXCL, rename over a file, locks,
// and a file larger than one streamed chunk.
func TestPOSIX(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	// A small write buffer makes a few MiB span several streamed chunks.
	m := startMount(t, c, "--write-buffer", "4194304")
	g := m.path("group1")

	t.Run("shared writable mmap", func(t *testing.T) {
		noGC(t)
		p := filepath.Join(g, "mapped.bin")
		data := pattern(3<<20, 11)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		mem, err := syscall.Mmap(int(f.Fd()), 0, len(data), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			f.Close()
			t.Fatalf("mmap: %v", err)
		}
		if !bytes.Equal(mem[:4096], data[:4096]) {
			t.Error("mapped bytes differ from the file")
		}
		copy(mem[2<<20:], "mapped write")
		copy(data[2<<20:], "mapped write")
		if err := msync(mem); err != nil {
			t.Fatalf("msync: %v", err)
		}
		syscall.Munmap(mem)
		if err := f.Close(); err != nil {
			t.Fatalf("close after mmap: %v", err)
		}
		if got := sum(t, p); got != sumBytes(data) {
			t.Fatal("content after a shared mmap write differs")
		}
	})

	t.Run("fsync makes the data durable in FastDFS", func(t *testing.T) {
		p := filepath.Join(g, "synced.txt")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		want := pattern(5<<20, 12) // more than one chunk: streamed
		if _, err := f.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		// The file is still open; what FastDFS holds must already be it.
		id := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+p))
		out, err := exec.Command(binary, "get", "--tracker", c.TrackerAddr(), id, "-").Output()
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("FastDFS holds %d bytes after fsync, want the %d written", len(out), len(want))
		}
	})

	t.Run("O_APPEND from several opens", func(t *testing.T) {
		p := filepath.Join(g, "append.log")
		for _, line := range []string{"a\n", "b\n", "c\n"} {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(line)
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if b, _ := os.ReadFile(p); string(b) != "a\nb\nc\n" {
			t.Fatalf("appended file reads %q", b)
		}
	})

	t.Run("O_EXCL refuses an existing name", func(t *testing.T) {
		p := filepath.Join(g, "excl")
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, os.ErrExist) {
			t.Fatalf("second O_EXCL create: %v, want EEXIST", err)
		}
	})

	t.Run("rename over a file replaces it atomically", func(t *testing.T) {
		dst := filepath.Join(g, "config.json")
		os.WriteFile(dst, []byte(`{"v":1}`), 0o644)
		tmp := filepath.Join(g, ".config.json.tmp")
		os.WriteFile(tmp, []byte(`{"v":2}`), 0o644)
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(dst); string(b) != `{"v":2}` {
			t.Fatalf("after rename: %q", b)
		}
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Fatalf("source still there: %v", err)
		}
	})

	t.Run("flock is exclusive between descriptors", func(t *testing.T) {
		p := filepath.Join(g, "locked")
		os.WriteFile(p, []byte("x"), 0o644)
		a, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := syscall.Flock(int(a.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatalf("first flock: %v", err)
		}
		if err := syscall.Flock(int(b.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("second flock: %v, want EWOULDBLOCK", err)
		}
		syscall.Flock(int(a.Fd()), syscall.LOCK_UN)
		if err := syscall.Flock(int(b.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatalf("flock after unlock: %v", err)
		}
	})

	t.Run("a multi-chunk file streams and reads back", func(t *testing.T) {
		p := filepath.Join(g, "stream.bin")
		data := pattern(9<<20+12345, 13)
		src := filepath.Join(t.TempDir(), "stream.bin")
		os.WriteFile(src, data, 0o644)
		sh(t, "cp "+src+" "+p)
		if got := sum(t, p); got != sumBytes(data) {
			t.Fatal("streamed file differs")
		}
		// Read the middle through a fresh descriptor, as a random reader would.
		f, _ := os.Open(p)
		defer f.Close()
		mid := make([]byte, 4096)
		if _, err := f.ReadAt(mid, 7<<20); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mid, data[7<<20:7<<20+4096]) {
			t.Fatal("ranged read differs")
		}
	})

	t.Run("an mtime set before close is the one kept", func(t *testing.T) {
		// cp -p, cp -a and rsync write, set the times on the open file,
		// then close: the commit at close must not stamp the write time.
		p := filepath.Join(g, "dated.txt")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("old news\n")); err != nil {
			f.Close()
			t.Fatal(err)
		}
		when := time.Date(2001, 2, 3, 4, 5, 6, 700000000, time.UTC)
		if err := unix.Futimes(int(f.Fd()), []unix.Timeval{unix.NsecToTimeval(when.UnixNano()), unix.NsecToTimeval(when.UnixNano())}); err != nil {
			f.Close()
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		m.remount() // what the index keeps, not what the kernel cached
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(when) {
			t.Errorf("mtime after close and remount = %v, want %v", st.ModTime().UTC(), when)
		}
	})
}

// TestSetIDBitsCleared: a write or truncate by a process without
// CAP_FSETID clears set-user-ID (and set-group-ID with group execute), as
// on a local disk; a chown clears them too; root's own writes keep them.
// The mount clears them itself (it asks the kernel for
// HANDLE_KILLPRIV_V2), and it asks for security.capability once per file,
// not before every write(2).
func TestSetIDBitsCleared(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	c := cluster(t, localcluster.Options{})
	addr := freePort(t)
	// allow_other: one writer below runs with another group, which a mount
	// without it turns away before any permission check.
	m := startMount(t, c, "--metrics", addr, "-o", "allow_other")
	p := m.path("group1", "setid")
	if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// noFsetid runs a shell command without CAP_FSETID, as an ordinary
	// user's process would be.
	noFsetid := func(cmd string) { sh(t, "setpriv --bounding-set=-fsetid sh -c '"+cmd+"'") }
	mode := func() os.FileMode {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid)
	}
	for _, tc := range []struct {
		name   string
		chmod  uint32
		change func()
		want   os.FileMode
	}{
		{"write without CAP_FSETID", 0o6775, func() { noFsetid("echo more >> " + p) }, 0o775},
		{"truncate without CAP_FSETID", 0o4755, func() { noFsetid("truncate -s 1 " + p) }, 0o755},
		{"open with O_TRUNC without CAP_FSETID", 0o6775, func() { noFsetid(": > " + p) }, 0o775},
		{"set-group-ID without group execute stays", 0o2745, func() { noFsetid("echo more >> " + p) }, os.ModeSetgid | 0o745},
		{"unless the writer is not in the group", 0o2745, func() {
			sh(t, "setpriv --regid 4321 --clear-groups --bounding-set=-fsetid sh -c 'echo more >> "+p+"'")
		}, 0o745},
		{"chown", 0o6775, func() {
			if err := os.Chown(p, 1, 1); err != nil {
				t.Fatal(err)
			}
		}, 0o775},
		{"root's write keeps them", 0o4755, func() { sh(t, "echo more >> "+p) }, os.ModeSetuid | 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := syscall.Chmod(p, tc.chmod); err != nil {
				t.Fatal(err)
			}
			tc.change()
			if got := mode(); got != tc.want {
				t.Errorf("mode = %v, want %v", got, tc.want)
			}
			m.remount() // what the index keeps
			if got := mode(); got != tc.want {
				t.Errorf("after a remount: mode = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("security.capability is asked once per file", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "src")
		if err := os.WriteFile(src, pattern(64<<12, 3), 0o644); err != nil {
			t.Fatal(err)
		}
		before := scrape(t, addr)[`fdfsfs_fuse_ops_total{op="getxattr"}`]
		sh(t, "dd status=none bs=4k if="+src+" of="+m.path("group1", "pieces"))
		n := scrape(t, addr)[`fdfsfs_fuse_ops_total{op="getxattr"}`] - before
		if n > 2 {
			t.Errorf("64 writes of 4 KiB asked %v getxattr requests, want at most 2", n)
		}
		if got := sum(t, m.path("group1", "pieces")); got != sumBytes(pattern(64<<12, 3)) {
			t.Error("the file reads back different")
		}
	})
}

// TestDirectIO: with --direct-io, files opened for reading bypass the
// kernel's page cache (every read reaches the mount, a second one too),
// and still read right whole, at random offsets and through a shared map;
// writing is unchanged. Passthrough is off here: it would serve the second
// read from the block cache's copy, without the mount
// (TestPassthroughWarmRead).
func TestDirectIO(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	addr := freePort(t)
	m := startMount(t, c, "--metrics", addr, "-o", "direct_io,no_passthrough")
	p := m.path("group1", "direct.bin")
	data := pattern(3<<20+123, 17)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const reads = `fdfsfs_fuse_ops_total{op="read"}`
	for i := range 2 {
		before := scrape(t, addr)[reads]
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read %d differs", i+1)
		}
		if n := scrape(t, addr)[reads] - before; n < 1 {
			t.Fatalf("read %d of the whole file reached the mount %v times; the page cache answered it", i+1, n)
		}
	}

	id := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+p))
	if got, err := os.ReadFile(m.path(id)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read by ID %s: %v, same content %v", id, err, bytes.Equal(got, data))
	}

	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for _, off := range []int64{0, 1<<20 - 100, 3<<20 + 123 - 4096, 777777} {
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatalf("pread at %d: %v", off, err)
		}
		if !bytes.Equal(buf, data[off:off+4096]) {
			t.Fatalf("pread at %d differs", off)
		}
	}
	noGC(t)
	mem, err := syscall.Mmap(int(f.Fd()), 0, len(data), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("shared read-only map: %v", err)
	}
	same := bytes.Equal(mem, data)
	syscall.Munmap(mem)
	if !same {
		t.Fatal("the shared map reads different bytes")
	}

	w, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("changed"), 1000); err != nil {
		w.Close()
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	copy(data[1000:], "changed")
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a write: %v, same content %v", err, bytes.Equal(got, data))
	}
}

func msync(b []byte) error { return unix.Msync(b, unix.MS_SYNC) }
