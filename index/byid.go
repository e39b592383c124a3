package index

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// The by-ID view lists the FastDFS files a group holds under their ID paths
// (group1/M00/00/0A/wKg….jpg), beside the named tree. An entry is a view,
// not a link: it names no inode of its own, counts in no Nlink and keeps no
// file alive. Two kinds of entry share it:
//
//   - adopted (ByIDAdopted): `fdfsfs index adopt` found the file in the
//     group's listing. Only a later adopt removes it, when the file is gone
//     from the group.
//   - named (ByIDNamed): a name in the tree holds the file (it was written
//     through the mount, or given a name with ln from the by-ID tree). The
//     name's transactions keep it: claiming a file (Create, SetContent)
//     writes it with the inode, and the file going to the journal to be
//     deleted (SetContent replacing it, Purge) removes it. Adopt never
//     touches it.
//
// The entries live in the engines' own tables (keys.go and redis.go), read
// and written through byIDKV.

// ByIDOrigin says why a by-ID entry exists.
type ByIDOrigin byte

const (
	ByIDAdopted ByIDOrigin = 'A'
	ByIDNamed   ByIDOrigin = 'N'
)

// ByIDEntry is one file of the by-ID view.
type ByIDEntry struct {
	FileID string // "group1/M00/00/0A/wKg….jpg"
	Origin ByIDOrigin
	// Ino is the inode holding the file, for a named entry; 0 otherwise.
	Ino Ino
	// Size is the file's size, -1 when unknown (an appender or slave
	// file whose name does not carry it, adopted without asking).
	Size  int64
	Mtime time.Time // the file's creation time
	Since time.Time // when the entry was written
}

// Name is the last part of the file ID, the entry's name in its directory.
func (e ByIDEntry) Name() string { return e.FileID[strings.LastIndexByte(e.FileID, '/')+1:] }

const byIDValueLen = 1 + 8 + 8 + 8 + 8

// encodeByID: origin (1), ino (8), size (8), mtime and since (8 each, Unix
// nanoseconds), all big-endian.
func encodeByID(e ByIDEntry) []byte {
	v := make([]byte, 0, byIDValueLen)
	v = append(v, byte(e.Origin))
	v = binary.BigEndian.AppendUint64(v, uint64(e.Ino))
	v = binary.BigEndian.AppendUint64(v, uint64(e.Size))
	v = binary.BigEndian.AppendUint64(v, uint64(e.Mtime.UnixNano()))
	return binary.BigEndian.AppendUint64(v, uint64(e.Since.UnixNano()))
}

func decodeByID(fileID string, v []byte) (ByIDEntry, error) {
	if len(v) != byIDValueLen {
		return ByIDEntry{}, corruptf("by-ID entry %s: value of %d bytes", fileID, len(v))
	}
	e := ByIDEntry{
		FileID: fileID,
		Origin: ByIDOrigin(v[0]),
		Ino:    Ino(binary.BigEndian.Uint64(v[1:])),
		Size:   int64(binary.BigEndian.Uint64(v[9:])),
		Mtime:  time.Unix(0, int64(binary.BigEndian.Uint64(v[17:]))),
		Since:  time.Unix(0, int64(binary.BigEndian.Uint64(v[25:]))),
	}
	if e.Origin != ByIDAdopted && e.Origin != ByIDNamed {
		return ByIDEntry{}, corruptf("by-ID entry %s: origin %q", fileID, v[0])
	}
	return e, nil
}

// byIDKV is what an engine's transaction offers the by-ID view, beside kv.
type byIDKV interface {
	// byIDs reads many entries at once; a missing one is nil.
	byIDs(fileIDs []string) ([][]byte, error)
	setByID(fileID string, v []byte) error
	deleteByID(fileID string) error
	// byIDDir calls fn for every entry of a leaf directory
	// ("group1/M00/00/0A") in name order.
	byIDDir(ctx context.Context, dir string, fn func(fileID string, v []byte) error) error
	// byIDChildren names the sub-directories of dir ("group1",
	// "group1/M00" or "group1/M00/00") that hold entries, in order.
	byIDChildren(ctx context.Context, dir string) ([]string, error)
}

func (tx *txn) byID() byIDKV { return tx.kv.(byIDKV) }

