package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"fdfsfs/fdfs/localcluster"
)

// needMountHelper skips where mount(8) cannot run a FUSE helper: it needs
// root and mount.fuse3 (from fuse3).
func needMountHelper(t *testing.T) {
	t.Helper()
	needFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("mount(8) of a fuse type needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("no mount(8)")
	}
	for _, p := range []string{"/sbin/mount.fuse3", "/usr/sbin/mount.fuse3", "/sbin/mount.fuse", "/usr/sbin/mount.fuse"} {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	t.Skip("no mount.fuse3 (install fuse3)")
}

// unmountAtEnd makes sure a mount made through mount(8), whose process
// the test does not own, is gone when the test ends.
func unmountAtEnd(t *testing.T, dir string) {
	t.Cleanup(func() {
		if mounted(dir) {
			exec.Command("fusermount3", "-u", "-z", dir).Run()
		}
	})
}

// TestMountHelper mounts through mount(8) -> mount.fuse3 -> fdfsfs, the
// way fstab does, with the binary named by its full path (`-t fuse` and
// PATH#SOURCE): mount(8) runs helpers without the caller's PATH.
func TestMountHelper(t *testing.T) {
	needMountHelper(t)
	c := cluster(t, localcluster.Options{})
	state := t.TempDir()
	opts := func(name string) string {
		return "index=" + filepath.Join(state, name, "index") + ",cache=" + filepath.Join(state, name, "cache")
	}
	data := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(data, pattern(200<<10, 7), 0o644); err != nil {
		t.Fatal(err)
	}

	var fileID string // written by the first mount, read by ID from the last
	t.Run("mount -t fuse exits 0 once mounted", func(t *testing.T) {
		mnt := t.TempDir()
		unmountAtEnd(t, mnt)
		sh(t, "mount -t fuse '"+binary+"#"+c.TrackerAddr()+"' "+mnt+" -o "+opts("a"))
		// No waiting: the exit status means the mount is there.
		if !mounted(mnt) {
			t.Fatal("mount(8) returned 0 but nothing is mounted")
		}
		if got := strings.Fields(sh(t, "ls "+mnt)); strings.Join(got, " ") != "group1 group2 group3" {
			t.Fatalf("ls = %q", got)
		}
		sh(t, "cp "+data+" "+mnt+"/group1/f.bin && cmp "+data+" "+mnt+"/group1/f.bin")
		fileID = strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+mnt+"/group1/f.bin"))
		if src := sh(t, "findmnt -n -o SOURCE,FSTYPE "+mnt); strings.Fields(src)[0] != c.TrackerAddr() || strings.Fields(src)[1] != "fuse.fdfsfs" {
			t.Errorf("findmnt: %q, want the tracker as source and fuse.fdfsfs", src)
		}
		sh(t, "umount "+mnt)
		if mounted(mnt) {
			t.Fatal("still mounted after umount")
		}
	})

	t.Run("failures exit non-zero and mount nothing", func(t *testing.T) {
		mnt := t.TempDir()
		unmountAtEnd(t, mnt)
		out := shErr(t, "mount -t fuse '"+binary+"#no-port-here' "+mnt+" -o "+opts("b"))
		if !strings.Contains(out, "no-port-here") || mounted(mnt) {
			t.Errorf("bad tracker: mounted=%v, output:\n%s", mounted(mnt), out)
		}
		out = shErr(t, "mount -t fuse '"+binary+"#"+c.TrackerAddr()+"' "+filepath.Join(mnt, "missing")+" -o "+opts("c"))
		if !strings.Contains(out, "mountpoint") {
			t.Errorf("missing mountpoint: %s", out)
		}
		out = shErr(t, "mount -t fuse '"+binary+"#"+c.TrackerAddr()+"' "+mnt+" -o "+opts("d")+",bogus_option=1")
		if !strings.Contains(out, "bogus_option") || mounted(mnt) {
			t.Errorf("unknown option: mounted=%v, output:\n%s", mounted(mnt), out)
		}
	})

	t.Run("fstab line with mount -T", func(t *testing.T) {
		mnt := t.TempDir()
		unmountAtEnd(t, mnt)
		fstab := filepath.Join(t.TempDir(), "fstab")
		line := binary + "#" + c.TrackerAddr() + " " + mnt + " fuse " + opts("e") + ",allow_other,_netdev 0 0\n"
		if err := os.WriteFile(fstab, []byte("# fdfsfs\n"+line), 0o644); err != nil {
			t.Fatal(err)
		}
		sh(t, "mount -T "+fstab+" "+mnt)
		if !mounted(mnt) {
			t.Fatal("mount -T returned 0 but nothing is mounted")
		}
		if fileID == "" {
			t.Fatal("the first mount wrote no file")
		}
		sh(t, "cmp "+data+" "+mnt+"/"+fileID) // the first mount's file, by its ID
		sh(t, "umount "+mnt)
	})
}

// TestMountHelperByType mounts with `-t fuse.fdfsfs`, where mount.fuse3
// finds fdfsfs on the shell's default PATH. So as not to install anything
// on this machine, it runs in a private mount namespace in which the built
// binary's directory is bound over /usr/local/sbin.
func TestMountHelperByType(t *testing.T) {
	needMountHelper(t)
	if err := exec.Command("unshare", "--mount", "true").Run(); err != nil {
		t.Skipf("no private mount namespace here (unshare --mount: %v)", err)
	}
	c := cluster(t, localcluster.Options{})
	state, mnt := t.TempDir(), t.TempDir()
	data := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(data, pattern(100<<10, 8), 0o644); err != nil {
		t.Fatal(err)
	}
	fstab := filepath.Join(t.TempDir(), "fstab")
	opts := func(name string) string {
		return "index=" + filepath.Join(state, name, "index") + ",cache=" + filepath.Join(state, name, "cache")
	}
	line := c.TrackerAddr() + " " + mnt + " fuse.fdfsfs " + opts("b") + ",allow_other,_netdev 0 0\n"
	if err := os.WriteFile(fstab, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	// Everything is checked inside the namespace: the mount is not
	// visible outside it. The trap unmounts whatever fails.
	script := `
set -eu
mount --bind ` + filepath.Dir(binary) + ` /usr/local/sbin
trap 'umount -l ` + mnt + ` 2>/dev/null || true' EXIT
mount -t fuse.fdfsfs ` + c.TrackerAddr() + " " + mnt + ` -o ` + opts("a") + `
grep -q " ` + mnt + ` " /proc/self/mountinfo
cp ` + data + " " + mnt + `/group2/f.bin
cmp ` + data + " " + mnt + `/group2/f.bin
id=$(getfattr --only-values -n user.fdfs.file_id ` + mnt + `/group2/f.bin)
umount ` + mnt + `
mount -T ` + fstab + " " + mnt + `
cmp ` + data + " " + mnt + `/"$id"
# mount -a sees that the fstab line is mounted already.
mount -a -T ` + fstab + `
test "$(grep -c " ` + mnt + ` " /proc/self/mountinfo)" = 1
umount ` + mnt + `
echo done
`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-c", script).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "done\n") {
		t.Fatalf("%v\n%s", err, out)
	}
}
