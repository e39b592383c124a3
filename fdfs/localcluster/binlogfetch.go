package localcluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"fdfsfs/fdfs"
)

// fetchOnePathBinlog handles FETCH_ONE_PATH_BINLOG (26) as
// storage_server_fetch_one_path_binlog does: a body that is not exactly the
// group name and a store path index, another group's name or an index past
// the store path count is EINVAL; otherwise the answer announces
// INFINITE_FILE_SIZE, streams "<time> C|c <remote name>\n" for every file
// the store path holds (C where this storage created it, c for a replica),
// then the length of those lines in 8 bytes, and the connection closes.
//
// Upstream reads its binlog and leaves out files that are gone; this store
// keeps no binlog of replica copies, so it walks its directories instead:
// the same lines, in name order rather than binlog order, each with the
// creation time its name carries.
func (st *Storage) fetchOnePathBinlog(req *request) (response, error) {
	if req.hdr.Length != fdfs.FetchOnePathBinlogRequestLen {
		return fail(syscall.EINVAL), nil
	}
	body, err := req.readAll()
	if err != nil {
		return response{}, err
	}
	m, err := fdfs.DecodeFetchOnePathBinlogRequest(body)
	if err != nil || st.checkGroup(m.Group) != nil || m.StorePathIndex != 0 {
		return fail(syscall.EINVAL), nil
	}
	return response{streamLen: fdfs.InfiniteFileSize, closeAfter: true, stream: func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		var line []byte
		var count int64
		err := st.store.walk(func(remote string) error {
			id, err := fdfs.ParseRemoteFilename(remote)
			if err != nil {
				return nil // not a name this storage gave out
			}
			op := fdfs.StorageOpTypeSourceCreateFile
			if !st.isSource(remote) {
				op = fdfs.StorageOpTypeReplicaCreateFile
			}
			line = fdfs.BinlogLine{Timestamp: id.CreateTime.Unix(), Op: op, Filename: remote}.Append(line[:0])
			count += int64(len(line))
			_, err = bw.Write(line)
			return err
		})
		if err != nil {
			return err
		}
		if _, err := bw.Write(binary.BigEndian.AppendUint64(nil, uint64(count))); err != nil {
			return err
		}
		return bw.Flush()
	}}, nil
}

// walk calls fn with the remote name of every stored file (metadata files
// and temp files left out), in name order, reading one directory at a time.
// A file deleted during the walk may or may not be named.
func (s *store) walk(fn func(remote string) error) error {
	data := filepath.Join(s.root, "data")
	highs, err := readDirNames(data)
	if err != nil {
		return err
	}
	for _, high := range highs {
		lows, err := readDirNames(filepath.Join(data, high))
		if err != nil {
			return err
		}
		for _, low := range lows {
			dir := filepath.Join(data, high, low)
			ents, err := os.ReadDir(dir)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			for _, e := range ents {
				if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), metaSuffix) {
					continue
				}
				if err := fn("M00/" + high + "/" + low + "/" + e.Name()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// readDirNames lists the two-hex-digit sub-directories of dir, sorted.
func readDirNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); e.IsDir() && len(n) == 2 && isUpperHex(n[0]) && isUpperHex(n[1]) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}
