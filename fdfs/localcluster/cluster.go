package localcluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"fdfsfs/fdfs"
)

// Options configure a cluster. The zero value is a usable cluster: one
// tracker, three groups of one storage each, data in a temp dir.
type Options struct {
	Groups           []string // default group1, group2, group3
	StoragesPerGroup int      // default 1; 2 or more copy new files to each other in the background
	Trackers         int      // default 1; more trackers share one view (for failover tests)

	// DataDir holds the storages' files. Empty means a temp dir removed by
	// Close; otherwise files persist and are served again after a restart.
	DataDir string

	TrackerPort     int // 0 = a free port; further trackers use TrackerPort+1, ... when set
	StorageBasePort int // 0 = free ports; else BasePort, BasePort+1, ... in group order

	// StorageIDs gives the storages server ids, as upstream's
	// use_storage_id = true with id_type_in_filename = id does: the n-th
	// storage (from 0, in group order) is 100001+n, new file names carry
	// that id instead of the IP address, and LIST_STORAGE reports it as
	// the storage's id. Without it every storage's id is its address,
	// 127.0.0.1, which names carry too, so a client cannot tell the storages
	// of a group apart by a name.
	StorageIDs bool

	// Layout picks the record layouts of list groups and list storages, and
	// with them the width of address fields (IPv6 layouts use 46 bytes).
	Layout fdfs.StatLayout

	// TotalMB and FreeMB are the capacity each storage reports. Zero means
	// what statfs says about the data dir's filesystem.
	TotalMB, FreeMB int64

	Logger *slog.Logger // nil = discard
}

// Cluster is an in-process FastDFS cluster: trackers and storage servers,
// each on its own 127.0.0.1 port, speaking the V6.16.1 protocol.
//
// Lock order: server.mu, then Cluster.mu. Cluster.mu is never held across I/O.
type Cluster struct {
	opts      Options
	log       *slog.Logger
	dir       string
	removeDir bool
	ipSize    int // width of address fields in query and file-info responses
	created   time.Time

	trackers []*tracker
	groups   []*group // sorted by name, as the tracker's sorted_groups
	storages []*Storage

	mu          sync.Mutex      // guards the fields below
	failures    map[byte][]byte // FailNext statuses, oldest first
	delay       time.Duration
	full        map[string]bool
	writeGroup  int // round robin over groups for uploads without a group
	syncPaused  bool
	closed      bool
	syncChanged chan struct{} // closed and replaced when syncPaused or a storage state changes
}

// group is one storage group as the trackers see it.
type group struct {
	name     string
	storages []*Storage

	// Guarded by Cluster.mu.
	writeServer int // round robin over storages for uploads
	readServer  int // round robin over storages for downloads
}

// Start creates the cluster, opens the data dir and starts every server.
func Start(opts Options) (*Cluster, error) {
	if len(opts.Groups) == 0 {
		opts.Groups = []string{"group1", "group2", "group3"}
	}
	if opts.StoragesPerGroup <= 0 {
		opts.StoragesPerGroup = 1
	}
	if opts.StoragesPerGroup > fdfs.FdfsMaxServersEachGroup {
		return nil, fmt.Errorf("localcluster: %d storages per group, at most %d", opts.StoragesPerGroup, fdfs.FdfsMaxServersEachGroup)
	}
	if opts.Trackers <= 0 {
		opts.Trackers = 1
	}
	seen := map[string]bool{}
	for _, g := range opts.Groups {
		if g == "" || len(g) > fdfs.FdfsGroupNameMaxLen || fdfsValidateName(g) != nil {
			return nil, fmt.Errorf("localcluster: invalid group name %q", g)
		}
		if seen[g] {
			return nil, fmt.Errorf("localcluster: group %q twice", g)
		}
		seen[g] = true
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{
		opts:        opts,
		log:         log,
		dir:         opts.DataDir,
		ipSize:      ipSizeOf(opts.Layout),
		created:     time.Now(),
		failures:    make(map[byte][]byte),
		full:        make(map[string]bool),
		syncChanged: make(chan struct{}),
	}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "localcluster-")
		if err != nil {
			return nil, err
		}
		c.dir, c.removeDir = d, true
	}
	if err := c.build(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) build() error {
	names := append([]string(nil), c.opts.Groups...)
	sort.Strings(names)
	port := c.opts.StorageBasePort
	for _, name := range names {
		g := &group{name: name}
		c.groups = append(c.groups, g)
		for i := 0; i < c.opts.StoragesPerGroup; i++ {
			st, err := newStorage(c, g, i, port)
			if err != nil {
				return err
			}
			if port != 0 {
				port++
			}
			if c.opts.StorageIDs {
				st.serverID = firstServerID + uint32(len(c.storages))
			}
			g.storages = append(g.storages, st)
			c.storages = append(c.storages, st)
		}
	}
	for _, st := range c.storages {
		st.startReplication()
		if err := st.srv.start(); err != nil {
			return err
		}
	}
	for i := 0; i < c.opts.Trackers; i++ {
		port := 0
		if c.opts.TrackerPort != 0 {
			port = c.opts.TrackerPort + i
		}
		t := newTracker(c, i, port)
		c.trackers = append(c.trackers, t)
		if err := t.srv.start(); err != nil {
			return err
		}
	}
	return nil
}

