package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"fdfsfs/fdfs"
)

// runLs lists every file the groups hold, as a storage of each group lists
// them (FETCH_ONE_PATH_BINLOG): one file ID a line, written as the lines
// arrive, so a million-file group goes through a pipe in flat memory.
func runLs(ctx context.Context, args []string) error {
	fl := flagSet("ls")
	var cf clientFlags
	cf.register(fl)
	long := fl.BoolP("long", "l", false, "also show size, create time, source storage and kind, from the ID and the listing (no request per file)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return errors.New("no GROUP given")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	var failed error
	var line []byte
	for _, group := range fl.Args() {
		err := c.ListGroupFiles(ctx, group, func(f fdfs.GroupFile) error {
			var err error
			if *long {
				_, err = out.Write(appendLongLine(line[:0], f))
			} else {
				_, err = out.WriteString(f.FileID + "\n")
			}
			if err != nil {
				return fmt.Errorf("%w: %w", errWriteOut, err)
			}
			return nil
		})
		if err != nil {
			out.Flush()
			fmt.Fprintf(os.Stderr, "fdfsfs ls: %s: %v\n", group, err)
			failed = errors.New("some groups were not listed in full")
			if ctx.Err() != nil || errors.Is(err, errWriteOut) {
				return failed
			}
		}
	}
	return failed
}

var errWriteOut = errors.New("writing the listing")

// appendLongLine formats one file for `ls --long`: size (from the ID; "-"
// for appender and slave files, whose names do not carry it), the time of
// the storage's record, the storage that created the file (from the ID),
// the kind, and the ID (a link adds "-> target").
func appendLongLine(b []byte, f fdfs.GroupFile) []byte {
	id, err := fdfs.ParseFileID(f.FileID)
	size, source, kind := "-", "-", "file"
	if err == nil {
		if id.Size >= 0 {
			size = strconv.FormatInt(id.Size, 10)
		}
		if id.SourceIP != nil {
			source = id.SourceIP.String()
		} else {
			source = "id:" + strconv.FormatUint(uint64(id.SourceID), 10)
		}
		switch {
		case id.Appender:
			kind = "appender"
		case id.Slave:
			kind = "slave"
		}
		if id.Trunk {
			kind += ",trunk"
		}
	}
	if f.Target != "" {
		kind = "link"
	}
	b = fmt.Appendf(b, "%12s %s %-15s %-16s %s", size, f.Created.UTC().Format(time.RFC3339), source, kind, f.FileID)
	if f.Target != "" {
		b = append(b, " -> "...)
		b = append(b, f.Target...)
	}
	return append(b, '\n')
}
