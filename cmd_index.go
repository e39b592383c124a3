package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/index"
)

// indexCommands are the subcommands of index: everything that works on the
// name index itself rather than on FastDFS files.
var indexCommands []command

func init() {
	indexCommands = []command{
		{"check", "index check [--repair] [--lost-since TIME] [flags]", "check the index; --repair fixes what it can, purges orphans and deletes orphaned uploads (and, with --lost-since, uploads that nothing names)", runIndexCheck},
		{"backup", "index backup --group G [flags]", "write the index into the cluster as one file and print its file ID", runIndexBackup},
		{"restore", "index restore [flags] FILEID", "rebuild an empty index from a backup", runIndexRestore},
		{"dump", "index dump [flags] [FILE|-]", "write the index out in an engine-neutral form (to stdout by default)", runIndexDump},
		{"load", "index load [flags] [FILE|-]", "load a dump into an empty index (from stdin by default)", runIndexLoad},
		{"adopt", "index adopt [flags] GROUP...", "bring every file of the groups into the by-ID tree; drop adopted files that are gone", runIndexAdopt},
	}
}

func runIndex(ctx context.Context, args []string) error {
	return runSubcommand(ctx, "index", indexCommands, args)
}

func runIndexCheck(ctx context.Context, args []string) error {
	fl := subFlagSet("index", "check", indexCommands)
	var ixf indexFlags
	ixf.register(fl)
	repair := fl.Bool("repair", false, "fix what can be fixed (dangling names, link counts, orphaned uploads)")
	lostSince := fl.String("lost-since", "", "also list the groups' files created since TIME (RFC 3339, or a duration before now) that no name points at, such as uploads whose naming a Redis failover lost; --repair deletes them, and refuses while a mount uses the index (no other FastDFS client may have written since)")
	if err := parseNoArgs(fl, args); err != nil {
		return err
	}
	idx, err := ixf.open(!*repair)
	if err != nil {
		return err
	}
	defer idx.Close()
	rep, err := index.Check(ctx, idx)
	if err != nil {
		return err
	}
	printReport(rep)
	if *lostSince != "" {
		since, err := parseSince(*lostSince, time.Now())
		if err != nil {
			return err
		}
		c, err := ixf.client()
		if err != nil {
			return fmt.Errorf("--lost-since needs the cluster: %w", err)
		}
		err = checkLostUploads(ctx, os.Stdout, idx, c, since, *repair)
		c.Close()
		if err != nil {
			return err
		}
	}
	if !*repair {
		if rep.Damaged() {
			return errors.New("the index has problems (run with --repair to fix them)")
		}
		return nil
	}
	if _, err := index.Repair(ctx, idx); err != nil {
		return err
	}
	after, err := index.Check(ctx, idx)
	if err != nil {
		return err
	}
	fmt.Println("after repair:")
	printReport(after)
	// No mount of this host holds them open now; one that a live mount's
	// session holds (a shared index) is left to it.
	purged, held := 0, 0
	for _, ino := range after.Orphans {
		err := idx.Purge(ctx, ino)
		switch {
		case errors.Is(err, index.ErrBusy):
			held++
			continue
		case err != nil:
			return fmt.Errorf("purge orphan %d: %w", ino, err)
		}
		purged++
	}
	fmt.Printf("orphans purged: %d\n", purged)
	if held > 0 {
		fmt.Printf("orphans held open by a live mount: %d\n", held)
	}
	// Orphaned uploads and deletes still due need FastDFS.
	if c, err := ixf.client(); err == nil {
		defer c.Close()
		n := deletePending(ctx, idx, c)
		fmt.Printf("pending FastDFS files deleted: %d\n", n)
	}
	return nil
}

func runIndexBackup(ctx context.Context, args []string) error {
	fl := subFlagSet("index", "backup", indexCommands)
	var ixf indexFlags
	ixf.register(fl)
	group := fl.String("group", "", "the group that keeps the backup")
	if err := parseNoArgs(fl, args); err != nil {
		return err
	}
	if *group == "" {
		return errors.New("backup needs --group: the group that keeps the backup")
	}
	idx, err := ixf.open(true)
	if err != nil {
		return err
	}
	defer idx.Close()
	c, err := ixf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	id, err := backupIndex(ctx, idx, c, *group)
	if err != nil {
		return err
	}
	fmt.Println(id)
	return nil
}

