// Command fdfsfs mounts a FastDFS cluster as a file system, and speaks to
// FastDFS from the command line without client code.
//
//	fdfsfs mount /mnt/fdfs          # groups as directories
//	fdfsfs put --group group2 a.jpg # prints the file ID
//	fdfsfs local                    # a FastDFS-compatible cluster on loopback
//
// Run `fdfsfs help` for every subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"fdfsfs/cache"
	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
	"fdfsfs/fs"
	"fdfsfs/index"
)

type command struct {
	name    string
	usage   string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"mount", "mount [flags] MOUNTPOINT", "mount the cluster: one directory per group", runMount},
		{"groups", "groups [flags]", "list the groups with their capacity", runGroups},
		{"put", "put [--group G] FILE...", "upload files, print each file ID", runPut},
		{"get", "get FILEID [DEST|-]", "download a file (to DEST, or stdout with -)", runGet},
		{"rm", "rm FILEID...", "delete files", runRm},
		{"stat", "stat FILEID", "show server-side file info and what the ID decodes to", runStat},
		{"meta", "meta get|set FILEID [k=v...] | meta dump|load [--index DIR] [FILE]", "read or write FastDFS metadata; copy an index", runMeta},
		{"local", "local [--groups N] [--data DIR] [--port P] [--compat V]", "run a FastDFS-compatible cluster on 127.0.0.1", runLocal},
		{"index", "index check|backup|restore [flags]", "check, repair, back up or restore the name index", runIndex},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "fdfsfs: FastDFS as a file system, and a FastDFS command line.")
	fmt.Fprintln(w, "\nUsage: fdfsfs COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'fdfsfs COMMAND --help' for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// The form mount(8) uses for fuse.fdfsfs: SOURCE MOUNTPOINT -o OPTS.
	if fstabArgs, ok := mountHelperArgs(os.Args[0], args); ok {
		args = fstabArgs
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(os.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:])
			if errors.Is(err, pflag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "fdfsfs %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "fdfsfs: unknown command %q\n", args[0])
	usage(os.Stderr)
	return 2
}

// flagSet makes a command's flag set with its usage line.
func flagSet(name string) *pflag.FlagSet {
	fl := pflag.NewFlagSet(name, pflag.ContinueOnError)
	for _, c := range commands {
		if c.name == name {
			fl.Usage = func() {
				fmt.Fprintf(os.Stderr, "Usage: fdfsfs %s\n\n%s.\n\nFlags:\n", c.usage, c.summary)
				fl.PrintDefaults()
			}
		}
	}
	fl.SortFlags = false
	return fl
}

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

func runGroups(ctx context.Context, args []string) error {
	fl := flagSet("groups")
	var cf clientFlags
	cf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	gs, err := c.ListGroups(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%-16s %10s %10s %8s %8s %6s\n", "GROUP", "TOTAL_MB", "FREE_MB", "STORAGES", "ACTIVE", "PORT")
	for _, g := range gs {
		fmt.Printf("%-16s %10d %10d %8d %8d %6d\n", g.Name, g.TotalMB, g.FreeMB, g.StorageCount, activeCount(g), g.StoragePort)
	}
	return nil
}

func runPut(ctx context.Context, args []string) error {
	fl := flagSet("put")
	var cf clientFlags
	cf.register(fl)
	group := fl.String("group", "", "group to upload to (default: the tracker chooses)")
	appender := fl.Bool("appender", false, "upload as appender files (can be appended to and modified)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return errors.New("no FILE given")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, name := range fl.Args() {
		id, err := putFile(ctx, c, *group, name, *appender)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Println(id)
	}
	return nil
}

func putFile(ctx context.Context, c *fdfs.Client, group, name string, appender bool) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", errors.New("not a regular file")
	}
	ext := strings.TrimPrefix(filepath.Ext(name), ".")
	if len(ext) > 6 {
		ext = ""
	}
	r := newProgress(f, st.Size(), filepath.Base(name), os.Stderr)
	defer r.done()
	if appender {
		return c.UploadAppender(ctx, group, ext, r, st.Size())
	}
	return c.Upload(ctx, group, ext, r, st.Size())
}

