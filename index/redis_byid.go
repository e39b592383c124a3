package index

import (
	"context"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The by-ID view in Redis (the layout comment in redis.go):
//
//	P "i:" leaf       → hash of one leaf directory of the view
//	                    ("group1/M00/00/0A"): name → encodeByID (byid.go)
//	P "il:" group     → set of the group's leaf directories ("M00/00/0A")
//	                    that have held entries; one emptied since stays
//	                    in the set, and listings skip it
//
// A leaf being one hash makes its listing one HGETALL, as a directory's.

const (
	redisByID       = "i:"
	redisByIDLeaves = "il:"
)

func (r *Redis) byIDLeafKey(leaf string) string    { return r.prefix + redisByID + leaf }
func (r *Redis) byIDLeavesKey(group string) string { return r.prefix + redisByIDLeaves + group }

// splitByID splits a file ID into its group, its leaf directory below the
// group ("M00/00/0A") and its name.
func splitByID(fileID string) (group, leaf, name string) {
	i := strings.IndexByte(fileID, '/')
	j := strings.LastIndexByte(fileID, '/')
	if i < 0 || j <= i {
		return fileID, "", ""
	}
	return fileID[:i], fileID[i+1 : j], fileID[j+1:]
}

var _ byIDKV = (*redisKV)(nil)

func (s *redisKV) byIDs(fileIDs []string) ([][]byte, error) {
	if len(fileIDs) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, 4)
	for _, id := range fileIDs {
		g, leaf, _ := splitByID(id)
		if k := s.r.byIDLeafKey(g + "/" + leaf); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	cmds := make([]*redis.StringCmd, len(fileIDs))
	err := s.pipe(keys, func(p redis.Pipeliner) {
		for i, id := range fileIDs {
			g, leaf, name := splitByID(id)
			cmds[i] = p.HGet(s.ctx, s.r.byIDLeafKey(g+"/"+leaf), name)
		}
	})
	if err != nil {
		return nil, err
	}
	vs := make([][]byte, len(fileIDs))
	for i, cmd := range cmds {
		if vs[i], err = bytesOf(cmd); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

func (s *redisKV) setByID(fileID string, v []byte) error {
	g, leaf, name := splitByID(fileID)
	return s.queue(func(p redis.Pipeliner) {
		p.HSet(s.ctx, s.r.byIDLeafKey(g+"/"+leaf), name, v)
		p.SAdd(s.ctx, s.r.byIDLeavesKey(g), leaf)
	})
}

func (s *redisKV) deleteByID(fileID string) error {
	g, leaf, name := splitByID(fileID)
	return s.queue(func(p redis.Pipeliner) { p.HDel(s.ctx, s.r.byIDLeafKey(g+"/"+leaf), name) })
}

func (s *redisKV) byIDDir(ctx context.Context, dir string, fn func(fileID string, v []byte) error) error {
	return s.hashSorted(ctx, s.r.byIDLeafKey(dir), func(name string, v []byte) error { return fn(dir+"/"+name, v) })
}

// byIDChildren reads the group's set of leaves, keeps those below dir that
// still hold entries (one EXISTS each, in one round trip), and names the
// next level of each.
func (s *redisKV) byIDChildren(ctx context.Context, dir string) ([]string, error) {
	group, below, _ := strings.Cut(dir, "/")
	setKey := s.r.byIDLeavesKey(group)
	var members *redis.StringSliceCmd
	if err := s.pipe([]string{setKey}, func(p redis.Pipeliner) { members = p.SMembers(s.ctx, setKey) }); err != nil {
		return nil, err
	}
	leaves, err := members.Result()
	if err != nil {
		return nil, err
	}
	prefix := ""
	if below != "" {
		prefix = below + "/"
	}
	var candidates []string
	for _, leaf := range leaves {
		if strings.HasPrefix(leaf, prefix) {
			candidates = append(candidates, leaf)
		}
	}
	exists := make([]*redis.IntCmd, len(candidates))
	err = s.pipe(nil, func(p redis.Pipeliner) {
		for i, leaf := range candidates {
			exists[i] = p.Exists(s.ctx, s.r.byIDLeafKey(group+"/"+leaf))
		}
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for i, leaf := range candidates {
		if n, err := exists[i].Result(); err != nil || n == 0 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(leaf, prefix), "/")
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}
