package cache

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// packBlock is the block size of the pack tests: large enough that objects
// of a few KiB are small objects.
const packBlock = 64 << 10

// packFiles returns the pack files in c's directory and their data bytes.
func packFiles(t *testing.T, c *Cache) map[string]int64 {
	t.Helper()
	names, err := os.ReadDir(c.packs.dir)
	if err != nil {
		t.Fatal(err)
	}
	found := make(map[string]int64)
	for _, d := range names {
		n, err := dataBytes(filepath.Join(c.packs.dir, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		found[d.Name()] = n
	}
	return found
}

func TestSmallObjectsShareAPack(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{BlockSize: packBlock, MemBytes: -1})
	sizes := []int64{1, 1000, 4096, 5000, packBlock - 1, packBlock, 3 * packBlock}
	var fetchers []*fakeFetcher
	for i, size := range sizes {
		f := newFakeFetcher(t, size)
		fetchers = append(fetchers, f)
		mustRead(t, c, f.object("k"+strconv.Itoa(i)), 0, size)
	}
	settle(t, c)
	// The objects of one short block are records of one pack; a full
	// block, and an object of several, has a file of its own.
	if got := packFiles(t, c); len(got) != 1 {
		t.Fatalf("packs %v, want one", got)
	}
	files := diskBlocks(t, dir)
	if len(files) != 2 {
		t.Fatalf("object files %v, want one for each of the two large objects", files)
	}
	for i, f := range fetchers {
		mustRead(t, c, f.object("k"+strconv.Itoa(i)), 0, sizes[i])
		mustRead(t, c, f.object("k"+strconv.Itoa(i)), sizes[i]/2, sizes[i]-sizes[i]/2)
		if f.Count() != int(max(1, sizes[i]/packBlock)) {
			t.Fatalf("object of %d bytes fetched %d times, want it read from disk", sizes[i], f.Count())
		}
	}
	c.Close()

	// A remount finds the records again.
	c2 := openTest(t, dir, Options{BlockSize: packBlock, MemBytes: -1})
	if st := c2.Stats(); st.Blocks != 1+1+1+1+1+1+3 {
		t.Fatalf("reopened with %d blocks", st.Blocks)
	}
	for i, f := range fetchers {
		before := f.Count()
		mustRead(t, c2, f.object("k"+strconv.Itoa(i)), 0, sizes[i])
		if f.Count() != before {
			t.Fatalf("object of %d bytes fetched again after the reopen", sizes[i])
		}
	}
}

func TestPackEvictionFreesRecordsAndPacks(t *testing.T) {
	const size = 3000
	dir := t.TempDir()
	// Room for four objects; each pack holds three records.
	c := openTest(t, dir, Options{BlockSize: packBlock, MemBytes: -1, MaxBytes: 4 * size})
	c.packs.segmentBytes = 3 * packRecordLen(size)
	f := newFakeFetcher(t, size)
	for i := range 12 {
		mustRead(t, c, f.object("k"+strconv.Itoa(i)), 0, size)
		settle(t, c)
	}
	if st := c.Stats(); st.Blocks != 4 || st.Bytes != 4*size || st.Evictions != 8 {
		t.Fatalf("stats %+v, want the last four objects cached", st)
	}
	// k8 to k11 are left: k8 in the third pack, k9 to k11 in the fourth.
	packs := packFiles(t, c)
	want := map[string]int64{"pack-2": packRecordLen(size), "pack-3": 3 * packRecordLen(size)}
	if len(packs) != len(want) || packs["pack-2"] != want["pack-2"] || packs["pack-3"] != want["pack-3"] {
		t.Fatalf("packs %v, want %v: evicted records punched, empty packs removed", packs, want)
	}
	for i := 8; i < 12; i++ {
		before := f.Count()
		mustRead(t, c, f.object("k"+strconv.Itoa(i)), 0, size)
		if f.Count() != before {
			t.Fatalf("k%d fetched again", i)
		}
	}
	c.Close()
	c2 := openTest(t, dir, Options{BlockSize: packBlock, MemBytes: -1, MaxBytes: 4 * size})
	if st := c2.Stats(); st.Blocks != 4 {
		t.Fatalf("reopened with %d blocks, want 4", st.Blocks)
	}
}

func TestDamagedPackRecordIsRefetched(t *testing.T) {
	const size = 5000
	dir := t.TempDir()
	c := openTest(t, dir, Options{BlockSize: packBlock, MemBytes: -1})
	f := newFakeFetcher(t, size)
	obj := f.object("k")
	mustRead(t, c, obj, 0, size)
	settle(t, c)
	path := filepath.Join(c.packs.dir, "pack-0")
	pack, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pack.Close()
	// A flipped byte in the object's bytes fails its checksum.
	if _, err := pack.WriteAt([]byte{^byteAt(100)}, packHeaderLen+100); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, obj, 0, size)
	if f.Count() != 2 {
		t.Fatalf("%d fetches, want the damaged object fetched again", f.Count())
	}
	settle(t, c)
	mustRead(t, c, obj, 0, size)
	if f.Count() != 2 {
		t.Fatalf("%d fetches, want the new record read", f.Count())
	}
	c.Close()

	// A pack cut short (a write lost in a crash) loses the records it cut.
	info, err := pack.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := pack.Truncate(info.Size() - packRecordLen(size) + packHeaderLen + 100); err != nil {
		t.Fatal(err)
	}
	c2 := openTest(t, dir, Options{BlockSize: packBlock, MemBytes: -1})
	if st := c2.Stats(); st.Blocks != 0 {
		t.Fatalf("reopened with %d blocks, want the cut record dropped", st.Blocks)
	}
	mustRead(t, c2, obj, 0, size)
	if f.Count() != 3 {
		t.Fatalf("%d fetches, want the object fetched again", f.Count())
	}
}

