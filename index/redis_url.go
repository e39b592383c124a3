package index

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Redis engine's URLs. One server:
//
//	redis://[[user]:password@]host:port/DB    (rediss:// for TLS)
//	unix://[[user]:password@]/path/redis.sock?db=N
//
// A master found through Sentinel, in JuiceFS's spelling (a comma in the
// host part makes it a Sentinel URL) or in the redis+sentinel:// one that
// redis-py's helpers, RedisVL and Prefect use:
//
//	redis://[[user]:password@]MASTER,sentinel1:port,sentinel2:port/DB
//	redis+sentinel://[[user]:password@]sentinel1:port,sentinel2:port/MASTER[/DB]
//
// or, without commas (for an -o option or an fstab line), in go-redis's:
//
//	redis://[[user]:password@]sentinel1:port/DB?master_name=MASTER&addr=sentinel2:port
//
// (rediss:// and rediss+sentinel:// speak TLS to the Sentinels and to the
// servers both). A Sentinel address without a port takes the port of the
// last address in JuiceFS's spelling (as JuiceFS does), else 26379.
//
// The user and password of the URL are the Redis servers'; Sentinel's are
// kept apart and never in the URL. Query parameters of ours:
//
//	prefix=KEYS                   key prefix (default "fdfsfs:")
//	wait=N                        confirm every change with WAIT by N replicas
//	password_file=PATH            the servers' password, from a file
//	sentinel_user=NAME            the Sentinels' ACL user
//	sentinel_password_file=PATH   the Sentinels' password, from a file
//
// Without a password in the URL or a file, FDFSFS_META_PASSWORD (the
// servers') and FDFSFS_SENTINEL_PASSWORD (the Sentinels') are used when
// set. Every other parameter is go-redis's (dial_timeout=, pool_size=,
// skip_verify=true, ...).
const (
	metaPasswordEnv     = "FDFSFS_META_PASSWORD"
	sentinelPasswordEnv = "FDFSFS_SENTINEL_PASSWORD"
	sentinelDefaultPort = "26379"
)

// redisConfig is what a Redis metadata URL says: one of plain and failover
// is set.
type redisConfig struct {
	prefix   string
	wait     int
	plain    *redis.Options
	failover *redis.FailoverOptions
}

// redisURL is a metadata URL cut into its parts without url.Parse, which
// refuses a host list with IPv6 addresses in it.
type redisURL struct {
	scheme   string
	userinfo string // "" when absent
	hasUser  bool
	hosts    string
	path     string // after the first "/" of the authority, without it
	hasPath  bool
	query    string
}

func splitRedisURL(raw string) (redisURL, error) {
	var u redisURL
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return u, fmt.Errorf("%w: %q is not a URL", ErrInvalid, RedactURL(raw))
	}
	u.scheme = strings.ToLower(scheme)
	rest, u.query, _ = strings.Cut(rest, "?")
	if strings.Contains(u.query, "#") || strings.Contains(rest, "#") {
		return u, fmt.Errorf("%w: a metadata URL has no fragment (#)", ErrInvalid)
	}
	if at := userinfoEnd(rest); at >= 0 {
		u.userinfo, u.hasUser, rest = rest[:at], true, rest[at+1:]
	}
	u.hosts = rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		u.hosts, u.path, u.hasPath = rest[:i], rest[i+1:], true
	}
	for k := range strings.SplitSeq(u.query, "&") {
		if k, _, _ = strings.Cut(k, "="); strings.Contains(k, "@") {
			// The rest of a password with '?' in it.
			return u, fmt.Errorf("%w: a query parameter's name has '@' in it: a password with '?' must be URL-encoded (%%3F)", ErrInvalid)
		}
	}
	return u, nil
}

// userinfoEnd finds the '@' that ends the user information of the part of
// a URL between "://" and its query, or -1: the last '@' before the first
// '/', else (a password with '/' in it, as base64 has, not URL-encoded)
// the last '@' at all, unless the part starts with '/' (a Unix socket's
// path, which may hold an '@').
func userinfoEnd(s string) int {
	auth := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		auth = s[:i]
	}
	if at := strings.LastIndexByte(auth, '@'); at >= 0 || strings.HasPrefix(s, "/") {
		return at
	}
	return strings.LastIndexByte(s, '@')
}

