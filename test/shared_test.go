package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fdfsfs/fdfs/localcluster"
	"fdfsfs/index"
	"fdfsfs/internal/redisserver"
)

// redisServer starts a redis-server of the test's own and returns its URL;
// it stops after the mounts (registered later) are gone.
func redisServer(t *testing.T) string {
	t.Helper()
	return redisserver.New(t).URL
}

// waitJudging waits until m's sweeps judge other hosts' sessions: a mount
// does once its own heartbeats have been steady for a session TTL.
func waitJudging(t *testing.T, m *mount) {
	t.Helper()
	eventually(t, "the mount's sweeps judge other sessions", func() error {
		if !strings.Contains(m.log.String(), "sweeps now take other hosts' expired sessions for dead") {
			return errors.New("its log does not say so yet")
		}
		return nil
	})
}

// sweptAlone counts the times m's sweeps found an upload of the session
// whose name contains session and left it alone (its debug log says so).
func sweptAlone(m *mount, session string) int {
	n := 0
	for _, line := range strings.Split(m.log.String(), "\n") {
		if strings.Contains(line, "an upload of a live session left alone") && strings.Contains(line, session) {
			n++
		}
	}
	return n
}

// startSharedMount mounts the cluster with its index in Redis, as one host
// of several would.
func startSharedMount(t *testing.T, c *localcluster.Cluster, metaURL string, extra ...string) *mount {
	t.Helper()
	needFUSE(t)
	m := &mount{t: t, dir: t.TempDir(), state: t.TempDir()}
	m.args = []string{"mount", "--meta", metaURL, "--cache", filepath.Join(m.state, "cache"), "--log-level", "debug"}
	for _, a := range c.TrackerAddrs() {
		m.args = append(m.args, "--tracker", a)
	}
	m.args = append(m.args, extra...)
	m.start()
	t.Cleanup(m.stop)
	return m
}

