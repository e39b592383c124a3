package index_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fdfsfs/index"
	"fdfsfs/index/indextest"
	"fdfsfs/internal/redisserver"
)

// A redis-server of our own, started by the first test that needs one and
// stopped by TestMain, on a free loopback port with no persistence. Each
// store the tests open gets its own key prefix, so they never see each
// other's keys.
var (
	redisOnce sync.Once
	redis     *redisserver.Server
	redisErr  error
	prefixes  atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if redis != nil {
		redis.Close()
	}
	os.Exit(code)
}

// redisServer returns the URL of the test server, skipping the test when
// redis-server is not installed.
func redisServer(t testing.TB) string {
	t.Helper()
	redisOnce.Do(func() { redis, redisErr = redisserver.Start() })
	if errors.Is(redisErr, redisserver.ErrNotInstalled) {
		t.Skip("redis-server is not installed (PATH); the Redis engine is not tested")
	}
	if redisErr != nil {
		t.Fatalf("start redis-server: %v", redisErr)
	}
	return redis.URL
}

// newPrefix names a store no other test uses.
func newPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

func openRedis(t *testing.T, url, prefix string) *index.Redis {
	t.Helper()
	r, err := index.OpenRedis(t.Context(), url, index.RedisOptions{Session: "test", Prefix: prefix})
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	return r
}

func TestRedisContract(t *testing.T) {
	url := redisServer(t)
	indextest.RunContract(t, func(t *testing.T) index.Index {
		return openRedis(t, url, newPrefix())
	})
}

func TestRedisPersistence(t *testing.T) {
	url := redisServer(t)
	indextest.RunPersistence(t, func(t *testing.T) func() index.Index {
		prefix := newPrefix()
		return func() index.Index { return openRedis(t, url, prefix) }
	})
}

