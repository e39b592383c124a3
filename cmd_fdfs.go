package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"fdfsfs/fdfs"
)

func runGroups(ctx context.Context, args []string) error {
	fl := flagSet("groups")
	var cf clientFlags
	cf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	gs, err := c.ListGroups(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%-16s %10s %10s %8s %8s %6s\n", "GROUP", "TOTAL_MB", "FREE_MB", "STORAGES", "ACTIVE", "PORT")
	for _, g := range gs {
		fmt.Printf("%-16s %10d %10d %8d %8d %6d\n", g.Name, g.TotalMB, g.FreeMB, g.StorageCount, activeCount(g), g.StoragePort)
	}
	return nil
}

func runPut(ctx context.Context, args []string) error {
	fl := flagSet("put")
	var cf clientFlags
	cf.register(fl)
	group := fl.String("group", "", "group to upload to (default: the tracker chooses)")
	appender := fl.Bool("appender", false, "upload as appender files (can be appended to and modified)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return errors.New("no FILE given")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, name := range fl.Args() {
		id, err := putFile(ctx, c, *group, name, *appender)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Println(id)
	}
	return nil
}

func putFile(ctx context.Context, c *fdfs.Client, group, name string, appender bool) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", errors.New("not a regular file")
	}
	ext := fdfs.FileExt(name)
	r := newProgress(f, st.Size(), filepath.Base(name), os.Stderr)
	defer r.done()
	if appender {
		return c.UploadAppender(ctx, group, ext, r, st.Size())
	}
	return c.Upload(ctx, group, ext, r, st.Size())
}

func runGet(ctx context.Context, args []string) error {
	fl := flagSet("get")
	var cf clientFlags
	cf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() < 1 || fl.NArg() > 2 {
		return errors.New("want FILEID [DEST|-]")
	}
	id := fl.Arg(0)
	if _, err := fdfs.ParseFileID(id); err != nil {
		return err
	}
	dest := filepath.Base(id)
	if fl.NArg() == 2 {
		dest = fl.Arg(1)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.QueryFileInfo(ctx, id)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if dest != "-" {
		// Write next to the destination and rename, so a failed download
		// never leaves a truncated file under the final name.
		tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".part-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	if info.FileSize > 0 {
		pw := newProgressWriter(w, info.FileSize, filepath.Base(id), os.Stderr)
		_, err = c.Download(ctx, id, 0, 0, pw)
		pw.done()
		if err != nil {
			return err
		}
	}
	if tmp, ok := w.(*os.File); ok && dest != "-" {
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), dest)
	}
	return nil
}

func runRm(ctx context.Context, args []string) error {
	fl := flagSet("rm")
	var cf clientFlags
	cf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return errors.New("no FILEID given")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var failed error
	for _, id := range fl.Args() {
		if err := c.Delete(ctx, id); err != nil {
			fmt.Fprintf(os.Stderr, "fdfsfs rm: %s: %v\n", id, err)
			failed = errors.New("some files were not deleted")
		}
	}
	return failed
}

func runStat(ctx context.Context, args []string) error {
	fl := flagSet("stat")
	var cf clientFlags
	cf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("want one FILEID")
	}
	id := fl.Arg(0)
	fid, err := fdfs.ParseFileID(id)
	if err != nil {
		return err
	}
	fmt.Printf("file_id:        %s\n", id)
	fmt.Printf("group:          %s\n", fid.Group)
	fmt.Printf("store_path:     M%02X\n", fid.StorePathIndex)
	fmt.Printf("decoded:        %s\n", fid.Describe())
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.QueryFileInfo(ctx, id)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	fmt.Printf("size:           %d\n", info.FileSize)
	fmt.Printf("created:        %s\n", info.CreateTime().Format(time.RFC3339))
	fmt.Printf("crc32:          %08x\n", info.CRC32)
	fmt.Printf("source_ip:      %s\n", info.SourceIP)
	return nil
}

// activeCount is the classic active_count, or what V6.13+ says instead.
func activeCount(g fdfs.GroupStat) int64 {
	if g.ActiveCount > 0 {
		return g.ActiveCount
	}
	return g.ReadableServerCount
}
