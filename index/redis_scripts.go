package index

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// lookupScript answers Lookup in one round trip, atomically: the entry, and
// the attributes of the inode it names, or, when there is no entry, the
// parent's attributes (to tell a missing name from a missing or non-dir
// parent). The inode's key is built in the script from the entry, so the
// script names keys it was not given: fine on one server, not on a Redis
// Cluster, which this engine does not support.
//
//	KEYS[1] the parent's entry hash, KEYS[2] the parent's attributes
//	ARGV[1] the name, ARGV[2] the attribute key prefix (P "a:")
//	→ {1, entry, attributes or false} or {0, parent attributes or false}
var lookupScript = redis.NewScript(`
local e = redis.call('HGET', KEYS[1], ARGV[1])
if not e then
	return {0, redis.call('GET', KEYS[2])}
end
if string.len(e) ~= 9 then
	return {1, e, false}
end
local ino = 0
for i = 2, 9 do
	ino = ino * 256 + string.byte(e, i)
end
return {1, e, redis.call('GET', ARGV[2] .. string.format('%.0f', ino))}
`)

// maxScriptIno is the largest inode number the script's arithmetic (Lua
// numbers are doubles) gets exactly right.
const maxScriptIno = 1 << 53

// Lookup replaces the shared one (two round trips) with lookupScript.
func (r *Redis) Lookup(ctx context.Context, parent Ino, name string) (Attr, error) {
	if err := CheckName(name); err != nil {
		return Attr{}, err
	}
	var res []any
	err := r.read(ctx, func(ctx context.Context) error {
		var err error
		res, err = lookupScript.Run(ctx, r.client, []string{r.dirKey(parent), r.attrKey(parent)}, name, r.prefix+redisAttr).Slice()
		return err
	})
	if err != nil {
		if errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return Attr{}, err
		}
		return Attr{}, fmt.Errorf("index: lookup: %w", err)
	}
	str := func(i int) []byte {
		if i < len(res) {
			if s, ok := res[i].(string); ok {
				return []byte(s)
			}
		}
		return nil
	}
	found, _ := res[0].(int64)
	if found == 0 {
		pa := str(1)
		if pa == nil {
			return Attr{}, ErrNotFound
		}
		p, _, err := decodeAttr(parent, pa)
		if err != nil {
			return Attr{}, err
		}
		if p.Kind != KindDir {
			return Attr{}, ErrNotDir
		}
		return Attr{}, ErrNotFound
	}
	ino, _, err := decodeDentry(str(1))
	if err != nil {
		return Attr{}, fmt.Errorf("entry %q of %d: %w", name, parent, err)
	}
	if ino >= maxScriptIno {
		return r.engine.Lookup(ctx, parent, name)
	}
	v := str(2)
	if v == nil {
		return Attr{}, corruptf("entry %q of %d names missing inode %d", name, parent, ino)
	}
	a, _, err := decodeAttr(ino, v)
	return a, err
}
