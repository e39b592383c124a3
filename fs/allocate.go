package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

var _ = (fusefs.FileAllocater)((*fileHandle)(nil))

// Allocate answers fallocate(2) as far as FastDFS allows. Storage space
// cannot be reserved there, so the modes that only reserve it succeed
// without doing so:
//   - mode 0 grows the file to off+size if it is shorter (zeros, as a
//     truncate up makes them), committed at close like a write;
//   - FALLOC_FL_KEEP_SIZE alone changes nothing;
//   - punching holes, zeroing, collapsing and inserting ranges are
//     EOPNOTSUPP, which glibc's posix_fallocate never sends.
//
// Without it every fallocate was EOPNOTSUPP, and programs that preallocate
// (rsync --preallocate, download managers, some databases) failed.
func (h *fileHandle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	n := h.n
	if n.fs.opts.ReadOnly {
		return syscall.EROFS
	}
	switch mode {
	case 0:
	case unix.FALLOC_FL_KEEP_SIZE:
		return 0
	default:
		return syscall.EOPNOTSUPP
	}
	end := off + size
	if end < off || end > 1<<62 {
		return syscall.EFBIG
	}
	ctx = uninterrupted(ctx)
	n.wmu.Lock()
	defer n.wmu.Unlock()
	w := n.writer()
	err := w.allocate(ctx, int64(end))
	w.publish()
	if err != nil {
		return n.fs.uploadErrno("fallocate", err)
	}
	return 0
}

// allocate grows the file to at least size; a file already that long is
// left as it is, clean or not.
func (w *writer) allocate(ctx context.Context, size int64) error {
	current := w.size
	if w.state == clean {
		a, err := w.n.fs.idx.GetAttr(ctx, w.n.ino)
		if err != nil {
			return err
		}
		current = a.Size
	}
	if current >= size {
		return nil
	}
	return w.truncate(ctx, size)
}
