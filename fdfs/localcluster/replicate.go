package localcluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Replication between the storages of one group works like upstream's
// storage_sync: every change a client makes at a storage is appended to that
// storage's binlog, and one goroutine per peer replays the binlog onto the
// peer in order, remembering how far it got in a mark file. Replica changes
// are not logged again, so nothing bounces back.
//
// Replaying copies the file's current state rather than the bytes of each
// change, so a record that arrives late (or twice, after a crash between the
// copy and the mark) still leaves the peer with what the source has.
//
// binlog line: "<unix time> <op> <remote name>[ <old remote name>]\n"
const (
	opCreate   = 'C' // upload, appender upload, slave upload
	opAppend   = 'A'
	opModify   = 'M'
	opTruncate = 'T'
	opDelete   = 'D'
	opMeta     = 'U' // metadata set
	opRename   = 'R' // regenerate appender filename: new name, then old name
)

type binlogRecord struct {
	time int64
	op   byte
	name string
	old  string // opRename only
}

func (r binlogRecord) String() string {
	s := fmt.Sprintf("%d %c %s", r.time, r.op, r.name)
	if r.old != "" {
		s += " " + r.old
	}
	return s
}

func parseBinlogRecord(line string) (binlogRecord, error) {
	f := strings.Fields(line)
	if len(f) < 3 || len(f[1]) != 1 {
		return binlogRecord{}, fmt.Errorf("bad binlog line %q", line)
	}
	t, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return binlogRecord{}, fmt.Errorf("bad binlog line %q", line)
	}
	r := binlogRecord{time: t, op: f[1][0], name: f[2]}
	if r.op == opRename {
		if len(f) != 4 {
			return binlogRecord{}, fmt.Errorf("bad binlog line %q", line)
		}
		r.old = f[3]
	}
	return r, nil
}

// openBinlog opens the storage's binlog for appending and rebuilds, from the
// records, which files were created here (the tracker's QUERY_UPDATE names
// the source storage of a file).
func (st *Storage) openBinlog() error {
	p := filepath.Join(st.dir, "binlog")
	if data, err := os.ReadFile(p); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if line == "" {
				continue
			}
			rec, err := parseBinlogRecord(line)
			if err != nil {
				continue // a torn last line from a crash
			}
			st.noteSource(rec)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	st.binlog = f
	return nil
}

// noteSource keeps st.sources up to date; binMu is held.
func (st *Storage) noteSource(rec binlogRecord) {
	switch rec.op {
	case opCreate:
		st.sources[rec.name] = true
	case opDelete:
		delete(st.sources, rec.name)
	case opRename:
		if st.sources[rec.old] {
			delete(st.sources, rec.old)
			st.sources[rec.name] = true
		}
	}
}

// logChange records a client's change for the peers. A storage alone in
// its group keeps no binlog.
func (st *Storage) logChange(op byte, name, old string) {
	if st.binlog == nil {
		return
	}
	rec := binlogRecord{time: time.Now().Unix(), op: op, name: name, old: old}
	st.binMu.Lock()
	defer st.binMu.Unlock()
	st.noteSource(rec)
	if _, err := st.binlog.WriteString(rec.String() + "\n"); err != nil {
		st.srv.log.Error("binlog write", "err", err)
		return
	}
	close(st.binWake)
	st.binWake = make(chan struct{})
}

// isSource reports whether a file was created at this storage.
func (st *Storage) isSource(name string) bool {
	if st.binlog == nil {
		return true
	}
	st.binMu.Lock()
	defer st.binMu.Unlock()
	return st.sources[name]
}

func (st *Storage) binlogWake() <-chan struct{} {
	st.binMu.Lock()
	defer st.binMu.Unlock()
	return st.binWake
}

// startReplication starts one syncer per peer in the group.
func (st *Storage) startReplication() {
	if st.binlog == nil {
		return
	}
	st.syncStop = make(chan struct{})
	for _, peer := range st.g.storages {
		if peer == st {
			continue
		}
		st.syncWG.Add(1)
		go st.syncTo(peer)
	}
}

func (st *Storage) stopReplication() {
	if st.syncStop == nil {
		return
	}
	close(st.syncStop)
	st.syncWG.Wait()
	st.syncStop = nil
}

// syncTo replays this storage's binlog onto peer, forever.
func (st *Storage) syncTo(peer *Storage) {
	defer st.syncWG.Done()
	log := st.srv.log.With("peer", peer.srv.name)
	markPath := filepath.Join(st.dir, fmt.Sprintf("sync-to-%d.mark", peer.index))
	var off int64
	if b, err := os.ReadFile(markPath); err == nil {
		off, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	f, err := os.Open(filepath.Join(st.dir, "binlog"))
	if err != nil {
		log.Error("open binlog", "err", err)
		return
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		log.Error("seek binlog", "err", err)
		return
	}
	br := bufio.NewReader(f)
	var partial string
	for {
		wake := st.binlogWake()
		line, err := br.ReadString('\n')
		partial += line
		if err != nil {
			// At the end of the binlog: wait for the next record.
			select {
			case <-wake:
				continue
			case <-st.syncStop:
				return
			}
		}
		line, partial = partial, ""
		rec, perr := parseBinlogRecord(strings.TrimSuffix(line, "\n"))
		if perr == nil {
			if !st.waitSyncable(peer) {
				return
			}
			if err := st.apply(peer, rec); err != nil {
				log.Warn("replicate", "record", rec.String(), "err", err)
			}
		}
		off += int64(len(line))
		if err := os.WriteFile(markPath, []byte(strconv.FormatInt(off, 10)), 0o644); err != nil {
			log.Error("write sync mark", "err", err)
		}
	}
}

// waitSyncable blocks until both ends are up and replication is not paused.
// It reports false when the syncer must stop.
func (st *Storage) waitSyncable(peer *Storage) bool {
	for {
		paused, changed := st.c.syncState()
		if !paused && st.srv.isRunning() && peer.srv.isRunning() {
			return true
		}
		select {
		case <-changed:
		case <-st.syncStop:
			return false
		}
	}
}

// apply brings peer's copy of rec.name to this storage's current state.
func (st *Storage) apply(peer *Storage, rec binlogRecord) error {
	switch rec.op {
	case opDelete:
		err := peer.store.remove(rec.name)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return err
	case opRename:
		if peer.store.exists(rec.old) {
			if err := peer.store.rename(rec.old, rec.name); err != nil {
				return err
			}
		}
	}
	n, err := st.copyTo(peer, rec.name)
	if errors.Is(err, fs.ErrNotExist) {
		// Gone since: a later delete or rename record deals with it.
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now().Unix()
	st.stats.syncOutBytes.Add(n)
	peer.stats.syncInBytes.Add(n)
	peer.stats.lastSyncUpdate.Store(now)
	peer.stats.lastSyncedTimestamp.Store(rec.time)
	return nil
}

// copyTo installs this storage's current copy of name at peer. The source is
// read under its own file lock, so that a concurrent append is either all in
// or all out; the peer installs by rename, so its readers never see a torn
// file. The two locks are never held together.
func (st *Storage) copyTo(peer *Storage, name string) (int64, error) {
	src, err := st.store.path(name)
	if err != nil {
		return 0, err
	}
	unlock := st.store.lock(name)
	data, err := peer.store.stageCopy(src)
	unlock()
	if err != nil {
		return 0, err
	}
	return data.size, peer.store.install(name, data)
}
