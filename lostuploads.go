package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/index"
)

// Uploads lost with a Redis master. A file written through the mount is
// uploaded first and named in the index after; a small new file is not
// journalled in between (fs/writer.go), so when the master dies with the
// naming transaction, or with the journal entry of a larger upload, not yet
// on the replica that takes over, the FastDFS file is left that no name and
// no journal entry knows: nothing else finds it. lostUploads finds such
// files by what the groups hold now (each storage's file listing,
// FETCH_ONE_PATH_BINLOG): every file created since a time the operator
// names (just before the failover) that no inode and no journal entry of
// the index names. Files other FastDFS clients wrote since then look the
// same, so the time must exclude them; and while a mount runs, its uploads
// not yet named look the same too (a naming that waits out a failover can
// come long after its upload), so --repair refuses to delete while any
// mount's session is alive. Index backups (index backup) name no file of
// the index either; they are kept.

// parseSince reads --lost-since: an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--lost-since %q: want a time (2006-01-02T15:04:05Z07:00) or a duration before now (2h)", s)
	}
	return t, nil
}

// lostUploads lists, in ID order, the files of every group created at or
// after since that the index does not name, has not journalled and does
// not show in its by-ID view, index backups left out.
func lostUploads(ctx context.Context, idx index.Index, c *fdfs.Client, since time.Time) ([]string, error) {
	groups, err := c.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the groups: %w", err)
	}
	// The candidates first (files created since: few), then one pass over
	// the index's inodes strikes out the named ones.
	candidates := map[string]bool{}
	for _, g := range groups {
		err := c.ListGroupFiles(ctx, g.Name, func(f fdfs.GroupFile) error {
			if f.Target == "" && !f.Created.Before(since) && !strings.HasSuffix(f.FileID, "."+indexBackupExt) {
				candidates[f.FileID] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing the files of %s: %w", g.Name, err)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	if err := idx.Inodes(ctx, func(a index.Attr) error {
		delete(candidates, a.FileID)
		return nil
	}); err != nil {
		return nil, err
	}
	pending, err := idx.ListPending(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		delete(candidates, p.FileID) // the journal's own repair deals with it
	}
	lost := make([]string, 0, len(candidates))
	for id := range candidates {
		lost = append(lost, id)
	}
	slices.Sort(lost)
	if bi, ok := idx.(index.ByIDIndex); ok {
		// A file of the by-ID view (index adopt) is one the mounts show.
		var unknown []string
		for batch := range slices.Chunk(lost, 512) {
			missing, err := bi.MissingByID(ctx, batch)
			if err != nil {
				return nil, err
			}
			unknown = append(unknown, missing...)
		}
		lost = unknown
	}
	return lost, nil
}

// checkLostUploads prints the lost uploads since the time to out and, with
// repair, deletes them from FastDFS. It fails when it finds some and does
// not repair, as a damaged index does, and refuses to repair while a mount
// uses the index: before the listing and again before the first delete, so
// that a mount alive at any time between is seen.
func checkLostUploads(ctx context.Context, out io.Writer, idx index.Index, c *fdfs.Client, since time.Time, repair bool) error {
	if repair {
		if err := refuseLiveMounts(ctx, idx); err != nil {
			return err
		}
	}
	lost, err := lostUploads(ctx, idx, c, since)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "files created since %s that no name points at: %d\n", since.Format(time.RFC3339), len(lost))
	for _, id := range lost {
		fmt.Fprintf(out, "lost upload: %s\n", id)
	}
	if !repair {
		if len(lost) == 0 {
			return nil
		}
		if live, err := idx.LiveSessions(ctx); err == nil && len(live) > 0 {
			fmt.Fprintf(out, "note: %d mount(s) use this index (%s); files they are writing now are listed too\n", len(live), strings.Join(live, ", "))
		}
		return errors.New("uploads that no name points at (run with --repair to delete them)")
	}
	if len(lost) == 0 {
		return nil
	}
	if err := refuseLiveMounts(ctx, idx); err != nil {
		return err
	}
	deleted := 0
	for _, id := range lost {
		if err := c.Delete(ctx, id); err != nil && !errors.Is(err, syscall.ENOENT) {
			fmt.Fprintf(out, "deleting %s: %v\n", id, err)
			continue
		}
		deleted++
	}
	fmt.Fprintf(out, "lost uploads deleted: %d\n", deleted)
	return nil
}

// refuseLiveMounts fails while a mount's session is alive: the uploads it
// has not named yet would look lost.
func refuseLiveMounts(ctx context.Context, idx index.Index) error {
	live, err := idx.LiveSessions(ctx)
	if err != nil {
		return fmt.Errorf("listing the mounts of the index: %w", err)
	}
	if len(live) > 0 {
		return fmt.Errorf("--lost-since --repair: %d mount(s) use this index (%s); the files they are writing now look lost: unmount them (after a crash, wait their --session-ttl) and run it again",
			len(live), strings.Join(live, ", "))
	}
	return nil
}
