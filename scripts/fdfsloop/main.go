// Command fdfsloop is the small-file baseline of scripts/bench.sh: an
// application's loop over a FastDFS client library in one process, the
// analogue of a loop over the C client's upload and download calls, with
// our fdfs package.
//
//	fdfsloop -tracker ADDR -group G -upload DIR [-ids FILE]
//	fdfsloop -tracker ADDR -download FILE
//
// -upload stores every regular file of DIR (read from disk one by one) in
// group G and writes the file IDs to -ids; -download fetches every file ID
// listed in FILE into memory. Like the C client it asks the tracker for
// every file (QUERY_STORE before each upload, QUERY_FETCH_ONE before each
// download); unlike a C client without its connection pool, it keeps its
// connections open between files. It prints the seconds the loop took.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fdfsfs/fdfs"
)

func main() {
	tracker := flag.String("tracker", "", "tracker host:port")
	group := flag.String("group", "group1", "group to upload to")
	upload := flag.String("upload", "", "directory whose files to upload")
	ids := flag.String("ids", "", "with -upload: write the file IDs here")
	download := flag.String("download", "", "file listing the file IDs to download, one a line")
	flag.Parse()
	if *tracker == "" || (*upload == "") == (*download == "") {
		fail(fmt.Errorf("want -tracker and one of -upload DIR or -download FILE"))
	}
	cl, err := fdfs.NewClient(fdfs.Config{Trackers: []string{*tracker}})
	if err != nil {
		fail(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var took time.Duration
	if *upload != "" {
		took, err = uploadAll(ctx, cl, *group, *upload, *ids)
	} else {
		took, err = downloadAll(ctx, cl, *download)
	}
	if err != nil {
		fail(err)
	}
	fmt.Printf("%.3f\n", took.Seconds())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fdfsloop:", err)
	os.Exit(1)
}

func uploadAll(ctx context.Context, cl *fdfs.Client, group, dir, idsPath string) (time.Duration, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var out []string
	start := time.Now()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return 0, err
		}
		id, err := cl.Upload(ctx, group, fdfs.FileExt(e.Name()), bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, id)
	}
	took := time.Since(start)
	if idsPath != "" {
		if err := os.WriteFile(idsPath, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			return 0, err
		}
	}
	return took, nil
}

func downloadAll(ctx context.Context, cl *fdfs.Client, idsPath string) (time.Duration, error) {
	f, err := os.Open(idsPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			ids = append(ids, line)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	start := time.Now()
	for _, id := range ids {
		buf.Reset()
		if _, err := cl.Download(ctx, id, 0, 0, &buf); err != nil {
			return 0, fmt.Errorf("%s: %w", id, err)
		}
	}
	return time.Since(start), nil
}