// eventually retries check until it returns nil; the bound only guards
// against a hang (the kernel's caches expire after 1 s).
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = check(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

// TestSharedIndex mounts one cluster twice, on one Redis index, as two
// hosts would.
func TestSharedIndex(t *testing.T) {
	url := redisServer(t)
	c := cluster(t, localcluster.Options{})
	a := startSharedMount(t, c, url)
	b := startSharedMount(t, c, url)

	t.Run("write on A, read on B", func(t *testing.T) {
		data := pattern(200<<10, 7)
		if err := os.WriteFile(a.path("group1", "f.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B reads A's file", func() error {
			got, err := os.ReadFile(b.path("group1", "f.bin"))
			if err != nil {
				return err
			}
			if sumBytes(got) != sumBytes(data) {
				return fmt.Errorf("content differs (%d bytes)", len(got))
			}
			return nil
		})
		// New content on A: B sees it at an open after its attributes
		// expire, not the pages it cached.
		data2 := pattern(300<<10, 8) // larger: the size B cached must not cut it
		if err := os.WriteFile(a.path("group1", "f.bin"), data2, 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B reads A's new content", func() error {
			got, err := os.ReadFile(b.path("group1", "f.bin"))
			if err != nil {
				return err
			}
			if sumBytes(got) != sumBytes(data2) {
				return fmt.Errorf("content differs (%d bytes)", len(got))
			}
			return nil
		})
	})

	t.Run("rename a dir on B, list on A", func(t *testing.T) {
		sh(t, "mkdir -p "+a.path("group2", "d1", "sub")+" && echo hi > "+a.path("group2", "d1", "sub", "x"))
		eventually(t, "B sees d1", func() error {
			_, err := os.Stat(b.path("group2", "d1", "sub", "x"))
			return err
		})
		sh(t, "mv "+b.path("group2", "d1")+" "+b.path("group2", "d2"))
		eventually(t, "A lists the rename", func() error {
			es, err := os.ReadDir(a.path("group2"))
			if err != nil {
				return err
			}
			var names []string
			for _, e := range es {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, []string{"d2"}) {
				return fmt.Errorf("A lists %q", names)
			}
			got, err := os.ReadFile(a.path("group2", "d2", "sub", "x"))
			if err != nil || string(got) != "hi\n" {
				return fmt.Errorf("d2/sub/x = %q, %v", got, err)
			}
			return nil
		})
	})

	t.Run("O_EXCL create race", func(t *testing.T) {
		for round := range 10 {
			name := fmt.Sprintf("race%d", round)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				m := a
				if i%2 == 1 {
					m = b
				}
				wg.Go(func() {
					// Nothing is written: the race is decided by open(),
					// and a close with data to commit can be cut short
					// by a signal (Go's preemption sends them) with EINTR.
					f, err := os.OpenFile(m.path("group3", name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
					if err == nil {
						err = f.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, syscall.EEXIST):
					t.Errorf("round %d, opener %d: %v, want EEXIST", round, i, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d O_EXCL creators of %s won, want 1", round, won, name)
			}
		}
		eventually(t, "both hosts list the winners", func() error {
			for _, m := range []*mount{a, b} {
				out := strings.Fields(sh(t, "ls "+m.path("group3")))
				if len(out) != 10 {
					return fmt.Errorf("%s lists %q", m.dir, out)
				}
			}
			return nil
		})
	})
}

// TestSharedNotices mounts with kernel caches that hold names and
// attributes for an hour (and noatime, so that reads do not make the kernel
// ask for attributes again): only the change notices sent through Redis can
// show host B what host A did.
func TestSharedNotices(t *testing.T) {
	url := redisServer(t)
	c := cluster(t, localcluster.Options{})
	a := startSharedMount(t, c, url, "--attr-timeout", "1h", "-o", "noatime")
	b := startSharedMount(t, c, url, "--attr-timeout", "1h", "-o", "noatime")

	f := "group1/f.txt"
	if err := os.WriteFile(a.path(f), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	readOn := func(m *mount, name string) func() error {
		return func() error { _, err := os.ReadFile(m.path(name)); return err }
	}
	eventually(t, "B reads f", readOn(b, f))
	if _, err := os.Stat(b.path(f)); err != nil { // B caches f's attributes
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path("group1", "g")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat g on B before it exists: %v", err) // now a cached negative entry
	}

	if err := os.Chmod(a.path(f), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B sees A's chmod", func() error {
		fi, err := os.Stat(b.path(f))
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o600 {
			return fmt.Errorf("mode %v", fi.Mode())
		}
		return nil
	})

	longer := pattern(100<<10, 3)
	if err := os.WriteFile(a.path(f), longer, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B sees A's new size", func() error {
		fi, err := os.Stat(b.path(f))
		if err != nil {
			return err
		}
		if fi.Size() != int64(len(longer)) {
			return fmt.Errorf("size %d", fi.Size())
		}
		return nil
	})
	if got, err := os.ReadFile(b.path(f)); err != nil || sumBytes(got) != sumBytes(longer) {
		t.Fatalf("B reads %d bytes of other content, %v", len(got), err)
	}

	if err := os.WriteFile(a.path("group1", "g"), []byte("g"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B sees g despite its cached negative entry", readOn(b, "group1/g"))

	if err := os.Remove(a.path(f)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B sees A's unlink", func() error {
		if _, err := os.Stat(b.path(f)); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stat on B: %v", err)
		}
		return nil
	})
}

// TestSharedUploadSurvivesOtherSweeps writes a file on host A in several
// streamed chunks, slowly, while host B sweeps the journal every 50 ms: B
// must leave A's unclaimed upload alone (it is another host's, and recent),
// so the file ends whole.
func TestSharedUploadSurvivesOtherSweeps(t *testing.T) {
	url := redisServer(t)
	c := cluster(t, localcluster.Options{})
	a := startSharedMount(t, c, url, "--write-buffer", "4194304") // 1 MiB chunks
	b := startSharedMount(t, c, url, "--group-refresh", "50ms", "--session-ttl", "1s")
	waitJudging(t, b)

	data := pattern(5<<20+77, 9)
	f, err := os.Create(a.path("group1", "slow.bin"))
	if err != nil {
		t.Fatal(err)
	}
	ofA := fmt.Sprintf(":%d:", a.cmd.Process.Pid)
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := f.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond) // B sweeps meanwhile
	}
	// B's log says each time a sweep found A's upload and left it.
	if n := sweptAlone(b, ofA); n < 2 {
		t.Fatalf("B's sweeps left A's upload alone %d times while A wrote; want several\n%s", n, b.log)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close on A: %v", err)
	}
	eventually(t, "B reads the whole file", func() error {
		got, err := os.ReadFile(b.path("group1", "slow.bin"))
		if err != nil {
			return err
		}
		if sumBytes(got) != sumBytes(data) {
			return fmt.Errorf("content differs (%d bytes)", len(got))
		}
		return nil
	})
}

// TestSharedSessionExpiry kills host A (kill -9) while it streams two files
// and holds open a file it unlinked. While A lives, host B's sweeps (every
// 100 ms) leave A's unclaimed uploads and its held orphan alone; once A's
// session expires (--session-ttl 2s), B deletes the uploads from the
// storage and purges the orphan, deleting its FastDFS file too.
func TestSharedSessionExpiry(t *testing.T) {
	url := redisServer(t)
	c := cluster(t, localcluster.Options{})
	a := startSharedMount(t, c, url, "--session-ttl", "2s", "--write-buffer", "4194304") // 1 MiB chunks
	b := startSharedMount(t, c, url, "--session-ttl", "2s", "--group-refresh", "100ms")
	waitJudging(t, b)
	ctx := t.Context()
	idx, err := index.OpenRedis(ctx, url, index.RedisOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	stored := func(fileID string) bool {
		for _, st := range c.Storages() {
			if st.Has(fileID) {
				return true
			}
		}
		return false
	}
	ofA := fmt.Sprintf(":%d:", a.cmd.Process.Pid)
	uploadsOfA := func() []string {
		ps, err := idx.ListPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range ps {
			if p.Reason == index.PendingUpload && strings.Contains(p.Session, ofA) {
				ids = append(ids, p.FileID)
			}
		}
		return ids
	}

	// A file open on A whose name A removes: an orphan A holds.
	held := a.path("group1", "held.bin")
	if err := os.WriteFile(held, pattern(300<<10, 4), 0o644); err != nil {
		t.Fatal(err)
	}
	heldID := strings.TrimSpace(sh(t, "getfattr --only-values -n user.fdfs.file_id "+held))
	hf, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	fi, err := hf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	heldIno := index.Ino(fi.Sys().(*syscall.Stat_t).Ino)
	if err := os.Remove(held); err != nil {
		t.Fatal(err)
	}

	// Two streamed writes, left open mid-way: their appender files are
	// uploaded and journalled, claimed by no name yet.
	for i := range 2 {
		f, err := os.Create(a.path("group1", fmt.Sprintf("slow%d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(pattern(2<<20+5, byte(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	var uploads []string
	eventually(t, "A's uploads in the journal", func() error {
		if uploads = uploadsOfA(); len(uploads) < 2 {
			return fmt.Errorf("journal holds %d uploads of A", len(uploads))
		}
		return nil
	})

	// B sweeps about ten times while A is alive; it must touch nothing.
	before, heldBefore := sweptAlone(b, ofA), strings.Count(b.log.String(), "orphan held open by a live session")
	time.Sleep(time.Second)
	if n := sweptAlone(b, ofA) - before; n < 2*len(uploads) {
		t.Errorf("A alive: B's sweeps found A's %d uploads and left them alone %d times in a second; want at least two sweeps", len(uploads), n)
	}
	if n := strings.Count(b.log.String(), "orphan held open by a live session") - heldBefore; n < 2 {
		t.Errorf("A alive: B's sweeps left the orphan A holds alone %d times in a second; want at least two sweeps", n)
	}
	if got := uploadsOfA(); !slices.Equal(got, uploads) {
		t.Errorf("A alive: its journalled uploads went from %q to %q", uploads, got)
	}
	for _, id := range append([]string{heldID}, uploads...) {
		if !stored(id) {
			t.Errorf("A alive: %s was deleted from the storage", id)
		}
	}
	if _, err := idx.GetAttr(ctx, heldIno); err != nil {
		t.Errorf("A alive: the orphan it holds open: %v", err)
	}
	buf := make([]byte, 4096)
	if _, err := hf.ReadAt(buf, 200<<10); err != nil {
		t.Errorf("A alive: reading the unlinked file it holds open: %v", err)
	}

	a.kill()
	eventually(t, "B deletes A's uploads and purges its orphan once A's session expires", func() error {
		if got := uploadsOfA(); len(got) > 0 {
			return fmt.Errorf("the journal still holds %q", got)
		}
		for _, id := range append([]string{heldID}, uploads...) {
			if stored(id) {
				return fmt.Errorf("%s is still stored", id)
			}
		}
		if _, err := idx.GetAttr(ctx, heldIno); !errors.Is(err, index.ErrNotFound) {
			return fmt.Errorf("orphan %d: %v", heldIno, err)
		}
		return nil
	})
	if os, err := idx.Orphans(ctx); err != nil || len(os) != 0 {
		t.Errorf("orphans left: %v, %v", os, err)
	}
	if !strings.Contains(b.log.String(), "deleting an upload of an expired session") {
		t.Errorf("B's log does not say it deleted A's uploads\n%s", b.log)
	}
}

// TestSharedSessionLostWhileStopped freezes host A (SIGSTOP) for longer
// than its session TTL in the middle of a streamed write, as a host cut off
// from Redis would be: B takes A's upload as abandoned and deletes it.
// When A runs again its close() must fail, not return 0 for content that
// is gone, and the file keeps what it had.
func TestSharedSessionLostWhileStopped(t *testing.T) {
	url := redisServer(t)
	c := cluster(t, localcluster.Options{})
	a := startSharedMount(t, c, url, "--session-ttl", "2s", "--write-buffer", "4194304") // 1 MiB chunks
	b := startSharedMount(t, c, url, "--session-ttl", "2s", "--group-refresh", "100ms")
	waitJudging(t, b)
	ctx := t.Context()
	idx, err := index.OpenRedis(ctx, url, index.RedisOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	ofA := fmt.Sprintf(":%d:", a.cmd.Process.Pid)
	uploadsOfA := func() int {
		ps, err := idx.ListPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range ps {
			if p.Reason == index.PendingUpload && strings.Contains(p.Session, ofA) {
				n++
			}
		}
		return n
	}

	f, err := os.Create(a.path("group1", "lost.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(pattern(2<<20, 5)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A's upload in the journal", func() error {
		if uploadsOfA() == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	a.cmd.Process.Signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			a.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	eventually(t, "B takes A's upload once A's session expires", func() error {
		if n := uploadsOfA(); n > 0 {
			return fmt.Errorf("%d uploads of A journalled", n)
		}
		return nil
	})
	a.cmd.Process.Signal(syscall.SIGCONT)
	stopped = false
	within(t, time.Minute, "close on A", func() {
		if err := f.Close(); !errors.Is(err, syscall.EIO) {
			t.Errorf("close on A after its upload was deleted: %v, want EIO", err)
		}
	})
	if fi, err := os.Stat(b.path("group1", "lost.bin")); err != nil || fi.Size() != 0 {
		t.Errorf("lost.bin on B: %v, %v; want it empty, as open(O_CREAT) made it", fi, err)
	}
	eventually(t, "A logs that its session had expired", func() error {
		if !strings.Contains(a.log.String(), "mount session had expired") {
			return errors.New("no such line in A's log")
		}
		return nil
	})
}
