// Package fs is the FUSE layer of fdfsfs: it turns the index (names), the
// block cache (local data) and a FastDFS backend (content) into POSIX
// behaviour.
//
// The tree: the root lists one directory per FastDFS group; everything under
// a group directory lives in the index, and each regular file's content is
// one FastDFS file in that group. Content is durable when close() or fsync()
// returns 0: the data is in FastDFS and the index points at it.
//
// This package never talks the wire protocol itself (that is fdfs/) and never
// lays out keys (that is index/).
//
// Lock order, where more than one is taken: PassthroughGuard's lock of an
// inode (around a whole open or release, so across a release's commit as
// wmu is; only opens of that inode wait for it), then fileNode.wmu, then
// fileNode.mu, then FS.mu; pipeline.mu, uploads.mu, listings.mu and
// dirListing.mu are leaves. go-fuse asks a passthrough handle for its
// backing file with its own lock held, and that takes fileNode.mu. No lock
// but wmu and the guard's is ever held across network I/O; both only order
// one file's own work.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/cache"
	"fdfsfs/index"
)

// GroupInfo is what the root directory needs to know of a FastDFS group.
type GroupInfo struct {
	Name    string
	TotalMB int64
	FreeMB  int64
	// StorePaths is the number of store paths (M00, M01, ...) the group's
	// storages have; only those names start by-ID paths.
	StorePaths int
}

// Backend is the FastDFS cluster as the FUSE layer uses it. NewBackend
// adapts *fdfs.Client; tests may wrap it to inject faults.
type Backend interface {
	Groups(ctx context.Context) ([]GroupInfo, error)
	// Upload stores size bytes from r as a new file in group; appender files
	// can later be modified in place.
	Upload(ctx context.Context, group, ext string, r io.Reader, size int64, appender bool) (fileID string, err error)
	Modify(ctx context.Context, fileID string, off int64, r io.Reader, size int64) error
	Truncate(ctx context.Context, fileID string, size int64) error
	// Download writes length bytes from off (0 < length, off+length <= size).
	Download(ctx context.Context, fileID string, off, length int64, w io.Writer) (int64, error)
	Delete(ctx context.Context, fileID string) error
	// FileSize asks the storage for a file's size (for by-ID paths).
	FileSize(ctx context.Context, fileID string) (int64, error)
	GetMetadata(ctx context.Context, fileID string) (map[string]string, error)
	SetMetadata(ctx context.Context, fileID string, meta map[string]string, merge bool) error
}

