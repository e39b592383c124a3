package localcluster

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"fdfsfs/fdfs"
)

// store keeps the files of one storage server in a directory, laid out the
// way a real storage server lays out one store path:
//
//	root/data/HH/HH/<name>     file content; HH is upper-case hex, two levels
//	root/data/HH/HH/<name>-m   metadata records, sorted by name (as upstream)
//	root/tmp/                  uploads in flight, renamed into data/ when whole
//	root/binlog                source operations to replay on peers (replicate.go)
//
// Readers never lock: content is replaced by rename, or written in place by
// append, modify and truncate exactly as upstream does. Writers of one file
// serialise on a striped lock so that an append and a replica copy of the
// same file do not interleave.
type store struct {
	root string

	locks [64]sync.Mutex // striped by file name; guards writes to one file

	mu        sync.Mutex // guards the fields below
	distHigh  int        // sub-directory for new files, round robin as upstream
	distLow   int
	distCount int // files written into the current sub-directory
	tmpSeq    uint64
}

// Upstream rotates to the next sub-directory after this many files
// (file_distribute_rotate_count) and has 256 of them per level.
const (
	distRotateCount = 100
	subdirsPerLevel = 256
)

func openStore(root string) (*store, error) {
	for _, dir := range []string{"data", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			return nil, err
		}
	}
	// Leftovers of uploads cut short by a crash are never referenced.
	leftovers, _ := filepath.Glob(filepath.Join(root, "tmp", "*"))
	for _, p := range leftovers {
		os.Remove(p)
	}
	return &store{root: root}, nil
}

// nextSubdir returns the two sub-directory levels for a new file, moving on
// every distRotateCount files like upstream's default round robin.
func (s *store) nextSubdir() (high, low int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	high, low = s.distHigh, s.distLow
	s.distCount++
	if s.distCount >= distRotateCount {
		s.distCount = 0
		s.distLow++
		if s.distLow >= subdirsPerLevel {
			s.distLow = 0
			s.distHigh = (s.distHigh + 1) % subdirsPerLevel
		}
	}
	return high, low
}