// Two hosts: two Index instances on one store.
func twoHosts(t *testing.T) (a, b *index.Redis) {
	t.Helper()
	url := redisServer(t)
	prefix := newPrefix()
	a, b = openRedis(t, url, prefix), openRedis(t, url, prefix)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestRedisTwoHosts(t *testing.T) {
	ctx := t.Context()
	t.Run("SeeEachOther", func(t *testing.T) {
		a, b := twoHosts(t)
		d, err := a.Create(ctx, index.RootIno, "d", index.Attr{Kind: index.KindDir, Mode: 0o755})
		if err != nil {
			t.Fatal(err)
		}
		f, err := b.Create(ctx, d.Ino, "f", index.Attr{Kind: index.KindFile, Mode: 0o644})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := a.Lookup(ctx, d.Ino, "f"); err != nil || got.Ino != f.Ino {
			t.Fatalf("host A looks up d/f: %d, %v; host B made %d", got.Ino, err, f.Ino)
		}
		if _, err := a.Rename(ctx, d.Ino, "f", index.RootIno, "g", 0); err != nil {
			t.Fatal(err)
		}
		es, err := b.ReadDir(ctx, index.RootIno)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name)
		}
		if !slices.Equal(names, []string{"d", "g"}) {
			t.Errorf("host B lists %q after host A's rename", names)
		}
	})
	t.Run("CreateRace", func(t *testing.T) {
		a, b := twoHosts(t)
		for round := range 20 {
			name := fmt.Sprintf("x%d", round)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				host := a
				if i%2 == 1 {
					host = b
				}
				wg.Go(func() {
					_, errs[i] = host.Create(ctx, index.RootIno, name, index.Attr{Kind: index.KindFile, Mode: 0o644})
				})
			}
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, index.ErrExists):
					t.Errorf("round %d, creator %d: %v, want ErrExists", round, i, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d creators of %q won, want exactly 1", round, won, name)
			}
		}
		checkSound(t, a)
	})
	t.Run("RenameRace", func(t *testing.T) {
		// Both hosts move the same 30 files from src to dst at once, and
		// each dir back and forth: every file moves exactly once.
		a, b := twoHosts(t)
		src, _ := a.Create(ctx, index.RootIno, "src", index.Attr{Kind: index.KindDir, Mode: 0o755})
		dst, _ := a.Create(ctx, index.RootIno, "dst", index.Attr{Kind: index.KindDir, Mode: 0o755})
		const n = 30
		for i := range n {
			if _, err := a.Create(ctx, src.Ino, fmt.Sprintf("f%02d", i), index.Attr{Kind: index.KindFile, Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
		}
		var moved atomic.Int64
		var wg sync.WaitGroup
		for _, host := range []*index.Redis{a, b} {
			wg.Go(func() {
				for i := range n {
					name := fmt.Sprintf("f%02d", i)
					_, err := host.Rename(ctx, src.Ino, name, dst.Ino, name, index.RenameNoReplace)
					switch {
					case err == nil:
						moved.Add(1)
					case !errors.Is(err, index.ErrNotFound) && !errors.Is(err, index.ErrExists):
						t.Errorf("rename %s: %v", name, err)
					}
				}
			})
		}
		wg.Wait()
		if moved.Load() != n {
			t.Errorf("%d renames won, want %d", moved.Load(), n)
		}
		for dir, want := range map[index.Ino]int{src.Ino: 0, dst.Ino: n} {
			es, err := b.ReadDir(ctx, dir)
			if err != nil || len(es) != want {
				t.Errorf("directory %d lists %d entries (%v), want %d", dir, len(es), err, want)
			}
		}
		// Crossed directory renames from two hosts: at most one wins.
		for round := range 10 {
			x, _ := a.Create(ctx, index.RootIno, fmt.Sprintf("x%d", round), index.Attr{Kind: index.KindDir, Mode: 0o755})
			y, _ := a.Create(ctx, index.RootIno, fmt.Sprintf("y%d", round), index.Attr{Kind: index.KindDir, Mode: 0o755})
			var errX, errY error
			wg.Go(func() { _, errX = a.Rename(ctx, index.RootIno, fmt.Sprintf("x%d", round), y.Ino, "x", 0) })
			wg.Go(func() { _, errY = b.Rename(ctx, index.RootIno, fmt.Sprintf("y%d", round), x.Ino, "y", 0) })
			wg.Wait()
			if errX == nil && errY == nil {
				t.Fatalf("round %d: both crossed renames won", round)
			}
		}
		checkSound(t, a)
	})
	t.Run("Changes", func(t *testing.T) {
		a, b := twoHosts(t)
		ch := b.Changes()
		if ch == nil {
			t.Fatal("Changes() = nil")
		}
		if _, err := b.Create(ctx, index.RootIno, "own", index.Attr{Kind: index.KindFile, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		f, err := a.Create(ctx, index.RootIno, "f", index.Attr{Kind: index.KindFile, Mode: 0o644})
		if err != nil {
			t.Fatal(err)
		}
		want := map[index.Change]bool{
			{Parent: index.RootIno, Name: "f"}: false,
			{Ino: f.Ino}:                       false,
			{Ino: index.RootIno}:               false,
		}
		timeout := time.After(10 * time.Second)
		for seen := 0; seen < len(want); {
			select {
			case c := <-ch:
				if c.Name == "own" {
					t.Fatalf("host B heard its own change %+v", c)
				}
				if done, ok := want[c]; ok && !done {
					want[c] = true
					seen++
				}
			case <-timeout:
				t.Fatalf("notices heard by host B: %v", want)
			}
		}
		b.Close()
		for range ch {
		}
	})
}

func checkSound(t *testing.T, idx index.Index) {
	t.Helper()
	r, err := index.Check(t.Context(), idx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Damaged() {
		t.Errorf("Check: %+v", r)
	}
}

func TestOpenURL(t *testing.T) {
	ctx := t.Context()
	url := redisServer(t)
	dir := t.TempDir()
	for _, u := range []string{dir + "/plain", "badger://" + dir + "/scheme", url + "?prefix=" + newPrefix()} {
		idx, err := index.Open(ctx, u, index.OpenOptions{Session: "test"})
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if _, err := idx.Create(ctx, index.RootIno, "f", index.Attr{Kind: index.KindFile}); err != nil {
			t.Errorf("Open(%q): Create: %v", u, err)
		}
		idx.Close()
	}
	for _, u := range []string{"", "ftp://x/y", "redis://127.0.0.1:1/notanumber", "badger://"} {
		if idx, err := index.Open(ctx, u, index.OpenOptions{}); err == nil {
			idx.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// Benchmarks of the operations a mount does most, on the test server
// (loopback): compare with BenchmarkBadger* below.
func BenchmarkRedis(b *testing.B) {
	url := redisServer(b)
	benchIndex(b, func() index.Index {
		r, err := index.OpenRedis(b.Context(), url, index.RedisOptions{Prefix: newPrefix()})
		if err != nil {
			b.Fatal(err)
		}
		return r
	})
}

func BenchmarkBadger(b *testing.B) {
	benchIndex(b, func() index.Index {
		idx, err := index.OpenBadger(b.TempDir(), index.BadgerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return idx
	})
}

func benchIndex(b *testing.B, open func() index.Index) {
	ctx := b.Context()
	idx := open()
	defer idx.Close()
	dir, err := idx.Create(ctx, index.RootIno, "bench", index.Attr{Kind: index.KindDir, Mode: 0o755})
	if err != nil {
		b.Fatal(err)
	}
	const listed = 1000
	for i := range listed {
		if _, err := idx.Create(ctx, dir.Ino, fmt.Sprintf("f%04d", i), index.Attr{Kind: index.KindFile, Mode: 0o644}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Lookup", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := idx.Lookup(ctx, dir.Ino, fmt.Sprintf("f%04d", i%listed)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetAttr", func(b *testing.B) {
		for b.Loop() {
			if _, err := idx.GetAttr(ctx, dir.Ino); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadDir1000", func(b *testing.B) {
		for b.Loop() {
			if es, err := idx.ReadDir(ctx, dir.Ino); err != nil || len(es) != listed {
				b.Fatal(len(es), err)
			}
		}
	})
	b.Run("CreateUnlink", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			name := fmt.Sprintf("c%d", i)
			if _, err := idx.Create(ctx, index.RootIno, name, index.Attr{Kind: index.KindFile, Mode: 0o644}); err != nil {
				b.Fatal(err)
			}
			if _, err := idx.Unlink(ctx, index.RootIno, name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RenameAcrossDirs", func(b *testing.B) {
		if _, err := idx.Create(ctx, index.RootIno, "r", index.Attr{Kind: index.KindFile, Mode: 0o644}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := idx.Rename(ctx, index.RootIno, "r", dir.Ino, "r", 0); err != nil {
				b.Fatal(err)
			}
			if _, err := idx.Rename(ctx, dir.Ino, "r", index.RootIno, "r", 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A file's commit as a mount does it, from 8 writers at once: journal
	// the upload, then point the file at it, with and without the claim
	// check (which reads the journal, so in Redis it WATCHes the journal
	// every other writer changes too).
	var n atomic.Int64
	for _, claim := range []bool{false, true} {
		b.Run(fmt.Sprintf("JournalCommit8/claim=%v", claim), func(b *testing.B) {
			b.SetParallelism(4) // 2 cores here: 8 writers
			b.RunParallel(func(pb *testing.PB) {
				f, err := idx.Create(ctx, index.RootIno, fmt.Sprintf("w%d", n.Add(1)), index.Attr{Kind: index.KindFile, Mode: 0o644})
				if err != nil {
					b.Error(err)
					return
				}
				for i := 0; pb.Next(); i++ {
					id := fmt.Sprintf("group1/M00/00/00/%d-%d", f.Ino, i)
					if err := idx.AddPending(ctx, index.Pending{FileID: id, Reason: index.PendingUpload}); err != nil {
						b.Error(err)
						return
					}
					if _, err := idx.SetContent(ctx, f.Ino, index.Content{FileID: id, Size: 1, Claim: claim}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestRedisNestedPrefixes keeps two namespaces apart when one's prefix
// starts with the other's ("p:" and "p:a:", whose keys look like p's
// attribute keys to a careless scan).
func TestRedisNestedPrefixes(t *testing.T) {
	ctx := t.Context()
	url := redisServer(t)
	p := newPrefix()
	outer, inner := openRedis(t, url, p), openRedis(t, url, p+"a:")
	defer outer.Close()
	defer inner.Close()
	f, err := inner.Create(ctx, index.RootIno, "f", index.Attr{Kind: index.KindFile, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	checkSound(t, outer)
	// A failed Load wipes outer; inner must keep its tree.
	truncated := `{"t":"header","format":"fdfsfs-index","version":1}` + "\n"
	if err := outer.Load(ctx, strings.NewReader(truncated)); !errors.Is(err, index.ErrCorrupt) {
		t.Fatalf("Load of a truncated dump: %v, want ErrCorrupt", err)
	}
	if got, err := inner.Lookup(ctx, index.RootIno, "f"); err != nil || got.Ino != f.Ino {
		t.Fatalf("inner's f after outer's wipe: %d, %v", got.Ino, err)
	}
	checkSound(t, inner)
	checkSound(t, outer)
}