// Options configure a mount.
type Options struct {
	Backend Backend
	Index   index.Index
	Cache   *cache.Cache
	// WriteChunk is the size of one streamed upload request, and
	// WriteInflight how many may be queued per file: a file being written
	// holds at most WriteChunk*(WriteInflight+1) bytes of memory.
	WriteChunk    int
	WriteInflight int
	ReadOnly      bool
	// DirectIO opens files for reading without the kernel's page cache
	// (FOPEN_DIRECT_IO): each read(2) is a FUSE read answered from the
	// block cache. A large file read once streams with one copy less and
	// evicts nothing; small reads each pay a round trip, and a second
	// read is not served from memory. Opens for writing are unchanged.
	// The mount should then offer fuse.CAP_DIRECT_IO_ALLOW_MMAP, so that
	// such files can still be mapped shared.
	DirectIO bool
	// DirectIOSize, when positive, opens files of at least this many bytes
	// for reading with FOPEN_DIRECT_IO, unless the kernel holds pages of
	// their content or the open is a passthrough one: a large file read
	// once streams faster without the page cache, small files keep it.
	// CAP_DIRECT_IO_ALLOW_MMAP as for DirectIO.
	DirectIOSize int64
	// Passthrough lets a read-only open of a file whose content is
	// complete in the block cache be answered with FUSE passthrough (see
	// passthrough.go), once EnablePassthrough found the kernel willing.
	// The mount wraps its file system in PassthroughGuard.
	Passthrough bool
	// ACLs keeps POSIX ACLs (system.posix_acl_*) and keeps the mode in
	// step with them; the mount must then be given EnableACLs, so that the
	// kernel enforces them. Without it they answer ENOTSUP, as other
	// system.* names do, and the mount must not be given EnableACLs.
	ACLs bool
	// GroupRefresh is how often the root re-reads the tracker's group list.
	GroupRefresh time.Duration
	// HTTPBase maps a group to the nginx base URL serving it, for the
	// user.fdfs.url attribute.
	HTTPBase map[string]string
	Logger   *slog.Logger
	// Shared says other mount hosts use the same index. Their open
	// handles and uploads in progress are invisible here, so a writable
	// mount then registers Session in the index, keeps it alive with a
	// heartbeat, and holds (index.Hold) the files it has open when it
	// unlinks their last name; the sweeps leave alone another host's
	// unclaimed uploads and held orphans until that host's session expires.
	Shared bool
	// Session is the name the index writes into this mount's journal
	// entries (index.Pending.Session), and this mount's session.
	Session string
	// SessionTTL is how long the session outlives its last heartbeat
	// (default 30 s); the heartbeat comes every third of it.
	SessionTTL time.Duration
	// WriteBudget bounds the memory of write buffers across all files
	// (--buffer-size); 0 or less: no bound. A file that finds it spent
	// waits for its own chunks in flight, or is staged on disk instead.
	WriteBudget int64
}

// FS is one mounted tree.
type FS struct {
	opts  Options
	log   *slog.Logger
	be    Backend
	idx   index.Index
	cache *cache.Cache

	mu sync.Mutex
	// open counts open handles per inode (guarded by mu), so that an
	// unlinked file's content outlives its last name until its last close.
	open map[index.Ino]int
	// groups is the tracker's last answer (guarded by mu).
	groups   map[string]GroupInfo
	groupsOK bool
	// held are the inodes this mount holds in a shared index (guarded by
	// mu): open here when their last name went.
	held map[index.Ino]bool
	// recheck are the inodes that may have lost a name here while open
	// (guarded by mu): their last close asks the index whether to purge
	// them. Every other close skips that read, which would otherwise run
	// beside the kernel's getattr of the parent after each create.
	recheck map[index.Ino]bool
	// sessions is true once the session is registered (shared, writable).
	sessions bool
	// steadySince is when this mount's heartbeats last began to succeed
	// without a failure since (Unix nanoseconds; 0 while they fail). See
	// judgesOthers.
	steadySince atomic.Int64
	// judging is what the last sweep found judgesOthers to say, for its
	// log line on a change; only the sweeping goroutine uses it.
	judging bool
	// nodes finds the kernel's inodes for change notices (notify.go).
	nodes nodeTable
	// uploads owns this mount's new FastDFS files until a name claims
	// them (upload.go).
	uploads *uploads
	// chunks are WriteChunk-sized buffers for streamed writes.
	chunks sync.Pool
	// listings are the directories whose listing is kept for reading
	// their small files ahead (prefetch.go).
	listings listings
	// budget bounds the chunks handed out (Options.WriteBudget).
	budget *writeBudget
	// passthrough is FUSE passthrough's state (passthrough.go).
	passthrough passthrough

	stop chan struct{}
	wg   sync.WaitGroup
}

