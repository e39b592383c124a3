package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"fdfsfs/fdfs"
	"fdfsfs/index"
)

// clientFlags are the flags every command that talks to FastDFS takes.
type clientFlags struct {
	trackers    []string
	conf        string
	timeout     time.Duration
	logLevel    string
	fdfsVersion string
}

func (c *clientFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVar(&c.trackers, "tracker", nil, "tracker address host:port (repeatable; tried in order)")
	fl.StringVar(&c.conf, "conf", "", "FastDFS client.conf to read tracker_server and timeouts from")
	fl.DurationVar(&c.timeout, "network-timeout", 0, "network timeout per request (default: client.conf's, else 30s)")
	fl.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&c.fdfsVersion, "fdfs-version", "", "the FastDFS servers' version, for the list-groups record layout (default: detected; V6.13.0 needs it)")
}

func (c *clientFlags) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

const defaultClientConf = "/etc/fdfs/client.conf"

// config resolves where the trackers are: --tracker, else --conf, else
// FastDFS's usual client.conf. ok is false when none of these exists.
func (c *clientFlags) config() (cfg fdfs.Config, ok bool, err error) {
	switch {
	case c.conf != "":
		cfg, err = fdfs.LoadClientConf(c.conf)
		if err != nil {
			return cfg, false, err
		}
	case len(c.trackers) == 0:
		if _, statErr := os.Stat(defaultClientConf); statErr != nil {
			return cfg, false, nil
		}
		cfg, err = fdfs.LoadClientConf(defaultClientConf)
		if err != nil {
			return cfg, false, err
		}
	}
	if len(c.trackers) > 0 {
		cfg.Trackers = c.trackers
	}
	if c.timeout > 0 {
		cfg.NetworkTimeout = c.timeout
	}
	if c.fdfsVersion != "" {
		// V6.13.0's group records have the classic size with other
		// fields in them; only the version tells them apart.
		if cfg.StatLayout, err = fdfs.ParseStatLayout(c.fdfsVersion); err != nil {
			return cfg, false, fmt.Errorf("--fdfs-version: %w", err)
		}
	}
	cfg.Logger = c.logger()
	return cfg, len(cfg.Trackers) > 0, nil
}

// client connects the client commands; they need a tracker.
func (c *clientFlags) client() (*fdfs.Client, error) {
	cfg, ok, err := c.config()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no tracker: give --tracker host:port or --conf client.conf (or create %s)", defaultClientConf)
	}
	return fdfs.NewClient(cfg)
}

// dataDir is where fdfsfs keeps its own state by default.
func dataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "fdfsfs")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "fdfsfs")
	}
	return filepath.Join(os.TempDir(), "fdfsfs")
}

func cacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "fdfsfs")
	}
	return filepath.Join(os.TempDir(), "fdfsfs-cache")
}

// clusterKey names a cluster's index and cache directories after its first
// tracker, so that two clusters never share an index.
func clusterKey(trackers []string) string {
	if len(trackers) == 0 {
		return "local"
	}
	return strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(trackers[0])
}

// indexFlags find the index a command works on: --index, else the one the
// mount would use for the same trackers.
type indexFlags struct {
	clientFlags
	dir  string
	meta string
}

func (f *indexFlags) register(fl *pflag.FlagSet) {
	f.clientFlags.register(fl)
	fl.StringVar(&f.dir, "index", "", "Badger index directory (default: DATA/index/CLUSTER, one per cluster, named after the first tracker)")
	fl.StringVar(&f.meta, "meta", "", "metadata engine URL instead of --index: DIR or badger:///DIR (one host), redis://[:PASSWORD@]HOST:PORT/DB[?prefix=KEYS] (shared by several mount hosts)")
}

// url is the metadata URL of the index: --meta, --index, or the directory
// mount uses by default.
func (f *indexFlags) url() (string, error) {
	key := "local"
	if f.meta == "" && f.dir == "" {
		cfg, ok, err := f.config()
		if err != nil {
			return "", err
		}
		if ok {
			key = clusterKey(cfg.Trackers)
		}
	}
	return metaURLOf(f.meta, f.dir, key)
}

func (f *indexFlags) open(readOnly bool) (index.Index, error) {
	u, err := f.url()
	if err != nil {
		return nil, err
	}
	dir, isDir := badgerDir(u)
	if _, err := os.Stat(dir); isDir && err != nil && readOnly {
		return nil, fmt.Errorf("no index at %s", dir)
	}
	idx, err := index.Open(context.Background(), u, index.OpenOptions{Logger: f.logger(), ReadOnly: readOnly, Session: mountSession("")})
	if err != nil {
		if isDir {
			return nil, fmt.Errorf("opening the index %s (is it mounted?): %w", dir, err)
		}
		return nil, fmt.Errorf("opening the index %s: %w", redactURL(u), err)
	}
	return idx, nil
}

// metaURLOf picks the index: --meta, else --index (a Badger directory),
// else the Badger directory kept per cluster key.
func metaURLOf(meta, indexDir, key string) (string, error) {
	switch {
	case meta != "" && indexDir != "":
		return "", errors.New("--meta and --index both name the index: give one")
	case meta != "":
		return meta, nil
	case indexDir != "":
		return indexDir, nil
	}
	return filepath.Join(dataDir(), "index", key), nil
}

// badgerDir returns the directory of a Badger metadata URL.
func badgerDir(u string) (string, bool) {
	if rest, ok := strings.CutPrefix(u, "badger://"); ok {
		return rest, true
	}
	if strings.Contains(u, "://") {
		return "", false
	}
	return u, true
}

// redactURL hides a password in a metadata URL, for logs and errors.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// mountSession names this process in the journal entries it writes, so
// that with a shared index each host sweeps only its own unclaimed uploads.
func mountSession(mountpoint string) string {
	host, _ := os.Hostname()
	s := fmt.Sprintf("%s:%d", host, os.Getpid())
	if mountpoint != "" {
		s += ":" + mountpoint
	}
	return s
}
