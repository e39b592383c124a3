package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
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

// mountFlags are mount's flags: the index group (which holds the client
// group) and the mount's own. Every one of them is also an -o option (see
// applyOptions), so that an fstab line can say anything a command line can.
type mountFlags struct {
	indexFlags
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
	directIOSize int64
	noPassthru   bool
	acl          bool
	background   bool
	// adoptInterval re-adopts every group's files this often (0: never).
	adoptInterval time.Duration

	// Set by applyOptions from the kernel's options.
	readOnly, nonempty bool
	// Set by validate: --http-base by group.
	httpBaseURLs map[string]string
}

func (mf *mountFlags) register(fl *pflag.FlagSet) {
	mf.indexFlags.register(fl)
	fl.StringVar(&mf.cacheDir, "cache", "", "block cache and staging directory (default: CACHE/CLUSTER)")
	fl.Var(sizeFlag(&mf.cacheSize, 4<<30), "cache-size", "block cache size limit in bytes (K, M, G suffixes)")
	fl.Var(sizeFlag(&mf.writeBuffer, 32<<20), "write-buffer", "memory per file being written, in bytes (4 chunks of a quarter each)")
	fl.Var(sizeFlag(&mf.bufferSize, 64<<20), "buffer-size", "memory for write buffers across all files, in bytes; a file that finds it spent waits for its own uploads or is staged on disk; with another 128 MiB it is also the Go runtime's soft memory limit unless GOMEMLIMIT is set (0: neither)")
	fl.StringArrayVarP(&mf.options, "options", "o", nil, "mount options, comma-separated, repeatable: allow_other, ro, nonempty, fsname=NAME, and every flag here as name=value (a boolean as its bare name)")
	fl.BoolVar(&mf.debugFuse, "debug-fuse", false, "log every FUSE request")
	fl.StringVar(&mf.localData, "local-data", "", "data directory of the built-in local cluster, used when no tracker is configured (default: DATA/local)")
	fl.StringArrayVar(&mf.httpBase, "http-base", nil, "GROUP=URL of the nginx serving a group, for the user.fdfs.url attribute (repeatable)")
	fl.DurationVar(&mf.groupRefresh, "group-refresh", 30*time.Second, "how often the group list is re-read from the tracker")
	fl.DurationVar(&mf.sessionTTL, "session-ttl", 30*time.Second, "shared index: how long after its last heartbeat this mount counts as dead, and other hosts delete its unclaimed uploads and purge the files it held open")
	fl.DurationVar(&mf.attrTimeout, "attr-timeout", time.Second, "how long the kernel may cache names and attributes (a shared index also sends change notices)")
	fl.Var(sizeFlag(&mf.readAhead, 4<<20), "read-ahead", "kernel readahead for the mount in bytes, set through /sys/class/bdi when fdfsfs may write there (0: the kernel's default)")
	fl.StringVar(&mf.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9567)")
	fl.DurationVar(&mf.storeReuse, "store-reuse", time.Second, "how long the tracker's choice of storage for new files of a group serves further uploads (0: ask for every file, as the C client does)")
	fl.DurationVar(&mf.storageList, "storage-list-ttl", 10*time.Second, "how long a group's storage list from the tracker lets reads and changes go straight to the storage a file ID names (0: ask the tracker for every file, as the C client does)")
	fl.BoolVar(&mf.directIO, "direct-io", false, "read files without the kernel page cache: faster for large files read once in large blocks, much slower for small reads, and no second read from memory")
	fl.Var(sizeFlag(&mf.directIOSize, 64<<20), "direct-io-size", "files at least this large opened read-only are read without the kernel page cache (unless it holds their pages, or passthrough serves them): faster for one large sequential read, a round trip per small read (0: never)")
	fl.BoolVar(&mf.noPassthru, "no-passthrough", false, "read every file through the mount, never with FUSE passthrough from the block cache (passthrough needs root and Linux 6.9 or later, and is otherwise off by itself)")
	fl.BoolVar(&mf.acl, "acl", false, "POSIX ACLs, kept in the index and enforced by the kernel (setfacl, getfacl, cp -a and rsync -aA keep them); ls -l then asks the mount for every file's ACL, which makes it several times slower")
	fl.DurationVar(&mf.adoptInterval, "adopt-interval", 0, "re-adopt every group's files into the by-ID tree this often, as index adopt does (0: off)")
	fl.BoolVar(&mf.background, "background", false, "go to the background once the mount is ready (mount(8) helper mode does this)")
}

// memoryBeyondBuffers is the mount's memory besides its write buffers,
// for the soft memory limit: the block cache's buffers (its memory tier,
// fetches, the store queue) and the index's tables, about 128 MiB.
const memoryBeyondBuffers = 128 << 20

func runMount(ctx context.Context, args []string) error {
	fl := flagSet("mount")
	var mf mountFlags
	mf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("want one MOUNTPOINT")
	}
	// Bad options fail here, before a background child is started.
	mo, err := mf.applyOptions(fl)
	if err != nil {
		return err
	}
	if err := mf.validate(); err != nil {
		return err
	}
	if mf.background {
		return daemonize(append([]string{"mount"}, args...))
	}
	err = mountAndServe(ctx, &mf, mo, fl.Arg(0), changedFlags(fl))
	notifyReady(err)
	return err
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

