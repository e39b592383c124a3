package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"fdfsfs/fdfs"
)

// clientBackend adapts the FastDFS client to what the FUSE layer needs.
type clientBackend struct{ c *fdfs.Client }

// NewBackend wraps a FastDFS client.
func NewBackend(c *fdfs.Client) Backend { return clientBackend{c} }

func (b clientBackend) Groups(ctx context.Context) ([]GroupInfo, error) {
	var gs []fdfs.GroupStat
	err := resend(ctx, nil, func() (err error) {
		gs, err = b.c.ListGroups(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]GroupInfo, len(gs))
	for i, g := range gs {
		out[i] = GroupInfo{Name: g.Name, TotalMB: g.TotalMB, FreeMB: g.FreeMB, StorePaths: int(g.StorePathCount)}
	}
	return out, nil
}

func (b clientBackend) Upload(ctx context.Context, group, ext string, r io.Reader, size int64, appender bool) (id string, err error) {
	err = resend(ctx, r, func() (err error) {
		if appender {
			id, err = b.c.UploadAppender(ctx, group, ext, r, size)
		} else {
			id, err = b.c.Upload(ctx, group, ext, r, size)
		}
		return err
	})
	return id, noStorage(err)
}

func (b clientBackend) Modify(ctx context.Context, fileID string, off int64, r io.Reader, size int64) error {
	return noStorage(resend(ctx, r, func() error { return b.c.Modify(ctx, fileID, off, r, size) }))
}

func (b clientBackend) Truncate(ctx context.Context, fileID string, size int64) error {
	return noStorage(resend(ctx, nil, func() error { return b.c.Truncate(ctx, fileID, size) }))
}

func (b clientBackend) Download(ctx context.Context, fileID string, off, length int64, w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	var sink io.Writer = cw
	if _, ok := w.(io.ReaderFrom); ok {
		sink = countingReaderFrom{cw}
	}
	err := resend(ctx, nil, func() error {
		_, err := b.c.Download(ctx, fileID, off, length, sink)
		if err != nil && cw.n > 0 {
			// Part of the range is out already; a second try would
			// repeat it.
			return partialError{err}
		}
		return err
	})
	return cw.n, noStorage(err)
}

func (b clientBackend) Delete(ctx context.Context, fileID string) error {
	return noStorage(resend(ctx, nil, func() error { return b.c.Delete(ctx, fileID) }))
}

func (b clientBackend) FileSize(ctx context.Context, fileID string) (int64, error) {
	if _, err := fdfs.ParseFileID(fileID); err != nil {
		return 0, err
	}
	var info fdfs.QueryFileInfoResponse
	err := resend(ctx, nil, func() (err error) {
		info, err = b.c.QueryFileInfo(ctx, fileID)
		return err
	})
	if err != nil {
		return 0, noStorage(err)
	}
	return info.FileSize, nil
}

func (b clientBackend) GetMetadata(ctx context.Context, fileID string) (meta map[string]string, err error) {
	err = resend(ctx, nil, func() (err error) {
		meta, err = b.c.GetMetadata(ctx, fileID)
		return err
	})
	return meta, noStorage(err)
}

func (b clientBackend) SetMetadata(ctx context.Context, fileID string, meta map[string]string, merge bool) error {
	flag := byte(fdfs.MetaOverwrite)
	if merge {
		flag = fdfs.MetaMerge
	}
	return noStorage(resend(ctx, nil, func() error { return b.c.SetMetadata(ctx, fileID, meta, flag) }))
}

// resend runs op once more when it failed on a connection the server had
// closed: the pool peeks at every idle connection before reuse (see
// fdfs/pool.go), so this is left for a close that lands between that check
// and the request. A dead server fails at the dial, a slow one with a
// timeout; neither is tried again. r, when not nil, must seek back to its
// start, or op is not repeated. A server that took a whole upload and then
// died before answering gets it again: at worst one unreferenced copy, as a
// crash of the mount would leave.
func resend(ctx context.Context, r io.Reader, op func() error) error {
	err := op()
	if brokenConn(err) && ctx.Err() == nil {
		if r != nil {
			s, ok := r.(io.Seeker)
			if !ok {
				return err
			}
			if _, serr := s.Seek(0, io.SeekStart); serr != nil {
				return err
			}
		}
		err = op()
	}
	return err
}

// brokenConn reports whether err is a connection closed by the peer, not
// an answer, a timeout or a refused dial.
func brokenConn(err error) bool {
	var se *fdfs.StatusError
	var pe partialError
	if err == nil || errors.As(err, &se) || errors.As(err, &pe) || errors.Is(err, fdfs.ErrProtocol) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// partialError is a failure after part of the answer was used; the request
// cannot be repeated.
type partialError struct{ err error }

func (e partialError) Error() string { return e.err.Error() }
func (e partialError) Unwrap() error { return e.err }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// countingReaderFrom keeps the io.ReaderFrom of a countingWriter's w
// visible, so that a download lands in w's memory without another copy.
type countingReaderFrom struct{ *countingWriter }

func (c countingReaderFrom) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.w.(io.ReaderFrom).ReadFrom(r)
	c.n += n
	return n, err
}

// errNoStorage: the tracker named no storage for a request. It maps to
// EIO, as a missing disk would.
var errNoStorage = errors.New("no storage server available")

// noStorage turns the tracker's ENOENT to a query (no active storage in
// the group) into errNoStorage. Left as it is, it would reach the
// application as ENOENT from write(), close() or read() of a file that
// exists. A storage's own ENOENT (the file is not there) stays ENOENT.
func noStorage(err error) error {
	var se *fdfs.StatusError
	if !errors.As(err, &se) || se.Errno() != syscall.ENOENT {
		return err
	}
	switch se.Cmd {
	case fdfs.TrackerProtoCmdServiceQueryStoreWithoutGroupOne, fdfs.TrackerProtoCmdServiceQueryStoreWithGroupOne,
		fdfs.TrackerProtoCmdServiceQueryStoreWithoutGroupAll, fdfs.TrackerProtoCmdServiceQueryStoreWithGroupAll,
		fdfs.TrackerProtoCmdServiceQueryFetchOne, fdfs.TrackerProtoCmdServiceQueryFetchAll,
		fdfs.TrackerProtoCmdServiceQueryUpdate:
		// %v, not %w: errors.Is must no longer see ENOENT.
		return fmt.Errorf("%w: %v", errNoStorage, err)
	}
	return err
}
