package fdfs

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultNetworkTimeout   = 30 * time.Second
	DefaultMaxIdlePerServer = 8
	DefaultMaxBodySize      = 16 << 20
	DefaultIdleTestAge      = 10 * time.Second
	DefaultMaxIdleTime      = 5 * time.Minute
	DefaultTrackerPort      = 22122
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	Trackers       []string      // "host:port", tried in order
	ConnectTimeout time.Duration // per dial
	NetworkTimeout time.Duration // per read or write on a connection
	// MaxIdlePerServer bounds the idle connections kept for each address.
	MaxIdlePerServer int
	// MaxBodySize bounds every response body the client buffers (all but
	// download content, which is streamed and bounded by the range asked).
	MaxBodySize int64
	// IdleTestAge: a pooled connection idle for longer gets an ACTIVE_TEST
	// before it is reused. MaxIdleTime: one idle for longer is closed.
	IdleTestAge time.Duration
	MaxIdleTime time.Duration
	// StatLayout forces the layout of the list-groups and list-storages
	// records (see ParseStatLayout); 0 detects it from the body sizes.
	StatLayout StatLayout
	Logger     *slog.Logger // nil discards
	// StoreReuse is how long the tracker's answer to QUERY_STORE (which
	// storage and store path a new file of a group goes to) serves later
	// uploads to the same group. Zero asks for every upload, as the C
	// client does; a mount writing many small files saves a tracker round
	// trip per file. An upload that fails on a reused answer drops it, and
	// one whose reader can seek back is sent again where the tracker says.
	StoreReuse time.Duration
	// StorageListTTL is how long a group's storage list (LIST_STORAGE)
	// serves reads and changes that go straight to a storage the file ID
	// names, without the tracker's QUERY_FETCH_ONE or QUERY_UPDATE (see
	// direct.go for the rule, the tracker's own). Zero asks the tracker
	// for every file, as the C client does.
	StorageListTTL time.Duration
	// Observe, when set, is called after every exchange with a server:
	// the command, the server's address, how long it took, the bytes sent
	// and received (headers included) and the error (nil on success). It
	// lets a caller keep metrics without this package importing a metrics
	// library. It must not block.
	Observe func(cmd byte, addr string, took time.Duration, sent, received int64, err error)
}

func (c Config) withDefaults() Config {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.NetworkTimeout <= 0 {
		c.NetworkTimeout = DefaultNetworkTimeout
	}
	if c.MaxIdlePerServer <= 0 {
		c.MaxIdlePerServer = DefaultMaxIdlePerServer
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = DefaultMaxBodySize
	}
	if c.IdleTestAge <= 0 {
		c.IdleTestAge = DefaultIdleTestAge
	}
	if c.MaxIdleTime <= 0 {
		c.MaxIdleTime = DefaultMaxIdleTime
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// LoadClientConf reads the parts of a FastDFS client.conf a client needs:
// every tracker_server line (in order; "ip1,ip2:port" gives both addresses),
// connect_timeout and network_timeout in seconds. Comments start with '#'
// (so "#include" lines are skipped too) and other keys are ignored.
func LoadClientConf(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	var cfg Config
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return Config{}, fmt.Errorf("%s:%d: no '=' in %q", path, n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "tracker_server":
			addrs, err := splitTrackerServer(value)
			if err != nil {
				return Config{}, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			cfg.Trackers = append(cfg.Trackers, addrs...)
		case "connect_timeout", "network_timeout":
			secs, err := strconv.Atoi(value)
			if err != nil || secs <= 0 {
				return Config{}, fmt.Errorf("%s:%d: %s = %q is not a positive number of seconds", path, n, key, value)
			}
			if key == "connect_timeout" {
				cfg.ConnectTimeout = time.Duration(secs) * time.Second
			} else {
				cfg.NetworkTimeout = time.Duration(secs) * time.Second
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Config{}, err
	}
	if len(cfg.Trackers) == 0 {
		return Config{}, fmt.Errorf("%s: no tracker_server", path)
	}
	return cfg, nil
}

// splitTrackerServer parses "host:port" or "host1,host2:port" (a tracker
// with an inner and an outer address). IPv6 hosts come in brackets.
func splitTrackerServer(v string) ([]string, error) {
	i := strings.LastIndexByte(v, ':')
	if i < 0 || strings.HasSuffix(v, "]") {
		return nil, fmt.Errorf("tracker_server %q has no port", v)
	}
	port, err := strconv.Atoi(v[i+1:])
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("tracker_server %q has a bad port", v)
	}
	var out []string
	for _, host := range strings.Split(v[:i], ",") {
		host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(host), "["), "]")
		if host == "" {
			return nil, fmt.Errorf("tracker_server %q has an empty host", v)
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return out, nil
}