func runGet(ctx context.Context, args []string) error {
	fl := flagSet("get")
	var cf clientFlags
	cf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() < 1 || fl.NArg() > 2 {
		return errors.New("want FILEID [DEST|-]")
	}
	id := fl.Arg(0)
	if _, err := fdfs.ParseFileID(id); err != nil {
		return err
	}
	dest := filepath.Base(id)
	if fl.NArg() == 2 {
		dest = fl.Arg(1)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.QueryFileInfo(ctx, id)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if dest != "-" {
		// Write next to the destination and rename, so a failed download
		// never leaves a truncated file under the final name.
		tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".part-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	if info.FileSize > 0 {
		pw := newProgressWriter(w, info.FileSize, filepath.Base(id), os.Stderr)
		_, err = c.Download(ctx, id, 0, 0, pw)
		pw.done()
		if err != nil {
			return err
		}
	}
	if tmp, ok := w.(*os.File); ok && dest != "-" {
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), dest)
	}
	return nil
}

func runRm(ctx context.Context, args []string) error {
	fl := flagSet("rm")
	var cf clientFlags
	cf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return errors.New("no FILEID given")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var failed error
	for _, id := range fl.Args() {
		if err := c.Delete(ctx, id); err != nil {
			fmt.Fprintf(os.Stderr, "fdfsfs rm: %s: %v\n", id, err)
			failed = errors.New("some files were not deleted")
		}
	}
	return failed
}

func runStat(ctx context.Context, args []string) error {
	fl := flagSet("stat")
	var cf clientFlags
	cf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("want one FILEID")
	}
	id := fl.Arg(0)
	fid, err := fdfs.ParseFileID(id)
	if err != nil {
		return err
	}
	fmt.Printf("file_id:        %s\n", id)
	fmt.Printf("group:          %s\n", fid.Group)
	fmt.Printf("store_path:     M%02X\n", fid.StorePathIndex)
	fmt.Printf("decoded:        %s\n", fid.Describe())
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.QueryFileInfo(ctx, id)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	fmt.Printf("size:           %d\n", info.FileSize)
	fmt.Printf("created:        %s\n", info.CreateTime().Format(time.RFC3339))
	fmt.Printf("crc32:          %08x\n", info.CRC32)
	fmt.Printf("source_ip:      %s\n", info.SourceIP)
	return nil
}

func runMeta(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("want get, set, dump or load")
	}
	switch args[0] {
	case "dump", "load":
		return runMetaCopy(ctx, args[0], args[1:])
	case "get", "set":
	default:
		return fmt.Errorf("unknown meta subcommand %q (want get, set, dump or load)", args[0])
	}
	fl := flagSet("meta")
	var cf clientFlags
	cf.register(fl)
	merge := fl.Bool("merge", false, "set: merge with the existing metadata instead of replacing it")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	if fl.NArg() < 1 {
		return errors.New("want FILEID")
	}
	id := fl.Arg(0)
	if _, err := fdfs.ParseFileID(id); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if args[0] == "get" {
		meta, err := c.GetMetadata(ctx, id)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Printf("%s=%s\n", k, meta[k])
		}
		return nil
	}
	meta := map[string]string{}
	for _, kv := range fl.Args()[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", kv)
		}
		meta[k] = v
	}
	flag := byte(fdfs.MetaOverwrite)
	if *merge {
		flag = fdfs.MetaMerge
	}
	return c.SetMetadata(ctx, id, meta, flag)
}

func runLocal(ctx context.Context, args []string) error {
	fl := flagSet("local")
	groups := fl.Int("groups", 3, "number of groups (group1, group2, ...)")
	perGroup := fl.Int("storages-per-group", 1, "storage servers per group (2 = each group replicates)")
	data := fl.String("data", "", "keep files in DIR and serve them again when restarted (default: a temp dir, removed on exit)")
	port := fl.Int("port", 0, "tracker port (default: a free port; storages get free ports)")
	compat := fl.String("compat", "6.16", "answer list-groups/list-storages in this FastDFS version's record layouts")
	logLevel := fl.String("log-level", "info", "log level")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	if *groups < 1 || *groups > 64 {
		return errors.New("--groups must be 1..64")
	}
	layout, err := fdfs.ParseStatLayout(*compat)
	if err != nil {
		return err
	}
	cf := clientFlags{logLevel: *logLevel}
	cl, err := localcluster.Start(localcluster.Options{
		Groups:           groupNames(*groups),
		StoragesPerGroup: *perGroup,
		DataDir:          *data,
		TrackerPort:      *port,
		Layout:           layout,
		Logger:           cf.logger(),
	})
	if err != nil {
		return err
	}
	fmt.Println(cl.TrackerAddr())
	<-ctx.Done()
	return cl.Close()
}

func groupNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("group%d", i+1)
	}
	return names
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

