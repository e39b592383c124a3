package index

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key layout of the Redis engine. Every key starts with the store's prefix
// (default "fdfsfs:"), so several namespaces can share one database. Inode
// numbers are decimal.
//
//	P "schema"        → schema version, decimal
//	P "loading"       → present only while a Load runs
//	P "lastino"       → the highest inode number handed out (INCR)
//	P "a:" ino        → attributes, encodeAttr (codec.go)
//	P "d:" ino        → hash of a directory's entries: name → encodeDentry
//	                    (keys.go); Redis drops the key with its last entry
//	P "orphans"       → set of inode numbers with Nlink 0, not yet purged
//	P "pending"       → hash of the journal: file ID → encodePending
//	P "pw:" fileID    → guard of one journal entry: set (expiring after a
//	                    minute) by every change to the entry, so that a
//	                    transaction that read the entry WATCHes this key
//	                    instead of the whole journal
//	P "changes"       → pub/sub channel of change notices (redis_notify.go)
//	P "h:" ino        → sessions holding an orphan open, encodeHolds (codec.go)
//	P "x:" ino        → the inode's extended attributes, encodeXattrs (codec.go)
//	P "s:" session    → a registered session, "1", expiring (PX) at the
//	                    session's TTL unless its heartbeat sets it again
//	P "i:" leaf       → by-ID view: hash of one ID directory, name →
//	                    encodeByID; P "il:" group → set of its leaves
//	                    (redis_byid.go)
//
// A directory being one hash makes a listing one HGETALL, and makes "is it
// empty" and "did anybody add to it" questions about one key, which WATCH
// answers. The schema version is the Badger engine's; a store with another
// version is refused rather than misread.
const (
	redisSchema       = "schema"
	redisLoading      = "loading"
	redisLastIno      = "lastino"
	redisAttr         = "a:"
	redisDir          = "d:"
	redisOrphans      = "orphans"
	redisPending      = "pending"
	redisChanges      = "changes"
	redisHolds        = "h:"
	redisXattrs       = "x:"
	redisSession      = "s:"
	redisPendingGuard = "pw:"
	redisDefPrefix    = "fdfsfs:"
)

// RedisOptions configures OpenRedis.
type RedisOptions struct {
	// Logger receives the engine's warnings. Nil discards them.
	Logger *slog.Logger
	// ReadOnly refuses every mutation with ErrReadOnly.
	ReadOnly bool
	// Session names this mount in the pending journal entries it writes.
	Session string
	// Prefix starts every key (default "fdfsfs:", or the URL's ?prefix=).
	// A ':' is added if it does not end with one.
	Prefix string
	// Timeout bounds every call (default 30s): a call that finds no
	// master waits for one (a failover) until then, then fails; under
	// wait=N the replicas' confirmation must come within it too.
	Timeout time.Duration
	// Getenv reads FDFSFS_META_PASSWORD and FDFSFS_SENTINEL_PASSWORD
	// (default os.Getenv).
	Getenv func(string) string
}

// Redis is the shared Index engine: the namespace in one Redis database, so
// that several mount hosts see one tree. Every change is one optimistic
// transaction (WATCH the keys read, MULTI/EXEC the writes, run again when a
// watched key changed), so two hosts racing for one name end with exactly
// one winner.
type Redis struct {
	engine
	client   *redis.Client
	prefix   string
	log      *slog.Logger
	readOnly bool
	session  string
	// origin tells this instance's change notices from other hosts'.
	origin string
	// timeout bounds each call; wait is the URL's wait=N (0: off).
	timeout time.Duration
	wait    int
	// down is set while calls find no master, so that a failover logs
	// once when it starts and once when it ends.
	down atomic.Bool

	// mu is held shared by every call for as long as it uses client, and
	// exclusively by Close, so Close waits for calls in flight.
	mu     sync.RWMutex
	closed bool // guarded by mu

	notify notifier
}

var _ Index = (*Redis)(nil)

