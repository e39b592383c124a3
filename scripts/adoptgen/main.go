// Command adoptgen fills a local-cluster storage directory with N files
// for scripts/bench-adopt.sh: hard links of one empty file under names in
// the real V6 format, 100 to a sub-directory as a V6 storage rotates them.
// The listing (FETCH_ONE_PATH_BINLOG) reads names only, so the bench
// measures listing and adopting a million files without uploading them.
//
//	adoptgen -storage DATA/group1/storage0 -n 1000000
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"fdfsfs/fdfs"
)

func main() {
	storage := flag.String("storage", "", "the storage's directory (DATA/GROUP/storage0 of fdfsfs local --data DATA)")
	n := flag.Int("n", 1000000, "files to create")
	flag.Parse()
	if err := run(*storage, *n); err != nil {
		fmt.Fprintln(os.Stderr, "adoptgen:", err)
		os.Exit(1)
	}
}

func run(storage string, n int) error {
	if storage == "" {
		return fmt.Errorf("-storage is required")
	}
	data := filepath.Join(storage, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	// A file takes at most 65,000 links on ext4: a new source every 60,000.
	var empty string
	defer func() { os.Remove(empty) }()
	base := time.Unix(1790000000, 0)
	for i := range n {
		name, err := fdfs.GenerateRemoteName(fdfs.NameParams{
			SourceIP:   net.IPv4(127, 0, 0, 1),
			CreateTime: base.Add(time.Duration(i) * time.Second),
			Size:       int64(1000 + i%100000),
			CRC32:      uint32(i * 2654435761),
			Ext:        "jpg",
		})
		if err != nil {
			return err
		}
		if i%60000 == 0 {
			os.Remove(empty)
			empty = filepath.Join(storage, fmt.Sprintf("adoptgen-empty-%d", i))
			if err := os.WriteFile(empty, nil, 0o644); err != nil {
				return err
			}
		}
		leaf := i / 100
		rel := fmt.Sprintf("%02X/%02X/%s", leaf/256%256, leaf%256, name[10:])
		p := filepath.Join(data, rel)
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		if err := os.Link(empty, p); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}
