package test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fdfsfs/fdfs/localcluster"
	"fdfsfs/internal/redisserver"
)

// TestSharedFailover mounts one cluster twice on a Redis master that
// Sentinel watches (one replica, three Sentinels), with wait=1, kills the
// master with SIGKILL while host A copies 1,000 files, and checks that
// after the failover every file whose copy reported success reads back
// right on both hosts, that no system call on either mount took longer
// than the network timeout, and that `index check` finds the tree sound.
// Then it fails over again (it kills the new master too) while host B is
// frozen, so that B misses a change notice, and checks that B drops its
// caches once it is back. The passwords (one for Redis, another for Sentinel) come
// from the URL, a file and the environment, and never show in the logs or
// /proc/mounts.
func TestSharedFailover(t *testing.T) {
	const (
		timeout         = 10 * time.Second
		redisSecret     = "redis-secret-3f9a"
		sentinelSecret  = "sentinel-secret-7c21"
		files           = 1000
		killAfterCopies = 300
	)
	began := time.Now()
	s := redisserver.StartSentinel(t, redisserver.SentinelOptions{Password: redisSecret, SentinelPassword: sentinelSecret})
	c := cluster(t, localcluster.Options{})
	pwFile := filepath.Join(t.TempDir(), "redis.pw")
	if err := os.WriteFile(pwFile, []byte(redisSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FDFSFS_SENTINEL_PASSWORD", sentinelSecret)
	// Host A names the Redis password in the URL, host B in a file.
	urlA := strings.Replace(s.URL("wait=1"), "redis://", "redis://:"+redisSecret+"@", 1)
	a := startSharedMount(t, c, urlA, "--network-timeout", timeout.String())
	b := startSharedMount(t, c, s.URL("wait=1&password_file="+pwFile), "--network-timeout", timeout.String(), "--attr-timeout", "1h")
	noSecrets := func(when string) {
		t.Helper()
		mounts, _ := os.ReadFile("/proc/mounts")
		for what, text := range map[string]string{"/proc/mounts": string(mounts), "host A's log": a.log.String(), "host B's log": b.log.String()} {
			for _, secret := range []string{redisSecret, sentinelSecret} {
				if strings.Contains(text, secret) {
					t.Errorf("%s: %s shows a password", when, what)
				}
			}
		}
	}
	noSecrets("after mounting")
	t.Logf("%v: servers started and mounted", time.Since(began).Round(time.Millisecond))

	src := t.TempDir()
	for i := range files {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d", i)), pattern(100+i*7, byte(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dstA := a.path("group1", "copy")
	if err := os.Mkdir(dstA, 0o755); err != nil {
		t.Fatal(err)
	}
	// Host B works in a directory of its own during the copy. (Listing
	// the copy's directory while it fills would cache, for B's hour of
	// --attr-timeout, the attributes of a file read just before its
	// commit's notice was applied: a race of notices with replies in
	// flight that has nothing to do with a failover.)
	if err := os.MkdirAll(a.path("group1", "probe"), 0o755); err != nil {
		t.Fatal(err)
	}
	probeData := pattern(1000, 99)
	if err := os.WriteFile(a.path("group1", "probe", "p"), probeData, 0o644); err != nil {
		t.Fatal(err)
	}

	// syscalls times every system call on the mounts; none may hang.
	var (
		mu      sync.Mutex
		slowest time.Duration
		slowOp  string
	)
	timed := func(op string, f func() error) error {
		start := time.Now()
		err := f()
		if el := time.Since(start); el > 0 {
			mu.Lock()
			if el > slowest {
				slowest, slowOp = el, op
			}
			mu.Unlock()
		}
		return err
	}
	// copyFile is cp: it reports success only if open, write and close
	// all did.
	copyFile := func(name string) error {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		var f *os.File
		dst := filepath.Join(dstA, name)
		if err := timed("open "+name, func() (err error) {
			f, err = os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			return err
		}); err != nil {
			return err
		}
		werr := timed("write "+name, func() error { _, err := f.Write(data); return err })
		cerr := timed("close "+name, f.Close)
		return errors.Join(werr, cerr)
	}

	// Host B lists and stats the directory meanwhile.
	stopB := make(chan struct{})
	var readerB sync.WaitGroup
	readerB.Go(func() {
		for {
			select {
			case <-stopB:
				return
			case <-time.After(50 * time.Millisecond):
			}
			timed("host B: ls -l, cat", func() error {
				es, err := os.ReadDir(b.path("group1", "probe"))
				for _, e := range es {
					e.Info()
				}
				os.ReadFile(b.path("group1", "probe", "p"))
				return err
			})
		}
	})

	var (
		copied   sync.Map // name → true for every copy that reported success
		done     atomic.Int64
		failures atomic.Int64
		next     atomic.Int64
		copiers  sync.WaitGroup
	)
	for range 4 {
		copiers.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= files {
					return
				}
				name := fmt.Sprintf("f%04d", i)
				if err := copyFile(name); err != nil {
					if failures.Add(1) <= 5 {
						t.Logf("cp %s: %v", name, err)
					}
				} else {
					copied.Store(name, true)
				}
				done.Add(1)
			}
		})
	}
	for done.Load() < killAfterCopies {
		time.Sleep(10 * time.Millisecond)
	}
	oldMaster := s.Master
	// Uploads whose naming the failover lost are older than this.
	since := time.Now().Add(-2 * time.Second).Truncate(time.Second).Format(time.RFC3339)
	oldMaster.Kill()
	killedAt := done.Load()
	t.Logf("%v: master killed", time.Since(began).Round(time.Millisecond))
	s.WaitMaster(s.Replica.Addr, 20*time.Second)
	t.Logf("%v: the Sentinels name the new master", time.Since(began).Round(time.Millisecond))
	// A crashed host comes back as a replica; until then wait=1 holds
	// the changes (no replica can confirm them).
	s.Rejoin(oldMaster)
	t.Logf("%v: the old master is back as a replica", time.Since(began).Round(time.Millisecond))
	copiers.Wait()
	close(stopB)
	readerB.Wait()
	n := 0
	copied.Range(func(_, _ any) bool { n++; return true })
	t.Logf("%v: copy done", time.Since(began).Round(time.Millisecond))
	t.Logf("master killed after %d of %d copies; %d reported success, %d failed; slowest call %v (%s)",
		killedAt, files, n, failures.Load(), slowest, slowOp)
	if n < files/2 {
		t.Errorf("only %d of %d copies succeeded across the failover", n, files)
	}
	// Each request to the index waits at most the timeout; a system
	// call makes up to two that can wait (open(O_CREAT): LOOKUP, then
	// CREATE; close(): the file's attributes, then the commit).
	if slowest > 2*timeout+time.Second {
		t.Errorf("%s took %v, network timeout %v", slowOp, slowest, timeout)
	}
	copied.Range(func(k, _ any) bool {
		name := k.(string)
		want := sumBytes(pattern(100+atoi(name[1:])*7, byte(atoi(name[1:]))))
		for host, m := range map[string]*mount{"A": a, "B": b} {
			if got := sum(t, m.path("group1", "copy", name)); got != want {
				t.Errorf("host %s: %s has other bytes than were copied", host, name)
			}
		}
		return true
	})

	// A second failover, while host B is frozen: B's subscription dies
	// with the master, host A changes a file B has cached (for an hour)
	// on the new master, and B, once thawed, must drop its caches.
	probe := b.path("group1", "probe", "p")
	if fi, err := os.Stat(probe); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("host B: stat probe/p: %v %v", fi, err)
	}
	b.cmd.Process.Signal(syscall.SIGSTOP)
	s.Replica.Kill()
	s.WaitMaster(oldMaster.Addr, 20*time.Second)
	s.Rejoin(s.Replica)
	err := timed("chmod probe/p on A", func() error { return os.Chmod(a.path("group1", "probe", "p"), 0o600) })
	b.cmd.Process.Signal(syscall.SIGCONT)
	if err != nil {
		t.Fatalf("chmod on host A after the second failover: %v", err)
	}
	eventually(t, "host B sees host A's chmod made while B was not subscribed", func() error {
		fi, err := os.Stat(probe)
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o600 {
			return fmt.Errorf("mode %v", fi.Mode())
		}
		return nil
	})
	if !strings.Contains(b.log.String(), "dropped every cached entry") {
		t.Errorf("host B did not log dropping its caches after the gap in notices:\n%s", b.log)
	}
	noSecrets("after two failovers")
	t.Logf("%v: second failover done", time.Since(began).Round(time.Millisecond))

	a.stop()
	b.stop()
	// The CLI takes the Redis password from the environment.
	t.Setenv("FDFSFS_META_PASSWORD", redisSecret)
	check := []string{"index", "check", "--meta", s.URL(""), "--tracker", c.TrackerAddrs()[0], "--lost-since", since}
	out, err := exec.Command(binary, check...).CombinedOutput()
	if err != nil {
		// A change whose answer was lost with the master (its system
		// call failed) may have left what only a repair mends: an
		// upload that no name points at, say.
		t.Logf("index check before repair:\n%s", out)
		run(t, append(check, "--repair")...)
		if out := run(t, check...); !strings.Contains(out, "\nok\n") || !strings.Contains(out, "that no name points at: 0") {
			t.Errorf("index check after repair:\n%s", out)
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestIndexCheckLostUploads: `index check --lost-since T` finds the files
// created since T that no name points at (as an upload whose naming a
// failover lost), and --repair deletes them; files named through the
// mount, and files older than T, stay.
func TestIndexCheckLostUploads(t *testing.T) {
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	src := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(src, pattern(5000, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	put := func() string {
		return strings.TrimSpace(run(t, "put", "--tracker", c.TrackerAddr(), "--group", "group1", src))
	}
	older := put()
	// FastDFS keeps creation times in whole seconds.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	since := time.Now().Truncate(time.Second).Format(time.RFC3339)
	lost := put() // uploaded, never named: what a failover can leave
	if err := os.WriteFile(m.path("group1", "named.bin"), pattern(7000, 2), 0o644); err != nil {
		t.Fatal(err)
	}
	m.stop()
	check := append([]string{"index", "check", "--lost-since", since}, m.indexArgs(c)...)
	out := shErr(t, binary+" "+strings.Join(check, " "))
	if !strings.Contains(out, "lost upload: "+lost+"\n") || strings.Count(out, "lost upload: ") != 1 {
		t.Fatalf("index check --lost-since %s does not name exactly the one lost upload %s:\n%s", since, lost, out)
	}
	out = run(t, append(check, "--repair")...)
	if !strings.Contains(out, "lost uploads deleted: 1") {
		t.Errorf("index check --repair --lost-since:\n%s", out)
	}
	if out, err := exec.Command(binary, "stat", "--tracker", c.TrackerAddr(), lost).CombinedOutput(); err == nil {
		t.Errorf("the lost upload is still there after --repair:\n%s", out)
	}
	run(t, "stat", "--tracker", c.TrackerAddr(), older)
	if out := run(t, check...); !strings.Contains(out, "that no name points at: 0") {
		t.Errorf("index check --lost-since after the repair:\n%s", out)
	}
	m.start()
	if got := sum(t, m.path("group1", "named.bin")); got != sumBytes(pattern(7000, 2)) {
		t.Errorf("named.bin lost its content to the repair")
	}
}