// claimByID records that inode a holds its file, as a named entry. It is
// called where a name claims a file (Create, SetContent).
func (tx *txn) claimByID(a Attr) error {
	if a.FileID == "" || !isByIDPath(a.FileID) {
		return nil
	}
	return tx.byID().setByID(a.FileID, encodeByID(ByIDEntry{
		FileID: a.FileID, Origin: ByIDNamed, Ino: a.Ino, Size: a.Size, Mtime: a.Mtime, Since: tx.now,
	}))
}

// dropByID removes the entry of a file that is journalled to be deleted.
func (tx *txn) dropByID(fileID string) error {
	if !isByIDPath(fileID) {
		return nil
	}
	return tx.byID().deleteByID(fileID)
}

// isByIDPath reports whether fileID has the shape of a by-ID path:
// group/Mxx/HH/HH/name, so that its directories can be listed.
func isByIDPath(fileID string) bool {
	parts := strings.Split(fileID, "/")
	if len(parts) != 5 || parts[0] == "" || parts[4] == "" {
		return false
	}
	if len(parts[1]) != 3 || parts[1][0] != 'M' || !upperHex(parts[1][1:]) {
		return false
	}
	return len(parts[2]) == 2 && upperHex(parts[2]) && len(parts[3]) == 2 && upperHex(parts[3])
}

func upperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// ByIDIndex is the by-ID view of an index. Both engines implement it.
type ByIDIndex interface {
	// ByIDLookup reads one entry (ErrNotFound if there is none).
	ByIDLookup(ctx context.Context, fileID string) (ByIDEntry, error)
	// ByIDReadDir lists a directory of the view: for "group1",
	// "group1/M00" and "group1/M00/00" the names of the sub-directories
	// that hold entries; for "group1/M00/00/0A" its entries, in name
	// order, handed to fn batch at a time (all at once for batch <= 0).
	ByIDReadDir(ctx context.Context, dir string, batch int, subdirs func([]string) error, entries func([]ByIDEntry) error) error
	// AdoptBatch writes an adopted entry for each file that has none
	// (named or adopted) and reports how many it added; the rest are
	// unchanged.
	AdoptBatch(ctx context.Context, files []ByIDEntry) (added int, err error)
	// MissingByID returns those of fileIDs that have no entry.
	MissingByID(ctx context.Context, fileIDs []string) ([]string, error)
	// SweepAdopted removes the adopted entries of group written before
	// `before` for which gone reports true, and returns how many it
	// removed. Named entries and newer ones are left alone.
	SweepAdopted(ctx context.Context, group string, before time.Time, gone func(fileID string) bool) (int, error)
}

var (
	_ ByIDIndex = (*Badger)(nil)
	_ ByIDIndex = (*Redis)(nil)
)

func (e *engine) ByIDLookup(ctx context.Context, fileID string) (ByIDEntry, error) {
	var out ByIDEntry
	err := e.be.view(ctx, func(tx *txn) error {
		vs, err := tx.byID().byIDs([]string{fileID})
		if err != nil {
			return err
		}
		if vs[0] == nil {
			return ErrNotFound
		}
		out, err = decodeByID(fileID, vs[0])
		return err
	})
	return out, err
}

// byIDDepth is how many parts a view directory has: 1 for the group, 4
// for a leaf directory; 0 for a path that is none.
func byIDDepth(dir string) int {
	parts := strings.Split(dir, "/")
	if parts[0] == "" || len(parts) > 4 {
		return 0
	}
	if len(parts) > 1 && (len(parts[1]) != 3 || parts[1][0] != 'M' || !upperHex(parts[1][1:])) {
		return 0
	}
	for i := 2; i < len(parts); i++ {
		if len(parts[i]) != 2 || !upperHex(parts[i]) {
			return 0
		}
	}
	return len(parts)
}

