package index

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// OpenOptions configures Open, for whichever engine the URL names.
type OpenOptions struct {
	Logger   *slog.Logger
	ReadOnly bool
	// Session names this mount in the pending journal entries it writes.
	Session string
	// NetworkTimeout bounds each call of a shared engine (default 30s):
	// how long a call waits for a lost Redis master, or a failover.
	NetworkTimeout time.Duration
}

// Open opens the index a metadata URL names:
//
//	/path, badger:///path                   a Badger store in that directory (one host)
//	redis://[[user]:password@]host:port/DB  a Redis database (shared by hosts);
//	rediss://…, unix:///socket?db=N         also ?prefix=KEYS (default "fdfsfs:")
//	redis://[[user]:password@]MASTER,sentinel:port,…/DB
//	redis+sentinel://[[user]:password@]sentinel:port,…/MASTER/DB
//	                                        the master Redis Sentinel names
//
// redis_url.go has the Redis engine's forms and parameters.
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
	case redisScheme(scheme):
		return OpenRedis(ctx, url, RedisOptions{Logger: opts.Logger, ReadOnly: opts.ReadOnly, Session: opts.Session, Timeout: opts.NetworkTimeout})
	}
	return nil, fmt.Errorf("%w: metadata URL scheme %q (want a path, badger://, redis://, rediss://, unix:// or redis+sentinel://)", ErrInvalid, scheme)
}

// Shared reports whether the index a metadata URL names can be used by
// several mount hosts at once.
func Shared(url string) bool {
	scheme, _, _ := strings.Cut(url, "://")
	return redisScheme(scheme)
}

func redisScheme(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel":
		return true
	}
	return false
}
