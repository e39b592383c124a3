package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// not yet named look the same too, so it runs with no host mounted, as
// --repair does.

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
// after since that the index does not name and has not journalled.
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
			if f.Target == "" && !f.Created.Before(since) {
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
	return lost, nil
}

// checkLostUploads prints the lost uploads since the time and, with
// repair, deletes them from FastDFS. It fails when it finds some and does
// not repair, as a damaged index does.
func checkLostUploads(ctx context.Context, idx index.Index, ixf *indexFlags, sinceFlag string, repair bool) error {
	since, err := parseSince(sinceFlag, time.Now())
	if err != nil {
		return err
	}
	c, err := ixf.client()
	if err != nil {
		return fmt.Errorf("--lost-since needs the cluster: %w", err)
	}
	defer c.Close()
	lost, err := lostUploads(ctx, idx, c, since)
	if err != nil {
		return err
	}
	fmt.Printf("files created since %s that no name points at: %d\n", since.Format(time.RFC3339), len(lost))
	for _, id := range lost {
		fmt.Printf("lost upload: %s\n", id)
	}
	if !repair {
		if len(lost) > 0 {
			return errors.New("uploads that no name points at (run with --repair to delete them)")
		}
		return nil
	}
	deleted := 0
	for _, id := range lost {
		if err := c.Delete(ctx, id); err != nil && !errors.Is(err, syscall.ENOENT) {
			fmt.Printf("deleting %s: %v\n", id, err)
			continue
		}
		deleted++
	}
	fmt.Printf("lost uploads deleted: %d\n", deleted)
	return nil
}