func (e *engine) ByIDReadDir(ctx context.Context, dir string, batch int, subdirs func([]string) error, entries func([]ByIDEntry) error) error {
	depth := byIDDepth(dir)
	if depth == 0 {
		return fmt.Errorf("%w: %q is no by-ID directory", ErrInvalid, dir)
	}
	if depth < 4 {
		var names []string
		err := e.be.view(ctx, func(tx *txn) error {
			var err error
			names, err = tx.byID().byIDChildren(ctx, dir)
			return err
		})
		if err != nil {
			return err
		}
		return subdirs(names)
	}
	var last string
	return e.be.view(ctx, func(tx *txn) error {
		var buf []ByIDEntry
		flush := func() error {
			if len(buf) == 0 {
				return nil
			}
			if err := entries(buf); err != nil {
				return err
			}
			last = buf[len(buf)-1].FileID
			buf = nil
			return nil
		}
		err := tx.byID().byIDDir(ctx, dir, func(fileID string, v []byte) error {
			if last != "" && fileID <= last {
				return nil // handed over before the engine read again
			}
			ent, err := decodeByID(fileID, v)
			if err != nil {
				return err
			}
			buf = append(buf, ent)
			if batch > 0 && len(buf) >= batch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	})
}

func (e *engine) AdoptBatch(ctx context.Context, files []ByIDEntry) (int, error) {
	ids := make([]string, len(files))
	for i, f := range files {
		if !isByIDPath(f.FileID) {
			return 0, fmt.Errorf("%w: %q is not a file ID with a by-ID path", ErrInvalid, f.FileID)
		}
		ids[i] = f.FileID
	}
	var added int
	err := e.be.update(ctx, func(tx *txn) error {
		added = 0
		vs, err := tx.byID().byIDs(ids)
		if err != nil {
			return err
		}
		for i, v := range vs {
			if v != nil {
				continue
			}
			f := files[i]
			f.Origin, f.Ino, f.Since = ByIDAdopted, 0, tx.now
			if err := tx.byID().setByID(f.FileID, encodeByID(f)); err != nil {
				return err
			}
			added++
		}
		return nil
	})
	return added, err
}

func (e *engine) MissingByID(ctx context.Context, fileIDs []string) ([]string, error) {
	var missing []string
	err := e.be.view(ctx, func(tx *txn) error {
		missing = missing[:0]
		vs, err := tx.byID().byIDs(fileIDs)
		if err != nil {
			return err
		}
		for i, v := range vs {
			if v == nil {
				missing = append(missing, fileIDs[i])
			}
		}
		return nil
	})
	return missing, err
}

// sweepBatch is how many removals go into one transaction.
const sweepBatch = 512

func (e *engine) SweepAdopted(ctx context.Context, group string, before time.Time, gone func(fileID string) bool) (int, error) {
	if byIDDepth(group) != 1 {
		return 0, fmt.Errorf("%w: group %q", ErrInvalid, group)
	}
	removed := 0
	var doomed []string
	flush := func() error {
		if len(doomed) == 0 {
			return nil
		}
		n := 0
		err := e.be.update(ctx, func(tx *txn) error {
			n = 0
			vs, err := tx.byID().byIDs(doomed)
			if err != nil {
				return err
			}
			for i, v := range vs {
				if v == nil {
					continue
				}
				// Named meanwhile, or adopted again by a newer run:
				// not this sweep's to remove.
				ent, err := decodeByID(doomed[i], v)
				if err != nil || ent.Origin != ByIDAdopted || !ent.Since.Before(before) {
					continue
				}
				if err := tx.byID().deleteByID(doomed[i]); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		removed += n
		doomed = doomed[:0]
		return err
	}
	// Walk the view a leaf directory at a time: each read is small, and
	// the removals of one leaf go before the next is read.
	err := e.walkByIDDirs(ctx, group, func(leaf string) error {
		mark := len(doomed)
		err := e.be.view(ctx, func(tx *txn) error {
			doomed = doomed[:mark] // the engine may read again
			return tx.byID().byIDDir(ctx, leaf, func(fileID string, v []byte) error {
				ent, err := decodeByID(fileID, v)
				if err != nil {
					return err
				}
				if ent.Origin == ByIDAdopted && ent.Since.Before(before) && gone(fileID) {
					doomed = append(doomed, fileID)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		if len(doomed) >= sweepBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return removed, err
	}
	return removed, flush()
}

// walkByIDDirs calls fn with every leaf directory of group's view that
// holds entries.
func (e *engine) walkByIDDirs(ctx context.Context, dir string, fn func(leaf string) error) error {
	if byIDDepth(dir) == 4 {
		return fn(dir)
	}
	var children []string
	err := e.be.view(ctx, func(tx *txn) error {
		var err error
		children, err = tx.byID().byIDChildren(ctx, dir)
		return err
	})
	if err != nil {
		return err
	}
	for _, c := range children {
		if err := e.walkByIDDirs(ctx, dir+"/"+c, fn); err != nil {
			return err
		}
	}
	return nil
}