// validate checks the flags that no flag type checks, so that a bad value
// fails before anything starts.
func (mf *mountFlags) validate() error {
	if mf.storeReuse < 0 {
		return fmt.Errorf("--store-reuse %v: negative", mf.storeReuse)
	}
	if mf.storageList < 0 {
		return fmt.Errorf("--storage-list-ttl %v: negative", mf.storageList)
	}
	if mf.bufferSize < 0 {
		return fmt.Errorf("--buffer-size %d: negative", mf.bufferSize)
	}
	if mf.sessionTTL < time.Second {
		return fmt.Errorf("--session-ttl %v: want at least 1s", mf.sessionTTL)
	}
	mf.httpBaseURLs = map[string]string{}
	for _, hb := range mf.httpBase {
		g, u, ok := strings.Cut(hb, "=")
		if !ok || g == "" || !strings.HasPrefix(u, "http") {
			return fmt.Errorf("--http-base %q: want GROUP=http://host:port", hb)
		}
		mf.httpBaseURLs[g] = u
	}
	return nil
}

// startLocalCluster starts the built-in cluster, for a mount that has no
// tracker configured.
func (mf *mountFlags) startLocalCluster(log *slog.Logger) (*localcluster.Cluster, error) {
	dir := mf.localData
	if dir == "" {
		dir = filepath.Join(dataDir(), "local")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	local, err := localcluster.Start(localcluster.Options{Groups: groupNames(3), DataDir: dir, Logger: log.With("component", "local-cluster")})
	if err != nil {
		return nil, fmt.Errorf("starting the local cluster: %w", err)
	}
	log.Info("no tracker configured (--tracker, --conf or "+defaultClientConf+"): "+
		"started the built-in local FastDFS cluster on loopback", "tracker", local.TrackerAddr(), "data", dir)
	return local, nil
}

// mountAndServe wires the mount together (FastDFS client, index, cache,
// the FUSE file system) and serves it until it is unmounted or ctx ends.
func mountAndServe(ctx context.Context, mf *mountFlags, mo fuse.MountOptions, mountpoint string, settings []any) (err error) {
	if err := checkMountpoint(mountpoint, mf.nonempty); err != nil {
		return err
	}
	log := mf.logger()
	cfg, ok, err := mf.config()
	if err != nil {
		return err
	}
	cfg.StoreReuse = mf.storeReuse
	cfg.StorageListTTL = mf.storageList
	if mf.bufferSize > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// The write buffers are bounded; what lets the heap grow past
		// them is the collector's headroom (GOGC doubles the live heap
		// before it runs). A soft limit of the buffers plus what the
		// block cache and the index keep makes it collect sooner under
		// load instead.
		debug.SetMemoryLimit(mf.bufferSize + memoryBeyondBuffers)
	}
	key := "local"
	if ok {
		key = clusterKey(cfg.Trackers)
	} else {
		local, err := mf.startLocalCluster(log)
		if err != nil {
			return err
		}
		defer local.Close()
		cfg.Trackers = []string{local.TrackerAddr()}
	}
	metaURL, err := metaURLOf(mf.meta, mf.dir, key)
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
	readOnly := mf.readOnly
	session := mountSession(mountpoint)
	idx, err := index.Open(ctx, metaURL, index.OpenOptions{Logger: log.With("component", "index"), ReadOnly: readOnly, Session: session, NetworkTimeout: cfg.NetworkTimeout})
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
		DirectIOSize:  mf.directIOSize,
		Passthrough:   !mf.noPassthru,
		ACLs:          mf.acl,
		Shared:        index.Shared(metaURL),
		Session:       session,
		SessionTTL:    mf.sessionTTL,
		GroupRefresh:  mf.groupRefresh,
		HTTPBase:      mf.httpBaseURLs,
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
		// A mode of 0000 is a real mode: without this go-fuse shows it
		// as 0644 (0755 for a directory), and the kernel, which enforces
		// what it is shown, would let others read a file chmod 0 closed.
		NullPermissions: true,
	})
	raw = fs.IgnoreInterrupts(raw)
	raw = fs.KillPrivileges(raw)
	mo.ExtraCapabilities |= fs.KillPrivilegesCapability
	if mf.acl {
		raw = fs.EnableACLs(raw, &mo)
	}
	if mf.directIO || mf.directIOSize > 0 {
		// Shared maps of files opened with FOPEN_DIRECT_IO (otherwise
		// ENODEV); the kernel then keeps them coherent itself.
		mo.ExtraCapabilities |= fuse.CAP_DIRECT_IO_ALLOW_MMAP
	}
	if !mf.noPassthru {
		raw = fs.PassthroughGuard(raw)
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
	fsys.EnablePassthrough(server)
	if mf.readAhead > 0 {
		if err := setReadAhead(mountpoint, mf.readAhead); err != nil {
			log.Info("kernel readahead left at its default", "err", err)
		}
	}
	if mf.adoptInterval > 0 && !mf.readOnly {
		defer startAdoptLoop(ctx, mf.adoptInterval, client, idx, log)()
	}
	log.Info("mounted", "mountpoint", mountpoint, "trackers", cfg.Trackers, "index", redactURL(metaURL), "cache", cacheRoot, slog.Group("set", settings...))
	notifyReady(nil)

	stop := unmountOnCancel(ctx, server, log)
	server.Wait()
	stop()
	log.Info("unmounted", "mountpoint", mountpoint)
	return nil
}

// unmountOnCancel unmounts server once ctx ends (SIGINT, SIGTERM), retrying
// while the mount is busy, until the returned stop is called.
func unmountOnCancel(ctx context.Context, server *fuse.Server, log *slog.Logger) (stop func()) {
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
	return func() { close(done) }
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