// New builds the file system; Root returns its root node for fusefs.Mount.
func New(ctx context.Context, opts Options) (*FS, error) {
	if opts.Backend == nil || opts.Index == nil || opts.Cache == nil {
		return nil, errors.New("fs: Backend, Index and Cache are required")
	}
	if opts.WriteChunk <= 0 {
		opts.WriteChunk = 8 << 20
	}
	if opts.WriteInflight <= 0 {
		opts.WriteInflight = 3
	}
	if opts.GroupRefresh <= 0 {
		opts.GroupRefresh = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 30 * time.Second
	}
	f := &FS{
		opts:    opts,
		log:     opts.Logger,
		be:      opts.Backend,
		idx:     opts.Index,
		cache:   opts.Cache,
		open:    make(map[index.Ino]int),
		held:    make(map[index.Ino]bool),
		recheck: make(map[index.Ino]bool),
		groups:  make(map[string]GroupInfo),
		stop:    make(chan struct{}),
		uploads: newUploads(opts.Backend, opts.Index, opts.Logger),
		budget:  newWriteBudget(opts.WriteBudget),
	}
	f.passthrough.filling = make(chan struct{}, 1)
	if err := f.refreshGroups(ctx); err != nil {
		// The index still serves names and attributes; content waits for
		// the tracker to come back.
		f.log.Warn("tracker unreachable at mount; serving names from the index", "err", err)
	}
	if opts.Shared && !opts.ReadOnly {
		if opts.Session == "" {
			return nil, errors.New("fs: a shared index needs a Session")
		}
		if _, err := f.idx.RegisterSession(ctx, opts.Session, opts.SessionTTL); err != nil {
			return nil, fmt.Errorf("registering the mount session: %w", err)
		}
		f.sessions = true
		f.steadySince.Store(time.Now().UnixNano())
		f.wg.Add(1)
		go f.heartbeat()
	}
	if !opts.ReadOnly {
		f.recover(ctx)
	}
	f.wg.Add(1)
	go f.refreshLoop()
	if changes := opts.Index.Changes(); changes != nil {
		f.nodes.on = true
		f.wg.Add(1)
		go f.watchChanges(changes)
	}
	return f, nil
}

// Root is the node to mount.
func (f *FS) Root() fusefs.InodeEmbedder { return &rootNode{fs: f} }

// Close stops background loops and ends the session. The caller closes
// the index and cache.
func (f *FS) Close() {
	select {
	case <-f.stop:
		return
	default:
		close(f.stop)
	}
	f.wg.Wait()
	if f.sessions {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.idx.EndSession(ctx, f.opts.Session); err != nil {
			f.log.Warn("ending the mount session", "session", f.opts.Session, "err", err)
		}
	}
}

// heartbeat keeps the session alive: every third of the TTL, so that one
// or two lost beats do not expire it.
func (f *FS) heartbeat() {
	defer f.wg.Done()
	every := f.opts.SessionTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		was, err := f.idx.RegisterSession(ctx, f.opts.Session, f.opts.SessionTTL)
		cancel()
		f.beaten(was, err, time.Now())
	}
}

// beaten records a heartbeat's outcome. A failed beat, or one that finds
// this mount's own session expired, means the index was out of reach (a
// Redis failover with Sentinel's default down-after of 30 s outlasts the
// default TTL), and then every other host's beats failed too: their
// sessions are not to be judged dead until they have had a TTL to beat
// again (judgesOthers).
func (f *FS) beaten(was bool, err error, now time.Time) {
	switch {
	case err != nil:
		f.steadySince.Store(0)
		f.log.Warn("session heartbeat failed", "session", f.opts.Session, "err", err)
	case !was:
		f.steadySince.Store(now.UnixNano())
		f.log.Error("the mount session had expired before its heartbeat: other hosts may have deleted this mount's uploads in progress and purged files it holds open",
			"session", f.opts.Session, "ttl", f.opts.SessionTTL)
	case f.steadySince.Load() == 0:
		f.steadySince.Store(now.UnixNano())
	}
}

// judgesOthers reports whether this mount may take another host's
// expired session for a dead host: only once its own heartbeats have
// succeeded for a whole TTL without a failure, so that after an outage of
// the index (which expired every session alike) the live hosts have had
// their turn to beat again. Until then the sweep leaves other sessions'
// uploads and held files alone.
func (f *FS) judgesOthers() bool {
	since := f.steadySince.Load()
	return since != 0 && time.Since(time.Unix(0, since)) >= f.opts.SessionTTL
}