// TestSmallObjectFileOfEarlierVersionServed: a small object cached by an
// earlier version, in a file of its own, is found at Open and served from
// there without a fetch.
func TestSmallObjectFileOfEarlierVersionServed(t *testing.T) {
	const size = 3000
	dir := t.TempDir()
	c := openTest(t, dir, Options{BlockSize: packBlock, MemBytes: -1})
	f := newFakeFetcher(t, size)
	obj := f.object("old")
	path := c.objectPath(objectID(obj.Key))
	c.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content(0, size), 0o600); err != nil {
		t.Fatal(err)
	}
	c2 := openTest(t, dir, Options{BlockSize: packBlock, MemBytes: -1})
	if st := c2.Stats(); st.Blocks != 1 {
		t.Fatalf("reopened with %d blocks, want the object's file found", st.Blocks)
	}
	mustRead(t, c2, obj, 0, size)
	if f.Count() != 0 {
		t.Fatalf("%d fetches, want the object read from its file", f.Count())
	}
}

// FuzzScanPack feeds scanPack, which decodes the records of a pack found
// on disk at Open, arbitrary pack contents: it must not fail or panic, and
// every record it finds must lie inside the file, aligned, with a length a
// small object can have. Seeds are a real pack's bytes and damaged ones.
func FuzzScanPack(f *testing.F) {
	dir := f.TempDir()
	c, err := Open(dir, Options{BlockSize: packBlock, MemBytes: -1})
	if err != nil {
		f.Fatal(err)
	}
	for i, size := range []int{1, 4096, 5000} {
		data := make([]byte, size)
		if _, err := c.packs.append(objectID("seed"+strconv.Itoa(i)), data, time.Unix(1700000000, 0)); err != nil {
			f.Fatal(err)
		}
	}
	c.Close()
	names, _ := os.ReadDir(filepath.Join(dir, "packs-"+strconv.Itoa(packBlock)))
	for _, d := range names {
		real, err := os.ReadFile(filepath.Join(dir, "packs-"+strconv.Itoa(packBlock), d.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(real)
		f.Add(real[:packHeaderLen+10])
		cut := append([]byte(nil), real...)
		cut[24] = 0xff // a length past packMaxBytes
		f.Add(cut)
	}
	f.Add([]byte(packMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "pack-0")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		found, size, err := scanPack(&packSegment{path: path, f: file})
		if err != nil {
			t.Fatal(err)
		}
		if size < int64(len(data)) || size%packAlign != 0 {
			t.Fatalf("pack size %d for %d bytes", size, len(data))
		}
		for _, e := range found {
			if e.pack.off%packAlign != 0 || e.size <= 0 || e.size > packMaxBytes ||
				e.pack.off+packHeaderLen+e.size > int64(len(data)) || len(e.id.obj) != 32 {
				t.Fatalf("record %+v (at %d) outside a %d-byte pack", e, e.pack.off, len(data))
			}
		}
	})
}