// OpenRedis connects to the store a Redis metadata URL names: one server,
// or the master that Sentinel names (redis_url.go lists the forms and the
// parameters). A new store gets the root directory, inode 1, mode 0755,
// owned by the calling process's user.
func OpenRedis(ctx context.Context, rawURL string, opts RedisOptions) (*Redis, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg, err := parseRedisURL(rawURL, getenv)
	if err != nil {
		return nil, err
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = cfg.prefix
	}
	if prefix == "" {
		prefix = redisDefPrefix
	}
	if !strings.HasSuffix(prefix, ":") {
		prefix += ":"
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultRedisTimeout
	}
	// The shared transactions and the notice subscription want RESP2's
	// plain replies and no client-side features of newer servers. Retries
	// are the engine's own (redis_failover.go), which knows which calls
	// may run twice; socket deadlines follow each call's deadline.
	var client *redis.Client
	if o := cfg.plain; o != nil {
		o.Protocol, o.DisableIdentity, o.MaxRetries, o.ContextTimeoutEnabled = 2, true, -1, true
		o.ReadTimeout, o.WriteTimeout = cmp.Or(o.ReadTimeout, timeout), cmp.Or(o.WriteTimeout, timeout)
		client = redis.NewClient(o)
	} else {
		o := cfg.failover
		o.Protocol, o.DisableIdentity, o.MaxRetries, o.ContextTimeoutEnabled = 2, true, -1, true
		o.ReadTimeout, o.WriteTimeout = cmp.Or(o.ReadTimeout, timeout), cmp.Or(o.WriteTimeout, timeout)
		client = redis.NewFailoverClient(o)
	}
	goRedisLogOnce.Do(func() { redis.SetLogger(goRedisLog{log}) })
	var id [8]byte
	crand.Read(id[:])
	r := &Redis{
		client:   client,
		prefix:   prefix,
		log:      log,
		readOnly: opts.ReadOnly,
		session:  opts.Session,
		origin:   hex.EncodeToString(id[:]),
		timeout:  timeout,
		wait:     cfg.wait,
	}
	r.engine = engine{be: r, log: log}
	// Opening does not wait out a failover: a wrong address fails at
	// once, and a mount started during a failover is started again.
	openCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.init(openCtx); err != nil {
		r.client.Close()
		if cfg.failover != nil && errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("%w: no Sentinel knows a master named %q", ErrInvalid, cfg.failover.MasterName)
		}
		return nil, err
	}
	return r, nil
}

// go-redis logs through one logger for the whole process, to stderr
// unless told otherwise. Its lines (which Sentinel it asked, a dial it
// retried) go to the first engine's logger, at debug level: the engine
// logs what matters of them itself.
var goRedisLogOnce sync.Once

type goRedisLog struct{ log *slog.Logger }

func (l goRedisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("go-redis: " + fmt.Sprintf(format, v...))
}

func (r *Redis) key(name string) string { return r.prefix + name }
func (r *Redis) attrKey(ino Ino) string {
	return r.prefix + redisAttr + strconv.FormatUint(uint64(ino), 10)
}
func (r *Redis) dirKey(ino Ino) string {
	return r.prefix + redisDir + strconv.FormatUint(uint64(ino), 10)
}
func (r *Redis) holdsKey(ino Ino) string {
	return r.prefix + redisHolds + strconv.FormatUint(uint64(ino), 10)
}
func (r *Redis) xattrsKey(ino Ino) string {
	return r.prefix + redisXattrs + strconv.FormatUint(uint64(ino), 10)
}
func (r *Redis) sessionKey(id string) string { return r.prefix + redisSession + id }
func (r *Redis) pendingGuardKey(fileID string) string {
	return r.prefix + redisPendingGuard + fileID
}
func inoMember(ino Ino) string { return strconv.FormatUint(uint64(ino), 10) }
func parseInoMember(s string) (Ino, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	return Ino(v), err
}

// init checks the schema and creates the root of a new store. Two hosts
// opening a new store at once race on the schema key; one creates the root.
func (r *Redis) init(ctx context.Context) error {
	schema, loading := r.key(redisSchema), r.key(redisLoading)
	for {
		err := r.client.Watch(ctx, func(tx *redis.Tx) error {
			vals, err := tx.MGet(ctx, schema, loading).Result()
			if err != nil {
				return err
			}
			if vals[1] != nil {
				return corruptf("an interrupted Load left this store incomplete; wipe it and load again")
			}
			if vals[0] != nil {
				if s, _ := vals[0].(string); s != strconv.Itoa(schemaVersion) {
					return corruptf("store schema %v, this build reads %d", vals[0], schemaVersion)
				}
				return nil
			}
			if r.readOnly {
				return fmt.Errorf("%w: read-only open of an empty store", ErrNotFound)
			}
			now := time.Now()
			root := Attr{
				Ino: RootIno, Kind: KindDir, Mode: 0o755, Nlink: 2,
				Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()),
				Atime: now, Mtime: now, Ctime: now,
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, schema, schemaVersion, 0)
				p.Set(ctx, r.key(redisLastIno), uint64(RootIno), 0)
				p.Set(ctx, r.attrKey(RootIno), encodeAttr(root, 0), 0)
				return nil
			})
			return err
		}, schema, loading)
		if !errors.Is(err, redis.TxFailedErr) {
			if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("index: open redis: %w", err)
			}
			return err
		}
	}
}

