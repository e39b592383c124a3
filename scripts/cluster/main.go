// Command cluster writes the configuration of a FastDFS deployment with
// several groups on one host — tracker.conf, and per group storage.conf,
// mod_fastdfs.conf, http.conf and an nginx.conf, plus a compose file that
// starts them with the files mounted in — and checks such a directory, rendered
// or edited by hand, for the inconsistencies operators make by hand: two
// servers on one port, a group name in mod_fastdfs.conf that differs from
// storage.conf, storages reporting to different trackers.
//
//	go run ./scripts/cluster --host-ip 192.0.2.10 --groups 3 --out DIR
//	go run ./scripts/cluster --check DIR
//
// It only reads and writes files; it never starts, scans or contacts anything.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// defaultImage is a FastDFS image many operators start from: it ships
// fdfs_trackerd, fdfs_storaged and nginx built with fastdfs-nginx-module
// under /usr/local/nginx. Any image with those binaries will do.
const defaultImage = "delron/fastdfs"

// Exit codes.
const (
	exitOK       = 0
	exitProblems = 1 // refused input, or --check found inconsistencies
	exitUsage    = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	flags.SetOutput(stderr)
	var o Options
	var out, checkDir, logLevel string
	var force bool
	flags.StringVar(&o.HostIP, "host-ip", "", "address of this host as other hosts reach it (tracker_server, server_name)")
	flags.IntVar(&o.Groups, "groups", 0, "number of groups, named group1..groupN")
	flags.StringSliceVar(&o.GroupNames, "group-names", nil, "names of the groups, comma-separated (letters and digits, up to 16)")
	flags.IntVar(&o.TrackerPort, "tracker-port", 22122, "tracker port")
	flags.IntVar(&o.StorageBasePort, "storage-base-port", 23000, "storage port of the first group; the next groups count up")
	flags.IntVar(&o.HTTPBasePort, "http-base-port", 8888, "nginx port of the first group; the next groups count up")
	flags.IntSliceVar(&o.StoragePorts, "storage-ports", nil, "storage port of each group, comma-separated (instead of --storage-base-port)")
	flags.IntSliceVar(&o.HTTPPorts, "http-ports", nil, "nginx port of each group, comma-separated (instead of --http-base-port)")
	flags.IntVar(&o.StorePaths, "store-paths", 1, "store paths (M00, M01, ...) per storage server")
	flags.StringVar(&o.BaseDir, "base-dir", "/data/fastdfs", "host directory for the data of the tracker and every group")
	flags.StringVar(&o.Image, "image", defaultImage, "docker image with fdfs_trackerd, fdfs_storaged and nginx with fastdfs-nginx-module")
	flags.StringVar(&o.NginxPrefix, "nginx-prefix", "/usr/local/nginx", "nginx install prefix inside the image (sbin/nginx, conf/mime.types)")
	flags.StringVar(&out, "out", "", "directory to write the deployment into")
	flags.BoolVar(&force, "force", false, "overwrite files already in --out")
	flags.StringVar(&checkDir, "check", "", "check an existing deployment directory instead of rendering one")
	flags.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  cluster --host-ip IP (--groups N | --group-names a,b) --out DIR [flags]\n  cluster --check DIR\n\nFlags:\n%s", flags.FlagUsages())
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fmt.Fprintf(stderr, "cluster: --log-level: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "cluster: unexpected arguments %q\n", flags.Args())
		flags.Usage()
		return exitUsage
	}

	if checkDir != "" {
		if out != "" {
			fmt.Fprintln(stderr, "cluster: --check and --out exclude each other")
			return exitUsage
		}
		return runCheck(ctx, log, checkDir, stdout, stderr)
	}
	if out == "" {
		fmt.Fprintln(stderr, "cluster: give --out DIR to render, or --check DIR to check")
		flags.Usage()
		return exitUsage
	}
	layout, err := PlanLayout(o)
	if err != nil {
		fmt.Fprintf(stderr, "cluster: refusing this layout:\n%s\n", indent(err.Error()))
		return exitProblems
	}
	files, err := Render(layout)
	if err != nil {
		fmt.Fprintf(stderr, "cluster: %v\n", err)
		return exitProblems
	}
	written, err := WriteTree(ctx, out, files, force)
	if err != nil {
		fmt.Fprintf(stderr, "cluster: %v\n", err)
		return exitProblems
	}
	log.Info("rendered deployment", "dir", out, "files", len(written), "groups", len(layout.Groups))
	for _, name := range written {
		fmt.Fprintln(stdout, filepath.Join(out, filepath.FromSlash(name)))
	}
	fmt.Fprintf(stdout, "\nStart it on %s: cd %s && docker compose up -d\n", layout.HostIP, out)
	return exitOK
}

func runCheck(ctx context.Context, log *slog.Logger, dir string, stdout, stderr io.Writer) int {
	files, err := LoadTree(ctx, dir)
	if err != nil {
		fmt.Fprintf(stderr, "cluster: %v\n", err)
		return exitProblems
	}
	log.Debug("loaded deployment", "dir", dir, "files", len(files))
	problems := Check(files)
	if len(problems) > 0 {
		noun := "inconsistencies"
		if len(problems) == 1 {
			noun = "inconsistency"
		}
		fmt.Fprintf(stdout, "%s: %d %s:\n%s\n", dir, len(problems), noun, formatProblems(problems))
		return exitProblems
	}
	fmt.Fprintf(stdout, "%s: consistent (%d groups: %s)\n", dir, len(groupDirs(files)), strings.Join(groupDirs(files), ", "))
	return exitOK
}

// WriteTree writes the files under dir, creating directories as needed.
// Unless force is set it refuses, before writing anything, to replace a
// file that is already there: a hand-edited deployment is not to be lost to
// a second run. It returns the names written, sorted.
func WriteTree(ctx context.Context, dir string, files map[string][]byte, force bool) ([]string, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	if !force {
		var existing []string
		for _, name := range names {
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name))); err == nil {
				existing = append(existing, name)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		if len(existing) > 0 {
			return nil, fmt.Errorf("%s already holds %s; check it with --check, or pass --force to overwrite", dir, strings.Join(existing, ", "))
		}
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return nil, err
		}
	}
	return names, nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
