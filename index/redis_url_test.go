package index

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseRedisURL(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from-file\n"), 0o600)
	spwFile := filepath.Join(dir, "spw")
	os.WriteFile(spwFile, []byte("sentinel-from-file\r\n"), 0o600)
	env := map[string]string{metaPasswordEnv: "env-redis", sentinelPasswordEnv: "env-sentinel"}
	noEnv := map[string]string{}

	type want struct {
		addr             string // one server
		master           string // through Sentinel
		sentinels        []string
		db               int
		user, password   string
		sentinelUser     string
		sentinelPassword string
		prefix           string
		wait             int
		tls              bool
	}
	for _, tc := range []struct {
		url  string
		env  map[string]string
		want want
	}{
		{"redis://127.0.0.1:6379/2", noEnv, want{addr: "127.0.0.1:6379", db: 2}},
		{"redis://:pw@127.0.0.1:6379/0?prefix=x&wait=1", env, want{addr: "127.0.0.1:6379", password: "pw", prefix: "x", wait: 1}},
		{"redis://127.0.0.1:6379/0", env, want{addr: "127.0.0.1:6379", password: "env-redis"}},
		{"redis://127.0.0.1:6379/0?password_file=" + pwFile, env, want{addr: "127.0.0.1:6379", password: "from-file"}},
		{"rediss://u:p%40ss@host:6380/1", noEnv, want{addr: "host:6380", db: 1, user: "u", password: "p@ss", tls: true}},
		// JuiceFS's spelling: a port-less Sentinel takes the last one's.
		{"redis://u:pw@mymaster,10.0.0.1,10.0.0.2:5000/3", env, want{
			master: "mymaster", sentinels: []string{"10.0.0.1:5000", "10.0.0.2:5000"}, db: 3,
			user: "u", password: "pw", sentinelPassword: "env-sentinel"}},
		{"redis://mymaster,h1/0?wait=2", noEnv, want{master: "mymaster", sentinels: []string{"h1:26379"}, wait: 2}},
		{"rediss://:pw@m,h1:26379,h2:26380/0", noEnv, want{master: "m", sentinels: []string{"h1:26379", "h2:26380"}, password: "pw", tls: true}},
		// redis+sentinel:// as redis-py's helpers spell it.
		{"redis+sentinel://:pw@h1,h2:26380,[::1]:26381/mymaster/4", noEnv, want{
			master: "mymaster", sentinels: []string{"h1:26379", "h2:26380", "[::1]:26381"}, db: 4, password: "pw"}},
		{"rediss+sentinel://h1/mymaster?sentinel_user=s&sentinel_password_file=" + spwFile, env, want{
			master: "mymaster", sentinels: []string{"h1:26379"}, password: "env-redis",
			sentinelUser: "s", sentinelPassword: "sentinel-from-file", tls: true}},
		// A password with '/' (base64 has it) written without %2F.
		{"redis://:Sec/ret+pw@127.0.0.1:6379/0", noEnv, want{addr: "127.0.0.1:6379", password: "Sec/ret+pw"}},
		{"redis://u:a/b@c@m,h1:26379/0", noEnv, want{master: "m", sentinels: []string{"h1:26379"}, user: "u", password: "a/b@c"}},
		{"unix:///run/a@b/redis.sock?db=1", noEnv, want{addr: "/run/a@b/redis.sock", db: 1}},
		{"unix://:pw@/run/a@b/redis.sock", noEnv, want{addr: "/run/a@b/redis.sock", password: "pw"}},
		// go-redis's spelling, for -o options (no commas).
		{"redis://h1:26379/1?master_name=m&addr=h2:26380&prefix=p", noEnv, want{
			master: "m", sentinels: []string{"h1:26379", "h2:26380"}, db: 1, prefix: "p"}},
	} {
		t.Run(RedactURL(tc.url), func(t *testing.T) {
			c, err := parseRedisURL(tc.url, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			var got want
			got.prefix, got.wait = c.prefix, c.wait
			if o := c.plain; o != nil {
				got.addr, got.db, got.user, got.password, got.tls = o.Addr, o.DB, o.Username, o.Password, o.TLSConfig != nil
			} else {
				o := c.failover
				got.master, got.sentinels, got.db = o.MasterName, o.SentinelAddrs, o.DB
				got.user, got.password = o.Username, o.Password
				got.sentinelUser, got.sentinelPassword = o.SentinelUsername, o.SentinelPassword
				got.tls = o.TLSConfig != nil
				if got.tls && o.TLSConfig.ServerName != "" {
					t.Errorf("TLS server name %q: every host must be checked under its own name", o.TLSConfig.ServerName)
				}
			}
			if got.master != tc.want.master || !slices.Equal(got.sentinels, tc.want.sentinels) || got.addr != tc.want.addr ||
				got.db != tc.want.db || got.user != tc.want.user || got.password != tc.want.password ||
				got.sentinelUser != tc.want.sentinelUser || got.sentinelPassword != tc.want.sentinelPassword ||
				got.prefix != tc.want.prefix || got.wait != tc.want.wait || got.tls != tc.want.tls {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseRedisURLRefuses(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("x\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, u := range []string{
		"redis+sentinel://h1:26379",                     // no master name
		"redis+sentinel://h1:26379/",                    // no master name
		"redis://,h1:26379/0",                           // empty master name
		"redis://m,/0",                                  // empty Sentinel address
		"redis://m,h1:99999/0",                          // bad port
		"redis://m,h1:26379/x",                          // bad database
		"redis://h1:26379/0?master_name=m,n&addr=h2:1x", // bad addr=
		"redis://127.0.0.1:6379/0?wait=-1",
		"redis://127.0.0.1:6379/0?wait=x",
		"redis://127.0.0.1:6379/0?password=secret",             // in ps
		"redis://m,h1:26379/0?sentinel_password=secret",        // in ps
		"redis://127.0.0.1:6379/0?sentinel_user=s",             // no Sentinel
		"redis://:pw@127.0.0.1:6379/0?password_file=" + pwFile, // two passwords
		"redis://127.0.0.1:6379/0?password_file=/nonexistent",
		"redis://127.0.0.1:6379/0?password_file=" + empty,
		"redis://127.0.0.1:6379/0?no_such_option=1",
		"redis://127.0.0.1:6379/0#frag",
		// A password with '?' or '#' must be URL-encoded; the error
		// must not show any of it.
		"redis://:se?cret@127.0.0.1:6379/0",
		"redis://:se#cret@127.0.0.1:6379/0",
		"redis://:se/cret@127.0.0.1:6379/x",
		"redis://:se/cret@m,h1:x/0",
	} {
		if _, err := parseRedisURL(u, func(string) string { return "" }); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", u, err)
		} else if strings.Contains(err.Error(), "cret") {
			t.Errorf("%s: the error shows the password: %v", u, err)
		} else if r := RedactURL(u); strings.Contains(r, "cret") {
			t.Errorf("RedactURL(%s) = %s: shows the password", u, r)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:pw@h:6379/0":                    "redis://:xxxxx@h:6379/0",
		"redis://u:p@w@h:6379/0?prefix=a@b":       "redis://u:xxxxx@h:6379/0?prefix=a@b",
		"redis://u:pw@m,h1,[::1]:26379/0":         "redis://u:xxxxx@m,h1,[::1]:26379/0",
		"redis+sentinel://:pw@[::1]:1,h/m/0":      "redis+sentinel://:xxxxx@[::1]:1,h/m/0",
		"unix://:pw@/run/redis.sock?db=1":         "unix://:xxxxx@/run/redis.sock?db=1",
		"redis://u@h:6379/0":                      "redis://u@h:6379/0",
		"redis://h:6379/0":                        "redis://h:6379/0",
		"/var/lib/fdfsfs/index":                   "/var/lib/fdfsfs/index",
		"redis://h/0?password_file=/etc/redis.pw": "redis://h/0?password_file=/etc/redis.pw",
		"redis://:Sec/ret@h:6379/0":               "redis://:xxxxx@h:6379/0",
		"redis://u:a/b@c@m,h1:26379/0":            "redis://u:xxxxx@m,h1:26379/0",
		"redis://:se?cret@h:6379/0":               "redis://:xxxxx@h:6379/0",
		"redis://:se#cret@h:6379/0":               "redis://:xxxxx@h:6379/0",
		"unix:///run/a@b/redis.sock?db=1":         "unix:///run/a@b/redis.sock?db=1",
		"unix://:pw@/run/a@b/redis.sock":          "unix://:xxxxx@/run/a@b/redis.sock",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
