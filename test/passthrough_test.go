package test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"fdfsfs/fdfs/localcluster"
)

// readOps reads path whole and returns its bytes and the FUSE reads the
// mount answered meanwhile (none for a passthrough open).
func readOps(t *testing.T, addr, path string) ([]byte, float64) {
	t.Helper()
	before := scrape(t, addr)[`fdfsfs_fuse_ops_total{op="read"}`]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data, scrape(t, addr)[`fdfsfs_fuse_ops_total{op="read"}`] - before
}

// passthroughOn skips the test where the kernel refused passthrough (not
// root, an old kernel); the mount says so once in its log.
func passthroughOn(t *testing.T, m *mount) {
	t.Helper()
	if !strings.Contains(m.log.String(), "FUSE passthrough is on") {
		t.Skipf("the kernel does not take FUSE passthrough here:\n%s", m.log)
	}
}

// waitPassthrough reads path until a read of it reaches the mount no
// more: its content is complete in the block cache (the first read's
// release has the rest fetched in the background) and the open is a
// passthrough one. Every read must return want.
func waitPassthrough(t *testing.T, addr, path string, want []byte) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, reads := readOps(t, addr, path)
		if !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
		}
		if reads == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads of %s still reach the mount (%v FUSE reads)", path, reads)
		}
	}
}

// TestPassthroughWarmRead: once a file's content is complete in the block
// cache, a read-only open is handed to the kernel (FUSE passthrough): a
// second cat reads the right bytes without one FUSE read. A file changed
// after it was cached is never read stale: not by opens made while the old
// passthrough open is still open, not after, and the new content is
// passed through in turn once cached.
func TestPassthroughWarmRead(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	addr := freePort(t)
	m := startMount(t, c, "--metrics", addr, "--direct-io-size", "4M")
	passthroughOn(t, m)
	path := m.path("group1", "big.bin")
	old := pattern(12<<20+12345, 1)
	if err := writeFile(path, old); err != nil {
		t.Fatal(err)
	}
	// Cold (direct I/O, by its size): read through the mount.
	if got, reads := readOps(t, addr, path); !bytes.Equal(got, old) || reads == 0 {
		t.Fatalf("cold read: %d bytes right %v, %v FUSE reads", len(got), bytes.Equal(got, old), reads)
	}
	waitPassthrough(t, addr, path, old)
	if got := sh(t, "cat "+path+" | sha256sum | cut -c1-64"); strings.TrimSpace(got) != sumBytes(old) {
		t.Fatal("cat through passthrough read the wrong bytes")
	}

	// Overwrite it while a passthrough open of the old content is open.
	held, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4096)
	if _, err := held.ReadAt(head, 0); err != nil || !bytes.Equal(head, old[:4096]) {
		t.Fatalf("the held open reads %v, wrong bytes", err)
	}
	fresh := pattern(9<<20+77, 2)
	if err := writeFile(path, fresh); err != nil {
		t.Fatalf("writing over a file open through passthrough: %v", err)
	}
	if got, _ := readOps(t, addr, path); !bytes.Equal(got, fresh) {
		t.Fatalf("an open made after the rewrite, while the old content's passthrough open is open, read %d bytes of old content", len(got))
	}
	opens := scrape(t, addr)
	if opens[`fdfsfs_fuse_opens_total{mode="passthrough"}`] < 2 || opens[`fdfsfs_fuse_opens_total{mode="passthrough_direct_io"}`] < 2 {
		t.Fatalf("opens by mode: %v passthrough (want the reads and the held open), %v passthrough with direct I/O (want the writer and the reader of new content)",
			opens[`fdfsfs_fuse_opens_total{mode="passthrough"}`], opens[`fdfsfs_fuse_opens_total{mode="passthrough_direct_io"}`])
	}
	// In place, at an offset, through a second open for writing.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("PATCHED"), 5<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(fresh[5<<20:], "PATCHED")
	held.Close()
	if got, _ := readOps(t, addr, path); !bytes.Equal(got, fresh) {
		t.Fatal("after the held open closed, a read returned other bytes than the last written")
	}
	waitPassthrough(t, addr, path, fresh)

	// After a remount the cache's copy serves at once.
	m.remount()
	if got, reads := readOps(t, addr, path); !bytes.Equal(got, fresh) || reads != 0 {
		t.Fatalf("after a remount: right bytes %v, %v FUSE reads, want a passthrough open", bytes.Equal(got, fresh), reads)
	}
	if strings.Contains(m.log.String(), "level=ERROR") {
		t.Fatalf("errors in the mount's log:\n%s", m.log)
	}
}

