package index

import (
	"context"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisKV is one Redis transaction as the kv the shared operations use. In
// a transaction (tx set) every read first WATCHes its keys, in the same
// round trip, and writes are queued for the MULTI/EXEC that commits; in a
// view (tx nil) reads go straight to the client and there are no writes.
type redisKV struct {
	ctx context.Context
	r   *Redis
	tx  *redis.Tx

	watching map[string]bool           // keys WATCHed so far
	writes   []func(p redis.Pipeliner) // queued for EXEC
	changes  []Change                  // the notice EXEC publishes
}

var _ kv = (*redisKV)(nil)

// pipe sends the commands queue adds in one round trip, after a WATCH of
// whichever of keys this transaction has not watched yet. A missing key
// (redis.Nil) is not an error here; the caller reads each command.
func (s *redisKV) pipe(keys []string, queue func(p redis.Pipeliner)) error {
	var p redis.Pipeliner
	if s.tx != nil {
		p = s.tx.Pipeline()
		var w []any
		for _, k := range keys {
			if !s.watching[k] {
				s.watching[k] = true
				w = append(w, k)
			}
		}
		if len(w) > 0 {
			p.Do(s.ctx, append([]any{"watch"}, w...)...)
		}
	} else {
		p = s.r.client.Pipeline()
	}
	queue(p)
	_, err := p.Exec(s.ctx)
	if isNil(err) {
		err = nil
	}
	return err
}

// isNil reports a missing key: the reply itself, never a connection error
// that carries one (a Sentinel that knows no such master answers nil too).
func isNil(err error) bool { return err == redis.Nil }

// bytesOf returns a string reply's bytes, nil for a missing key.
func bytesOf(cmd *redis.StringCmd) ([]byte, error) {
	v, err := cmd.Bytes()
	if isNil(err) {
		return nil, nil
	}
	if v == nil && err == nil {
		v = []byte{}
	}
	return v, err
}

func (s *redisKV) queue(w func(p redis.Pipeliner)) error {
	if s.tx == nil {
		return ErrReadOnly // a view never writes
	}
	s.writes = append(s.writes, w)
	return nil
}

func (s *redisKV) attr(ino Ino) ([]byte, error) {
	k := s.r.attrKey(ino)
	var cmd *redis.StringCmd
	if err := s.pipe([]string{k}, func(p redis.Pipeliner) { cmd = p.Get(s.ctx, k) }); err != nil {
		return nil, err
	}
	return bytesOf(cmd)
}

func (s *redisKV) attrs(inos []Ino) ([][]byte, error) {
	if len(inos) == 0 {
		return nil, nil
	}
	keys := make([]string, len(inos))
	for i, ino := range inos {
		keys[i] = s.r.attrKey(ino)
	}
	var cmd *redis.SliceCmd
	if err := s.pipe(keys, func(p redis.Pipeliner) { cmd = p.MGet(s.ctx, keys...) }); err != nil {
		return nil, err
	}
	vals, err := cmd.Result()
	if err != nil {
		return nil, err
	}
	vs := make([][]byte, len(inos))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			vs[i] = []byte(str)
		}
	}
	return vs, nil
}

func (s *redisKV) setAttr(ino Ino, v []byte) error {
	s.changes = append(s.changes, Change{Ino: ino})
	return s.queue(func(p redis.Pipeliner) { p.Set(s.ctx, s.r.attrKey(ino), v, 0) })
}

func (s *redisKV) deleteAttr(ino Ino) error {
	s.changes = append(s.changes, Change{Ino: ino})
	return s.queue(func(p redis.Pipeliner) { p.Del(s.ctx, s.r.attrKey(ino)) })
}

func (s *redisKV) dentry(dir Ino, name string) ([]byte, error) {
	k := s.r.dirKey(dir)
	var cmd *redis.StringCmd
	if err := s.pipe([]string{k}, func(p redis.Pipeliner) { cmd = p.HGet(s.ctx, k, name) }); err != nil {
		return nil, err
	}
	return bytesOf(cmd)
}

func (s *redisKV) setDentry(dir Ino, name string, v []byte) error {
	s.changes = append(s.changes, Change{Parent: dir, Name: name})
	return s.queue(func(p redis.Pipeliner) { p.HSet(s.ctx, s.r.dirKey(dir), name, v) })
}

func (s *redisKV) deleteDentry(dir Ino, name string) error {
	s.changes = append(s.changes, Change{Parent: dir, Name: name})
	return s.queue(func(p redis.Pipeliner) { p.HDel(s.ctx, s.r.dirKey(dir), name) })
}

func (s *redisKV) dirEmpty(dir Ino) (bool, error) {
	k := s.r.dirKey(dir)
	var cmd *redis.IntCmd
	if err := s.pipe([]string{k}, func(p redis.Pipeliner) { cmd = p.Exists(s.ctx, k) }); err != nil {
		return false, err
	}
	n, err := cmd.Result()
	return n == 0, err
}

