package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"fdfsfs/fdfs"
)

func runMeta(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("want get or set")
	}
	switch args[0] {
	case "dump", "load":
		// They work on the index, not on FastDFS metadata; the old
		// spelling goes on working.
		fmt.Fprintf(os.Stderr, "fdfsfs: 'meta %s' is deprecated: use 'fdfsfs index %s'\n", args[0], args[0])
		return runIndex(ctx, args)
	case "get", "set":
	default:
		return fmt.Errorf("unknown meta subcommand %q (want get or set)", args[0])
	}
	fl := flagSet("meta")
	var cf clientFlags
	cf.register(fl)
	merge := fl.Bool("merge", false, "set: merge with the existing metadata instead of replacing it")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	if fl.NArg() < 1 {
		return errors.New("want FILEID")
	}
	id := fl.Arg(0)
	if _, err := fdfs.ParseFileID(id); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if args[0] == "get" {
		meta, err := c.GetMetadata(ctx, id)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Printf("%s=%s\n", k, meta[k])
		}
		return nil
	}
	meta := map[string]string{}
	for _, kv := range fl.Args()[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", kv)
		}
		meta[k] = v
	}
	flag := byte(fdfs.MetaOverwrite)
	if *merge {
		flag = fdfs.MetaMerge
	}
	return c.SetMetadata(ctx, id, meta, flag)
}