// credentials decodes the URL's user and password.
func (u redisURL) credentials() (user, password string, err error) {
	if !u.hasUser {
		return "", "", nil
	}
	user, password, _ = strings.Cut(u.userinfo, ":")
	if user, err = url.PathUnescape(user); err != nil {
		return "", "", fmt.Errorf("%w: the URL's user name: %v", ErrInvalid, err)
	}
	if password, err = url.PathUnescape(password); err != nil {
		return "", "", fmt.Errorf("%w: the URL's password is not URL-encoded", ErrInvalid)
	}
	return user, password, nil
}

// sentinel reports whether the URL names a master through Sentinel.
func (u redisURL) sentinel(q url.Values) bool {
	switch u.scheme {
	case "redis+sentinel", "rediss+sentinel":
		return true
	case "redis", "rediss":
		return strings.Contains(u.hosts, ",") || q.Has("master_name")
	}
	return false
}

func (u redisURL) tls() bool { return strings.HasPrefix(u.scheme, "rediss") }

// parseRedisURL reads a metadata URL of the Redis engine; getenv supplies
// the passwords' environment variables.
func parseRedisURL(raw string, getenv func(string) string) (*redisConfig, error) {
	u, err := splitRedisURL(raw)
	if err != nil {
		return nil, err
	}
	q, err := url.ParseQuery(u.query)
	if err != nil {
		return nil, fmt.Errorf("%w: the URL's query: %v", ErrInvalid, err)
	}
	take := func(name string) string {
		v := q.Get(name)
		q.Del(name)
		return v
	}
	for _, name := range []string{"password", "sentinel_password"} {
		if q.Has(name) {
			return nil, fmt.Errorf("%w: ?%s= would show the password to every user in ps; use ?%s_file= or %s",
				ErrInvalid, name, name, map[string]string{"password": metaPasswordEnv, "sentinel_password": sentinelPasswordEnv}[name])
		}
	}
	c := &redisConfig{prefix: take("prefix")}
	if w := take("wait"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: ?wait=%s: want a number of replicas, 0 or more", ErrInvalid, w)
		}
		c.wait = n
	}
	passwordFile, sentinelUser, sentinelPasswordFile := take("password_file"), take("sentinel_user"), take("sentinel_password_file")

	user, password, err := u.credentials()
	if err != nil {
		return nil, err
	}
	switch {
	case passwordFile != "" && password != "":
		return nil, fmt.Errorf("%w: a password both in the URL and in ?password_file=", ErrInvalid)
	case passwordFile != "":
		if password, err = readSecret(passwordFile); err != nil {
			return nil, err
		}
	case password == "":
		password = getenv(metaPasswordEnv)
	}

	if !u.sentinel(q) {
		if sentinelUser != "" || sentinelPasswordFile != "" {
			return nil, fmt.Errorf("%w: Sentinel settings in a URL that names no Sentinel", ErrInvalid)
		}
		// go-redis reads the rest (host, DB, TLS, its own options); the
		// credentials are set afterwards, so the URL handed over has none.
		rebuilt := u.scheme + "://" + u.hosts
		if u.hasPath {
			rebuilt += "/" + u.path
		}
		if len(q) > 0 {
			rebuilt += "?" + q.Encode()
		}
		o, err := redis.ParseURL(rebuilt)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		o.Username, o.Password = user, password
		c.plain = o
		return c, nil
	}

	master, addrs, db, err := u.sentinelParts(q)
	if err != nil {
		return nil, err
	}
	// go-redis's failover URL holds the Sentinels as host and addr=
	// parameters and reads its own options from the query; hand it one.
	scheme := "redis"
	if u.tls() {
		scheme = "rediss"
	}
	q.Set("master_name", master)
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	o, err := redis.ParseFailoverURL(scheme + "://" + addrs[0] + "/" + strconv.Itoa(db) + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if o.TLSConfig != nil {
		// go-redis names the first Sentinel as the server; each
		// connection must check the name of the host it dials instead.
		o.TLSConfig.ServerName = ""
		o.TLSConfig.MinVersion = tls.VersionTLS12
	}
	o.Username, o.Password = user, password
	o.SentinelUsername = sentinelUser
	if sentinelPasswordFile != "" {
		if o.SentinelPassword, err = readSecret(sentinelPasswordFile); err != nil {
			return nil, err
		}
	} else {
		o.SentinelPassword = getenv(sentinelPasswordEnv)
	}
	c.failover = o
	return c, nil
}

