package fs

import (
	"sync"

	"fdfsfs/index"
)

// Programs that read a directory's files one after another (cat dir/*,
// tar, cp -r or rsync out of the mount) list the directory and then open
// the files in the listing's order. Each small file's content is one
// download, which an open starts (fileHandle.preload); a reader going
// through a listing in order then waits for one download per file, one
// after another. Once two small files of a listing were opened one after
// the other, the next filesAhead small files of that listing are fetched
// too, in the background (cache.Prefetch: the cache's readahead slots bound
// them), so that their opens find the content in memory or on its way.
//
// A listing is kept past its directory handle (cat opens the files after
// the shell closed the directory), for listingsKept directories across the
// mount and listedMax small files each. It is a snapshot: a file changed
// since is fetched as it was (wasted, never served: the cache keys content
// by file ID and generation, and an open reads the index afresh), and a
// change to the directory through this mount drops it.
const (
	filesAhead   = 8
	listingsKept = 4
	listedMax    = 16384
)

// listedFile is what fetching a small file's content takes: about 100
// bytes with its name in dirListing.pos, so a listing kept costs at most
// a couple of MB.
type listedFile struct {
	fileID string
	size   int64
	gen    uint64
}

// dirListing is the small files of one directory listing, in its order.
type dirListing struct {
	files []listedFile
	pos   map[string]int // index in files, by name

	mu    sync.Mutex
	last  int // mu; the index opened last (-1: none)
	ahead int // mu; the first index not yet handed to the cache
}

// listings remembers which directories keep a listing, oldest first.
type listings struct {
	mu   sync.Mutex
	dirs []*dirNode // mu
}

// keepListing remembers the small files of a directory's complete listing
// for prefetchAfter, forgetting the oldest listing kept beyond
// listingsKept.
func (f *FS) keepListing(d *dirNode, ents []index.Entry) {
	if f.cache == nil { // an FS of the listing tests, which reads no content
		return
	}
	blockSize := int64(f.cache.BlockSize())
	l := &dirListing{pos: make(map[string]int), last: -1}
	for _, e := range ents {
		a := e.Attr
		if a.Kind != index.KindFile || a.FileID == "" || a.Size <= 0 || a.Size > blockSize {
			continue
		}
		l.pos[e.Name] = len(l.files)
		l.files = append(l.files, listedFile{fileID: a.FileID, size: a.Size, gen: a.Gen})
		if len(l.files) == listedMax {
			break
		}
	}
	if len(l.files) < 2 {
		return
	}
	d.listing.Store(l)
	f.listings.mu.Lock()
	defer f.listings.mu.Unlock()
	kept := f.listings.dirs[:0]
	for _, o := range f.listings.dirs {
		if o != d {
			kept = append(kept, o)
		}
	}
	kept = append(kept, d)
	if len(kept) > listingsKept {
		kept[0].listing.Store(nil)
		kept = kept[1:]
	}
	f.listings.dirs = kept
}

// dropListing forgets d's listing: its entries changed.
func (d *dirNode) dropListing() {
	if d.listing.Load() != nil {
		d.listing.Store(nil)
	}
}

// prefetchOpened is told that n, a small file, is being opened to be
// read; see prefetchAfter.
func (f *FS) prefetchOpened(n *fileNode) {
	name, parent := n.Parent()
	if parent == nil {
		return
	}
	if d, ok := parent.Operations().(*dirNode); ok {
		f.prefetchAfter(d, name)
	}
}

// prefetchAfter is told that the small file name of d is being opened to
// be read. When it follows the file opened before it in d's listing
// (within filesAhead), the small files after it in the listing are
// fetched ahead.
func (f *FS) prefetchAfter(d *dirNode, name string) {
	l := d.listing.Load()
	if l == nil {
		return
	}
	p, ok := l.pos[name]
	if !ok {
		return
	}
	l.mu.Lock()
	inOrder := l.last >= 0 && p > l.last && p <= l.last+filesAhead
	l.last = p
	if !inOrder {
		l.ahead = p + 1
		l.mu.Unlock()
		return
	}
	from := max(l.ahead, p+1)
	to := min(p+filesAhead, len(l.files)-1)
	l.ahead = max(l.ahead, to+1)
	l.mu.Unlock()
	for _, lf := range l.files[from : to+1] {
		f.cache.Prefetch(f.object(index.Attr{FileID: lf.fileID, Size: lf.size, Gen: lf.gen}))
	}
}