// mountFlags are mount's own flags; -o takes the same settings in the
// mount(8) form, so that an fstab line can say them.
type mountFlags struct {
	clientFlags
	indexDir     string
	meta         string
	cacheDir     string
	cacheSize    int64
	writeBuffer  int64
	bufferSize   int64
	options      []string
	debugFuse    bool
	localData    string
	httpBase     []string
	groupRefresh time.Duration
	attrTimeout  time.Duration
	sessionTTL   time.Duration
	readAhead    int64
	metrics      string
	storeReuse   time.Duration
	storageList  time.Duration
	directIO     bool
}

// memoryBeyondBuffers is the mount's memory besides its write buffers,
// for the soft memory limit: the block cache's buffers (its memory tier,
// fetches, the store queue) and the index's tables, about 128 MiB.
const memoryBeyondBuffers = 128 << 20

func runMount(ctx context.Context, args []string) error {
	fl := flagSet("mount")
	var mf mountFlags
	mf.register(fl)
	fl.StringVar(&mf.indexDir, "index", "", "index directory (default: DATA/index/CLUSTER)")
	fl.StringVar(&mf.meta, "meta", "", "metadata engine URL: DIR or badger:///DIR (one host, the default), redis://[:PASSWORD@]HOST:PORT/DB[?prefix=KEYS] (shared by several mount hosts)")
	fl.StringVar(&mf.cacheDir, "cache", "", "block cache and staging directory (default: CACHE/CLUSTER)")
	fl.Int64Var(&mf.cacheSize, "cache-size", 4<<30, "block cache size limit in bytes")
	fl.Int64Var(&mf.writeBuffer, "write-buffer", 32<<20, "memory per file being written, in bytes (4 chunks of a quarter each)")
	fl.Int64Var(&mf.bufferSize, "buffer-size", 64<<20, "memory for write buffers across all files, in bytes; a file that finds it spent waits for its own uploads or is staged on disk; with another 128 MiB it is also the Go runtime's soft memory limit unless GOMEMLIMIT is set (0: neither)")
	fl.StringArrayVarP(&mf.options, "options", "o", nil, "mount options: allow_other, ro, nonempty, direct_io, fsname=, index=, cache=, cache_size=, tracker=, conf=, http_base=, metrics=, fdfs_version= (comma-separated, repeatable)")
	fl.BoolVar(&mf.debugFuse, "debug-fuse", false, "log every FUSE request")
	fl.StringVar(&mf.localData, "local-data", "", "data directory of the built-in local cluster, used when no tracker is configured (default: DATA/local)")
	fl.StringArrayVar(&mf.httpBase, "http-base", nil, "GROUP=URL of the nginx serving a group, for the user.fdfs.url attribute (repeatable)")
	fl.DurationVar(&mf.groupRefresh, "group-refresh", 30*time.Second, "how often the group list is re-read from the tracker")
	fl.DurationVar(&mf.sessionTTL, "session-ttl", 30*time.Second, "shared index: how long after its last heartbeat this mount counts as dead, and other hosts delete its unclaimed uploads and purge the files it held open")
	fl.DurationVar(&mf.attrTimeout, "attr-timeout", time.Second, "how long the kernel may cache names and attributes (a shared index also sends change notices)")
	fl.Int64Var(&mf.readAhead, "read-ahead", 4<<20, "kernel readahead for the mount in bytes, set through /sys/class/bdi when fdfsfs may write there (0: the kernel's default)")
	fl.StringVar(&mf.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9567)")
	fl.DurationVar(&mf.storeReuse, "store-reuse", time.Second, "how long the tracker's choice of storage for new files of a group serves further uploads (0: ask for every file, as the C client does)")
	fl.DurationVar(&mf.storageList, "storage-list-ttl", 10*time.Second, "how long a group's storage list from the tracker lets reads and changes go straight to the storage a file ID names (0: ask the tracker for every file, as the C client does)")
	fl.BoolVar(&mf.directIO, "direct-io", false, "read files without the kernel page cache: faster for large files read once in large blocks, much slower for small reads, and no second read from memory")
	background := fl.Bool("background", false, "go to the background once the mount is ready (mount(8) helper mode does this)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("want one MOUNTPOINT")
	}
	if *background {
		return daemonize(append([]string{"mount"}, args...))
	}
	err := mountAndServe(ctx, &mf, fl.Arg(0))
	notifyReady(err)
	return err
}

func (mf *mountFlags) register(fl *pflag.FlagSet) { mf.clientFlags.register(fl) }

