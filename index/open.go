package index

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// OpenOptions configures Open, for whichever engine the URL names.
type OpenOptions struct {
	Logger   *slog.Logger
	ReadOnly bool
	// Session names this mount in the pending journal entries it writes.
	Session string
}

// Open opens the index a metadata URL names:
//
//	/path, badger:///path                   a Badger store in that directory (one host)
//	redis://[[user]:password@]host:port/DB  a Redis database (shared by hosts);
//	rediss://…, unix:///socket?db=N         also ?prefix=KEYS (default "fdfsfs:")
func Open(ctx context.Context, url string, opts OpenOptions) (Index, error) {
	scheme, rest, hasScheme := strings.Cut(url, "://")
	switch {
	case url == "":
		return nil, fmt.Errorf("%w: empty metadata URL", ErrInvalid)
	case !hasScheme:
		return OpenBadger(url, BadgerOptions{Logger: opts.Logger, ReadOnly: opts.ReadOnly, Session: opts.Session})
	case scheme == "badger":
		if rest == "" {
			return nil, fmt.Errorf("%w: %q names no directory", ErrInvalid, url)
		}
		return OpenBadger(rest, BadgerOptions{Logger: opts.Logger, ReadOnly: opts.ReadOnly, Session: opts.Session})
	case scheme == "redis" || scheme == "rediss" || scheme == "unix":
		return OpenRedis(ctx, url, RedisOptions{Logger: opts.Logger, ReadOnly: opts.ReadOnly, Session: opts.Session})
	}
	return nil, fmt.Errorf("%w: metadata URL scheme %q (want a path, badger:// or redis://)", ErrInvalid, scheme)
}

// Shared reports whether the index a metadata URL names can be used by
// several mount hosts at once.
func Shared(url string) bool {
	scheme, _, _ := strings.Cut(url, "://")
	return scheme == "redis" || scheme == "rediss" || scheme == "unix"
}
