// Command fdfsfs mounts a FastDFS cluster as a file system, and speaks to
// FastDFS from the command line without client code.
//
//	fdfsfs mount /mnt/fdfs          # groups as directories
//	fdfsfs put --group group2 a.jpg # prints the file ID
//	fdfsfs local                    # a FastDFS-compatible cluster on loopback
//
// Run `fdfsfs help` for every subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

type command struct {
	name    string
	usage   string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"mount", "mount [flags] MOUNTPOINT", "mount the cluster: one directory per group", runMount},
		{"groups", "groups [flags]", "list the groups with their capacity", runGroups},
		{"put", "put [--group G] FILE...", "upload files, print each file ID", runPut},
		{"get", "get FILEID [DEST|-]", "download a file (to DEST, or stdout with -)", runGet},
		{"rm", "rm FILEID...", "delete files", runRm},
		{"ls", "ls [--long] GROUP...", "list every file a group holds, one file ID a line", runLs},
		{"stat", "stat FILEID", "show server-side file info and what the ID decodes to", runStat},
		{"meta", "meta get|set FILEID [k=v...]", "read or write a file's FastDFS metadata", runMeta},
		{"local", "local [--groups N] [--data DIR] [--port P] [--compat V]", "run a FastDFS-compatible cluster on 127.0.0.1", runLocal},
		{"index", "index check|backup|restore|dump|load|adopt [flags]", "check, repair, back up, restore, dump or load the name index; adopt a group's files", runIndex},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "fdfsfs: FastDFS as a file system, and a FastDFS command line.")
	fmt.Fprintln(w, "\nUsage: fdfsfs COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'fdfsfs COMMAND --help' for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// The form mount(8) uses for fuse.fdfsfs: SOURCE MOUNTPOINT -o OPTS.
	if fstabArgs, ok := mountHelperArgs(os.Args[0], args); ok {
		args = fstabArgs
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(os.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:])
			if errors.Is(err, pflag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "fdfsfs %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "fdfsfs: unknown command %q\n", args[0])
	usage(os.Stderr)
	return 2
}

// flagSet makes a command's flag set with its usage line.
func flagSet(name string) *pflag.FlagSet {
	fl := pflag.NewFlagSet(name, pflag.ContinueOnError)
	for _, c := range commands {
		if c.name == name {
			fl.Usage = func() {
				fmt.Fprintf(os.Stderr, "Usage: fdfsfs %s\n\n%s.\n\nFlags:\n", c.usage, c.summary)
				fl.PrintDefaults()
			}
		}
	}
	fl.SortFlags = false
	return fl
}

// runSubcommand runs the subcommand of parent that args name.
func runSubcommand(ctx context.Context, parent string, subs []command, args []string) error {
	var names []string
	for _, c := range subs {
		names = append(names, c.name)
	}
	want := strings.Join(names, ", ")
	if len(args) == 0 {
		return fmt.Errorf("want a subcommand: %s", want)
	}
	for _, c := range subs {
		if c.name == args[0] {
			return c.run(ctx, args[1:])
		}
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(os.Stderr, "Usage:\n")
		for _, c := range subs {
			fmt.Fprintf(os.Stderr, "  fdfsfs %-40s %s\n", c.usage, c.summary)
		}
		return pflag.ErrHelp
	}
	return fmt.Errorf("unknown %s subcommand %q (want %s)", parent, args[0], want)
}

// subFlagSet makes the flag set of a subcommand with its usage line.
func subFlagSet(parent, name string, subs []command) *pflag.FlagSet {
	fl := pflag.NewFlagSet(parent+" "+name, pflag.ContinueOnError)
	for _, c := range subs {
		if c.name == name {
			fl.Usage = func() {
				fmt.Fprintf(os.Stderr, "Usage: fdfsfs %s\n\n%s.\n\nFlags:\n", c.usage, c.summary)
				fl.PrintDefaults()
			}
		}
	}
	fl.SortFlags = false
	return fl
}

// parseNoArgs parses a command line that has flags only.
func parseNoArgs(fl *pflag.FlagSet, args []string) error {
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	return nil
}