// applyOptions folds -o options into the flags. FUSE options go to the
// kernel; fdfsfs's own (index=, cache=, ...) set the matching flag.
func (mf *mountFlags) applyOptions() (fuse.MountOptions, error) {
	mo := fuse.MountOptions{
		FsName:        "fdfsfs",
		Name:          "fdfsfs",
		MaxWrite:      1 << 20,
		MaxReadAhead:  1 << 20,
		MaxBackground: 64,
		Options:       []string{"default_permissions"},
	}
	for _, group := range mf.options {
		for _, o := range strings.Split(group, ",") {
			key, val, hasVal := strings.Cut(strings.TrimSpace(o), "=")
			switch key {
			case "":
			case "allow_other":
				mo.AllowOther = true
			case "ro":
				mo.Options = append(mo.Options, "ro")
			case "rw", "defaults", "auto", "noauto", "user", "nouser", "_netdev", "nofail", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "async", "atime", "noatime", "relatime":
				// mount(8) and fstab words that are not ours to act on.
				if key == "noexec" || key == "nosuid" || key == "nodev" || key == "noatime" {
					mo.Options = append(mo.Options, key)
				}
			case "direct_io":
				mf.directIO = true
			case "nonempty", "default_permissions":
			case "fsname":
				mo.FsName = val
			case "index":
				mf.indexDir = val
			case "meta":
				mf.meta = val
			case "cache":
				mf.cacheDir = val
			case "cache_size":
				n, err := parseSize(val)
				if err != nil {
					return mo, fmt.Errorf("-o cache_size: %w", err)
				}
				mf.cacheSize = n
			case "tracker":
				mf.trackers = append(mf.trackers, val)
			case "conf":
				mf.conf = val
			case "log_level":
				mf.logLevel = val
			case "fdfs_version":
				mf.fdfsVersion = val
			case "http_base":
				mf.httpBase = append(mf.httpBase, val)
			case "metrics":
				mf.metrics = val
			case "session_ttl":
				d, err := time.ParseDuration(val)
				if err != nil {
					return mo, fmt.Errorf("-o session_ttl: %w", err)
				}
				mf.sessionTTL = d
			default:
				if hasVal {
					return mo, fmt.Errorf("unknown mount option %q", o)
				}
				return mo, fmt.Errorf("unknown mount option %q", key)
			}
		}
	}
	return mo, nil
}

func (mf *mountFlags) has(opt string) bool {
	for _, group := range mf.options {
		for _, o := range strings.Split(group, ",") {
			if strings.TrimSpace(o) == opt {
				return true
			}
		}
	}
	return false
}

// parseSize reads 512, 64K, 100M, 4G.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}