// dentries reads the whole directory with one HGETALL.
func (s *redisKV) dentries(ctx context.Context, dir Ino, fn func(name string, v []byte) error) error {
	return s.hashSorted(ctx, s.r.dirKey(dir), fn)
}

// hashSorted reads a hash with one HGETALL and hands its fields to fn in
// name order: Redis keeps none in a hash.
func (s *redisKV) hashSorted(ctx context.Context, k string, fn func(name string, v []byte) error) error {
	var cmd *redis.MapStringStringCmd
	if err := s.pipe([]string{k}, func(p redis.Pipeliner) { cmd = p.HGetAll(s.ctx, k) }); err != nil {
		return err
	}
	m, err := cmd.Result()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(name, []byte(m[name])); err != nil {
			return err
		}
	}
	return nil
}

func (s *redisKV) setOrphan(ino Ino, orphan bool) error {
	k, m := s.r.key(redisOrphans), inoMember(ino)
	if orphan {
		return s.queue(func(p redis.Pipeliner) { p.SAdd(s.ctx, k, m) })
	}
	return s.queue(func(p redis.Pipeliner) { p.SRem(s.ctx, k, m) })
}

// pending WATCHes the entry's guard key, not the journal hash: a claim or
// a take of one upload then conflicts only with changes to that entry,
// not with every other writer's journal entries.
func (s *redisKV) pending(fileID string) ([]byte, error) {
	k, g := s.r.key(redisPending), s.r.pendingGuardKey(fileID)
	var cmd *redis.StringCmd
	if err := s.pipe([]string{g}, func(p redis.Pipeliner) { cmd = p.HGet(s.ctx, k, fileID) }); err != nil {
		return nil, err
	}
	return bytesOf(cmd)
}

// pendingGuardTTL outlives any transaction that watches the guard; a
// guard expiring under a watch only makes that transaction run again.
const pendingGuardTTL = time.Minute

func (s *redisKV) setPending(fileID string, v []byte) error {
	return s.queue(func(p redis.Pipeliner) {
		p.HSet(s.ctx, s.r.key(redisPending), fileID, v)
		p.Set(s.ctx, s.r.pendingGuardKey(fileID), "1", pendingGuardTTL)
	})
}

func (s *redisKV) deletePending(fileID string) error {
	return s.queue(func(p redis.Pipeliner) {
		p.HDel(s.ctx, s.r.key(redisPending), fileID)
		p.Set(s.ctx, s.r.pendingGuardKey(fileID), "1", pendingGuardTTL)
	})
}

func (s *redisKV) holds(ino Ino) ([]byte, error) {
	k := s.r.holdsKey(ino)
	var cmd *redis.StringCmd
	if err := s.pipe([]string{k}, func(p redis.Pipeliner) { cmd = p.Get(s.ctx, k) }); err != nil {
		return nil, err
	}
	return bytesOf(cmd)
}

func (s *redisKV) setHolds(ino Ino, v []byte) error {
	k := s.r.holdsKey(ino)
	if v == nil {
		return s.queue(func(p redis.Pipeliner) { p.Del(s.ctx, k) })
	}
	return s.queue(func(p redis.Pipeliner) { p.Set(s.ctx, k, v, 0) })
}

func (s *redisKV) xattrs(ino Ino) ([]byte, error) {
	k := s.r.xattrsKey(ino)
	var cmd *redis.StringCmd
	if err := s.pipe([]string{k}, func(p redis.Pipeliner) { cmd = p.Get(s.ctx, k) }); err != nil {
		return nil, err
	}
	return bytesOf(cmd)
}

func (s *redisKV) setXattrs(ino Ino, v []byte) error {
	k := s.r.xattrsKey(ino)
	s.changes = append(s.changes, Change{Ino: ino})
	if v == nil {
		return s.queue(func(p redis.Pipeliner) { p.Del(s.ctx, k) })
	}
	return s.queue(func(p redis.Pipeliner) { p.Set(s.ctx, k, v, 0) })
}

// sessionAlive asks whether the session's key is still there: Redis
// expires it on its own clock, so the hosts' clocks do not matter.
func (s *redisKV) sessionAlive(id string) (bool, error) {
	k := s.r.sessionKey(id)
	var cmd *redis.IntCmd
	if err := s.pipe([]string{k}, func(p redis.Pipeliner) { cmd = p.Exists(s.ctx, k) }); err != nil {
		return false, err
	}
	n, err := cmd.Result()
	return n > 0, err
}

func (s *redisKV) setSession(id string, ttl time.Duration) error {
	return s.queue(func(p redis.Pipeliner) { p.Set(s.ctx, s.r.sessionKey(id), "1", ttl) })
}

func (s *redisKV) deleteSession(id string) error {
	return s.queue(func(p redis.Pipeliner) { p.Del(s.ctx, s.r.sessionKey(id)) })
}