func (f *FS) refreshLoop() {
	defer f.wg.Done()
	t := time.NewTicker(f.opts.GroupRefresh)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := f.refreshGroups(ctx); err != nil {
				f.log.Warn("group refresh failed", "err", err)
			}
			f.sweep(ctx)
			cancel()
		}
	}
}

// refreshGroups reads the tracker's group list and makes sure each group has
// a directory in the index, so that its inode number is stable.
func (f *FS) refreshGroups(ctx context.Context) error {
	gs, err := f.be.Groups(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]GroupInfo, len(gs))
	for _, g := range gs {
		m[g.Name] = g
		if !f.opts.ReadOnly {
			if _, err := f.groupDir(ctx, g.Name); err != nil {
				f.log.Warn("cannot record group directory", "group", g.Name, "err", err)
			}
		}
	}
	f.mu.Lock()
	f.groups = m
	f.groupsOK = true
	f.mu.Unlock()
	return nil
}

// groupDir returns the index directory for a group, creating it on first
// sight.
func (f *FS) groupDir(ctx context.Context, group string) (index.Attr, error) {
	a, err := f.idx.Lookup(ctx, index.RootIno, group)
	if err == nil || !errors.Is(err, index.ErrNotFound) {
		return a, err
	}
	now := time.Now()
	a, err = f.idx.Create(ctx, index.RootIno, group, index.Attr{
		Kind: index.KindDir, Mode: 0o777, Atime: now, Mtime: now, Ctime: now,
	})
	if errors.Is(err, index.ErrExists) {
		return f.idx.Lookup(ctx, index.RootIno, group)
	}
	return a, err
}

// isStorePathOf reports whether name is one of group's store paths (M00 up
// to its store path count; M00 alone when the count is not known), so that
// other names such as M01 stay free for files and directories.
func (f *FS) isStorePathOf(group, name string) bool {
	if !isStorePath(name) {
		return false
	}
	count := 1
	if g, ok := f.groupInfo(group); ok && g.StorePaths > 0 {
		count = g.StorePaths
	}
	var idx int
	fmt.Sscanf(name[1:], "%X", &idx)
	return idx < count
}

func (f *FS) groupInfo(name string) (GroupInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[name]
	return g, ok
}

// recover finishes what a crash interrupted: orphaned inodes are purged and
// FastDFS files in the journal (uploads never claimed, deletes never done)
// are deleted. With a shared index, what a live session holds or is still
// uploading stays.
//
// On a shared index a mount just started does not yet judge other hosts'
// sessions (judgesOthers): their orphans wait for a later sweep.
func (f *FS) recover(ctx context.Context) {
	if !f.opts.Shared || f.judgesOthers() {
		f.purgeOrphans(ctx)
	}
	f.sweepPending(ctx)
}

// sweep is the periodic recovery: on a shared index it also finds what
// hosts whose session expired left behind (a single host's leftovers are
// all found at mount), and it settles the uploads of this mount that a
// failure left unsettled (uploads.retry).
func (f *FS) sweep(ctx context.Context) {
	if f.opts.ReadOnly {
		return
	}
	if f.opts.Shared {
		judging := f.judgesOthers()
		if judging != f.judging {
			f.judging = judging
			if judging {
				f.log.Info("heartbeats steady for a session TTL: sweeps now take other hosts' expired sessions for dead", "ttl", f.opts.SessionTTL)
			} else {
				f.log.Warn("heartbeats failed: sweeps leave other hosts' sessions alone until this mount's own have been steady for a session TTL", "ttl", f.opts.SessionTTL)
			}
		}
		if judging {
			f.purgeOrphans(ctx)
		}
	}
	f.sweepPending(ctx)
	f.uploads.retry(ctx)
}

