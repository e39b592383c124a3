package localcluster

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"fdfsfs/fdfs"
)

// Storage is one storage server of the cluster.
type Storage struct {
	c     *Cluster
	g     *group
	index int // position in its group
	dir   string
	srv   *server
	store *store
	stats storageStats

	serverID uint32 // with Options.StorageIDs, else 0

	binMu    sync.Mutex    // guards binlog writes, binWake and sources
	binlog   *os.File      // nil when the storage is alone in its group
	binWake  chan struct{} // closed and replaced after each record
	sources  map[string]bool
	syncStop chan struct{}
	syncWG   sync.WaitGroup
}

// storageStats are the counters a storage reports through LIST_STORAGE
// (FDFSStorageStatBuff).
type storageStats struct {
	upload, appendFile, modify, truncate, setMeta, deleteFile, download, getMeta counter
	uploadBytes, appendBytes, modifyBytes, downloadBytes                         counter
	fileOpen, fileRead, fileWrite                                                counter
	syncInBytes, syncOutBytes                                                    atomic.Int64
	lastSourceUpdate, lastSyncUpdate, lastSyncedTimestamp                        atomic.Int64
}

// counter is a total/success pair.
type counter struct{ total, success atomic.Int64 }

func (c *counter) add(n int64, err error) {
	c.total.Add(n)
	if err == nil {
		c.success.Add(n)
	}
}

// storageIP is the address every storage listens on and puts in file names.
const storageIP = "127.0.0.1"

// firstServerID is the first storage's server id with Options.StorageIDs
// (upstream's storage_ids.conf numbers them from 100001 in its example).
const firstServerID = 100001

// id is the storage's id in LIST_STORAGE records: its server id, or
// without those its address.
func (st *Storage) id() string {
	if st.serverID != 0 {
		return strconv.FormatUint(uint64(st.serverID), 10)
	}
	return storageIP
}

