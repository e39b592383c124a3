package fs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"fdfsfs/fdfs"
	"fdfsfs/index"
)

// toErrno is the one place that turns an error into an errno. go-fuse's own
// fallback for an unknown error is ENOSYS, which no application expects, so
// every error that leaves this package passes through here.
func (f *FS) toErrno(op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	switch {
	case errors.Is(err, index.ErrNotFound), errors.Is(err, fs.ErrNotExist),
		errors.Is(err, fdfs.ErrBadFileID): // a by-ID path that cannot name a file
		return syscall.ENOENT
	case errors.Is(err, index.ErrExists), errors.Is(err, fs.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, index.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, index.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, index.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, index.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, index.ErrNameLen):
		return syscall.ENAMETOOLONG
	case errors.Is(err, index.ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		f.log.Warn("timed out", "op", op, "err", err)
		return syscall.ETIMEDOUT
	}
	// Statuses from FastDFS match the errno they carry with errors.Is;
	// ENOSPC and friends mean the same to an application as on a local disk.
	for _, e := range passThrough {
		if errors.Is(err, e) {
			return e
		}
	}
	// Everything else, network timeouts and refused connections included,
	// is EIO: the application sees what a failing disk would show it.
	f.log.Error("I/O error", "op", op, "err", err)
	return syscall.EIO
}

var passThrough = []syscall.Errno{
	syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EPERM, syscall.EACCES,
	syscall.EXDEV, syscall.ENOTSUP, syscall.ENODATA, syscall.ERANGE, syscall.EINVAL,
	syscall.EFBIG, syscall.EBUSY,
}
