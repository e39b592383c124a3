package test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fdfsfs/fdfs/localcluster"
)

// TestSystemdUnit runs the ExecStart and ExecStop lines of
// scripts/fdfsfs.service the way systemd does for Type=notify: READY=1 on
// $NOTIFY_SOCKET must come once the mount works, and ExecStop must end
// the service with status 0.
func TestSystemdUnit(t *testing.T) {
	needFUSE(t)
	unit, err := os.ReadFile("../scripts/fdfsfs.service")
	if err != nil {
		t.Fatal(err)
	}
	c := cluster(t, localcluster.Options{})
	mnt, state, cacheDir := t.TempDir(), t.TempDir(), t.TempDir()
	metrics := freePort(t)
	local := strings.NewReplacer(
		"/usr/local/bin/fdfsfs", binary,
		"10.0.0.5:22122", c.TrackerAddr(),
		"/mnt/fdfs", mnt,
		"/var/lib/fdfsfs", state,
		"/var/cache/fdfsfs", cacheDir,
		"127.0.0.1:9567", metrics,
	).Replace(string(unit))
	directive := func(key string) []string {
		for _, line := range strings.Split(local, "\n") {
			if v, ok := strings.CutPrefix(line, key+"="); ok {
				return strings.Fields(strings.TrimPrefix(v, "-"))
			}
		}
		t.Fatalf("the unit has no %s=", key)
		return nil
	}

	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		f := filepath.Join(t.TempDir(), "fdfsfs.service")
		os.WriteFile(f, []byte(local), 0o644)
		if out, err := exec.Command("systemd-analyze", "verify", f).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}

	sock := filepath.Join(t.TempDir(), "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	start := directive("ExecStart")
	log := new(syncBuffer)
	cmd := exec.Command(start[0], start[1:]...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if mounted(mnt) {
			exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})

	notify.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 256)
	n, _, err := notify.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("no notification from ExecStart: %v\n%s", err, log)
	}
	if got := string(buf[:n]); got != "READY=1" {
		t.Fatalf("notification %q, want READY=1", got)
	}
	if !mounted(mnt) {
		t.Fatalf("READY=1 before the mount is there\n%s", log)
	}
	sh(t, "echo hello > "+mnt+"/group3/hello.txt && test \"$(cat "+mnt+"/group3/hello.txt)\" = hello")
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatalf("the unit's --metrics: %v", err)
	}
	resp.Body.Close()

	stop := directive("ExecStop")
	if out, err := exec.Command(stop[0], stop[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("ExecStop: %v\n%s", err, out)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the service exited with %v after ExecStop\n%s", err, log)
		}
		exited <- nil // for Cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("the service still runs 30s after ExecStop\n%s", log)
	}
}