func runIndexRestore(ctx context.Context, args []string) error {
	fl := subFlagSet("index", "restore", indexCommands)
	var ixf indexFlags
	ixf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("restore wants the backup's FILEID")
	}
	c, err := ixf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	idx, err := ixf.open(false)
	if err != nil {
		return err
	}
	defer idx.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := c.Download(ctx, fl.Arg(0), 0, 0, pw)
		pw.CloseWithError(err)
	}()
	if err := idx.Load(ctx, pr); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Println("restored")
	return nil
}

// backupIndex writes the index's dump into the cluster as one file. The
// dump is staged in a temp file because an upload needs its size up front.
func backupIndex(ctx context.Context, idx index.Index, c *fdfs.Client, group string) (string, error) {
	tmp, err := os.CreateTemp("", "fdfsfs-backup-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := idx.Dump(ctx, tmp); err != nil {
		return "", err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return c.UploadAppender(ctx, group, indexBackupExt, tmp, size)
}

// indexBackupExt ends the file ID of every index backup.
const indexBackupExt = "fsidx"

func deletePending(ctx context.Context, idx index.Index, c *fdfs.Client) int {
	ps, err := idx.ListPending(ctx)
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range ps {
		if p.Reason == index.PendingUpload && p.Session != "" {
			// An upload of a live mount may still be claimed.
			if alive, err := idx.SessionAlive(ctx, p.Session); err != nil || alive {
				continue
			}
		}
		if err := c.Delete(ctx, p.FileID); err != nil && !errors.Is(err, syscall.ENOENT) {
			fmt.Fprintf(os.Stderr, "delete %s: %v\n", p.FileID, err)
			continue
		}
		if idx.RemovePending(ctx, p.FileID) == nil {
			n++
		}
	}
	return n
}

func runIndexDump(ctx context.Context, args []string) error {
	fl := subFlagSet("index", "dump", indexCommands)
	var ixf indexFlags
	ixf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 1 {
		return errors.New("want at most one FILE (default: stdout)")
	}
	idx, err := ixf.open(true)
	if err != nil {
		return err
	}
	defer idx.Close()
	if fl.NArg() == 0 || fl.Arg(0) == "-" {
		return idx.Dump(ctx, os.Stdout)
	}
	f, err := os.Create(fl.Arg(0))
	if err != nil {
		return err
	}
	if err := idx.Dump(ctx, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runIndexLoad(ctx context.Context, args []string) error {
	fl := subFlagSet("index", "load", indexCommands)
	var ixf indexFlags
	ixf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 1 {
		return errors.New("want at most one FILE (default: stdin)")
	}
	var r io.Reader = os.Stdin
	if fl.NArg() == 1 && fl.Arg(0) != "-" {
		f, err := os.Open(fl.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	idx, err := ixf.open(false)
	if err != nil {
		return err
	}
	defer idx.Close()
	return idx.Load(ctx, r)
}

func printReport(r index.Report) {
	fmt.Printf("inodes: %d, reachable entries: %d\n", r.Inodes, r.Entries)
	for _, e := range r.Dangling {
		fmt.Printf("dangling name: %q in dir %d names missing inode %d\n", e.Name, e.Parent, e.Ino)
	}
	for _, e := range r.Misfiled {
		fmt.Printf("misfiled name: %q in dir %d (kind differs from inode %d)\n", e.Name, e.Parent, e.Ino)
	}
	for _, ino := range r.Unreachable {
		fmt.Printf("unreachable inode: %d\n", ino)
	}
	for _, n := range r.Nlink {
		fmt.Printf("link count: inode %d says %d, names found %d\n", n.Ino, n.Stored, n.Counted)
	}
	for _, ino := range r.Unmarked {
		fmt.Printf("unlinked inode not marked for purge: %d\n", ino)
	}
	for _, ino := range r.StaleOrphans {
		fmt.Printf("stale orphan mark: %d\n", ino)
	}
	fmt.Printf("orphans waiting for purge: %d\n", len(r.Orphans))
	for _, p := range r.Pending {
		fmt.Printf("pending FastDFS file: %s (%s)\n", p.FileID, map[index.PendingReason]string{index.PendingUpload: "upload never claimed", index.PendingDelete: "delete not yet done"}[p.Reason])
	}
	if !r.Damaged() {
		fmt.Println("ok")
	}
}