// TestMmapLargeFile maps a file large enough for direct I/O (read cold,
// not cached) shared and private and reads it through the map, then again
// once its opens are passthrough ones.
func TestMmapLargeFile(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	addr := freePort(t)
	m := startMount(t, c, "--metrics", addr, "--direct-io-size", "4M")
	path := m.path("group1", "mapped.bin")
	want := pattern(8<<20+4321, 3)
	if err := writeFile(path, want); err != nil {
		t.Fatal(err)
	}
	m.remount() // cold: nothing cached, no pages in the kernel
	noGC(t)
	check := func(what string, flags int) {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, err := syscall.Mmap(int(f.Fd()), 0, len(want), syscall.PROT_READ, flags)
		if err != nil {
			t.Fatalf("%s: mmap: %v", what, err)
		}
		defer syscall.Munmap(b)
		if !bytes.Equal(b, want) {
			t.Fatalf("%s: the map holds other bytes than the file", what)
		}
	}
	check("shared, cold", syscall.MAP_SHARED)
	check("private, cold", syscall.MAP_PRIVATE)
	if !strings.Contains(m.log.String(), "FUSE passthrough is on") {
		return
	}
	waitPassthrough(t, addr, path, want)
	check("shared, passthrough", syscall.MAP_SHARED)
	check("private, passthrough", syscall.MAP_PRIVATE)
}

// passthroughFile mounts the local cluster (extra: more mount flags),
// writes a file of 6 MiB and some in group1 under name, and reads it until
// it is served through passthrough. It skips where the kernel will not.
func passthroughFile(t *testing.T, name string, seed byte, extra ...string) (m *mount, addr, path string, want []byte) {
	t.Helper()
	c := cluster(t, localcluster.Options{})
	addr = freePort(t)
	m = startMount(t, c, append([]string{"--metrics", addr, "--direct-io-size", "4M"}, extra...)...)
	passthroughOn(t, m)
	path = m.path("group1", name)
	want = pattern(6<<20+99, seed)
	if err := writeFile(path, want); err != nil {
		t.Fatal(err)
	}
	waitPassthrough(t, addr, path, want)
	return m, addr, path, want
}

// mapForWriting opens path for reading (a passthrough open), then for
// writing, and maps the first page of the second shared and writable: a
// map the kernel makes of the block cache's copy.
func mapForWriting(t *testing.T, path string) (reader, w *os.File, b []byte) {
	t.Helper()
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err = os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("opening for writing a file open through passthrough: %v", err)
	}
	b, err = syscall.Mmap(int(w.Fd()), 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	return reader, w, b
}

// TestSharedMapWriteDuringPassthrough: the kernel maps an open for writing
// made while the file is open through passthrough from the block cache's
// copy, so a shared writable map of it writes that copy, not the file. The
// mount cannot refuse the map; it finds the write at close, which fails
// with EIO, and nobody reads the copy's changed bytes as the file
// afterwards.
func TestSharedMapWriteDuringPassthrough(t *testing.T) {
	m, _, path, want := passthroughFile(t, "mapped.bin", 4)
	reader, w, b := mapForWriting(t, path)
	defer reader.Close()
	copy(b, "MAPPED")
	syscall.Munmap(b)
	if err := w.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("close after writes through the map went to the cached copy: %v, want EIO", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Fatal("an open made after that close read the cached copy's changed bytes")
	}
	reader.Close()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Fatal("after the last close, a read returned the cached copy's changed bytes")
	}
	if !strings.Contains(m.log.String(), "those writes are lost") {
		t.Fatalf("the mount did not log the lost writes:\n%s", m.log)
	}
}