// TrackerAddr returns the first tracker's address, "127.0.0.1:port".
func (c *Cluster) TrackerAddr() string { return c.trackers[0].srv.addr() }

// TrackerAddrs returns every tracker's address.
func (c *Cluster) TrackerAddrs() []string {
	out := make([]string, len(c.trackers))
	for i, t := range c.trackers {
		out[i] = t.srv.addr()
	}
	return out
}

// StopTracker closes tracker i's listener and connections.
func (c *Cluster) StopTracker(i int) { c.trackers[i].srv.stop() }

// StartTracker listens again on tracker i's port.
func (c *Cluster) StartTracker(i int) error { return c.trackers[i].srv.start() }

// Storages returns every storage server, in group order.
func (c *Cluster) Storages() []*Storage { return append([]*Storage(nil), c.storages...) }

// FailNext makes the next request with cmd, at any server, get status and an
// empty body. The request itself is read and dropped. Calls queue up.
func (c *Cluster) FailNext(cmd byte, status byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures[cmd] = append(c.failures[cmd], status)
}

func (c *Cluster) takeFailure(cmd byte) (byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.failures[cmd]
	if len(q) == 0 {
		return 0, false
	}
	if len(q) == 1 {
		delete(c.failures, cmd)
	} else {
		c.failures[cmd] = q[1:]
	}
	return q[0], true
}

// SetDelay delays every response by d (0 turns it off).
func (c *Cluster) SetDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay = d
}

func (c *Cluster) responseDelay() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delay
}

// DropConnections closes every open connection at every server now. The
// servers keep listening.
func (c *Cluster) DropConnections() {
	for _, t := range c.trackers {
		t.srv.dropConnections()
	}
	for _, st := range c.storages {
		st.srv.dropConnections()
	}
}

// SetFull makes a group report no free space: the trackers stop offering it
// for uploads and its storages answer uploads and appends with ENOSPC (28).
func (c *Cluster) SetFull(group string, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if full {
		c.full[group] = true
	} else {
		delete(c.full, group)
	}
}

func (c *Cluster) isFull(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.full[group]
}

// PauseReplication holds replication between storages (for tests that need
// a file to be on one storage only for a while); false resumes it.
func (c *Cluster) PauseReplication(paused bool) {
	c.mu.Lock()
	c.syncPaused = paused
	c.mu.Unlock()
	c.stateChanged()
}

// stateChanged wakes replicators waiting for a storage to come back or for
// replication to resume.
func (c *Cluster) stateChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.syncChanged)
	c.syncChanged = make(chan struct{})
}

// syncState reports whether replication is paused and returns a channel
// closed at the next change.
func (c *Cluster) syncState() (paused bool, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncPaused || c.closed, c.syncChanged
}

// Close stops every server, waits for their connections and replication,
// and removes the data dir if Start made it.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.stateChanged()
	for _, t := range c.trackers {
		t.srv.stop()
	}
	for _, st := range c.storages {
		st.srv.stop()
	}
	for _, st := range c.storages {
		st.stopReplication()
	}
	var err error
	for _, st := range c.storages {
		if st.binlog != nil {
			err = errors.Join(err, st.binlog.Close())
		}
	}
	if c.removeDir {
		err = errors.Join(err, os.RemoveAll(c.dir))
	}
	return err
}

// capacity returns the total and free MB a storage reports.
func (c *Cluster) capacity(st *Storage) (total, free int64) {
	total, free = c.opts.TotalMB, c.opts.FreeMB
	if total == 0 || free == 0 {
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(st.dir, &sfs); err == nil {
			if total == 0 {
				total = int64(sfs.Blocks) * int64(sfs.Bsize) >> 20
			}
			if free == 0 {
				free = int64(sfs.Bavail) * int64(sfs.Bsize) >> 20
			}
		}
	}
	if c.isFull(st.g.name) {
		free = 0
	}
	return total, free
}

// reservedMB is the space upstream keeps free (reserved_storage_space, 10%
// in the captured cluster's configuration).
func reservedMB(total int64) int64 { return total / 10 }

func storageDir(root, group string, index int) string {
	return filepath.Join(root, group, fmt.Sprintf("storage%d", index))
}

// fdfsValidateName accepts what fdfs_validate_filename accepts: letters,
// digits, '-', '_' and '.'.
func fdfsValidateName(s string) error {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return syscall.EINVAL
		}
	}
	return nil
}
