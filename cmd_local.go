package main

import (
	"context"
	"errors"
	"fmt"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
)

func runLocal(ctx context.Context, args []string) error {
	fl := flagSet("local")
	groups := fl.Int("groups", 3, "number of groups (group1, group2, ...)")
	perGroup := fl.Int("storages-per-group", 1, "storage servers per group (2 = each group replicates)")
	data := fl.String("data", "", "keep files in DIR and serve them again when restarted (default: a temp dir, removed on exit)")
	port := fl.Int("port", 0, "tracker port (default: a free port; storages get free ports)")
	compat := fl.String("compat", "6.16", "answer list-groups/list-storages in this FastDFS version's record layouts")
	logLevel := fl.String("log-level", "info", "log level")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	if *groups < 1 || *groups > 64 {
		return errors.New("--groups must be 1..64")
	}
	layout, err := fdfs.ParseStatLayout(*compat)
	if err != nil {
		return err
	}
	cf := clientFlags{logLevel: *logLevel}
	cl, err := localcluster.Start(localcluster.Options{
		Groups:           groupNames(*groups),
		StoragesPerGroup: *perGroup,
		DataDir:          *data,
		TrackerPort:      *port,
		Layout:           layout,
		Logger:           cf.logger(),
	})
	if err != nil {
		return err
	}
	fmt.Println(cl.TrackerAddr())
	<-ctx.Done()
	return cl.Close()
}

func groupNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("group%d", i+1)
	}
	return names
}
