package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"fdfsfs/fdfs/localcluster"
)

// fstabOptions set, through -o, flags that had no -o form before the one
// rule (every long flag is an option).
const fstabOptions = "attr_timeout=2s,network_timeout=5s,write_buffer=16777216,read_ahead=1048576,session_ttl=20s,store_reuse=0s,group_refresh=10s"

// fstabSettings are what the mount's log line says fstabOptions set.
var fstabSettings = []string{
	"set.attr-timeout=2s", "set.network-timeout=5s", "set.write-buffer=16777216", "set.read-ahead=1048576",
	"set.session-ttl=20s", "set.store-reuse=0s", "set.group-refresh=10s",
}

// TestMountFlagsAsOptions mounts with flags given as -o options only, and
// checks that the mount took them and works.
func TestMountFlagsAsOptions(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, "-o", fstabOptions)
	for _, s := range fstabSettings {
		if !strings.Contains(m.log.String(), s) {
			t.Errorf("the mount's log does not say %s:\n%s", s, m.log)
		}
	}
	data := pattern(9<<20+5, 4) // several 4 MiB chunks of the 16 MiB write buffer
	if err := writeFile(m.path("group1", "f.bin"), data); err != nil {
		t.Fatal(err)
	}
	dropCaches(t)
	if got := sum(t, m.path("group1", "f.bin")); got != sumBytes(data) {
		t.Error("f.bin reads back other bytes than were written")
	}
	// read_ahead: the kernel's readahead of the mount, where this process
	// may see what fdfsfs set (root, as fdfsfs itself).
	if os.Geteuid() == 0 {
		var st syscall.Stat_t
		if err := syscall.Stat(m.dir, &st); err != nil {
			t.Fatal(err)
		}
		kb, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(kb)); got != "1024" {
			t.Errorf("read_ahead_kb = %s, want 1024 (-o read_ahead=1048576)", got)
		}
	}
}

// TestMountHelperFlagsAsOptions passes the same options through mount(8),
// as an fstab line would.
func TestMountHelperFlagsAsOptions(t *testing.T) {
	needMountHelper(t)
	c := cluster(t, localcluster.Options{})
	state, mnt := t.TempDir(), t.TempDir()
	unmountAtEnd(t, mnt)
	opts := "index=" + filepath.Join(state, "index") + ",cache=" + filepath.Join(state, "cache") + "," + fstabOptions
	sh(t, "mount -t fuse '"+binary+"#"+c.TrackerAddr()+"' "+mnt+" -o "+opts)
	if !mounted(mnt) {
		t.Fatal("mount(8) returned 0 but nothing is mounted")
	}
	sh(t, "echo hello > "+mnt+"/group2/h.txt && test \"$(cat "+mnt+"/group2/h.txt)\" = hello")
	sh(t, "umount "+mnt)
}