// purgeOrphans purges the orphans no handle of this mount holds open. The
// index refuses those a live session of another host holds (ErrBusy); a
// purged inode's content goes into the journal, which sweepPending then
// deletes.
func (f *FS) purgeOrphans(ctx context.Context) {
	orphans, err := f.idx.Orphans(ctx)
	if err != nil {
		f.log.Warn("listing orphans", "err", err)
		return
	}
	for _, ino := range orphans {
		f.mu.Lock()
		busy := f.open[ino] > 0
		f.mu.Unlock()
		if busy {
			continue
		}
		err := f.idx.Purge(ctx, ino)
		switch {
		case errors.Is(err, index.ErrBusy):
			f.log.Debug("orphan held open by a live session", "ino", ino, "err", err)
		case err != nil:
			f.log.Warn("purging orphan", "ino", ino, "err", err)
		default:
			f.dropHeld(ino)
		}
	}
}

// sweepPending deletes the FastDFS files the journal says are due. Uploads
// still in progress in this process are skipped.
//
// An upload is marked in progress before it enters the journal and stays
// marked until after the commit that claims it (and removes its entry), so
// the journal is read a second time after the marks were checked: an entry
// that was unmarked then and is still there is abandoned, never one that a
// commit claimed in between.
func (f *FS) sweepPending(ctx context.Context) {
	ps, err := f.idx.ListPending(ctx)
	if err != nil {
		f.log.Warn("listing pending files", "err", err)
		return
	}
	due := make(map[string]bool, len(ps))
	for _, p := range ps {
		due[p.FileID] = p.Reason != index.PendingUpload || !f.uploads.inProgress(p.FileID)
	}
	if ps, err = f.idx.ListPending(ctx); err != nil {
		f.log.Warn("listing pending files", "err", err)
		return
	}
	alive := make(map[string]bool)
	for _, p := range ps {
		if !due[p.FileID] {
			continue
		}
		if p.Reason == index.PendingUpload && f.opts.Shared && p.Session != f.opts.Session {
			// Another host's upload: perhaps still running, unless
			// that host's session has expired.
			if !f.judgesOthers() {
				f.log.Debug("sweep: another session's upload left alone until this mount's heartbeats are steady", "file_id", p.FileID, "session", p.Session)
				continue
			}
			live, seen := alive[p.Session]
			if !seen {
				var err error
				if live, err = f.idx.SessionAlive(ctx, p.Session); err != nil {
					f.log.Warn("asking whether a session is alive", "session", p.Session, "err", err)
					live = true
				}
				alive[p.Session] = live
			}
			if live {
				f.log.Debug("sweep: an upload of a live session left alone", "file_id", p.FileID, "session", p.Session)
				continue
			}
			f.takeAbandoned(ctx, p)
			continue
		}
		f.deleteRemote(ctx, p.FileID)
	}
}

// takeAbandoned deletes an upload of an expired session. The journal
// entry goes first, in a transaction that fails if the upload's owner
// claimed it meanwhile; once it is gone the owner's claim fails (ErrLost),
// so no name ever points at the deleted file. If the delete fails, the
// file goes back into the journal, to be deleted.
func (f *FS) takeAbandoned(ctx context.Context, p index.Pending) {
	if err := f.idx.RemovePending(ctx, p.FileID); err != nil {
		if !errors.Is(err, index.ErrNotFound) {
			f.log.Warn("taking an abandoned upload from the journal", "file_id", p.FileID, "err", err)
		}
		return
	}
	f.log.Info("deleting an upload of an expired session", "file_id", p.FileID, "session", p.Session)
	err := f.be.Delete(ctx, p.FileID)
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return
	}
	f.log.Warn("deleting FastDFS file; will retry", "file_id", p.FileID, "err", err)
	if err := f.idx.AddPending(ctx, index.Pending{FileID: p.FileID, Reason: index.PendingDelete}); err != nil {
		f.log.Warn("journalling an upload to delete", "file_id", p.FileID, "err", err)
	}
}