// checkMountpoint gives a one-line reason before FUSE gives a cryptic one.
func checkMountpoint(dir string, nonempty bool) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mountpoint %s is not a directory", dir)
	}
	if mounted, _ := isMountpoint(dir); mounted {
		return fmt.Errorf("mountpoint %s is busy: something is already mounted there", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	if len(ents) > 0 && !nonempty {
		return fmt.Errorf("mountpoint %s is not empty (use -o nonempty to mount over it)", dir)
	}
	return nil
}

// isMountpoint reads /proc/self/mountinfo.
func isMountpoint(dir string) (bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == abs {
			return true, nil
		}
	}
	return false, nil
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func mountAndServe(ctx context.Context, mf *mountFlags, mountpoint string) (err error) {
	mo, err := mf.applyOptions()
	if err != nil {
		return err
	}
	if err := checkMountpoint(mountpoint, mf.has("nonempty")); err != nil {
		return err
	}
	log := mf.logger()
	cfg, ok, err := mf.config()
	if err != nil {
		return err
	}
	if mf.storeReuse < 0 {
		return fmt.Errorf("--store-reuse %v: negative", mf.storeReuse)
	}
	cfg.StoreReuse = mf.storeReuse
	if mf.storageList < 0 {
		return fmt.Errorf("--storage-list-ttl %v: negative", mf.storageList)
	}
	cfg.StorageListTTL = mf.storageList
	if mf.bufferSize < 0 {
		return fmt.Errorf("--buffer-size %d: negative", mf.bufferSize)
	}
	if mf.bufferSize > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// The write buffers are bounded; what lets the heap grow past
		// them is the collector's headroom (GOGC doubles the live heap
		// before it runs). A soft limit of the buffers plus what the block
		// cache and the index keep (about 128 MiB) makes it collect
		// sooner under load instead.
		debug.SetMemoryLimit(mf.bufferSize + memoryBeyondBuffers)
	}
	key := "local"
	if ok {
		key = clusterKey(cfg.Trackers)
	} else {
		dir := mf.localData
		if dir == "" {
			dir = filepath.Join(dataDir(), "local")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		local, err := localcluster.Start(localcluster.Options{Groups: groupNames(3), DataDir: dir, Logger: log.With("component", "local-cluster")})
		if err != nil {
			return fmt.Errorf("starting the local cluster: %w", err)
		}
		defer local.Close()
		log.Info("no tracker configured (--tracker, --conf or "+defaultClientConf+"): "+
			"started the built-in local FastDFS cluster on loopback", "tracker", local.TrackerAddr(), "data", dir)
		cfg.Trackers = []string{local.TrackerAddr()}
	}
	metaURL, err := metaURLOf(mf.meta, mf.indexDir, key)
	if err != nil {
		return err
	}
	cacheRoot := mf.cacheDir
	if cacheRoot == "" {
		cacheRoot = filepath.Join(cacheDir(), key)
	}
	dirs := []string{filepath.Join(cacheRoot, "blocks"), filepath.Join(cacheRoot, "staging")}
	if dir, ok := badgerDir(metaURL); ok {
		dirs = append(dirs, dir)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	httpBase := map[string]string{}
	for _, hb := range mf.httpBase {
		g, u, ok := strings.Cut(hb, "=")
		if !ok || g == "" || !strings.HasPrefix(u, "http") {
			return fmt.Errorf("--http-base %q: want GROUP=http://host:port", hb)
		}
		httpBase[g] = u
	}

	var reg *prometheus.Registry
	var fsMetrics *fs.Metrics
	if mf.metrics != "" {
		reg = newRegistry()
		fsMetrics = fs.NewMetrics(reg)
		cfg.Observe = newFdfsMetrics(reg).observe
		stop, err := serveMetrics(mf.metrics, reg, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	client, err := fdfs.NewClient(cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	readOnly := mf.has("ro")
	if mf.sessionTTL < time.Second {
		return fmt.Errorf("--session-ttl %v: want at least 1s", mf.sessionTTL)
	}
	session := mountSession(mountpoint)
	idx, err := index.Open(ctx, metaURL, index.OpenOptions{Logger: log.With("component", "index"), ReadOnly: readOnly, Session: session})
	if err != nil {
		return fmt.Errorf("opening the index %s: %w", redactURL(metaURL), err)
	}
	defer idx.Close()
	blocks, err := cache.Open(filepath.Join(cacheRoot, "blocks"), cache.Options{MaxBytes: mf.cacheSize, Logger: log.With("component", "cache")})
	if err != nil {
		return fmt.Errorf("opening the cache %s: %w", cacheRoot, err)
	}
	defer blocks.Close()
	backend := fs.NewBackend(client)
	if reg != nil {
		openConnsGauge(reg, client)
		reg.MustRegister(newCacheCollector(blocks))
		backend = fsMetrics.Backend(backend)
	}

	chunk := int(max(mf.writeBuffer/4, 1<<20))
	fsys, err := fs.New(ctx, fs.Options{
		Backend:       backend,
		Index:         idx,
		Cache:         blocks,
		WriteChunk:    chunk,
		WriteInflight: 3,
		WriteBudget:   mf.bufferSize,
		ReadOnly:      readOnly,
		DirectIO:      mf.directIO,
		Shared:        index.Shared(metaURL),
		Session:       session,
		SessionTTL:    mf.sessionTTL,
		GroupRefresh:  mf.groupRefresh,
		HTTPBase:      httpBase,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	defer fsys.Close()

	timeout := mf.attrTimeout
	mo.Debug = mf.debugFuse
	raw := fusefs.NewNodeFS(fsys.Root(), &fusefs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
	})
	raw = fs.IgnoreInterrupts(raw)
	raw = fs.KillPrivileges(raw)
	mo.ExtraCapabilities |= fs.KillPrivilegesCapability
	if mf.directIO {
		// Shared maps of files opened with FOPEN_DIRECT_IO (otherwise
		// ENODEV); the kernel then keeps them coherent itself.
		mo.ExtraCapabilities |= fuse.CAP_DIRECT_IO_ALLOW_MMAP
	}
	if fsMetrics != nil {
		raw = fsMetrics.Instrument(raw)
	}
	server, err := fuse.NewServer(raw, mountpoint, &mo)
	if err != nil {
		return fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		server.Unmount()
		return fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	if mf.readAhead > 0 {
		if err := setReadAhead(mountpoint, mf.readAhead); err != nil {
			log.Info("kernel readahead left at its default", "err", err)
		}
	}
	log.Info("mounted", "mountpoint", mountpoint, "trackers", cfg.Trackers, "index", redactURL(metaURL), "cache", cacheRoot)
	notifyReady(nil)

	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		log.Info("signal: finishing open writes and unmounting")
		for {
			err := server.Unmount()
			if err == nil {
				return
			}
			log.Warn("unmount failed; retrying", "err", err)
			select {
			case <-done:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	server.Wait()
	close(done)
	log.Info("unmounted", "mountpoint", mountpoint)
	return nil
}

// mountHelperArgs recognises how mount(8) runs a fuse.fdfsfs file system
// (through mount.fuse3): `fdfsfs SOURCE MOUNTPOINT -o OPTIONS`. SOURCE is a
// tracker host:port, or "local" for the built-in cluster. It turns that
// into a mount command that goes to the background once the mount is ready.
func mountHelperArgs(argv0 string, args []string) ([]string, bool) {
	if len(args) < 2 || strings.HasPrefix(args[0], "-") {
		return nil, false
	}
	for _, c := range commands {
		if c.name == args[0] {
			return nil, false
		}
	}
	if args[0] == "help" {
		return nil, false
	}
	// mount.fuse3 always passes -o (at least dev,suid); with it, a missing
	// mountpoint is reported as such rather than as an unknown command.
	if st, err := os.Stat(args[1]); (err != nil || !st.IsDir()) && (len(args) < 4 || args[2] != "-o") {
		return nil, false
	}
	out := []string{"mount", "--background"}
	src := args[0]
	if src != "local" && src != "none" && src != "fdfsfs" {
		for _, t := range strings.Split(src, ",") {
			out = append(out, "--tracker", t)
		}
	}
	// The source shows in /proc/mounts as in fstab, which is also how
	// `mount -a` sees that the line is already mounted. An fsname= in the
	// options still wins.
	if !strings.ContainsAny(src, ", \t\n") {
		out = append(out, "-o", "fsname="+src)
	}
	out = append(out, args[2:]...)
	return append(out, args[1]), true
}

// readyEnv names the descriptor a background child reports its mount on.
const readyEnv = "FDFSFS_READY_FD"

// notifyReady tells the waiting parent (mount helper mode) that the mount
// is up, or why it failed; under systemd's Type=notify it sends READY=1.
// Without either it does nothing.
func notifyReady(err error) {
	if err == nil {
		sdNotify("READY=1")
	}
	if os.Getenv(readyEnv) == "" {
		return
	}
	f := os.NewFile(3, "ready")
	if err != nil {
		fmt.Fprintf(f, "%v\n", err)
	} else {
		fmt.Fprintln(f, "ok")
	}
	f.Close()
	os.Unsetenv(readyEnv)
}

// sdNotify sends one state line to systemd's notify socket, if the service
// manager gave one (Type=notify). A leading @ names an abstract socket.
func sdNotify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	os.Unsetenv("NOTIFY_SOCKET") // not for children
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Write([]byte(state))
}

// daemonize runs this command again in the background and waits until it
// reports that the mount is ready; its exit code says whether it mounted.
func daemonize(args []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var child []string
	for _, a := range args {
		if a != "--background" {
			child = append(child, a)
		}
	}
	logf, err := os.OpenFile(filepath.Join(os.TempDir(), "fdfsfs-mount.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		logf = nil
	}
	attr := &os.ProcAttr{
		Env:   append(os.Environ(), readyEnv+"=3"),
		Files: []*os.File{nil, logf, logf, w},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	p, err := os.StartProcess(exe, append([]string{exe}, child...), attr)
	w.Close()
	if logf != nil {
		logf.Close()
	}
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(r)
	r.Close()
	if s := strings.TrimSpace(string(msg)); s != "ok" {
		p.Wait()
		if s == "" {
			s = "the mount process exited before the mount was ready (see " + filepath.Join(os.TempDir(), "fdfsfs-mount.log") + ")"
		}
		return errors.New(s)
	}
	return p.Release()
}

// progress shows bytes, rate and ETA on a terminal and nothing when the
// output is piped or redirected.
type progress struct {
	out   io.Writer // nil when not a terminal: nothing is drawn
	name  string
	total int64
	n     int64
	start time.Time
	last  time.Time
}

func newProgressOn(out *os.File, total int64, name string) progress {
	p := progress{name: name, total: total, start: time.Now()}
	if isTerminal(out) {
		p.out = out
	}
	return p
}

// isTerminal asks the tty driver, so that /dev/null (also a character
// device) counts as redirected.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// newProgress counts what is read from r on stderr's progress line.
func newProgress(r io.Reader, total int64, name string, stderr *os.File) *progressReader {
	return &progressReader{r: r, p: newProgressOn(stderr, total, name)}
}

// newProgressWriter counts what is written to w on stderr's progress line.
func newProgressWriter(w io.Writer, total int64, name string, stderr *os.File) *progressWriter {
	return &progressWriter{w: w, p: newProgressOn(stderr, total, name)}
}

type progressReader struct {
	r io.Reader
	p progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(n)
	return n, err
}

func (pr *progressReader) done() { pr.p.finish() }

type progressWriter struct {
	w io.Writer
	p progress
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.add(n)
	return n, err
}

func (pw *progressWriter) done() { pw.p.finish() }

func (p *progress) add(n int) {
	p.n += int64(n)
	if p.out == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	fmt.Fprintf(p.out, "\r%s\033[K", progressLine(p.name, p.n, p.total, time.Since(p.start)))
}

// progressLine is one state of the line: name, percent, bytes done of the
// total, the mean rate so far and the time left at that rate.
func progressLine(name string, n, total int64, elapsed time.Duration) string {
	rate := float64(n) / max(elapsed.Seconds(), 1e-3)
	eta := "--"
	switch {
	case total <= n:
		eta = "0s"
	case rate > 0:
		eta = time.Duration(float64(total-n) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = float64(n) * 100 / float64(total)
	}
	return fmt.Sprintf("%s %5.1f%% %s/%s %s/s ETA %s", name, pct, human(n), human(total), human(int64(rate)), eta)
}

func (p *progress) finish() {
	if p.out != nil && !p.last.IsZero() {
		p.draw()
		fmt.Fprintln(p.out)
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
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
	fl.StringVar(&f.dir, "index", "", "index directory (default: the one mount uses for these trackers)")
	fl.StringVar(&f.meta, "meta", "", "metadata engine URL, as mount's --meta (instead of --index)")
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

func runIndex(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("want check, backup or restore")
	}
	sub := args[0]
	fl := flagSet("index")
	var ixf indexFlags
	ixf.register(fl)
	repair := fl.Bool("repair", false, "check: fix what can be fixed (dangling names, link counts, orphaned uploads)")
	group := fl.String("group", "", "backup: the group that keeps the backup")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	switch sub {
	case "check":
		idx, err := ixf.open(!*repair)
		if err != nil {
			return err
		}
		defer idx.Close()
		rep, err := index.Check(ctx, idx)
		if err != nil {
			return err
		}
		printReport(rep)
		if *repair {
			if _, err := index.Repair(ctx, idx); err != nil {
				return err
			}
			after, err := index.Check(ctx, idx)
			if err != nil {
				return err
			}
			fmt.Println("after repair:")
			printReport(after)
			// No mount of this host holds them open now; one that a
			// live mount's session holds (a shared index) is left to it.
			purged, held := 0, 0
			for _, ino := range after.Orphans {
				err := idx.Purge(ctx, ino)
				switch {
				case errors.Is(err, index.ErrBusy):
					held++
					continue
				case err != nil:
					return fmt.Errorf("purge orphan %d: %w", ino, err)
				}
				purged++
			}
			fmt.Printf("orphans purged: %d\n", purged)
			if held > 0 {
				fmt.Printf("orphans held open by a live mount: %d\n", held)
			}
			// Orphaned uploads and deletes still due need FastDFS.
			if c, err := ixf.client(); err == nil {
				defer c.Close()
				n := deletePending(ctx, idx, c)
				fmt.Printf("pending FastDFS files deleted: %d\n", n)
			}
			return nil
		}
		if rep.Damaged() {
			return errors.New("the index has problems (run with --repair to fix them)")
		}
		return nil
	case "backup":
		if *group == "" {
			return errors.New("backup needs --group: the group that keeps the backup")
		}
		idx, err := ixf.open(true)
		if err != nil {
			return err
		}
		defer idx.Close()
		c, err := ixf.client()
		if err != nil {
			return err
		}
		defer c.Close()
		id, err := backupIndex(ctx, idx, c, *group)
		if err != nil {
			return err
		}
		fmt.Println(id)
		return nil
	case "restore":
		if fl.NArg() != 1 {
			return errors.New("restore wants the backup's FILEID")
		}
		c, err := ixf.client()
		if err != nil {
			return err
		}
		defer c.Close()
		idx, err := ixf.open(false)
		if err != nil {
			return err
		}
		defer idx.Close()
		pr, pw := io.Pipe()
		go func() {
			_, err := c.Download(ctx, fl.Arg(0), 0, 0, pw)
			pw.CloseWithError(err)
		}()
		if err := idx.Load(ctx, pr); err != nil {
			pr.CloseWithError(err)
			return fmt.Errorf("restore: %w", err)
		}
		fmt.Println("restored")
		return nil
	}
	return fmt.Errorf("unknown index subcommand %q (want check, backup or restore)", sub)
}

// backupIndex writes the index's dump into the cluster as one file. The
// dump is staged in a temp file because an upload needs its size up front.
func backupIndex(ctx context.Context, idx index.Index, c *fdfs.Client, group string) (string, error) {
	tmp, err := os.CreateTemp("", "fdfsfs-backup-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := idx.Dump(ctx, tmp); err != nil {
		return "", err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return c.UploadAppender(ctx, group, "fsidx", tmp, size)
}

func deletePending(ctx context.Context, idx index.Index, c *fdfs.Client) int {
	ps, err := idx.ListPending(ctx)
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range ps {
		if p.Reason == index.PendingUpload && p.Session != "" {
			// An upload of a live mount may still be claimed.
			if alive, err := idx.SessionAlive(ctx, p.Session); err != nil || alive {
				continue
			}
		}
		if err := c.Delete(ctx, p.FileID); err != nil && !errors.Is(err, syscall.ENOENT) {
			fmt.Fprintf(os.Stderr, "delete %s: %v\n", p.FileID, err)
			continue
		}
		if idx.RemovePending(ctx, p.FileID) == nil {
			n++
		}
	}
	return n
}

func runMetaCopy(ctx context.Context, sub string, args []string) error {
	fl := flagSet("meta")
	var ixf indexFlags
	ixf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 1 {
		return errors.New("want at most one FILE (default: stdin/stdout)")
	}
	idx, err := ixf.open(sub == "dump")
	if err != nil {
		return err
	}
	defer idx.Close()
	if sub == "dump" {
		var w io.Writer = os.Stdout
		if fl.NArg() == 1 && fl.Arg(0) != "-" {
			f, err := os.Create(fl.Arg(0))
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return idx.Dump(ctx, w)
	}
	var r io.Reader = os.Stdin
	if fl.NArg() == 1 && fl.Arg(0) != "-" {
		f, err := os.Open(fl.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return idx.Load(ctx, r)
}

// activeCount is the classic active_count, or what V6.13+ says instead.
func activeCount(g fdfs.GroupStat) int64 {
	if g.ActiveCount > 0 {
		return g.ActiveCount
	}
	return g.ReadableServerCount
}

func printReport(r index.Report) {
	fmt.Printf("inodes: %d, reachable entries: %d\n", r.Inodes, r.Entries)
	for _, e := range r.Dangling {
		fmt.Printf("dangling name: %q in dir %d names missing inode %d\n", e.Name, e.Parent, e.Ino)
	}
	for _, e := range r.Misfiled {
		fmt.Printf("misfiled name: %q in dir %d (kind differs from inode %d)\n", e.Name, e.Parent, e.Ino)
	}
	for _, ino := range r.Unreachable {
		fmt.Printf("unreachable inode: %d\n", ino)
	}
	for _, n := range r.Nlink {
		fmt.Printf("link count: inode %d says %d, names found %d\n", n.Ino, n.Stored, n.Counted)
	}
	for _, ino := range r.Unmarked {
		fmt.Printf("unlinked inode not marked for purge: %d\n", ino)
	}
	for _, ino := range r.StaleOrphans {
		fmt.Printf("stale orphan mark: %d\n", ino)
	}
	fmt.Printf("orphans waiting for purge: %d\n", len(r.Orphans))
	for _, p := range r.Pending {
		fmt.Printf("pending FastDFS file: %s (%s)\n", p.FileID, map[index.PendingReason]string{index.PendingUpload: "upload never claimed", index.PendingDelete: "delete not yet done"}[p.Reason])
	}
	if !r.Damaged() {
		fmt.Println("ok")
	}
}

// setReadAhead raises the kernel's readahead for the mount. FUSE's INIT
// caps it at what the kernel offers (128 KiB), which makes a sequential read
// a stream of 128 KiB requests, each a round trip through the daemon; the
// mount's backing device info in sysfs can be raised afterwards (as root).
func setReadAhead(mountpoint string, bytes int64) error {
	var st syscall.Stat_t
	if err := syscall.Stat(mountpoint, &st); err != nil {
		return err
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(path, []byte(strconv.FormatInt(max(bytes>>10, 4), 10)), 0o644)
}
