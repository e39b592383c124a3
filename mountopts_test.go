package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseMount parses a mount command line as runMount does, up to the
// mount itself.
func parseMount(t *testing.T, args ...string) (*mountFlags, []string, error) {
	t.Helper()
	fl := flagSet("mount")
	var mf mountFlags
	mf.register(fl)
	if err := fl.Parse(append(args, "/mnt")); err != nil {
		t.Fatal(err)
	}
	mo, err := mf.applyOptions(fl)
	return &mf, mo.Options, err
}

func TestMountOptionsSetFlags(t *testing.T) {
	mf, kernel, err := parseMount(t, "-o", "attr_timeout=2s,network_timeout=5s,write_buffer=16777216,read_ahead=1048576,session_ttl=20s,store_reuse=0s,group_refresh=10s")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][2]any{
		"attr-timeout":    {mf.attrTimeout, 2 * time.Second},
		"network-timeout": {mf.timeout, 5 * time.Second},
		"write-buffer":    {mf.writeBuffer, int64(16 << 20)},
		"read-ahead":      {mf.readAhead, int64(1 << 20)},
		"session-ttl":     {mf.sessionTTL, 20 * time.Second},
		"store-reuse":     {mf.storeReuse, time.Duration(0)},
		"group-refresh":   {mf.groupRefresh, 10 * time.Second},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %v, want %v", name, got[0], got[1])
		}
	}
	if !reflect.DeepEqual(kernel, []string{"default_permissions"}) {
		t.Errorf("kernel options %q: fdfsfs's own options went to the kernel", kernel)
	}
}

// TestEveryMountFlagIsAnOption sets each long flag of mount through -o,
// spelt with underscores and with dashes, and checks that the flag took
// the value.
func TestEveryMountFlagIsAnOption(t *testing.T) {
	fl := flagSet("mount")
	var mf mountFlags
	mf.register(fl)
	values := map[string]string{"bool": "true", "duration": "3s", "bytes": "3145728", "string": "x", "stringArray": "x"}
	n := 0
	for _, name := range mountOptionNames(fl) {
		f := fl.Lookup(name)
		val, ok := values[f.Value.Type()]
		if !ok {
			t.Fatalf("--%s: no test value for type %s", name, f.Value.Type())
		}
		for _, spelling := range []string{optionName(name), name} {
			fl2 := flagSet("mount")
			var mf2 mountFlags
			mf2.register(fl2)
			mf2.options = []string{spelling + "=" + val}
			if _, err := mf2.applyOptions(fl2); err != nil {
				t.Errorf("-o %s=%s: %v", spelling, val, err)
				continue
			}
			got := fl2.Lookup(name).Value.String()
			if want := val; f.Value.Type() == "stringArray" {
				want = "[" + val + "]"
				if got != want {
					t.Errorf("-o %s=%s: --%s = %s", spelling, val, name, got)
				}
			} else if got != want {
				t.Errorf("-o %s=%s: --%s = %s", spelling, val, name, got)
			}
			n++
		}
	}
	if n < 2*20 {
		t.Errorf("only %d spellings tried: mount has lost flags?", n)
	}
}

func TestMountOptionRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []string
		check   func(mf *mountFlags, kernel []string) bool
		wantErr string
	}{
		{name: "bare boolean", opts: []string{"direct_io,debug-fuse"},
			check: func(mf *mountFlags, _ []string) bool { return mf.directIO && mf.debugFuse }},
		{name: "boolean with a value", opts: []string{"direct_io=false"},
			check: func(mf *mountFlags, _ []string) bool { return !mf.directIO }},
		{name: "repeatable flags add up", opts: []string{"tracker=127.0.0.1:1,tracker=127.0.0.1:2", "http_base=group1=http://127.0.0.1:8080"},
			check: func(mf *mountFlags, _ []string) bool {
				return reflect.DeepEqual(mf.trackers, []string{"127.0.0.1:1", "127.0.0.1:2"}) && len(mf.httpBase) == 1
			}},
		{name: "the old spellings", opts: []string{"index=/i,cache=/c,cache_size=4G,log_level=debug,fdfs_version=6.13.0,metrics=127.0.0.1:9567,meta=/m,conf=/etc/x.conf"},
			check: func(mf *mountFlags, _ []string) bool {
				return mf.dir == "/i" && mf.cacheDir == "/c" && mf.cacheSize == 4<<30 && mf.logLevel == "debug" &&
					mf.fdfsVersion == "6.13.0" && mf.metrics == "127.0.0.1:9567" && mf.meta == "/m" && mf.conf == "/etc/x.conf"
			}},
		{name: "kernel and mount(8) words", opts: []string{"rw,ro,allow_other,nonempty,_netdev,noatime,nosuid,dev,suid,defaults,default_permissions,x-systemd.automount,x-systemd.mount-timeout=30,comment=x"},
			check: func(mf *mountFlags, kernel []string) bool {
				return mf.readOnly && mf.nonempty && reflect.DeepEqual(kernel, []string{"default_permissions", "ro", "noatime", "nosuid"})
			}},
		{name: "unknown option", opts: []string{"bogus_option=1"}, wantErr: `unknown mount option "bogus_option"`},
		{name: "bare non-boolean", opts: []string{"attr_timeout"}, wantErr: `"attr_timeout" needs a value`},
		{name: "bad value", opts: []string{"attr_timeout=soon"}, wantErr: "mount option attr_timeout"},
		{name: "bad size", opts: []string{"write_buffer=lots"}, wantErr: "is not a size"},
		{name: "-o of -o", opts: []string{"options=ro"}, wantErr: `unknown mount option "options"`},
		{name: "background is helper mode's", opts: []string{"background"}, wantErr: `unknown mount option "background"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, o := range tc.opts {
				args = append(args, "-o", o)
			}
			mf, kernel, err := parseMount(t, args...)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one saying %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case !tc.check(mf, kernel):
				t.Errorf("flags not as -o %s says: %+v, kernel %q", strings.Join(tc.opts, " -o "), *mf, kernel)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "64K": 64 << 10, "100m": 100 << 20, "4G": 4 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1", "1T", "1.5G", "99999999999G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

// TestMountValidate: values no flag type refuses fail before the mount
// (and before a background child) starts.
func TestMountValidate(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--store-reuse", "-1s"}, "--store-reuse -1s: negative"},
		{[]string{"-o", "session_ttl=500ms"}, "--session-ttl 500ms: want at least 1s"},
		{[]string{"--http-base", "group1"}, `--http-base "group1": want GROUP=http://host:port`},
		{[]string{"--http-base", "group1=ftp://x"}, "want GROUP=http://host:port"},
		{[]string{"--http-base", "group1=http://127.0.0.1:8888", "-o", "http_base=group2=https://127.0.0.1"}, ""},
	} {
		mf, _, err := parseMount(t, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		err = mf.validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.wantErr == "" && len(mf.httpBaseURLs) != 2:
			t.Errorf("%q: http bases %v", tc.args, mf.httpBaseURLs)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: err = %v, want %q", tc.args, err, tc.wantErr)
		}
	}
}
