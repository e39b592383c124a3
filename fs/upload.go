package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"syscall"
	"time"

	"fdfsfs/index"
)

// uploads owns every new FastDFS file this mount makes, from its upload
// until an index commit claims it: whatever fails after the upload, the
// file ends up claimed by a name, deleted, or in the journal to be deleted
// by a sweep, never stored with nothing pointing at it. Every path that
// uploads (small files, streamed files, staged files, metadata carriers)
// goes through put and ends with claimed, claimFailed or drop.
//
// A journalled upload (index.PendingUpload) needs nothing more once its
// claim was tried: the claim removes the entry in the same transaction, so
// the entry's presence says whether the claim went through, even when the
// index's answer was lost. An upload that is not journalled (a new small
// file, see writer.uploadBuffer) is settled by asking the index whether its
// inode points at it.
//
// Lock order: uploads.mu is a leaf; it is never held across I/O.
type uploads struct {
	be  Backend
	idx index.Index
	log *slog.Logger

	mu sync.Mutex
	// live counts, per file ID, the uploads not yet settled (guarded by
	// mu): the journal sweep leaves their entries alone.
	live map[string]int
	// left are uploads that could be neither claimed, deleted nor
	// journalled, each with the inode whose failed commit may have claimed
	// it (0 for none); every sweep tries again (guarded by mu).
	left map[string]index.Ino
}

// upload is one new FastDFS file, until uploads settles it.
type upload struct {
	id         string
	journalled bool
	settled    bool
}

func newUploads(be Backend, idx index.Index, log *slog.Logger) *uploads {
	return &uploads{be: be, idx: idx, log: log, live: make(map[string]int), left: make(map[string]index.Ino)}
}

// put uploads a new file and, with journal, records it as an upload not
// yet claimed before returning it, so that a crash before a name claims it
// leaves it to the next mount's sweep. On error nothing is left to settle:
// an upload that could not be journalled has been deleted (or handed to a
// later sweep).
func (u *uploads) put(ctx context.Context, group, ext string, r io.Reader, size int64, appender, journal bool) (*upload, error) {
	id, err := u.be.Upload(ctx, group, ext, r, size, appender)
	if err != nil {
		return nil, err
	}
	up := &upload{id: id}
	u.mu.Lock()
	u.live[id]++
	u.mu.Unlock()
	if !journal {
		return up, nil
	}
	if err := u.idx.AddPending(ctx, index.Pending{FileID: id, Reason: index.PendingUpload, Since: time.Now()}); err != nil {
		u.drop(ctx, up)
		return nil, fmt.Errorf("journalling upload %s: %w", id, err)
	}
	up.journalled = true
	return up, nil
}

// inProgress reports whether fileID is an upload of this mount not yet
// settled.
func (u *uploads) inProgress(fileID string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.live[fileID] > 0
}

// settle ends u's ownership of up.
func (u *uploads) settle(up *upload) {
	if up.settled {
		return
	}
	up.settled = true
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.live[up.id]--; u.live[up.id] <= 0 {
		delete(u.live, up.id)
	}
}

// claimed: the index commit naming up went through.
func (u *uploads) claimed(up *upload) { u.settle(up) }

// claimFailed: the index commit that was to make ino point at up returned
// an error; it may have gone through all the same.
func (u *uploads) claimFailed(ctx context.Context, up *upload, ino index.Ino) {
	if up.settled {
		return
	}
	if up.journalled {
		// The journal decides: its entry went with the claim, or it is
		// still there and a sweep deletes the file.
		u.settle(up)
		return
	}
	a, err := u.idx.GetAttr(ctx, ino)
	switch {
	case err == nil && a.FileID == up.id:
		u.settle(up)
	case err == nil || errors.Is(err, index.ErrNotFound):
		u.drop(ctx, up)
	default:
		u.log.Warn("cannot tell whether a commit claimed an upload; a sweep asks again", "file_id", up.id, "ino", ino, "err", err)
		u.keep(up.id, ino)
		u.settle(up)
	}
}

// drop settles an upload that no commit claimed: a journalled one is left
// to the journal's sweep, any other is deleted now, or journalled for
// deletion when the storage refuses.
func (u *uploads) drop(ctx context.Context, up *upload) {
	if up.settled {
		return
	}
	defer u.settle(up)
	if up.journalled {
		return
	}
	if !u.remove(ctx, up.id) {
		u.keep(up.id, 0)
	}
}

// remove deletes an unclaimed file that no journal entry names, or
// journals it for deletion; it reports whether either worked.
func (u *uploads) remove(ctx context.Context, fileID string) bool {
	err := u.be.Delete(ctx, fileID)
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return true
	}
	u.log.Warn("deleting an unclaimed upload; journalling it for deletion", "file_id", fileID, "err", err)
	if err := u.idx.AddPending(ctx, index.Pending{FileID: fileID, Reason: index.PendingDelete, Since: time.Now()}); err != nil {
		u.log.Error("journalling an unclaimed upload for deletion; the next sweep tries again", "file_id", fileID, "err", err)
		return false
	}
	return true
}

func (u *uploads) keep(fileID string, ino index.Ino) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.left[fileID] = ino
}

// retry settles the uploads an earlier failure left to it; every sweep
// calls it.
func (u *uploads) retry(ctx context.Context) {
	u.mu.Lock()
	left := maps.Clone(u.left)
	u.mu.Unlock()
	for id, ino := range left {
		if ino != 0 {
			a, err := u.idx.GetAttr(ctx, ino)
			if err == nil && a.FileID == id {
				u.forget(id) // claimed after all
				continue
			}
			if err != nil && !errors.Is(err, index.ErrNotFound) {
				continue
			}
		}
		if u.remove(ctx, id) {
			u.forget(id)
		}
	}
}

func (u *uploads) forget(fileID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.left, fileID)
}
