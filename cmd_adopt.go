package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/index"
)

// runIndexAdopt is `fdfsfs index adopt GROUP...`: every file the groups
// hold enters the by-ID view of the index, so the mount lists them under
// GROUP/Mxx/..; adopted entries whose file is gone leave it.
func runIndexAdopt(ctx context.Context, args []string) error {
	fl := subFlagSet("index", "adopt", indexCommands)
	var ixf indexFlags
	ixf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	groups := fl.Args()
	if len(groups) == 0 {
		return errors.New("adopt wants one or more GROUPs")
	}
	// The index engine's caches would grow with a million new keys; a
	// soft limit makes the collector hand memory back before then.
	debug.SetMemoryLimit(adoptMemoryLimit)
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
	byID, ok := idx.(index.ByIDIndex)
	if !ok {
		return index.ErrNoByID
	}
	var failed error
	for _, group := range groups {
		line := newAdoptProgress(os.Stderr, group)
		st, err := adoptGroup(ctx, c, byID, group, ixf.logger(), line.update)
		line.finish()
		if err != nil {
			fmt.Fprintf(os.Stderr, "fdfsfs index adopt: %s: %v\n", group, err)
			failed = errors.New("some groups were not adopted")
			if ctx.Err() != nil {
				return failed
			}
			continue
		}
		fmt.Println(adoptSummary(group, st))
	}
	return failed
}

// adoptBatch is how many files go into one index transaction.
const adoptBatch = 4096

// adoptMemoryLimit is the Go heap `index adopt` aims to stay under.
const adoptMemoryLimit = 128 << 20

// adoptSummary is the line printed after each group.
func adoptSummary(group string, st index.AdoptStats) string {
	rate := float64(st.Listed) / max(st.Took.Seconds(), 1e-3)
	return fmt.Sprintf("%s: %d added, %d removed, %d unchanged in %s (%.0f files/s)",
		group, st.Added, st.Removed, st.Unchanged, st.Took.Round(time.Millisecond), rate)
}

// adoptGroup lists group on its storages and adopts what the listing names.
// Sizes the IDs do not carry (appender and slave files, links) are asked
// of FastDFS, for new entries only, a few at a time.
func adoptGroup(ctx context.Context, c *fdfs.Client, byID index.ByIDIndex, group string, log *slog.Logger, progress func(index.AdoptStats)) (index.AdoptStats, error) {
	list := func(yield func(index.ByIDEntry) error) error {
		return c.ListGroupFiles(ctx, group, func(f fdfs.GroupFile) error {
			e := index.ByIDEntry{FileID: f.FileID, Size: -1, Mtime: f.Created}
			if id, err := fdfs.ParseFileID(f.FileID); err == nil && f.Target == "" {
				e.Size = id.Size
			}
			return yield(e)
		})
	}
	fill := func(ctx context.Context, files []index.ByIDEntry) error {
		return fillSizes(ctx, c, files, log)
	}
	return index.Adopt(ctx, byID, group, list, index.AdoptOptions{Batch: adoptBatch, FillSizes: fill, Progress: progress})
}

// fillSizes asks the storages for the sizes of files, 8 at a time. A file
// deleted meanwhile keeps an unknown size (the next adopt removes it);
// another failure is logged and leaves the size unknown too, since the
// mount asks again when the file is looked up.
func fillSizes(ctx context.Context, c *fdfs.Client, files []index.ByIDEntry, log *slog.Logger) error {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(8, len(files)) {
		wg.Go(func() {
			for i := range next {
				info, err := c.QueryFileInfo(ctx, files[i].FileID)
				switch {
				case err == nil:
					files[i].Size = info.FileSize
				case errors.Is(err, syscall.ENOENT):
				default:
					log.Warn("adopt: size unknown", "file", files[i].FileID, "err", err)
				}
			}
		})
	}
	for i := range files {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return ctx.Err()
}

// adoptProgress redraws one line on a terminal: files listed, added and
// unchanged so far, and the rate. Off a terminal it draws nothing.
type adoptProgress struct {
	out   io.Writer
	group string
	last  time.Time
	drawn bool
}

func newAdoptProgress(f *os.File, group string) *adoptProgress {
	p := &adoptProgress{group: group}
	if isTerminal(f) {
		p.out = f
	}
	return p
}

func (p *adoptProgress) update(st index.AdoptStats) {
	if p.out == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last, p.drawn = time.Now(), true
	rate := float64(st.Listed) / max(st.Took.Seconds(), 1e-3)
	fmt.Fprintf(p.out, "\r%s: %d listed, %d added, %d unchanged, %.0f files/s\033[K", p.group, st.Listed, st.Added, st.Unchanged, rate)
}

func (p *adoptProgress) finish() {
	if p.out != nil && p.drawn {
		fmt.Fprint(p.out, "\r\033[K")
	}
}

// adoptLoop re-adopts groups every interval until ctx ends, for the
// mount's --adopt-interval. Each round's summary goes to the log.
func adoptLoop(ctx context.Context, interval time.Duration, c *fdfs.Client, byID index.ByIDIndex, groups func() []string, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, g := range groups() {
			st, err := adoptGroup(ctx, c, byID, g, log, nil)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				log.Warn("adopt", "group", g, "err", err)
				continue
			}
			log.Info("adopt: " + adoptSummary(g, st))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startAdoptLoop runs adoptLoop over the groups the tracker lists, until
// the returned stop is called (which waits for the round in progress).
func startAdoptLoop(ctx context.Context, interval time.Duration, c *fdfs.Client, idx index.Index, log *slog.Logger) (stop func()) {
	byID, ok := idx.(index.ByIDIndex)
	if !ok {
		log.Warn("--adopt-interval: " + index.ErrNoByID.Error())
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	groups := func() []string {
		gs, err := c.ListGroups(ctx)
		if err != nil {
			log.Warn("adopt: listing the groups", "err", err)
			return nil
		}
		names := make([]string, len(gs))
		for i, g := range gs {
			names[i] = g.Name
		}
		return names
	}
	go func() {
		defer close(done)
		adoptLoop(ctx, interval, c, byID, groups, log)
	}()
	return func() {
		cancel()
		<-done
	}
}
