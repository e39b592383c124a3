package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"fdfsfs/fdfs"
)

// clientBackend adapts the FastDFS client to what the FUSE layer needs.
type clientBackend struct{ c *fdfs.Client }

// NewBackend wraps a FastDFS client.
func NewBackend(c *fdfs.Client) Backend { return clientBackend{c} }

// The FastDFS client repeats a request itself where that is safe (a stale
// pooled connection) and moves on to another tracker or storage; this layer
// only translates.

func (b clientBackend) Groups(ctx context.Context) ([]GroupInfo, error) {
	gs, err := b.c.ListGroups(ctx)
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
	if appender {
		id, err = b.c.UploadAppender(ctx, group, ext, r, size)
	} else {
		id, err = b.c.Upload(ctx, group, ext, r, size)
	}
	return id, noStorage(err)
}

func (b clientBackend) Modify(ctx context.Context, fileID string, off int64, r io.Reader, size int64) error {
	return noStorage(b.c.Modify(ctx, fileID, off, r, size))
}

func (b clientBackend) Truncate(ctx context.Context, fileID string, size int64) error {
	return noStorage(b.c.Truncate(ctx, fileID, size))
}

func (b clientBackend) Download(ctx context.Context, fileID string, off, length int64, w io.Writer) (int64, error) {
	n, err := b.c.Download(ctx, fileID, off, length, w)
	return n, noStorage(err)
}

func (b clientBackend) Delete(ctx context.Context, fileID string) error {
	return noStorage(b.c.Delete(ctx, fileID))
}

func (b clientBackend) FileSize(ctx context.Context, fileID string) (int64, error) {
	if _, err := fdfs.ParseFileID(fileID); err != nil {
		return 0, err
	}
	info, err := b.c.QueryFileInfo(ctx, fileID)
	if err != nil {
		return 0, noStorage(err)
	}
	return info.FileSize, nil
}

func (b clientBackend) GetMetadata(ctx context.Context, fileID string) (map[string]string, error) {
	meta, err := b.c.GetMetadata(ctx, fileID)
	return meta, noStorage(err)
}

func (b clientBackend) SetMetadata(ctx context.Context, fileID string, meta map[string]string, merge bool) error {
	flag := byte(fdfs.MetaOverwrite)
	if merge {
		flag = fdfs.MetaMerge
	}
	return noStorage(b.c.SetMetadata(ctx, fileID, meta, flag))
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
