package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/pflag"
)

// Mount options are read by one rule, as rclone's mount helper reads them:
// `-o name=value` sets the flag --name, `-o name` sets a boolean flag, and
// underscores and dashes in a name are alike (`-o attr_timeout=2s` is
// `--attr-timeout 2s`). What names no flag is one of the kernel's options
// below, or one of mount(8)'s words that are not ours to act on.

// kernelOptions are FUSE and VFS options that go to the kernel as they are.
var kernelOptions = map[string]bool{
	"ro": true, "noexec": true, "nosuid": true, "nodev": true, "noatime": true,
}

// ignoredOptions are mount(8) and fstab words that fdfsfs does not act on.
// nonempty and default_permissions are handled apart (one is a check of
// ours, the other is always on).
var ignoredOptions = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "_netdev": true, "nofail": true, "exec": true, "suid": true, "dev": true,
	"async": true, "atime": true, "relatime": true, "default_permissions": true,
}

// notOptions are flags that make no sense as -o: -o itself, and the
// background mode that mount(8) helper mode turns on by itself.
var notOptions = map[string]bool{"options": true, "background": true}

// applyOptions folds the -o options into the flag set fl and returns the
// kernel's mount options. An option that is neither a flag nor a known
// mount word is an error that names it.
func (mf *mountFlags) applyOptions(fl *pflag.FlagSet) (fuse.MountOptions, error) {
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
			o = strings.TrimSpace(o)
			key, val, hasVal := strings.Cut(o, "=")
			switch {
			case key == "":
			case key == "allow_other":
				mo.AllowOther = true
			case key == "nonempty":
				mf.nonempty = true
			case key == "fsname":
				mo.FsName = val
			case kernelOptions[key] && !hasVal:
				if key == "ro" {
					mf.readOnly = true
				}
				mo.Options = append(mo.Options, key)
			case ignoredOptions[key] && !hasVal, strings.HasPrefix(key, "x-"), key == "comment":
				// x-* and comment= are fstab's notes for userspace
				// (systemd, mount -a), never the file system's.
			default:
				if err := setFlagOption(fl, key, val, hasVal); err != nil {
					return mo, err
				}
			}
		}
	}
	return mo, nil
}

// setFlagOption sets the flag an -o option names.
func setFlagOption(fl *pflag.FlagSet, key, val string, hasVal bool) error {
	name := strings.ReplaceAll(key, "_", "-")
	f := fl.Lookup(name)
	if f == nil || notOptions[name] {
		return fmt.Errorf("unknown mount option %q", key)
	}
	if !hasVal {
		if f.Value.Type() != "bool" {
			return fmt.Errorf("mount option %q needs a value (%s=...)", key, key)
		}
		val = "true"
	}
	if err := fl.Set(name, val); err != nil {
		return fmt.Errorf("mount option %s: %w", key, err)
	}
	return nil
}

// changedFlags lists the flags set on the command line or by -o, as
// slog key-value pairs (a metadata URL's password hidden), for the mount's
// log line.
func changedFlags(fl *pflag.FlagSet) []any {
	var kv []any
	fl.Visit(func(f *pflag.Flag) {
		if notOptions[f.Name] {
			return
		}
		v := f.Value.String()
		if f.Name == "meta" {
			v = redactURL(v)
		}
		kv = append(kv, f.Name, v)
	})
	return kv
}

// optionName is a flag's -o spelling.
func optionName(flag string) string { return strings.ReplaceAll(flag, "-", "_") }

// sizeValue is a flag of bytes that takes 512, 64K, 100M or 4G.
type sizeValue struct{ p *int64 }

func sizeFlag(p *int64, def int64) sizeValue {
	*p = def
	return sizeValue{p}
}

func (s sizeValue) String() string {
	if s.p == nil {
		return "0"
	}
	return strconv.FormatInt(*s.p, 10)
}

func (s sizeValue) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s.p = n
	return nil
}

func (s sizeValue) Type() string { return "bytes" }

// parseSize reads 512, 64K, 100M, 4G.
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult = 1 << 30
	}
	if mult > 1 {
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (bytes, or with K, M or G)", s)
	}
	return n * mult, nil
}

// mountOptionNames are the long flags of mount that -o sets, in the order
// the flag set lists them.
func mountOptionNames(fl *pflag.FlagSet) []string {
	var names []string
	fl.VisitAll(func(f *pflag.Flag) {
		if !notOptions[f.Name] {
			names = append(names, f.Name)
		}
	})
	return names
}