// TestPassthroughCopyOfKilledMountDropped: a mount killed while a file is
// open through passthrough, and written through a shared map of an open
// for writing (which writes the cache's copy, never the file), leaves that
// copy behind; the next mount drops it instead of serving the mapped bytes
// as the file.
func TestPassthroughCopyOfKilledMountDropped(t *testing.T) {
	m, addr, path, want := passthroughFile(t, "killed.bin", 5)
	held, w, b := mapForWriting(t, path)
	copy(b, "MAPPED")
	if err := unix.Msync(b, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	m.kill()
	syscall.Munmap(b)
	w.Close()
	held.Close()

	m.start()
	if !strings.Contains(m.log.String(), "dropping a cached file that was open through passthrough") {
		t.Fatalf("the restarted mount did not drop the copy it had open through passthrough:\n%s", m.log)
	}
	got, reads := readOps(t, addr, path)
	if !bytes.Equal(got, want) {
		t.Fatalf("after the restart the file reads %q..., not what was written", got[:6])
	}
	if reads == 0 {
		t.Fatal("after the restart the first read was passed through: the dropped copy was served")
	}
}

// A posix_fadvise(WILLNEED) (or readahead(2)) on a passthrough open makes
// the kernel read the FUSE inode's page cache through FUSE_READ with that
// open's handle; it must not turn passthrough off for the whole mount.
func TestFadviseKeepsPassthrough(t *testing.T) {
	m, addr, path, _ := passthroughFile(t, "adv.bin", 6)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	before := scrape(t, addr)[`fdfsfs_fuse_ops_total{op="read"}`]
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_WILLNEED); err != nil {
		t.Fatal(err)
	}
	f.Close()
	reads := scrape(t, addr)[`fdfsfs_fuse_ops_total{op="read"}`] - before
	if strings.Contains(m.log.String(), "FUSE passthrough is off") {
		t.Fatalf("fadvise(WILLNEED) on a passthrough open turned passthrough off for the mount (%v FUSE reads)", reads)
	}
}

// A write through a shared map of an open for writing made during a
// passthrough open, after close(2) of that open: no flush or release sees
// it, and the map writes the backing file. That copy left the block cache
// when the writer opened, so the file never reads the map's bytes.
func TestSharedMapWriteAfterCloseNotCached(t *testing.T) {
	_, _, path, want := passthroughFile(t, "mapped.bin", 7)
	reader, w, b := mapForWriting(t, path)
	if err := w.Close(); err != nil {
		t.Fatalf("close before writing through the map: %v", err)
	}
	copy(b, "MAPPED")
	unix.Msync(b, unix.MS_SYNC)
	syscall.Munmap(b)
	reader.Close()
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, want) {
		t.Fatalf("after a map write following close(2), the file reads %q...", got[:6])
	}
}

// A read-only shared map of a passthrough open outlives close(2) (the
// kernel maps the cache's file itself, as ld.so maps a library): the
// release unpins the object, and eviction must not punch holes into the
// file the map still reads.
func TestMapOfClosedPassthroughOpenSurvivesEviction(t *testing.T) {
	m, _, path, want := passthroughFile(t, "mapped.bin", 8, "--cache-size", "40M")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, len(want), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(b)
	f.Close()
	if !bytes.Equal(b, want) {
		t.Fatal("map differs before eviction")
	}
	for i := range 6 {
		other := m.path("group1", "other"+string(rune('a'+i)))
		data := pattern(12<<20, byte(20+i))
		if err := writeFile(other, data); err != nil {
			t.Fatal(err)
		}
		os.ReadFile(other)
	}
	unix.Madvise(b, unix.MADV_DONTNEED)
	if !bytes.Equal(b, want) {
		i := 0
		for i < len(b) && b[i] == want[i] {
			i++
		}
		t.Fatalf("after eviction, the map of a closed passthrough open differs from byte %d (got %#x)", i, b[i])
	}
}
