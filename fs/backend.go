package fs

import (
	"context"
	"io"

	"fdfsfs/fdfs"
)

// clientBackend adapts the FastDFS client to what the FUSE layer needs.
type clientBackend struct{ c *fdfs.Client }

// NewBackend wraps a FastDFS client.
func NewBackend(c *fdfs.Client) Backend { return clientBackend{c} }

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

func (b clientBackend) Upload(ctx context.Context, group, ext string, r io.Reader, size int64, appender bool) (string, error) {
	if appender {
		return b.c.UploadAppender(ctx, group, ext, r, size)
	}
	return b.c.Upload(ctx, group, ext, r, size)
}

func (b clientBackend) Modify(ctx context.Context, fileID string, off int64, r io.Reader, size int64) error {
	return b.c.Modify(ctx, fileID, off, r, size)
}

func (b clientBackend) Truncate(ctx context.Context, fileID string, size int64) error {
	return b.c.Truncate(ctx, fileID, size)
}

func (b clientBackend) Download(ctx context.Context, fileID string, off, length int64, w io.Writer) (int64, error) {
	return b.c.Download(ctx, fileID, off, length, w)
}

func (b clientBackend) Delete(ctx context.Context, fileID string) error {
	return b.c.Delete(ctx, fileID)
}

func (b clientBackend) FileSize(ctx context.Context, fileID string) (int64, error) {
	if _, err := fdfs.ParseFileID(fileID); err != nil {
		return 0, err
	}
	info, err := b.c.QueryFileInfo(ctx, fileID)
	if err != nil {
		return 0, err
	}
	return info.FileSize, nil
}

func (b clientBackend) GetMetadata(ctx context.Context, fileID string) (map[string]string, error) {
	return b.c.GetMetadata(ctx, fileID)
}

func (b clientBackend) SetMetadata(ctx context.Context, fileID string, meta map[string]string, merge bool) error {
	flag := byte(fdfs.MetaOverwrite)
	if merge {
		flag = fdfs.MetaMerge
	}
	return b.c.SetMetadata(ctx, fileID, meta, flag)
}
