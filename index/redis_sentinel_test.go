package index_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"fdfsfs/index"
	"fdfsfs/internal/redisserver"
)

// TestRedisSentinelFailover runs two hosts on a master found through
// Sentinel, with wait=1, kills the master with SIGKILL while one host
// creates files, and checks that after the failover every create that
// returned nil is there, that no call took longer than the timeout, and
// that the other host's notices came back with one Change{All: true}.
func TestRedisSentinelFailover(t *testing.T) {
	const timeout = 8 * time.Second
	s := redisserver.StartSentinel(t, redisserver.SentinelOptions{Password: "redis-secret", SentinelPassword: "sentinel-secret"})
	// The servers' password in the URL, the Sentinels' from the
	// environment: two passwords, kept apart.
	url := strings.Replace(s.URL("wait=1"), "redis://", "redis://:redis-secret@", 1)
	env := func(k string) string {
		if k == "FDFSFS_SENTINEL_PASSWORD" {
			return "sentinel-secret"
		}
		return ""
	}
	open := func() *index.Redis {
		r, err := index.OpenRedis(t.Context(), url, index.RedisOptions{Session: "test", Timeout: timeout, Getenv: env})
		if err != nil {
			t.Fatalf("OpenRedis: %v", err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	a, b := open(), open()
	changes := b.Changes()
	if changes == nil {
		t.Fatal("Changes() = nil")
	}
	ctx := t.Context()

	t.Run("WaitUnconfirmed", func(t *testing.T) {
		// wait=2 with one replica: the change cannot be confirmed, so
		// the call fails after the timeout instead of acknowledging it.
		u := strings.Replace(url, "wait=1", "wait=2", 1)
		r, err := index.OpenRedis(ctx, u, index.RedisOptions{Session: "test", Timeout: time.Second, Getenv: env})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		start := time.Now()
		_, err = r.Create(ctx, index.RootIno, "unconfirmed", index.Attr{Kind: index.KindFile, Mode: 0o644})
		if err == nil || !strings.Contains(err.Error(), "1 of the 2 replicas") {
			t.Fatalf("Create under wait=2 with one replica: %v, want a failure naming 1 of 2 replicas", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("the unconfirmed create took %v, timeout 1s", el)
		}
	})

	dir, err := a.Create(ctx, index.RootIno, "d", index.Attr{Kind: index.KindDir, Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	// Drain b's notices so far.
	for drained := false; !drained; {
		select {
		case <-changes:
		case <-time.After(200 * time.Millisecond):
			drained = true
		}
	}

	var (
		mu       sync.Mutex
		acked    []string
		failed   int
		slowest  time.Duration
		created  atomic.Int64
		stop     = make(chan struct{})
		writerWG sync.WaitGroup
	)
	for w := range 2 {
		writerWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%04d", w, i)
				start := time.Now()
				_, err := a.Create(ctx, dir.Ino, name, index.Attr{Kind: index.KindFile, Mode: 0o644})
				el := time.Since(start)
				mu.Lock()
				slowest = max(slowest, el)
				if err == nil {
					acked = append(acked, name)
					created.Add(1)
				} else {
					if failed++; failed <= 3 {
						t.Logf("create %s failed after %v: %v", name, el, err)
					}
					if errors.Is(err, index.ErrExists) || errors.Is(err, index.ErrCorrupt) {
						t.Errorf("create %s: %v", name, err)
					}
				}
				mu.Unlock()
			}
		})
	}
	for created.Load() < 100 {
		time.Sleep(5 * time.Millisecond)
	}
	oldMaster := s.Master
	oldAddr := oldMaster.Addr
	oldMaster.Kill()
	s.WaitMaster(s.Replica.Addr, 20*time.Second)
	// The new master has no replica until the old one is back; wait=1
	// holds the creates until then.
	s.Rejoin(oldMaster)
	before := created.Load()
	deadline := time.Now().Add(2 * timeout)
	for created.Load() < before+100 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	writerWG.Wait()
	if created.Load() < before+100 {
		t.Fatalf("only %d creates after the failover (%d failed)", created.Load()-before, failed)
	}
	t.Logf("%d creates acknowledged, %d failed; slowest call %v; master %s → %s", len(acked), failed, slowest, oldAddr, s.MasterAddr())
	if slowest > timeout+time.Second {
		t.Errorf("a create took %v, timeout %v", slowest, timeout)
	}
	for _, name := range acked {
		if _, err := b.Lookup(ctx, dir.Ino, name); err != nil {
			t.Errorf("acknowledged %s: %v after the failover", name, err)
		}
	}
	checkSound(t, a)

	// b's subscription broke with the old master and came back on the
	// new one: one Change{All: true} (which may come after a's last
	// creates, when b took longer to find the new master), then a's
	// changes again.
	all := 0
	timeoutC := time.After(20 * time.Second)
	for all == 0 {
		select {
		case c := <-changes:
			if c.All {
				all++
			}
		case <-timeoutC:
			t.Fatal("host B got no Change{All: true} after the failover")
		}
	}
	f, err := a.Create(ctx, index.RootIno, "after", index.Attr{Kind: index.KindFile, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	for heard := false; !heard; {
		select {
		case c := <-changes:
			if c.All {
				all++
			}
			heard = c.Ino == f.Ino
		case <-timeoutC:
			t.Fatalf("host B did not hear host A's create after the failover (Change{All} %d times)", all)
		}
	}
	if all != 1 {
		t.Errorf("host B got Change{All: true} %d times after one failover, want 1", all)
	}
}

// TestRedisNoticesResume breaks a host's subscription from the server side
// (CLIENT KILL, as a restart or a failover does) and checks that it comes
// back, with one Change{All: true} for what it may have missed.
func TestRedisNoticesResume(t *testing.T) {
	ctx := t.Context()
	a, b := twoHosts(t)
	ch := b.Changes()
	if ch == nil {
		t.Fatal("Changes() = nil")
	}
	admin := goredis.NewClient(&goredis.Options{Addr: strings.TrimSuffix(strings.TrimPrefix(redisServer(t), "redis://"), "/0")})
	defer admin.Close()
	if err := admin.Do(ctx, "client", "kill", "type", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	select {
	case c := <-ch:
		if !c.All {
			t.Fatalf("first notice after the kill: %+v, want Change{All: true}", c)
		}
	case <-timeout:
		t.Fatal("no Change{All: true} after the subscription was killed")
	}
	f, err := a.Create(ctx, index.RootIno, "f", index.Attr{Kind: index.KindFile, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case c := <-ch:
			if c.All {
				t.Fatalf("a second Change{All: true} for one break")
			}
			if c.Ino == f.Ino {
				return
			}
		case <-timeout:
			t.Fatal("no notice of host A's create after the subscription came back")
		}
	}
}

// TestRedisUnreachableBounded: with no server at all, a call fails after
// the timeout, not at once and not never.
func TestRedisUnreachableBounded(t *testing.T) {
	srv := redisserver.New(t)
	r, err := index.OpenRedis(t.Context(), srv.URL, index.RedisOptions{Session: "test", Timeout: time.Second, Prefix: newPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv.Close()
	for _, op := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Lookup", func(ctx context.Context) error { _, err := r.Lookup(ctx, index.RootIno, "x"); return err }},
		{"Create", func(ctx context.Context) error {
			_, err := r.Create(ctx, index.RootIno, "x", index.Attr{Kind: index.KindFile, Mode: 0o644})
			return err
		}},
		{"ReadDir", func(ctx context.Context) error { _, err := r.ReadDir(ctx, index.RootIno); return err }},
	} {
		start := time.Now()
		err := op.call(t.Context())
		el := time.Since(start)
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with the server gone: %v, want an error that is not a deadline (EIO, not ETIMEDOUT)", op.name, err)
		}
		if el < 900*time.Millisecond || el > 3*time.Second {
			t.Errorf("%s failed after %v, want about the 1s timeout", op.name, el)
		}
	}
}

// TestRedisCounterRegressed: after a failover the promoted replica's inode
// counter can be behind numbers the old master handed out and a create
// then committed; a create must never write over such an inode.
func TestRedisCounterRegressed(t *testing.T) {
	ctx := t.Context()
	url := redisServer(t)
	prefix := newPrefix()
	r := openRedis(t, url, prefix)
	defer r.Close()
	f, err := r.Create(ctx, index.RootIno, "f", index.Attr{Kind: index.KindFile, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	admin := goredis.NewClient(&goredis.Options{Addr: strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")})
	defer admin.Close()
	if err := admin.Set(ctx, prefix+"lastino", uint64(f.Ino)-1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	g, err := r.Create(ctx, index.RootIno, "g", index.Attr{Kind: index.KindFile, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	if g.Ino == f.Ino {
		t.Fatalf("the create after the counter went back took inode %d, which f has", f.Ino)
	}
	if got, err := r.Lookup(ctx, index.RootIno, "f"); err != nil || got.Ino != f.Ino {
		t.Fatalf("f after g's create: %+v, %v", got, err)
	}
	checkSound(t, r)
}

// TestRedisDemotedMasterWaited: a master turned into a replica (a Sentinel
// failover demotes a master it can still reach) answers the writes of a
// transaction with READONLY, and its EXEC with EXECABORT, having applied
// nothing. Like a lost master, that is waited out within the timeout, not
// failed at once.
func TestRedisDemotedMasterWaited(t *testing.T) {
	ctx := t.Context()
	srv := redisserver.New(t)
	r, err := index.OpenRedis(ctx, srv.URL, index.RedisOptions{Session: "test", Timeout: 10 * time.Second, Prefix: newPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Create(ctx, index.RootIno, "before", index.Attr{Kind: index.KindFile, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	// A replica of a master that is not there: it keeps its data,
	// serves reads and refuses writes.
	if err := admin.Do(ctx, "replicaof", "127.0.0.1", "1").Err(); err != nil {
		t.Fatal(err)
	}
	promoted := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		promoted <- admin.Do(ctx, "replicaof", "no", "one").Err()
	}()
	start := time.Now()
	// A rename is one transaction (a create first takes a number with
	// INCR, which READONLY refuses outside any transaction).
	_, err = r.Rename(ctx, index.RootIno, "before", index.RootIno, "during", 0)
	el := time.Since(start)
	if perr := <-promoted; perr != nil {
		t.Fatal(perr)
	}
	if err != nil {
		t.Fatalf("Rename on a demoted master promoted again after 1s: %v after %v, want it to wait and succeed", err, el)
	}
	if _, err := r.Lookup(ctx, index.RootIno, "during"); err != nil {
		t.Fatalf("the rename waited out is not there: %v", err)
	}
	checkSound(t, r)
}
