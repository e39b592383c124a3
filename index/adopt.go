package index

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"time"
)

// AdoptOptions tune Adopt.
type AdoptOptions struct {
	// Batch is how many files go into one transaction (default 1,000).
	Batch int
	// FillSizes, if set, is called with the new files whose size is
	// unknown (Size < 0) before they are written, and may fill it in (by
	// asking FastDFS: the index never does). It must not keep the slice.
	FillSizes func(ctx context.Context, files []ByIDEntry) error
	// Progress, if set, is called after each batch and at the end.
	Progress func(AdoptStats)
}

// AdoptStats says what an Adopt did.
type AdoptStats struct {
	Listed    int // files the listing named
	Added     int // new adopted entries
	Removed   int // adopted entries whose file is gone
	Unchanged int // files that had an entry already (adopted or named)
	Took      time.Duration
}

// Adopt brings the files of group into the by-ID view: list must call
// yield with every file the group holds and return nil only when the
// listing was complete. Files without an entry get an adopted one, in
// batches, while the listing runs; then, only if the listing was
// complete, the adopted entries written before this run whose file the
// listing did not name are removed. Named entries are never touched.
//
// Memory stays small however large the group: beside one batch, Adopt
// keeps 8 bytes per listed file (a hash of its ID, to tell which entries
// are gone). A hash shared by a gone file and a listed one only keeps the
// gone file's entry until a later run; it never removes a file that
// exists. Runs on several hosts at once are safe: a sweep leaves alone the
// entries a newer run wrote.
func Adopt(ctx context.Context, idx ByIDIndex, group string, list func(yield func(ByIDEntry) error) error, opts AdoptOptions) (AdoptStats, error) {
	if byIDDepth(group) != 1 {
		return AdoptStats{}, fmt.Errorf("%w: group %q", ErrInvalid, group)
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	start := time.Now()
	var st AdoptStats
	report := func() {
		if opts.Progress != nil {
			st.Took = time.Since(start)
			opts.Progress(st)
		}
	}
	seed := maphash.MakeSeed()
	var hashes []uint64

	// The listing runs in its own goroutine, a batch ahead of the index
	// writes, so that neither waits for the other more than it must.
	batches := make(chan []ByIDEntry, 2)
	free := make(chan []ByIDEntry, 3)
	for range 3 {
		free <- make([]ByIDEntry, 0, opts.Batch)
	}
	listCtx, cancelList := context.WithCancel(ctx)
	defer cancelList()
	listErr := make(chan error, 1)
	prefix := group + "/"
	go func() {
		defer close(batches)
		var cur []ByIDEntry
		take := func() error {
			select {
			case cur = <-free:
				cur = cur[:0]
				return nil
			case <-listCtx.Done():
				return listCtx.Err()
			}
		}
		if err := take(); err != nil {
			listErr <- err
			return
		}
		err := list(func(e ByIDEntry) error {
			if !strings.HasPrefix(e.FileID, prefix) || !isByIDPath(e.FileID) {
				return fmt.Errorf("%w: listed file %q is not a file ID of %s", ErrInvalid, e.FileID, group)
			}
			cur = append(cur, e)
			if len(cur) < opts.Batch {
				return nil
			}
			select {
			case batches <- cur:
			case <-listCtx.Done():
				return listCtx.Err()
			}
			return take()
		})
		if err == nil && len(cur) > 0 {
			select {
			case batches <- cur:
			case <-listCtx.Done():
				err = listCtx.Err()
			}
		}
		listErr <- err
	}()

	var writeErr error
	for b := range batches {
		if writeErr == nil {
			writeErr = adoptBatch(ctx, idx, b, opts, &st)
			for _, e := range b {
				hashes = append(hashes, maphash.String(seed, e.FileID))
			}
			report()
		}
		if writeErr != nil {
			cancelList()
		}
		free <- b
	}
	if err := <-listErr; writeErr == nil && err != nil {
		writeErr = fmt.Errorf("listing %s: %w", group, err)
	}
	if writeErr != nil {
		st.Took = time.Since(start)
		return st, writeErr
	}

	slices.Sort(hashes)
	removed, err := idx.SweepAdopted(ctx, group, start, func(fileID string) bool {
		_, found := slices.BinarySearch(hashes, maphash.String(seed, fileID))
		return !found
	})
	st.Removed = removed
	report()
	st.Took = time.Since(start)
	return st, err
}

func adoptBatch(ctx context.Context, idx ByIDIndex, b []ByIDEntry, opts AdoptOptions, st *AdoptStats) error {
	st.Listed += len(b)
	if opts.FillSizes != nil && slices.ContainsFunc(b, func(e ByIDEntry) bool { return e.Size < 0 }) {
		var unknown []string
		for _, e := range b {
			if e.Size < 0 {
				unknown = append(unknown, e.FileID)
			}
		}
		missing, err := idx.MissingByID(ctx, unknown)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			var fill []ByIDEntry
			at := make(map[string]int, len(missing))
			for i, e := range b {
				if slices.Contains(missing, e.FileID) {
					at[e.FileID] = i
					fill = append(fill, e)
				}
			}
			if err := opts.FillSizes(ctx, fill); err != nil {
				return err
			}
			for _, e := range fill {
				if i, ok := at[e.FileID]; ok {
					b[i].Size = e.Size
				}
			}
		}
	}
	added, err := idx.AdoptBatch(ctx, b)
	if err != nil {
		return err
	}
	st.Added += added
	st.Unchanged += len(b) - added
	return nil
}

// ErrNoByID is returned for an index whose engine has no by-ID view.
var ErrNoByID = errors.New("index: this engine has no by-ID view")
