package index

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/redis/go-redis/v9"
)

// Dump writes the store with SCANs and batched reads. Unlike Badger's, it
// is not a snapshot: dump a store that no mount is changing.
func (r *Redis) Dump(ctx context.Context, w io.Writer) error {
	return r.scan(ctx, func() error {
		dw, err := NewDumpWriter(w)
		if err != nil {
			return err
		}
		last, err := r.client.Get(ctx, r.key(redisLastIno)).Uint64()
		if err != nil {
			return fmt.Errorf("index: dump: inode counter: %w", err)
		}
		if err := dw.Write(DumpRecord{Type: RecordCounter, Name: CounterNextIno, Value: last + 1}); err != nil {
			return err
		}
		err = r.scanInodes(ctx, func(a Attr, parent Ino) error {
			return dw.Write(DumpRecord{Type: RecordInode, Attr: a, Parent: parent})
		})
		if err != nil {
			return err
		}
		dirs, err := r.scanInos(ctx, redisDir)
		if err != nil {
			return err
		}
		for _, dir := range dirs {
			s := &redisKV{ctx: ctx, r: r}
			err := s.dentries(ctx, dir, func(name string, v []byte) error {
				ino, kind, err := decodeDentry(v)
				if err != nil {
					return fmt.Errorf("entry %q of %d: %w", name, dir, err)
				}
				return dw.Write(DumpRecord{Type: RecordDentry, Parent: dir, Name: name, Ino: ino, Kind: kind})
			})
			if err != nil {
				return err
			}
		}
		orphans, err := r.client.SMembers(ctx, r.key(redisOrphans)).Result()
		if err != nil {
			return err
		}
		for _, m := range orphans {
			ino, err := parseInoMember(m)
			if err != nil {
				return corruptf("orphan %q", m)
			}
			if err := dw.Write(DumpRecord{Type: RecordOrphan, Ino: ino}); err != nil {
				return err
			}
		}
		ps, err := r.pendingAll(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if err := dw.Write(DumpRecord{Type: RecordPending, Pending: p}); err != nil {
				return err
			}
		}
		withXattrs, err := r.scanInos(ctx, redisXattrs)
		if err != nil {
			return err
		}
		for _, ino := range withXattrs {
			v, err := r.client.Get(ctx, r.xattrsKey(ino)).Bytes()
			if isNil(err) {
				continue // removed since the scan
			}
			if err != nil {
				return err
			}
			if err := writeXattrs(dw, ino, v); err != nil {
				return err
			}
		}
		return dw.Close()
	})
}

// Load fills a new store (nothing but its root) from a dump, keeping every
// inode number. It writes in pipelined batches under a "loading" mark; if
// it fails, the store is wiped back to a new one, and if even that fails
// the mark makes OpenRedis refuse it.
func (r *Redis) Load(ctx context.Context, rd io.Reader) error {
	dr, err := NewDumpReader(rd)
	if err != nil {
		return fmt.Errorf("index: load: %w", err)
	}
	if err := r.enter(ctx, true); err != nil {
		return err
	}
	defer r.mu.RUnlock()
	if err := r.checkEmpty(ctx); err != nil {
		return fmt.Errorf("index: load: %w", err)
	}
	ok, err := r.client.SetNX(ctx, r.key(redisLoading), 1, 0).Result()
	if err != nil {
		return fmt.Errorf("index: load: %w", err)
	}
	if !ok {
		return fmt.Errorf("index: load: %w: another load is under way", ErrNotEmpty)
	}
	if err := r.load(ctx, dr); err != nil {
		if werr := r.wipe(context.WithoutCancel(ctx)); werr != nil {
			r.log.Error("index: wiping a failed load", "err", werr)
			return fmt.Errorf("index: load: %w (and wiping the partial load: %v)", err, werr)
		}
		return fmt.Errorf("index: load: %w", err)
	}
	return nil
}

func (r *Redis) load(ctx context.Context, dr *DumpReader) error {
	const batch = 1000
	p := r.client.Pipeline()
	flush := func() error {
		if p.Len() == 0 {
			return nil
		}
		_, err := p.Exec(ctx)
		return err
	}
	var maxIno Ino
	var nextIno uint64
	sawRoot := false
	xattrs := xattrLoader{}
	for {
		rec, err := dr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch rec.Type {
		case RecordCounter:
			if rec.Name == CounterNextIno {
				nextIno = rec.Value
			} else {
				r.log.Warn("index: load: unknown counter dropped", "name", rec.Name)
			}
		case RecordInode:
			a := rec.Attr
			if a.Ino == RootIno {
				if a.Kind != KindDir {
					return corruptf("dump: the root is a %s", a.Kind)
				}
				sawRoot = true
			}
			maxIno = max(maxIno, a.Ino)
			p.Set(ctx, r.attrKey(a.Ino), encodeAttr(a, rec.Parent), 0)
		case RecordDentry:
			p.HSet(ctx, r.dirKey(rec.Parent), rec.Name, encodeDentry(rec.Ino, rec.Kind))
		case RecordOrphan:
			p.SAdd(ctx, r.key(redisOrphans), inoMember(rec.Ino))
		case RecordPending:
			p.HSet(ctx, r.key(redisPending), rec.Pending.FileID, encodePending(rec.Pending))
		case RecordXattr:
			if err := xattrs.add(rec); err != nil {
				return err
			}
		}
		if p.Len() >= batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if !sawRoot {
		return corruptf("dump has no root inode")
	}
	err := xattrs.each(func(ino Ino, v []byte) error {
		p.Set(ctx, r.xattrsKey(ino), v, 0)
		if p.Len() >= batch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	last := max(nextIno, uint64(maxIno)+1) - 1
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.key(redisLastIno), last, 0)
		p.Del(ctx, r.key(redisLoading))
		return nil
	})
	return err
}

// checkEmpty returns ErrNotEmpty unless the store holds nothing but its
// root: no other inode, no entry, orphan or journal entry.
func (r *Redis) checkEmpty(ctx context.Context) error {
	notEmpty := fmt.Errorf("%w: refusing to load into an index that holds a tree", ErrNotEmpty)
	inos, err := r.scanInos(ctx, redisAttr)
	if err != nil {
		return err
	}
	if len(inos) > 1 || (len(inos) == 1 && inos[0] != RootIno) {
		return notEmpty
	}
	dirs, err := r.scanInos(ctx, redisDir)
	if err != nil {
		return err
	}
	withXattrs, err := r.scanInos(ctx, redisXattrs)
	if err != nil {
		return err
	}
	dirs = append(dirs, withXattrs...)
	n, err := r.client.Exists(ctx, r.key(redisOrphans), r.key(redisPending), r.key(redisLoading)).Result()
	if err != nil {
		return err
	}
	if len(dirs) > 0 || n > 0 {
		return notEmpty
	}
	return nil
}

// wipe deletes every key of the store, and only those (another
// namespace's prefix may start with ours), and makes it new again.
func (r *Redis) wipe(ctx context.Context) error {
	var keys []string
	for _, table := range []string{redisAttr, redisDir, redisHolds, redisXattrs} {
		inos, err := r.scanInos(ctx, table)
		if err != nil {
			return err
		}
		for _, ino := range inos {
			keys = append(keys, r.prefix+table+inoMember(ino))
		}
	}
	// The loading mark goes last: a wipe cut short leaves it, and the
	// store refused.
	keys = append(keys, r.key(redisOrphans), r.key(redisPending), r.key(redisLastIno), r.key(redisSchema), r.key(redisLoading))
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := r.client.Del(ctx, keys[:n]...).Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return r.init(ctx)
}
