package test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLocalCompat runs `fdfsfs local --compat V` for each documented
// version and lists its groups with `fdfsfs groups`: the same groups,
// storages and active counts in every layout.
func TestLocalCompat(t *testing.T) {
	out, err := exec.Command(binary, "local", "--compat", "9.9").CombinedOutput()
	if err == nil {
		t.Fatalf("--compat 9.9 accepted:\n%s", out)
	}
	if want := "supported: 5.11, 6.10, 6.11, 6.12, 6.13.0, 6.13.1, 6.16, 6.16-ipv6"; !strings.Contains(string(out), want) {
		t.Errorf("--compat 9.9 says %q, want the list %q", out, want)
	}

	var first []string
	for _, version := range []string{"5.11", "6.10", "6.11", "6.12", "6.13.0", "6.16"} {
		local := exec.Command(binary, "local", "--compat", version, "--groups", "2", "--storages-per-group", "2")
		stdout, err := local.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		local.Stderr = &stderr
		if err := local.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		addr := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			addr <- strings.TrimSpace(line)
			exited <- local.Wait()
		}()
		var tracker string
		select {
		case tracker = <-addr:
		case <-time.After(20 * time.Second):
			local.Process.Kill()
			t.Fatalf("%s: no tracker address in 20s", version)
		}
		if tracker == "" {
			t.Fatalf("%s: local printed no address\n%s", version, stderr.String())
		}
		listing := sh(t, binary+" groups --tracker "+tracker)
		rows := groupRows(t, listing)
		if first == nil {
			first = rows
			if strings.Join(rows, "; ") == "" || !strings.HasPrefix(rows[0], "group1 ") || !strings.HasSuffix(rows[0], " 2 2") {
				t.Fatalf("%s: groups:\n%s", version, listing)
			}
		} else if strings.Join(rows, "; ") != strings.Join(first, "; ") {
			t.Errorf("%s: groups %q, 5.11 gave %q", version, rows, first)
		}
		if version == "6.13.0" {
			// Told the version, the client reads V6.13.0's group records
			// (classic size, other fields) as they are meant.
			again := sh(t, binary+" groups --fdfs-version 6.13.0 --tracker "+tracker)
			if strings.Join(groupRows(t, again), "; ") != strings.Join(rows, "; ") {
				t.Errorf("with --fdfs-version 6.13.0:\n%s\nwithout:\n%s", again, listing)
			}
			if out := shErr(t, binary+" groups --fdfs-version 9.9 --tracker "+tracker); !strings.Contains(out, "supported: 5.11") {
				t.Errorf("--fdfs-version 9.9: %s", out)
			}
		}
		local.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%s: local exited with %v\n%s", version, err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			local.Process.Kill()
			t.Fatalf("%s: local still runs 20s after SIGINT", version)
		}
	}
}

// groupRows keeps what must not change between runs of `fdfsfs groups`:
// of GROUP TOTAL_MB FREE_MB STORAGES ACTIVE PORT, free space (the disk's)
// and ports move, so only that the port is set is checked.
func groupRows(t *testing.T, listing string) []string {
	t.Helper()
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) != 6 || f[5] == "0" {
			t.Fatalf("groups row %q", line)
		}
		rows = append(rows, strings.Join([]string{f[0], f[1], f[3], f[4]}, " "))
	}
	return rows
}
