package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// applyOptions folds -o options into the flags. FUSE options go to the
// kernel; fdfsfs's own (index=, cache=, ...) set the matching flag.
func (mf *mountFlags) applyOptions() (fuse.MountOptions, error) {
	mo := fuse.MountOptions{
		FsName:        "fdfsfs",
		Name:          "fdfsfs",
		MaxWrite:      1 << 20,
		MaxReadAhead:  1 << 20,
		MaxBackground: 64,
		Options:       []string{"default_permissions"},
	}
	for _, group := range mf.options {
		for _, o := range strings.Split(group, ",") {
			key, val, hasVal := strings.Cut(strings.TrimSpace(o), "=")
			switch key {
			case "":
			case "allow_other":
				mo.AllowOther = true
			case "ro":
				mo.Options = append(mo.Options, "ro")
			case "rw", "defaults", "auto", "noauto", "user", "nouser", "_netdev", "nofail", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "async", "atime", "noatime", "relatime":
				// mount(8) and fstab words that are not ours to act on.
				if key == "noexec" || key == "nosuid" || key == "nodev" || key == "noatime" {
					mo.Options = append(mo.Options, key)
				}
			case "direct_io":
				mf.directIO = true
			case "nonempty", "default_permissions":
			case "fsname":
				mo.FsName = val
			case "index":
				mf.indexDir = val
			case "meta":
				mf.meta = val
			case "cache":
				mf.cacheDir = val
			case "cache_size":
				n, err := parseSize(val)
				if err != nil {
					return mo, fmt.Errorf("-o cache_size: %w", err)
				}
				mf.cacheSize = n
			case "tracker":
				mf.trackers = append(mf.trackers, val)
			case "conf":
				mf.conf = val
			case "log_level":
				mf.logLevel = val
			case "fdfs_version":
				mf.fdfsVersion = val
			case "http_base":
				mf.httpBase = append(mf.httpBase, val)
			case "metrics":
				mf.metrics = val
			case "session_ttl":
				d, err := time.ParseDuration(val)
				if err != nil {
					return mo, fmt.Errorf("-o session_ttl: %w", err)
				}
				mf.sessionTTL = d
			default:
				if hasVal {
					return mo, fmt.Errorf("unknown mount option %q", o)
				}
				return mo, fmt.Errorf("unknown mount option %q", key)
			}
		}
	}
	return mo, nil
}

func (mf *mountFlags) has(opt string) bool {
	for _, group := range mf.options {
		for _, o := range strings.Split(group, ",") {
			if strings.TrimSpace(o) == opt {
				return true
			}
		}
	}
	return false
}

// parseSize reads 512, 64K, 100M, 4G.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}