// deleteRemote deletes a FastDFS file whose journal entry says it is due and
// drops the entry. A file already gone counts as deleted.
func (f *FS) deleteRemote(ctx context.Context, fileID string) {
	err := f.be.Delete(ctx, fileID)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		f.log.Warn("deleting FastDFS file; will retry", "file_id", fileID, "err", err)
		return
	}
	if err := f.idx.RemovePending(ctx, fileID); err != nil {
		f.log.Warn("dropping journal entry", "file_id", fileID, "err", err)
	}
}

// purgeIfUnused removes an inode whose last name is gone once no handle
// holds it open, and deletes its content. A hold this mount no longer
// needs (the inode got a name back, or no handle is left) is dropped.
func (f *FS) purgeIfUnused(ctx context.Context, a index.Attr) {
	f.mu.Lock()
	busy := f.open[a.Ino] > 0
	held := f.held[a.Ino]
	if busy {
		f.recheck[a.Ino] = true
	}
	f.mu.Unlock()
	if busy {
		return
	}
	if a.Nlink > 0 {
		if held {
			if err := f.idx.Unhold(ctx, f.opts.Session, a.Ino); err != nil {
				f.log.Warn("dropping a hold", "ino", a.Ino, "err", err)
				return
			}
			f.dropHeld(a.Ino)
		}
		return
	}
	err := f.idx.Purge(ctx, a.Ino)
	switch {
	case errors.Is(err, index.ErrBusy):
		// Another host unlinked it while open there; it purges it.
		f.log.Debug("inode held open by another host", "ino", a.Ino, "err", err)
		return
	case err != nil:
		f.log.Warn("purging inode", "ino", a.Ino, "err", err)
		return
	}
	f.dropHeld(a.Ino)
	if a.FileID != "" {
		f.deleteRemote(ctx, a.FileID)
	}
}

// holdIfOpen records in a shared index that this mount holds child open,
// before an unlink or rename takes what may be its last name, so that no
// other host's sweep purges it while a handle here still reads it.
func (f *FS) holdIfOpen(ctx context.Context, child *fusefs.Inode) error {
	if !f.sessions || child == nil {
		return nil
	}
	ino := index.Ino(child.StableAttr().Ino)
	f.mu.Lock()
	need := f.open[ino] > 0 && !f.held[ino]
	f.mu.Unlock()
	if !need {
		return nil
	}
	if err := f.idx.Hold(ctx, f.opts.Session, ino); err != nil {
		return err
	}
	f.mu.Lock()
	f.held[ino] = true
	f.mu.Unlock()
	return nil
}

func (f *FS) dropHeld(ino index.Ino) {
	f.mu.Lock()
	delete(f.held, ino)
	f.mu.Unlock()
}

// fillAttr turns index attributes into FUSE attributes.
func fillAttr(a index.Attr, out *fuse.Attr) {
	out.Ino = uint64(a.Ino)
	out.Size = uint64(a.Size)
	if a.Kind == index.KindSymlink {
		// lstat(2) gives a link's size as its target's length; git and
		// tar compare it with what readlink returns.
		out.Size = uint64(len(a.Target))
	}
	out.Rdev = a.Rdev
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 20
	out.Nlink = a.Nlink
	out.Uid = a.Uid
	out.Gid = a.Gid
	out.Mode = modeOf(a.Kind) | a.Mode&0o7777
	out.SetTimes(&a.Atime, &a.Mtime, &a.Ctime)
}

func modeOf(k index.Kind) uint32 {
	switch k {
	case index.KindDir:
		return syscall.S_IFDIR
	case index.KindSymlink:
		return syscall.S_IFLNK
	case index.KindFIFO:
		return syscall.S_IFIFO
	case index.KindSocket:
		return syscall.S_IFSOCK
	case index.KindCharDev:
		return syscall.S_IFCHR
	case index.KindBlockDev:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// caller is the uid and gid of the process making a FUSE request.
func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}
