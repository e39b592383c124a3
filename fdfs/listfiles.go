package fdfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// FetchOnePathBinlog asks the storage at addr for the files of group on
// one of its store paths (FETCH_ONE_PATH_BINLOG) and calls fn with each
// line as it arrives; memory stays flat however many files there are. It
// returns nil only once the whole stream arrived and its length trailer
// matched: a stream cut short is an error (wrapping io.ErrUnexpectedEOF),
// a malformed one wraps ErrProtocol, and lines already handed to fn then
// came from a listing that failed. An error from fn stops the stream and
// is returned as is. A wrong group or index is a *StatusError (EINVAL).
//
// The storage closes the connection after the stream, so it never goes
// back to the pool, whatever happens.
func (c *Client) FetchOnePathBinlog(ctx context.Context, addr, group string, storePathIndex int, fn func(BinlogLine) error) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	if storePathIndex < 0 || storePathIndex > 255 {
		return fmt.Errorf("fdfs: store path index %d out of range 0..255", storePathIndex)
	}
	body := FetchOnePathBinlogRequest{Group: group, StorePathIndex: byte(storePathIndex)}.Append(nil)
	return c.stream(ctx, addr, request{cmd: StorageProtoCmdFetchOnePathBinlog, body: body}, func(r io.Reader) error {
		br := NewBinlogReader(r)
		for {
			l, err := br.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := fn(l); err != nil {
				return &callerError{err}
			}
		}
	})
}

// callerError carries the error of a caller's function out of a stream
// unchanged, so that it is never taken for the server's.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }
func (e *callerError) Unwrap() error { return e.err }

// stream runs a request whose answer is a stream of InfiniteFileSize that
// ends when the server closes the connection. handle reads the stream from
// r to its end. The connection is always closed afterwards. As in exchange,
// a pooled connection that turns out to be stale before any answer arrives
// is replaced once by a fresh one.
func (c *Client) stream(ctx context.Context, addr string, req request, handle func(r io.Reader) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		cn, err := c.pools.get(ctx, addr)
		if err != nil {
			c.observe(req.cmd, addr, start, nil, err)
			return err
		}
		stop := cn.watch(ctx)
		cn.sent, cn.received = 0, 0
		err = c.streamTrip(cn, req, handle)
		c.observe(req.cmd, addr, start, cn, err)
		stale := cn.reused && cn.received == 0 && brokenConn(err)
		stop()
		c.pools.discard(cn)
		var ce *callerError
		if errors.As(err, &ce) {
			return ce.err
		}
		if err != nil && !isStatus(err) {
			if cerr := contextErr(ctx); cerr != nil {
				return fmt.Errorf("fdfs: %s to %s: %w", CmdName(req.cmd), addr, cerr)
			}
		}
		if stale {
			continue
		}
		return err
	}
}

func (c *Client) streamTrip(cn *conn, req request, handle func(r io.Reader) error) error {
	out := Header{Length: int64(len(req.body)), Cmd: req.cmd}.Append(make([]byte, 0, HeaderSize+len(req.body)))
	if _, err := cn.Write(append(out, req.body...)); err != nil {
		return fmt.Errorf("fdfs: %s to %s: %w", CmdName(req.cmd), cn.addr, err)
	}
	h, err := readResponseHeader(cn, req.cmd, 0)
	if err != nil {
		if !isStatus(err) {
			err = fmt.Errorf("fdfs: %s from %s: %w", CmdName(req.cmd), cn.addr, err)
		}
		return err
	}
	if h.Length != InfiniteFileSize {
		return protocolErrorf("%s from %s: body length %d, want the stream mark %d", CmdName(req.cmd), cn.addr, h.Length, InfiniteFileSize)
	}
	if err := handle(cn); err != nil {
		var ce *callerError
		if errors.As(err, &ce) {
			return err
		}
		return fmt.Errorf("fdfs: %s from %s: %w", CmdName(req.cmd), cn.addr, err)
	}
	return nil
}

// GroupFile is one file a group holds, as a storage of the group lists it.
type GroupFile struct {
	FileID         string // "group1/M00/00/0A/..."
	StorePathIndex int
	// Created is the time of the storage's binlog record: when the file
	// was uploaded (or renamed by REGENERATE_APPENDER_FILENAME).
	Created time.Time
	// Op is the line's letter: C or L when the listing storage created the
	// file, c or l when it holds a replica.
	Op byte
	// Target is the file ID a link points to; "" for a file.
	Target string
	// Storage is the address of the storage that listed it.
	Storage string
}

// ListGroupFiles lists every file group holds and hands them to fn as
// they arrive. It asks an ACTIVE storage of the group (LIST_STORAGE) for
// each of its store paths (store_path_count) in turn. A store path whose
// storage fails before it hands over a file is asked of the group's next
// ACTIVE storage; one that fails part way fails the listing, since another
// storage lists in its own order and fn would see files twice. An unknown
// group is the tracker's *StatusError (matching fs.ErrNotExist); a group
// without an ACTIVE storage is an error naming it.
func (c *Client) ListGroupFiles(ctx context.Context, group string, fn func(GroupFile) error) error {
	storages, err := c.ListStorages(ctx, group, "")
	if err != nil {
		return fmt.Errorf("fdfs: group %s: %w", group, err)
	}
	var active []StorageStat
	paths := 0
	for _, s := range storages {
		if s.Status == FdfsStorageStatusActive {
			active = append(active, s)
			paths = max(paths, int(s.StorePathCount))
		}
	}
	if len(active) == 0 {
		return fmt.Errorf("fdfs: group %s has no ACTIVE storage (of %d)", group, len(storages))
	}
	for path := range paths {
		var errs []error
		listed := false
		for _, s := range active {
			if path >= int(s.StorePathCount) {
				continue
			}
			addr := net.JoinHostPort(s.IPAddr, strconv.Itoa(int(s.StoragePort)))
			handed := 0
			var fnErr error
			err := c.FetchOnePathBinlog(ctx, addr, group, path, func(l BinlogLine) error {
				handed++
				f := GroupFile{
					FileID:         group + "/" + l.Filename,
					StorePathIndex: path,
					Created:        time.Unix(l.Timestamp, 0),
					Op:             l.Op,
					Storage:        addr,
				}
				if l.Target != "" {
					f.Target = group + "/" + l.Target
				}
				fnErr = fn(f)
				return fnErr
			})
			if err == nil {
				listed = true
				break
			}
			if fnErr != nil {
				return fnErr
			}
			if handed > 0 || ctx.Err() != nil {
				return fmt.Errorf("fdfs: group %s, store path %d on %s: %w", group, path, addr, err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			c.cfg.Logger.Warn("fdfs: listing store path on another storage", "group", group, "path", path, "after", err)
		}
		if !listed {
			return fmt.Errorf("fdfs: group %s, store path %d: no storage listed it: %w", group, path, errors.Join(errs...))
		}
	}
	return nil
}
