package test

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"fdfsfs/fdfs/localcluster"
)

// TestFallocate: programs that preallocate work on the mount. fallocate(1)
// grows a file (mode 0 and glibc's posix_fallocate), KEEP_SIZE succeeds
// and changes nothing, punching a hole is refused, and rsync --preallocate
// copies a file exactly; all of it is still there after a remount.
func TestFallocate(t *testing.T) {
	if _, err := exec.LookPath("fallocate"); err != nil {
		t.Skip("no fallocate (util-linux)")
	}
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	g := m.path("group1")
	if err := os.WriteFile(g+"/grown", []byte("head"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "cd '"+g+"' && fallocate -l 1M grown && fallocate -x -l 300000 posix && fallocate -n -l 2M posix")
	// FastDFS files have no holes to punch.
	shErr(t, "fallocate -p -o 0 -l 4096 '"+g+"/grown'")
	src := pattern(3<<20+17, 9)
	local := t.TempDir() + "/src.bin"
	if err := os.WriteFile(local, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("rsync"); err == nil {
		sh(t, "rsync --preallocate '"+local+"' '"+g+"/rsynced'")
	} else {
		sh(t, "cp '"+local+"' '"+g+"/rsynced'")
	}
	check := func(when string) {
		t.Helper()
		grown, err := os.ReadFile(g + "/grown")
		if err != nil || len(grown) != 1<<20 || string(grown[:4]) != "head" || !bytes.Equal(grown[4:], make([]byte, 1<<20-4)) {
			t.Errorf("%s: grown is %d bytes, %v", when, len(grown), err)
		}
		posix, err := os.ReadFile(g + "/posix")
		if err != nil || !bytes.Equal(posix, make([]byte, 300000)) {
			t.Errorf("%s: posix is %d bytes, %v; want 300,000 zeros (KEEP_SIZE keeps the size)", when, len(posix), err)
		}
		if got, err := os.ReadFile(g + "/rsynced"); err != nil || !bytes.Equal(got, src) {
			t.Errorf("%s: the rsync --preallocate copy differs (%d bytes, %v)", when, len(got), err)
		}
	}
	check("mounted")
	m.remount()
	dropCaches(t)
	check("after a remount")
}