// Sync has nothing to do: every commit was acknowledged by the server, and
// is as durable as its appendfsync makes it.
func (r *Redis) Sync(ctx context.Context) error {
	if err := r.enter(ctx, false); err != nil {
		return err
	}
	r.mu.RUnlock()
	return nil
}

// Close stops the notice subscription and closes the connections. Calls
// after Close return ErrClosed.
func (r *Redis) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.closed = true
	r.notify.stop()
	return r.client.Close()
}

// enter starts a call: it fails once closed, and for a mutation on a
// read-only store. On success the caller must call r.mu.RUnlock.
func (r *Redis) enter(ctx context.Context, write bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.RLock()
	switch {
	case r.closed:
		r.mu.RUnlock()
		return ErrClosed
	case write && r.readOnly:
		r.mu.RUnlock()
		return ErrReadOnly
	}
	return nil
}

func (r *Redis) update(ctx context.Context, fn func(tx *txn) error) error {
	return r.call(ctx, true, func(ctx context.Context) error { return r.watched(ctx, true, fn) })
}

// view runs fn on reads that go straight to the server, without a
// transaction: one round trip per read and no WATCH. Such reads can
// straddle another host's change (an entry read just before an unlink and
// purge removed its inode), so a view that finds damage is run again as a
// watched transaction, which either sees one state or is retried.
func (r *Redis) view(ctx context.Context, fn func(tx *txn) error) error {
	return r.call(ctx, false, func(ctx context.Context) error {
		err := fn(newTxn(&redisKV{ctx: ctx, r: r}, r.session))
		if errors.Is(err, ErrCorrupt) {
			err = r.watched(ctx, false, fn)
		}
		return err
	})
}

// watched runs fn in an optimistic transaction: every key fn reads is
// WATCHed before it is read, the writes are queued and sent as one
// MULTI/EXEC with the change notice, and EXEC fails if any watched key
// changed meanwhile, in which case fn runs again from the start. When fn
// fails, or only reads, the EXEC is sent all the same (with a PING and
// nothing else), so that an answer read from several keys, an error
// included, is one that a single state of the store gives.
func (r *Redis) watched(ctx context.Context, write bool, fn func(tx *txn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := r.client.Watch(ctx, func(rtx *redis.Tx) error {
			s := &redisKV{ctx: ctx, r: r, tx: rtx, watching: make(map[string]bool)}
			tx := newTxn(s, r.session)
			ferr := fn(tx)
			if ferr == nil && write {
				ferr = tx.flush()
			}
			commit := ferr == nil && write
			err := r.exec(ctx, rtx, commit && len(s.writes) > 0, func(p redis.Pipeliner) error {
				if commit {
					for _, w := range s.writes {
						w(p)
					}
					if len(s.changes) > 0 {
						p.Publish(ctx, r.key(redisChanges), encodeNotice(r.origin, s.changes))
					}
				}
				if !commit || len(s.writes) == 0 {
					p.Ping(ctx)
				}
				return nil
			})
			var uncertain *uncertainError
			if err != nil && !errors.Is(err, redis.TxFailedErr) && !errors.As(err, &uncertain) {
				// EXEC never ran: release the watches before the
				// connection goes back to the pool.
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				rtx.Unwatch(uctx)
				cancel()
			}
			if err == nil || (ferr != nil && !errors.Is(err, redis.TxFailedErr)) {
				return ferr
			}
			return err
		})
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		if attempt >= 2 {
			// Under heavy contention let the winners get ahead.
			time.Sleep(time.Duration(rand.IntN(1000*min(attempt, 20))) * time.Microsecond)
		}
	}
}

