package index

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// Report is what Check found. Orphans and Pending are the normal state of a
// store between a crash and the cleanup that follows it; everything else is
// damage.
type Report struct {
	Inodes  int // inodes in the store
	Entries int // entries reachable from the root

	// Dangling entries name an inode that does not exist.
	Dangling []EntryRef
	// Misfiled entries record a kind that differs from their inode's.
	// Repair leaves them alone: the index cannot rewrite an entry in place.
	Misfiled []EntryRef
	// Unreachable inodes have Nlink > 0 but no name reaching them from the
	// root.
	Unreachable []Ino
	// Nlink lists reachable inodes whose Nlink disagrees with their names
	// (for a directory: 2 plus its subdirectories).
	Nlink []NlinkMismatch
	// Unmarked inodes have Nlink 0 but are missing from the orphan set, so
	// nothing would ever purge them.
	Unmarked []Ino
	// StaleOrphans are in the orphan set but do not exist.
	StaleOrphans []Ino

	Orphans []Ino     // Nlink 0, waiting for Purge
	Pending []Pending // the journal
}

// EntryRef names one directory entry.
type EntryRef struct {
	Parent Ino
	Name   string
	Ino    Ino
}

// NlinkMismatch is an inode whose stored Nlink differs from the count of
// names found.
type NlinkMismatch struct {
	Ino     Ino
	Stored  uint32
	Counted uint32
}

// Damaged reports whether Check found anything beyond orphans and pending
// journal entries.
func (r *Report) Damaged() bool {
	return len(r.Dangling)+len(r.Misfiled)+len(r.Unreachable)+len(r.Nlink)+
		len(r.Unmarked)+len(r.StaleOrphans) > 0
}

type inodeInfo struct {
	kind  Kind
	nlink uint32
	names uint32 // entries naming it, found by the walk
	subs  uint32 // directories: subdirectories found by the walk
}

// Check walks the tree from RootIno and compares it with every inode in the
// store. It only reads, but run it on a store no mount is using: changes
// made during the walk show up as damage.
func Check(ctx context.Context, idx Index) (Report, error) {
	var r Report
	inodes := make(map[Ino]*inodeInfo)
	err := idx.Inodes(ctx, func(a Attr) error {
		inodes[a.Ino] = &inodeInfo{kind: a.Kind, nlink: a.Nlink}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("check: inodes: %w", err)
	}
	r.Inodes = len(inodes)
	root, ok := inodes[RootIno]
	if !ok || root.kind != KindDir {
		return r, corruptf("check: no root directory")
	}

	// Breadth-first from the root; a directory is entered once, however
	// many entries name it.
	entered := map[Ino]bool{RootIno: true}
	queue := []Ino{RootIno}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		err := idx.Dentries(ctx, dir, func(name string, ino Ino, kind Kind) error {
			ref := EntryRef{Parent: dir, Name: name, Ino: ino}
			info, ok := inodes[ino]
			if !ok {
				r.Dangling = append(r.Dangling, ref)
				return nil
			}
			r.Entries++
			info.names++
			if kind != info.kind {
				r.Misfiled = append(r.Misfiled, ref)
			}
			if info.kind == KindDir {
				inodes[dir].subs++
				if !entered[ino] {
					entered[ino] = true
					queue = append(queue, ino)
				}
			}
			return nil
		})
		if err != nil {
			return r, fmt.Errorf("check: entries of %d: %w", dir, err)
		}
	}

	orphans, err := idx.Orphans(ctx)
	if err != nil {
		return r, fmt.Errorf("check: orphans: %w", err)
	}
	marked := make(map[Ino]bool, len(orphans))
	for _, ino := range orphans {
		marked[ino] = true
		if _, ok := inodes[ino]; !ok {
			r.StaleOrphans = append(r.StaleOrphans, ino)
		}
	}

	for ino, info := range inodes {
		reachable := info.names > 0 || ino == RootIno
		switch {
		case reachable:
			counted := info.names
			if info.kind == KindDir {
				// "." and the entry in its parent (for the root, its own
				// ".."), plus each subdirectory's "..".
				counted = 2 + info.subs
				if ino != RootIno {
					counted = 1 + info.names + info.subs
				}
			}
			if counted != info.nlink {
				r.Nlink = append(r.Nlink, NlinkMismatch{Ino: ino, Stored: info.nlink, Counted: counted})
			}
		case info.nlink > 0:
			r.Unreachable = append(r.Unreachable, ino)
		case marked[ino]:
			r.Orphans = append(r.Orphans, ino)
		default:
			r.Unmarked = append(r.Unmarked, ino)
		}
	}
	slices.Sort(r.Unreachable)
	slices.Sort(r.Orphans)
	slices.Sort(r.Unmarked)
	slices.Sort(r.StaleOrphans)
	slices.SortFunc(r.Nlink, func(a, b NlinkMismatch) int { return cmp.Compare(a.Ino, b.Ino) })

	if r.Pending, err = idx.ListPending(ctx); err != nil {
		return r, fmt.Errorf("check: pending: %w", err)
	}
	return r, nil
}

// Repair runs Check and fixes what the index alone can: it drops dangling
// entries, sets wrong link counts to the counted ones, and turns unreachable
// inodes (and unmarked ones) into orphans, so that the usual purge deletes
// them and journals their FastDFS files. It returns what Check found.
// Orphans and pending entries are left for the mount's cleanup: a running
// mount may still hold them open.
func Repair(ctx context.Context, idx Index) (Report, error) {
	r, err := Check(ctx, idx)
	if err != nil {
		return r, err
	}
	for _, e := range r.Dangling {
		if err := idx.DropDentry(ctx, e.Parent, e.Name); err != nil && !errors.Is(err, ErrNotFound) {
			return r, fmt.Errorf("repair: drop entry %q of %d: %w", e.Name, e.Parent, err)
		}
	}
	for _, m := range r.Nlink {
		if _, err := idx.SetNlink(ctx, m.Ino, m.Counted); err != nil {
			return r, fmt.Errorf("repair: nlink of %d: %w", m.Ino, err)
		}
	}
	for _, ino := range slices.Concat(r.Unreachable, r.Unmarked) {
		if _, err := idx.SetNlink(ctx, ino, 0); err != nil {
			return r, fmt.Errorf("repair: orphan %d: %w", ino, err)
		}
	}
	for _, ino := range r.StaleOrphans {
		// Purge of a missing inode only drops its orphan mark.
		if err := idx.Purge(ctx, ino); err != nil {
			return r, fmt.Errorf("repair: stale orphan %d: %w", ino, err)
		}
	}
	return r, nil
}