// sentinelParts reads the master's name, the Sentinels' addresses and the
// database of a Sentinel URL.
// It takes master_name= and addr= out of q.
func (u redisURL) sentinelParts(q url.Values) (master string, addrs []string, db int, err error) {
	hosts := strings.Split(u.hosts, ",")
	path := u.path
	defaultPort := sentinelDefaultPort
	switch {
	case q.Has("master_name"):
		// go-redis's spelling: one Sentinel as the host, the others as
		// addr= parameters.
		if len(hosts) > 1 {
			return "", nil, 0, fmt.Errorf("%w: a Sentinel URL with master_name= lists the other Sentinels as addr=, not with commas", ErrInvalid)
		}
		master = q.Get("master_name")
		hosts = append(hosts, q["addr"]...)
	case u.scheme == "redis" || u.scheme == "rediss":
		// JuiceFS's spelling: MASTER,addr,addr/DB.
		master, hosts = hosts[0], hosts[1:]
		if _, port, err := net.SplitHostPort(hosts[len(hosts)-1]); err == nil && port != "" {
			defaultPort = port
		}
	default:
		// redis+sentinel://addr,addr/MASTER[/DB].
		master, path, _ = strings.Cut(path, "/")
	}
	q.Del("master_name")
	q.Del("addr")
	if master == "" || strings.ContainsAny(master, ":[]") {
		return "", nil, 0, fmt.Errorf("%w: %q: no Sentinel master name (want %s)", ErrInvalid, RedactURL(u.scheme+"://"+u.hosts),
			"redis://[[user]:password@]MASTER,host:port,host:port/DB or redis+sentinel://[[user]:password@]host:port,host:port/MASTER/DB")
	}
	for _, h := range hosts {
		if h == "" {
			return "", nil, 0, fmt.Errorf("%w: an empty Sentinel address in %q", ErrInvalid, u.hosts)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// No port (or a bare IPv6 address in brackets).
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		}
		if host == "" || strings.ContainsAny(host, "/[]@") {
			return "", nil, 0, fmt.Errorf("%w: Sentinel address %q", ErrInvalid, h)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return "", nil, 0, fmt.Errorf("%w: Sentinel address %q: bad port", ErrInvalid, h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	if len(addrs) == 0 {
		return "", nil, 0, fmt.Errorf("%w: no Sentinel address after the master name %q", ErrInvalid, master)
	}
	if path = strings.Trim(path, "/"); path != "" {
		if db, err = strconv.Atoi(path); err != nil || db < 0 {
			return "", nil, 0, fmt.Errorf("%w: database %q is not a number", ErrInvalid, path)
		}
	}
	return master, addrs, db, nil
}

// readSecret reads a password file: its first line, without the newline.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: password file: %v", ErrInvalid, err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%w: password file %s is empty", ErrInvalid, path)
	}
	return s, nil
}

// RedactURL hides the password of a metadata URL, for logs and errors. It
// works on the text alone, so a URL that does not parse is redacted too:
// a password written with '/', '?', '#' or '@' unencoded, and the values of
// ?password= and ?sentinel_password= (which parseRedisURL refuses). An '@'
// in the query can make it hide more than the password.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		end = i
	}
	at := userinfoEnd(rest[:end])
	if at < 0 {
		// '?' or '#' in the password, or an '@' in the query.
		at = strings.LastIndexByte(rest, '@')
	}
	if at >= 0 {
		if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
			rest = user + ":xxxxx" + rest[at:]
		}
	}
	head, query, hasQuery := strings.Cut(rest, "?")
	if !hasQuery {
		return scheme + "://" + rest
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		if k, _, _ := strings.Cut(p, "="); k == "password" || k == "sentinel_password" {
			params[i] = k + "=xxxxx"
		}
	}
	return scheme + "://" + head + "?" + strings.Join(params, "&")
}