// allocIno takes the next number from the shared counter. A number taken
// by a Create that then fails is skipped, never reused.
func (r *Redis) allocIno(ctx context.Context) (Ino, error) {
	var v int64
	err := r.call(ctx, true, func(ctx context.Context) error {
		var err error
		// Run twice after a lost answer, INCR skips a number: harmless.
		v, err = r.client.Incr(ctx, r.key(redisLastIno)).Result()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("index: allocate an inode: %w", err)
	}
	return Ino(v), nil
}

// read runs fn for the reads that only this engine has, within the
// timeout (and again while no master answers).
func (r *Redis) read(ctx context.Context, fn func(ctx context.Context) error) error {
	return r.call(ctx, false, fn)
}

// scan runs fn for the whole-store reads (dump, check): they take as long
// as the store is big, so only each round trip is bounded, and a lost
// master fails them.
func (r *Redis) scan(ctx context.Context, fn func() error) error {
	if err := r.enter(ctx, false); err != nil {
		return err
	}
	defer r.mu.RUnlock()
	return fn()
}

func (r *Redis) Orphans(ctx context.Context) ([]Ino, error) {
	var inos []Ino
	err := r.read(ctx, func(ctx context.Context) error {
		inos = inos[:0]
		ms, err := r.client.SMembers(ctx, r.key(redisOrphans)).Result()
		if err != nil {
			return err
		}
		for _, m := range ms {
			ino, err := parseInoMember(m)
			if err != nil {
				return corruptf("orphan %q", m)
			}
			inos = append(inos, ino)
		}
		slices.Sort(inos)
		return nil
	})
	return inos, err
}

func (r *Redis) ListPending(ctx context.Context) ([]Pending, error) {
	var ps []Pending
	err := r.read(ctx, func(ctx context.Context) error {
		var err error
		ps, err = r.pendingAll(ctx)
		return err
	})
	return ps, err
}

// pendingAll reads the journal in file ID order.
func (r *Redis) pendingAll(ctx context.Context) ([]Pending, error) {
	m, err := r.client.HGetAll(ctx, r.key(redisPending)).Result()
	if err != nil {
		return nil, err
	}
	ps := make([]Pending, 0, len(m))
	for id, v := range m {
		p, err := decodePending(id, []byte(v))
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Pending) int {
		switch {
		case a.FileID < b.FileID:
			return -1
		case a.FileID > b.FileID:
			return 1
		}
		return 0
	})
	return ps, nil
}

// Inodes reads every inode in number order: a SCAN of the attribute keys,
// then MGETs in batches. It is not a snapshot; run it on a quiet store.
func (r *Redis) Inodes(ctx context.Context, fn func(Attr) error) error {
	return r.scan(ctx, func() error {
		return r.scanInodes(ctx, func(a Attr, _ Ino) error { return fn(a) })
	})
}

// LiveSessions lists the session keys, which Redis drops when they expire:
// a SCAN of the whole key space, as Inodes does.
func (r *Redis) LiveSessions(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.scan(ctx, func() error {
		head := r.prefix + redisSession
		iter := r.client.Scan(ctx, 0, globEscape(head)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			ids = append(ids, iter.Val()[len(head):])
		}
		return iter.Err()
	})
	if err != nil {
		return nil, err
	}
	// SCAN may return a key twice.
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (r *Redis) scanInodes(ctx context.Context, fn func(a Attr, parent Ino) error) error {
	inos, err := r.scanInos(ctx, redisAttr)
	if err != nil {
		return err
	}
	const batch = 512
	for len(inos) > 0 {
		n := min(batch, len(inos))
		s := &redisKV{ctx: ctx, r: r}
		vs, err := s.attrs(inos[:n])
		if err != nil {
			return err
		}
		for i, v := range vs {
			if v == nil {
				continue // removed since the scan
			}
			a, parent, err := decodeAttr(inos[i], v)
			if err != nil {
				return err
			}
			if err := fn(a, parent); err != nil {
				return err
			}
		}
		inos = inos[n:]
	}
	return nil
}

// scanInos lists, in number order, the inodes that have a key of the given
// table ("a:" or "d:").
func (r *Redis) scanInos(ctx context.Context, table string) ([]Ino, error) {
	var inos []Ino
	head := r.prefix + table
	iter := r.client.Scan(ctx, 0, globEscape(head)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		// A key that does not end in a number belongs to another
		// namespace whose prefix starts with ours ("fdfsfs:a:…").
		if ino, err := parseInoMember(iter.Val()[len(head):]); err == nil && ino != 0 {
			inos = append(inos, ino)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	// SCAN may return a key twice.
	slices.Sort(inos)
	return slices.Compact(inos), nil
}

// globEscape quotes the glob characters of a literal SCAN MATCH prefix.
func globEscape(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}