func newStorage(c *Cluster, g *group, index, port int) (*Storage, error) {
	st := &Storage{c: c, g: g, index: index, dir: storageDir(c.dir, g.name, index), binWake: make(chan struct{})}
	var err error
	if st.store, err = openStore(st.dir); err != nil {
		return nil, err
	}
	st.srv = newServer(c, fmt.Sprintf("%s storage %d", g.name, index), port, st.handle)
	if c.opts.StoragesPerGroup > 1 {
		st.sources = make(map[string]bool)
		if err := st.openBinlog(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Addr returns the storage's address, "127.0.0.1:port".
func (st *Storage) Addr() string { return st.srv.addr() }

// Group returns the storage's group name.
func (st *Storage) Group() string { return st.g.name }

// Stop closes the storage's listener and connections. The trackers then
// report it OFFLINE and stop naming it.
func (st *Storage) Stop() {
	st.srv.stop()
	st.c.stateChanged()
}

// Restart listens on the storage's port again.
func (st *Storage) Restart() error {
	err := st.srv.start()
	st.c.stateChanged()
	return err
}

// Has reports whether the storage holds a file, by its file ID
// ("group1/M00/00/00/xxx") or remote name ("M00/00/00/xxx").
func (st *Storage) Has(fileID string) bool {
	return st.store.exists(strings.TrimPrefix(fileID, st.g.name+"/"))
}

func (st *Storage) handle(req *request) (response, error) {
	switch req.hdr.Cmd {
	case fdfs.StorageProtoCmdUploadFile:
		return st.upload(req, false)
	case fdfs.StorageProtoCmdUploadAppenderFile:
		return st.upload(req, true)
	case fdfs.StorageProtoCmdUploadSlaveFile:
		return st.uploadSlave(req)
	case fdfs.StorageProtoCmdAppendFile:
		return st.appendFile(req)
	case fdfs.StorageProtoCmdModifyFile:
		return st.modifyFile(req)
	case fdfs.StorageProtoCmdTruncateFile:
		return st.truncateFile(req)
	case fdfs.StorageProtoCmdDownloadFile:
		return st.download(req)
	case fdfs.StorageProtoCmdDeleteFile:
		return st.deleteFile(req)
	case fdfs.StorageProtoCmdSetMetadata:
		return st.setMetadata(req)
	case fdfs.StorageProtoCmdGetMetadata:
		return st.getMetadata(req)
	case fdfs.StorageProtoCmdQueryFileInfo:
		return st.queryFileInfo(req)
	case fdfs.StorageProtoCmdRegenerateAppenderFilename:
		return st.regenerateAppenderFilename(req)
	case fdfs.StorageProtoCmdFetchOnePathBinlog:
		return st.fetchOnePathBinlog(req)
	case fdfs.FdfsProtoCmdActiveTest:
		if req.hdr.Length != 0 {
			return fail(syscall.EINVAL), nil
		}
		return ok(nil), nil
	}
	st.srv.log.Debug("unknown command", "cmd", req.hdr.Cmd)
	return fail(syscall.EINVAL), nil
}

// contentReader passes content through from the connection and remembers
// whether the connection failed, which closes it instead of answering.
type contentReader struct {
	r   io.Reader
	err error
}

func (c *contentReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// readContentPrefix reads the fields before the content of an upload,
// append or modify: the fixed part, then as much more as it announces.
// A body too short for them is EINVAL (status, not a closed connection).
func readContentPrefix(req *request) ([]byte, error) {
	cmd := req.hdr.Cmd
	fixed := fdfs.FixedPrefixLen(cmd)
	if req.hdr.Length < int64(fixed) {
		return nil, syscall.EINVAL
	}
	b, err := req.readPrefix(fixed)
	if err != nil {
		return nil, err
	}
	n, err := fdfs.PrefixLen(cmd, b)
	if err != nil || int64(n) > req.hdr.Length {
		return nil, syscall.EINVAL
	}
	rest, err := req.readPrefix(n - fixed)
	if err != nil {
		return nil, err
	}
	return append(b, rest...), nil
}

// isStatus tells a status to answer from an error that breaks the connection.
func isStatus(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno)
}

// upload handles UPLOAD_FILE (11) and UPLOAD_APPENDER_FILE (23).
func (st *Storage) upload(req *request, appender bool) (response, error) {
	prefix, err := readContentPrefix(req)
	if err != nil {
		if isStatus(err) {
			return fail(err), nil
		}
		return response{}, err
	}
	m, err := fdfs.DecodeUploadFileRequest(prefix)
	if err != nil || m.FileSize != req.hdr.Length-int64(len(prefix)) {
		return fail(syscall.EINVAL), nil
	}
	// 0xFF is -1, "the storage chooses"; store path 0 is the only one.
	if m.StorePathIndex != 0 && m.StorePathIndex != 0xFF {
		return fail(syscall.EINVAL), nil
	}
	if fdfsValidateName(m.Ext) != nil {
		return fail(syscall.EINVAL), nil
	}
	if st.c.isFull(st.g.name) {
		return fail(syscall.ENOSPC), nil
	}
	tmp, crc, err := st.receive(req, m.FileSize)
	st.stats.upload.add(1, err)
	st.stats.uploadBytes.add(m.FileSize, err)
	if err != nil {
		return response{}, err
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		os.Remove(tmp)
		return fail(err), nil
	}
	high, low := st.store.nextSubdir()
	sizeField := m.FileSize
	if appender {
		sizeField = -1
	}
	name, err := st.commitNew(tmp, func() (string, error) {
		return newRemoteName(st.serverID, high, low, fi.ModTime(), sizeField, crc, m.Ext, "")
	})
	if err != nil {
		return fail(err), nil
	}
	st.logChange(opCreate, name, "")
	st.stats.lastSourceUpdate.Store(time.Now().Unix())
	return ok(fdfs.FileIDResponse{Group: st.g.name, Filename: name}.Append(nil)), nil
}

// receive streams n bytes of content into a temp file and returns its path
// and CRC32. A connection that breaks returns an error that closes it.
func (st *Storage) receive(req *request, n int64) (string, uint32, error) {
	f, err := st.store.createTemp()
	if err != nil {
		return "", 0, err
	}
	h := crc32.NewIEEE()
	cr := &contentReader{r: req.body}
	written, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(cr, n))
	st.stats.fileWrite.add(1, err)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && written != n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), h.Sum32(), nil
}

// commitNew moves a temp file to a new name, drawing another name (fresh
// random digits) when one is taken, as upstream retries against its table
// of names.
func (st *Storage) commitNew(tmp string, newName func() (string, error)) (string, error) {
	for range 10 {
		name, err := newName()
		if err != nil {
			os.Remove(tmp)
			return "", err
		}
		if st.store.exists(name) {
			continue
		}
		if err := st.store.commit(tmp, name); err != nil {
			os.Remove(tmp)
			return "", err
		}
		return name, nil
	}
	os.Remove(tmp)
	return "", syscall.EBUSY
}

// uploadSlave handles UPLOAD_SLAVE_FILE (21): the new file is named after
// its master, with a prefix before the extension.
func (st *Storage) uploadSlave(req *request) (response, error) {
	if req.hdr.Length <= fdfs.UploadSlaveFileRequestFixedLen {
		return fail(syscall.EINVAL), nil
	}
	prefix, err := readContentPrefix(req)
	if err != nil {
		if isStatus(err) {
			return fail(err), nil
		}
		return response{}, err
	}
	m, err := fdfs.DecodeUploadSlaveFileRequest(prefix)
	if err != nil || len(m.MasterFilename) <= logicPathLen || m.FileSize != req.hdr.Length-int64(len(prefix)) {
		return fail(syscall.EINVAL), nil
	}
	if m.PrefixName == "" || fdfsValidateName(m.PrefixName) != nil || fdfsValidateName(m.Ext) != nil {
		return fail(syscall.EINVAL), nil
	}
	if _, err := trueFilename(m.MasterFilename); err != nil {
		return fail(err), nil
	}
	if st.c.isFull(st.g.name) {
		return fail(syscall.ENOSPC), nil
	}
	if _, _, err := st.store.stat(m.MasterFilename); err != nil {
		return fail(err), nil
	}
	name, err := fdfs.SlaveRemoteName(m.MasterFilename, m.PrefixName, m.Ext)
	if err != nil {
		return fail(syscall.EINVAL), nil
	}
	if _, err := os.Lstat(mustPath(st.store, name)); err == nil {
		return fail(syscall.EEXIST), nil
	}
	tmp, _, err := st.receive(req, m.FileSize)
	st.stats.upload.add(1, err)
	st.stats.uploadBytes.add(m.FileSize, err)
	if err != nil {
		return response{}, err
	}
	if err := st.store.commit(tmp, name); err != nil {
		os.Remove(tmp)
		return fail(err), nil
	}
	st.logChange(opCreate, name, "")
	st.stats.lastSourceUpdate.Store(time.Now().Unix())
	return ok(fdfs.FileIDResponse{Group: st.g.name, Filename: name}.Append(nil)), nil
}

func mustPath(s *store, remote string) string {
	p, _ := s.path(remote)
	return p
}

// appenderCheck does what storage_server_check_appender_file does: the file
// must exist, be regular, and carry the appender flag in its name.
func (st *Storage) appenderCheck(name string) (fs.FileInfo, error) {
	if len(name) < logicPathLen+fdfs.FdfsFilenameBase64Length+fdfs.FdfsFileExtNameMaxLen+1 || len(name) >= fdfs.MaxFilenameLen {
		return nil, syscall.EINVAL
	}
	fi, _, err := st.store.stat(name)
	if err != nil {
		return nil, err
	}
	info, err := decodeName(name)
	if err != nil || !info.appender {
		return nil, syscall.EINVAL
	}
	return fi, nil
}

// appendFile handles APPEND_FILE (24).
func (st *Storage) appendFile(req *request) (response, error) {
	if req.hdr.Length <= fdfs.AppendFileRequestFixedLen {
		return fail(syscall.EINVAL), nil
	}
	prefix, err := readContentPrefix(req)
	if err != nil {
		if isStatus(err) {
			return fail(err), nil
		}
		return response{}, err
	}
	m, err := fdfs.DecodeAppendFileRequest(prefix)
	if err != nil || m.Size != req.hdr.Length-int64(len(prefix)) {
		return fail(syscall.EINVAL), nil
	}
	if _, err := st.appenderCheck(m.Filename); err != nil {
		return fail(err), nil
	}
	if m.Size == 0 {
		return ok(nil), nil
	}
	if st.c.isFull(st.g.name) {
		return fail(syscall.ENOSPC), nil
	}
	cr := &contentReader{r: req.body}
	err = st.store.appendFrom(m.Filename, cr, m.Size)
	st.stats.appendFile.add(1, err)
	st.stats.appendBytes.add(m.Size, err)
	if cr.err != nil {
		return response{}, cr.err
	}
	if err != nil {
		return fail(err), nil
	}
	st.logChange(opAppend, m.Filename, "")
	st.stats.lastSourceUpdate.Store(time.Now().Unix())
	return ok(nil), nil
}

// modifyFile handles MODIFY_FILE (34).
func (st *Storage) modifyFile(req *request) (response, error) {
	if req.hdr.Length <= fdfs.ModifyFileRequestFixedLen {
		return fail(syscall.EINVAL), nil
	}
	prefix, err := readContentPrefix(req)
	if err != nil {
		if isStatus(err) {
			return fail(err), nil
		}
		return response{}, err
	}
	m, err := fdfs.DecodeModifyFileRequest(prefix)
	if err != nil || m.Size != req.hdr.Length-int64(len(prefix)) {
		return fail(syscall.EINVAL), nil
	}
	fi, err := st.appenderCheck(m.Filename)
	if err != nil {
		return fail(err), nil
	}
	if m.Offset > fi.Size() {
		return fail(syscall.EINVAL), nil
	}
	if m.Size == 0 {
		return ok(nil), nil
	}
	if st.c.isFull(st.g.name) && m.Offset+m.Size > fi.Size() {
		return fail(syscall.ENOSPC), nil
	}
	cr := &contentReader{r: req.body}
	err = st.store.modifyFrom(m.Filename, m.Offset, cr, m.Size)
	st.stats.modify.add(1, err)
	st.stats.modifyBytes.add(m.Size, err)
	if cr.err != nil {
		return response{}, cr.err
	}
	if err != nil {
		return fail(err), nil
	}
	st.logChange(opModify, m.Filename, "")
	st.stats.lastSourceUpdate.Store(time.Now().Unix())
	return ok(nil), nil
}

// truncateFile handles TRUNCATE_FILE (36). Truncating to the current size
// is EINVAL, as V6.16.1 answers it.
func (st *Storage) truncateFile(req *request) (response, error) {
	if req.hdr.Length <= 16 {
		return fail(syscall.EINVAL), nil
	}
	body, err := req.readAll()
	if err != nil {
		return response{}, err
	}
	m, err := fdfs.DecodeTruncateFileRequest(body)
	if err != nil {
		return fail(syscall.EINVAL), nil
	}
	fi, err := st.appenderCheck(m.Filename)
	if err != nil {
		return fail(err), nil
	}
	if m.Size == fi.Size() {
		return fail(syscall.EINVAL), nil
	}
	err = st.store.truncate(m.Filename, m.Size)
	st.stats.truncate.add(1, err)
	if err != nil {
		return fail(err), nil
	}
	st.logChange(opTruncate, m.Filename, "")
	st.stats.lastSourceUpdate.Store(time.Now().Unix())
	return ok(nil), nil
}

// checkGroup refuses requests for another group with EINVAL, as upstream.
func (st *Storage) checkGroup(group string) error {
	if group != st.g.name {
		return syscall.EINVAL
	}
	return nil
}

// download handles DOWNLOAD_FILE (14). A range that starts at or after the
// end of the file (so any range of an empty file) is EINVAL; a count past
// the end is cut at the end.
func (st *Storage) download(req *request) (response, error) {
	if req.hdr.Length <= 16+fdfs.FdfsGroupNameMaxLen {
		return fail(syscall.EINVAL), nil
	}
	body, err := req.readAll()
	if err != nil {
		return response{}, err
	}
	m, err := fdfs.DecodeDownloadFileRequest(body)
	if err == nil {
		err = st.checkGroup(m.Group)
	}
	if err != nil {
		return fail(syscall.EINVAL), nil
	}
	_, p, err := st.store.stat(m.Filename)
	if err != nil {
		st.stats.download.add(1, err)
		return fail(err), nil
	}
	f, err := os.Open(p)
	st.stats.fileOpen.add(1, err)
	if err != nil {
		return fail(err), nil
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fail(err), nil
	}
	size := fi.Size()
	if m.Offset >= size {
		f.Close()
		st.stats.download.add(1, syscall.EINVAL)
		return fail(syscall.EINVAL), nil
	}
	n := m.Length
	if n == 0 || n > size-m.Offset {
		n = size - m.Offset
	}
	return response{streamLen: n, stream: func(w io.Writer) error {
		if _, err := f.Seek(m.Offset, io.SeekStart); err != nil {
			return err
		}
		// A LimitedReader over an *os.File lets the TCP conn use sendfile.
		sent, err := io.Copy(w, &io.LimitedReader{R: f, N: n})
		if err == nil && sent != n {
			err = io.ErrUnexpectedEOF
		}
		st.stats.download.add(1, err)
		st.stats.downloadBytes.add(sent, err)
		st.stats.fileRead.add(1, err)
		return err
	}, cleanup: func() { f.Close() }}, nil
}

// fileRequest reads the group-and-filename body of delete, get metadata and
// query file info, answering EINVAL for a short body or another group.
func (st *Storage) fileRequest(req *request) (fdfs.FileRequest, response, bool, error) {
	if req.hdr.Length <= fdfs.FdfsGroupNameMaxLen {
		return fdfs.FileRequest{}, fail(syscall.EINVAL), false, nil
	}
	body, err := req.readAll()
	if err != nil {
		return fdfs.FileRequest{}, response{}, false, err
	}
	m, err := fdfs.DecodeFileRequest(body)
	if err == nil {
		err = st.checkGroup(m.Group)
	}
	if err != nil {
		return fdfs.FileRequest{}, fail(syscall.EINVAL), false, nil
	}
	return m, response{}, true, nil
}

// deleteFile handles DELETE_FILE (12).
func (st *Storage) deleteFile(req *request) (response, error) {
	m, resp, good, err := st.fileRequest(req)
	if !good {
		return resp, err
	}
	err = st.store.remove(m.Filename)
	st.stats.deleteFile.add(1, err)
	if err != nil {
		return fail(err), nil
	}
	st.logChange(opDelete, m.Filename, "")
	st.stats.lastSourceUpdate.Store(time.Now().Unix())
	return ok(nil), nil
}

// setMetadata handles SET_METADATA (13).
func (st *Storage) setMetadata(req *request) (response, error) {
	if req.hdr.Length <= 2*8+1+fdfs.FdfsGroupNameMaxLen {
		return fail(syscall.EINVAL), nil
	}
	body, err := req.readAll()
	if err != nil {
		return response{}, err
	}
	m, err := fdfs.DecodeSetMetadataRequest(body)
	if err == nil {
		err = st.checkGroup(m.Group)
	}
	if err == nil {
		_, err = trueFilename(m.Filename)
	}
	if err != nil {
		return fail(syscall.EINVAL), nil
	}
	metaLen := len(body) - (2*8 + 1 + fdfs.FdfsGroupNameMaxLen + len(m.Filename))
	err = st.store.setMeta(m.Filename, m.Meta, metaLen == 0, m.Flag == fdfs.MetaMerge)
	st.stats.setMeta.add(1, err)
	if err != nil {
		return fail(err), nil
	}
	st.logChange(opMeta, m.Filename, "")
	st.stats.lastSourceUpdate.Store(time.Now().Unix())
	return ok(nil), nil
}

// getMetadata handles GET_METADATA (15). A file without metadata is ENOENT.
func (st *Storage) getMetadata(req *request) (response, error) {
	m, resp, good, err := st.fileRequest(req)
	if !good {
		return resp, err
	}
	meta, err := st.store.getMeta(m.Filename)
	st.stats.getMeta.add(1, err)
	if err != nil {
		return fail(err), nil
	}
	return ok(meta), nil
}

// queryFileInfo handles QUERY_FILE_INFO (22). Size and time come from the
// file; the CRC32 comes from the name, except for appender and slave files
// whose content is read to compute it (unless the request's flags say not
// to). The source address comes from the name.
func (st *Storage) queryFileInfo(req *request) (response, error) {
	flags := req.hdr.Status
	m, resp, good, err := st.fileRequest(req)
	if !good {
		return resp, err
	}
	fi, _, err := st.store.stat(m.Filename)
	if err != nil {
		return fail(err), nil
	}
	if len(m.Filename) < logicPathLen+fdfs.FdfsFilenameBase64Length {
		return fail(syscall.EINVAL), nil
	}
	info, err := decodeName(m.Filename)
	if err != nil {
		return fail(syscall.EINVAL), nil
	}
	crc := int64(int32(info.crc32)) // upstream moves it through a C int
	if info.appender || info.slave {
		crc = 0
		if flags&fdfs.FdfsQueryFinfoFlagsNotCalcCRC32 == 0 {
			sum, cfi, err := st.store.checksum(m.Filename)
			if err != nil {
				return fail(err), nil
			}
			crc, fi = int64(int32(sum)), cfi
		}
	}
	return ok(fdfs.QueryFileInfoResponse{
		FileSize:        fi.Size(),
		CreateTimestamp: fi.ModTime().Unix(),
		CRC32:           crc,
		SourceIP:        info.sourceIP,
		IPSize:          st.c.ipSize,
	}.Append(nil)), nil
}

// regenerateAppenderFilename handles REGENERATE_APPENDER_FILENAME (38): the
// appender file gets a normal file's name (its real size and CRC32, the
// current time) in the same sub-directory, with the same random digits and
// extension.
func (st *Storage) regenerateAppenderFilename(req *request) (response, error) {
	minLen := int64(logicPathLen + fdfs.FdfsFilenameBase64Length + fdfs.FdfsFileExtNameMaxLen + 1)
	if req.hdr.Length < minLen || req.hdr.Length >= fdfs.MaxFilenameLen {
		return fail(syscall.EINVAL), nil
	}
	body, err := req.readAll()
	if err != nil {
		return response{}, err
	}
	old := string(body)
	if _, err := st.appenderCheck(old); err != nil {
		return fail(err), nil
	}
	crc, fi, err := st.store.checksum(old)
	if err != nil {
		return fail(err), nil
	}
	high, low, formattedExt := splitForRegenerate(old)
	now := time.Now()
	var name string
	for range 10 {
		name, err = newRemoteName(st.serverID, high, low, now, fi.Size(), crc, "", formattedExt)
		if err != nil {
			return fail(err), nil
		}
		if err = st.store.rename(old, name); !errors.Is(err, syscall.EEXIST) {
			break
		}
	}
	if err != nil {
		return fail(err), nil
	}
	st.logChange(opRename, name, old)
	st.stats.lastSourceUpdate.Store(time.Now().Unix())
	return ok(fdfs.FileIDResponse{Group: st.g.name, Filename: name}.Append(nil)), nil
}