// createTemp opens a new file under tmp/ for an upload or a replica copy.
func (s *store) createTemp() (*os.File, error) {
	s.mu.Lock()
	s.tmpSeq++
	seq := s.tmpSeq
	s.mu.Unlock()
	return os.OpenFile(filepath.Join(s.root, "tmp", fmt.Sprintf("part-%d-%d", os.Getpid(), seq)),
		os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
}

// lock serialises writers of one file.
func (s *store) lock(name string) func() {
	h := crc32.ChecksumIEEE([]byte(name))
	m := &s.locks[h%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// path maps a remote file name ("M00/00/A0/xxx.txt") to its place on disk,
// refusing names a real storage server refuses (EINVAL), the way
// storage_split_filename_ex and fdfs_check_data_filename do.
func (s *store) path(remote string) (string, error) {
	name, err := trueFilename(remote)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, "data", filepath.FromSlash(name)), nil
}

// trueFilename strips the store path ("M00/") from a remote file name and
// checks the rest is "HH/HH/name" with no further slash. Only store path 0
// exists here, as store_path_count is 1.
func trueFilename(remote string) (string, error) {
	if len(remote) <= logicPathLen {
		return "", syscall.EINVAL
	}
	name := remote
	if remote[0] == 'M' {
		if remote[3] != '/' || !isUpperHex(remote[1]) || !isUpperHex(remote[2]) {
			return "", syscall.EINVAL
		}
		if remote[1:3] != "00" {
			return "", syscall.EINVAL
		}
		name = remote[4:]
	}
	if len(name) < 6 || !isUpperHex(name[0]) || !isUpperHex(name[1]) || name[2] != '/' ||
		!isUpperHex(name[3]) || !isUpperHex(name[4]) || name[5] != '/' ||
		strings.Contains(name[6:], "/") || strings.IndexByte(name, 0) >= 0 {
		return "", syscall.EINVAL
	}
	return name, nil
}

// logicPathLen is FDFS_LOGIC_FILE_PATH_LEN: "M00/00/A0/".
const logicPathLen = 10

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// stat returns what lstat says about a stored file. A directory answers
// EISDIR and anything else that is not a regular file EINVAL, as upstream.
func (s *store) stat(remote string) (fs.FileInfo, string, error) {
	p, err := s.path(remote)
	if err != nil {
		return nil, "", err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, "", err
	}
	if fi.IsDir() {
		return nil, "", syscall.EISDIR
	}
	if !fi.Mode().IsRegular() {
		return nil, "", syscall.EINVAL
	}
	return fi, p, nil
}

// commit moves a finished temp file to its remote name.
func (s *store) commit(tmp, remote string) error {
	p, err := s.path(remote)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// exists reports whether a file with this remote name is stored.
func (s *store) exists(remote string) bool {
	_, _, err := s.stat(remote)
	return err == nil
}

// appendFrom appends n bytes from r to a stored file. If the copy fails the
// file is cut back to its old size, as upstream's dio_append_finish_clean_up
// does, so a broken connection leaves no half-written tail.
func (s *store) appendFrom(remote string, r io.Reader, n int64) error {
	defer s.lock(remote)()
	fi, p, err := s.stat(remote)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(io.NewOffsetWriter(f, fi.Size()), io.LimitReader(r, n)); err != nil {
		f.Truncate(fi.Size())
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() != fi.Size()+n {
		f.Truncate(fi.Size())
		return io.ErrUnexpectedEOF
	}
	return nil
}

// modifyFrom overwrites n bytes at offset with bytes from r, extending the
// file when the range passes its end. An offset past the end (a hole) is
// EINVAL, as upstream.
func (s *store) modifyFrom(remote string, offset int64, r io.Reader, n int64) error {
	defer s.lock(remote)()
	fi, p, err := s.stat(remote)
	if err != nil {
		return err
	}
	if offset > fi.Size() {
		return syscall.EINVAL
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	written, err := io.Copy(io.NewOffsetWriter(f, offset), io.LimitReader(r, n))
	if err == nil && written != n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// truncate sets a stored file's size; new bytes read as zeros.
func (s *store) truncate(remote string, size int64) error {
	defer s.lock(remote)()
	_, p, err := s.stat(remote)
	if err != nil {
		return err
	}
	return os.Truncate(p, size)
}

// remove deletes a stored file and its metadata.
func (s *store) remove(remote string) error {
	defer s.lock(remote)()
	_, p, err := s.stat(remote)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	if err := os.Remove(p + metaSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// rename gives a stored file (and its metadata) a new remote name.
func (s *store) rename(from, to string) error {
	defer s.lock(from)()
	_, p, err := s.stat(from)
	if err != nil {
		return err
	}
	q, err := s.path(to)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(q); err == nil {
		return syscall.EEXIST
	}
	if err := os.MkdirAll(filepath.Dir(q), 0o755); err != nil {
		return err
	}
	if err := os.Rename(p, q); err != nil {
		return err
	}
	if err := os.Rename(p+metaSuffix, q+metaSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// checksum computes the CRC32 (IEEE, as libfastcommon's CRC32) of a stored file.
func (s *store) checksum(remote string) (uint32, fs.FileInfo, error) {
	fi, p, err := s.stat(remote)
	if err != nil {
		return 0, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, f); err != nil {
		return 0, nil, err
	}
	return h.Sum32(), fi, nil
}

// metaSuffix is FDFS_STORAGE_META_FILE_EXT_STR.
const metaSuffix = "-m"

// cutMeta applies upstream's limits (FDFS_MAX_META_NAME_LEN,
// FDFS_MAX_META_VALUE_LEN): longer names and values are cut, not refused.
// It returns the entries sorted by name, the order upstream stores them in.
func cutMeta(entries []fdfs.MetaEntry) []fdfs.MetaEntry {
	out := make([]fdfs.MetaEntry, len(entries))
	for i, e := range entries {
		if len(e.Name) > fdfs.FdfsMaxMetaNameLen {
			e.Name = e.Name[:fdfs.FdfsMaxMetaNameLen]
		}
		if len(e.Value) > fdfs.FdfsMaxMetaValueLen {
			e.Value = e.Value[:fdfs.FdfsMaxMetaValueLen]
		}
		out[i] = e
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// setMeta stores metadata for a file, as storage_do_set_metadata does.
// Overwrite replaces everything, and an empty request deletes the metadata;
// merge updates the names that exist and adds the others, and an empty
// request changes nothing.
func (s *store) setMeta(remote string, entries []fdfs.MetaEntry, empty, merge bool) error {
	defer s.lock(remote)()
	_, p, err := s.stat(remote)
	if err != nil {
		return err
	}
	mp := p + metaSuffix
	entries = cutMeta(entries)
	if !merge {
		if empty {
			if err := os.Remove(mp); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		return writeFileAtomic(s, mp, fdfs.AppendMetadata(nil, entries))
	}
	if empty {
		return nil
	}
	raw, err := os.ReadFile(mp)
	if errors.Is(err, fs.ErrNotExist) {
		return writeFileAtomic(s, mp, fdfs.AppendMetadata(nil, entries))
	}
	if err != nil {
		return err
	}
	old, err := fdfs.DecodeMetadata(raw)
	if err != nil {
		return err
	}
	return writeFileAtomic(s, mp, fdfs.AppendMetadata(nil, mergeMeta(old, entries)))
}

// mergeMeta merges two name-sorted lists; on equal names the new value wins.
func mergeMeta(old, upd []fdfs.MetaEntry) []fdfs.MetaEntry {
	out := make([]fdfs.MetaEntry, 0, len(old)+len(upd))
	i, j := 0, 0
	for i < len(old) && j < len(upd) {
		switch {
		case old[i].Name < upd[j].Name:
			out = append(out, old[i])
			i++
		case old[i].Name == upd[j].Name:
			out = append(out, upd[j])
			i++
			j++
		default:
			out = append(out, upd[j])
			j++
		}
	}
	out = append(out, old[i:]...)
	return append(out, upd[j:]...)
}

// getMeta returns the stored metadata bytes. A file without metadata is
// ENOENT, as upstream (it stats the "-m" file).
func (s *store) getMeta(remote string) ([]byte, error) {
	_, p, err := s.stat(remote)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(p + metaSuffix)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, syscall.EISDIR
	}
	return os.ReadFile(p + metaSuffix)
}

// writeFileAtomic replaces a file through a temp file and a rename, so that
// readers never see half of it.
func writeFileAtomic(s *store, dst string, data []byte) error {
	f, err := s.createTemp()
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// stagedCopy is a replica staged in tmp/, ready to be installed.
type stagedCopy struct {
	content string // temp file with the content
	meta    string // temp file with the metadata, "" when the source has none
	size    int64
}

// stageCopy copies a file of another store (and its metadata) into tmp/.
func (s *store) stageCopy(src string) (stagedCopy, error) {
	content, size, err := s.copyToTemp(src)
	if err != nil {
		return stagedCopy{}, err
	}
	meta, _, err := s.copyToTemp(src + metaSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		meta, err = "", nil
	}
	if err != nil {
		os.Remove(content)
		return stagedCopy{}, err
	}
	return stagedCopy{content: content, meta: meta, size: size}, nil
}

// install moves a staged replica to its remote name, replacing what is here.
func (s *store) install(remote string, c stagedCopy) error {
	defer s.lock(remote)()
	dst, err := s.path(remote)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
	}
	if err == nil {
		err = os.Rename(c.content, dst)
	}
	if err == nil {
		if c.meta != "" {
			err = os.Rename(c.meta, dst+metaSuffix)
			c.meta = ""
		} else if rerr := os.Remove(dst + metaSuffix); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
	}
	if err != nil {
		os.Remove(c.content)
		if c.meta != "" {
			os.Remove(c.meta)
		}
	}
	return err
}

// copyToTemp copies a regular file into tmp/, keeping its mtime (query file
// info reports it as the create time).
func (s *store) copyToTemp(src string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, syscall.EINVAL
	}
	out, err := s.createTemp()
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(out.Name(), fi.ModTime(), fi.ModTime())
	}
	if err != nil {
		os.Remove(out.Name())
		return "", 0, err
	}
	return out.Name(), n, nil
}
