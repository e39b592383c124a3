package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// runCLI runs the command as a user would and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// renderThree renders the three-group layout of the README into a fresh
// directory.
func renderThree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "--host-ip", "192.0.2.10", "--groups", "3", "--out", dir, "--log-level", "warn")
	if code != exitOK {
		t.Fatalf("render exited %d: %s", code, stderr)
	}
	return dir
}

func readFile(t *testing.T, dir, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// confKeys reads a rendered FastDFS file into key -> values and fails on
// anything the parser found odd.
func confKeys(t *testing.T, dir, rel string) map[string][]string {
	t.Helper()
	c := parseFDFSConf(rel, readFile(t, dir, rel))
	if len(c.problems) > 0 {
		t.Fatalf("%s: %v", rel, c.problems)
	}
	keys := map[string][]string{}
	for _, it := range c.items {
		if it.section != "" {
			t.Errorf("%s: unexpected section [%s]", rel, it.section)
		}
		keys[it.key] = append(keys[it.key], it.value)
	}
	return keys
}

// assertKeys compares every key of a file with the expectation: no key
// missing, none extra, every value as expected.
func assertKeys(t *testing.T, rel string, got map[string][]string, want map[string]string, repeated map[string][]string) {
	t.Helper()
	for key, values := range got {
		if wantValues, ok := repeated[key]; ok {
			if !slices.Equal(values, wantValues) {
				t.Errorf("%s: %s = %q, want %q", rel, key, values, wantValues)
			}
			continue
		}
		wantValue, ok := want[key]
		switch {
		case !ok:
			t.Errorf("%s: unexpected key %s = %q", rel, key, values)
		case len(values) != 1 || values[0] != wantValue:
			t.Errorf("%s: %s = %q, want %q", rel, key, values, wantValue)
		}
	}
	for key := range want {
		if _, ok := got[key]; !ok {
			t.Errorf("%s: key %s missing", rel, key)
		}
	}
	for key := range repeated {
		if _, ok := got[key]; !ok {
			t.Errorf("%s: key %s missing", rel, key)
		}
	}
}

func TestRenderThreeGroupsEveryFile(t *testing.T) {
	dir := renderThree(t)
	const tracker = "192.0.2.10:22122"

	t.Run("tracker.conf", func(t *testing.T) {
		assertKeys(t, "tracker/tracker.conf", confKeys(t, dir, "tracker/tracker.conf"), map[string]string{
			"disabled": "false", "bind_addr": "", "port": "22122",
			"connect_timeout": "5", "network_timeout": "60",
			"base_path":       "/data/fastdfs/tracker",
			"max_connections": "1024", "accept_threads": "1", "work_threads": "4",
			"min_buff_size": "8KB", "max_buff_size": "128KB",
			"store_lookup": "2", "store_group": "group1", "store_server": "0", "store_path": "0",
			"download_server": "0", "reserved_storage_space": "10%",
			"log_level": "info", "run_by_group": "", "run_by_user": "",
			"sync_log_buff_interval": "1", "check_active_interval": "120", "thread_stack_size": "256KB",
			"storage_ip_changed_auto_adjust": "true", "storage_sync_file_max_delay": "86400",
			"storage_sync_file_max_time": "300", "use_trunk_file": "false", "use_storage_id": "false",
			"storage_ids_filename": "storage_ids.conf", "store_slave_file_use_link": "false",
			"use_connection_pool": "true", "connection_pool_max_idle_time": "3600", "log_file_keep_days": "15",
		}, map[string][]string{"allow_hosts": {"*"}})
	})

	for i := range 3 {
		name := fmt.Sprintf("group%d", i+1)
		storagePort, httpPort := strconv.Itoa(23000+i), strconv.Itoa(8888+i)
		base, store := "/data/fastdfs/"+name+"/base", "/data/fastdfs/"+name+"/store0"

		t.Run(name+"/storage.conf", func(t *testing.T) {
			rel := name + "/storage.conf"
			assertKeys(t, rel, confKeys(t, dir, rel), map[string]string{
				"disabled": "false", "group_name": name, "bind_addr": "", "client_bind": "true",
				"port": storagePort, "connect_timeout": "5", "network_timeout": "60",
				"heart_beat_interval": "30", "stat_report_interval": "60", "base_path": base,
				"max_connections": "1024", "buff_size": "256KB", "accept_threads": "1", "work_threads": "4",
				"disk_rw_separated": "true", "disk_reader_threads": "1", "disk_writer_threads": "1",
				"sync_wait_msec": "50", "sync_interval": "0", "sync_start_time": "00:00", "sync_end_time": "23:59",
				"write_mark_file_freq": "500", "store_path_count": "1", "store_path0": store,
				"subdir_count_per_path": "256", "log_level": "info", "run_by_group": "", "run_by_user": "",
				"file_distribute_path_mode": "0", "file_distribute_rotate_count": "100",
				"fsync_after_written_bytes": "0", "sync_log_buff_interval": "1", "sync_binlog_buff_interval": "1",
				"sync_stat_file_interval": "300", "thread_stack_size": "512KB", "upload_priority": "10",
				"if_alias_prefix": "", "check_file_duplicate": "0", "use_access_log": "false",
				"use_connection_pool": "true", "connection_pool_max_idle_time": "3600",
				"check_store_path_mark": "true", "http.domain_name": "", "http.server_port": httpPort,
			}, map[string][]string{"tracker_server": {tracker}, "allow_hosts": {"*"}})
		})

		t.Run(name+"/mod_fastdfs.conf", func(t *testing.T) {
			rel := name + "/mod_fastdfs.conf"
			assertKeys(t, rel, confKeys(t, dir, rel), map[string]string{
				"connect_timeout": "2", "network_timeout": "30", "base_path": base,
				"load_fdfs_parameters_from_tracker": "true", "storage_sync_file_max_delay": "86400",
				"use_storage_id": "false", "storage_ids_filename": "storage_ids.conf",
				"storage_server_port": storagePort, "group_name": name, "url_have_group_name": "true",
				"store_path_count": "1", "store_path0": store, "log_level": "info", "log_filename": "",
				"response_mode": "proxy", "if_alias_prefix": "", "flv_support": "true", "flv_extension": "flv",
				"group_count": "0",
			}, map[string][]string{"tracker_server": {tracker}})
			if c := parseFDFSConf(rel, readFile(t, dir, rel)); !slices.Equal(c.includes, []string{"http.conf"}) {
				t.Errorf("%s includes %q, want [http.conf]", rel, c.includes)
			}
		})

		t.Run(name+"/http.conf", func(t *testing.T) {
			rel := name + "/http.conf"
			assertKeys(t, rel, confKeys(t, dir, rel), map[string]string{
				"http.server_port":            httpPort,
				"http.default_content_type":   "application/octet-stream",
				"http.mime_types_filename":    "/usr/local/nginx/conf/mime.types",
				"http.anti_steal.check_token": "false",
			}, nil)
		})

		t.Run(name+"/nginx.conf", func(t *testing.T) {
			data := readFile(t, dir, name+"/nginx.conf")
			for _, line := range []string{"listen " + httpPort + ";", "location /" + name + "/M00 {", "ngx_fastdfs_module;"} {
				if !bytes.Contains(data, []byte(line)) {
					t.Errorf("nginx.conf lacks %q", line)
				}
			}
			directives, err := parseNginx(data)
			if err != nil {
				t.Fatal(err)
			}
			servers := nginxServers(directives)
			if len(servers) != 1 {
				t.Fatalf("%d server blocks, want 1", len(servers))
			}
			if want, _ := strconv.Atoi(httpPort); !slices.Equal(servers[0].ports, []int{want}) {
				t.Errorf("listens on %v, want %d", servers[0].ports, want)
			}
			want := []nginxLocation{{path: "/" + name + "/M00", fastdfsMod: true}}
			got := servers[0].locations
			for i := range got {
				got[i].line = 0
			}
			if !slices.Equal(got, want) {
				t.Errorf("locations %+v, want %+v", got, want)
			}
		})
	}

	t.Run("compose.yaml", func(t *testing.T) {
		services, err := parseCompose(readFile(t, dir, "compose.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range services {
			names = append(names, s.name)
			if s.networkMode != "host" {
				t.Errorf("%s: network_mode %q", s.name, s.networkMode)
			}
		}
		if want := []string{"group1", "group2", "group3", "tracker"}; !slices.Equal(names, want) {
			t.Fatalf("services %v, want %v", names, want)
		}
		tr := services[3]
		if want := []composeMount{
			{"tracker/tracker.conf", "/etc/fdfs/tracker.conf"},
			{"/data/fastdfs/tracker", "/data/fastdfs/tracker"},
		}; !slices.Equal(tr.mounts, want) {
			t.Errorf("tracker mounts %v, want %v", tr.mounts, want)
		}
		if tr.labels[labelPort] != "22122" || !strings.Contains(tr.command, "fdfs_trackerd /etc/fdfs/tracker.conf start") {
			t.Errorf("tracker labels %v command %q", tr.labels, tr.command)
		}
		for i, s := range services[:3] {
			name := s.name
			want := []composeMount{
				{name + "/storage.conf", "/etc/fdfs/storage.conf"},
				{name + "/mod_fastdfs.conf", "/etc/fdfs/mod_fastdfs.conf"},
				{name + "/http.conf", "/etc/fdfs/http.conf"},
				{name + "/nginx.conf", "/etc/fdfs/nginx.conf"},
				{"/data/fastdfs/" + name, "/data/fastdfs/" + name},
			}
			if !slices.Equal(s.mounts, want) {
				t.Errorf("%s mounts %v, want %v", name, s.mounts, want)
			}
			wantLabels := map[string]string{
				labelRole: "storage", labelGroup: name,
				labelStoragePort: strconv.Itoa(23000 + i), labelHTTPPort: strconv.Itoa(8888 + i),
			}
			if fmt.Sprint(s.labels) != fmt.Sprint(wantLabels) {
				t.Errorf("%s labels %v, want %v", name, s.labels, wantLabels)
			}
			for _, part := range []string{
				"mkdir -p /data/fastdfs/" + name + "/base /data/fastdfs/" + name + "/store0",
				"fdfs_storaged /etc/fdfs/storage.conf start",
				"exec /usr/local/nginx/sbin/nginx -c /etc/fdfs/nginx.conf -g 'daemon off;'",
			} {
				if !strings.Contains(s.command, part) {
					t.Errorf("%s command %q lacks %q", name, s.command, part)
				}
			}
		}
	})

	t.Run("ports distinct and matching", func(t *testing.T) {
		seen := map[string]string{"22122": "tracker"}
		for i := range 3 {
			name := fmt.Sprintf("group%d", i+1)
			storage := confKeys(t, dir, name+"/storage.conf")
			mod := confKeys(t, dir, name+"/mod_fastdfs.conf")
			httpConf := confKeys(t, dir, name+"/http.conf")
			if mod["storage_server_port"][0] != storage["port"][0] || mod["group_name"][0] != storage["group_name"][0] {
				t.Errorf("%s: mod_fastdfs.conf disagrees with storage.conf", name)
			}
			if httpConf["http.server_port"][0] != storage["http.server_port"][0] {
				t.Errorf("%s: http.conf disagrees with storage.conf", name)
			}
			for _, p := range []string{storage["port"][0], storage["http.server_port"][0]} {
				if owner, dup := seen[p]; dup {
					t.Errorf("port %s of %s already used by %s", p, name, owner)
				}
				seen[p] = name
			}
		}
		if len(seen) != 7 {
			t.Errorf("%d distinct ports, want 7", len(seen))
		}
	})

	t.Run("--check accepts it", func(t *testing.T) {
		code, stdout, _ := runCLI(t, "--check", dir)
		if code != exitOK || !strings.Contains(stdout, "consistent (3 groups: group1, group2, group3)") {
			t.Errorf("exit %d: %s", code, stdout)
		}
	})
}

func TestRenderNamedGroupsExplicitPortsAndStorePaths(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "--host-ip", "127.0.0.1", "--group-names", "img,docs",
		"--storage-ports", "24000,24010", "--http-ports", "9000,9010", "--store-paths", "11",
		"--tracker-port", "22200", "--base-dir", "/srv/fdfs", "--out", dir, "--log-level", "warn")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	storage := confKeys(t, dir, "docs/storage.conf")
	if storage["port"][0] != "24010" || storage["http.server_port"][0] != "9010" ||
		storage["tracker_server"][0] != "127.0.0.1:22200" || storage["store_path_count"][0] != "11" ||
		storage["store_path10"][0] != "/srv/fdfs/docs/store10" {
		t.Errorf("docs/storage.conf: %v", storage)
	}
	nginx := string(readFile(t, dir, "docs/nginx.conf"))
	for _, loc := range []string{"location /docs/M00 {", "location /docs/M09 {", "location /docs/M0A {"} {
		if !strings.Contains(nginx, loc) {
			t.Errorf("docs/nginx.conf lacks %q", loc)
		}
	}
	if code, stdout, _ := runCLI(t, "--check", dir); code != exitOK {
		t.Errorf("--check: %s", stdout)
	}
}

func TestRenderRefusesInconsistentInput(t *testing.T) {
	base := []string{"--host-ip", "192.0.2.10", "--out", "OUT"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"two groups on one storage port", []string{"--groups", "2", "--storage-ports", "23000,23000"},
			"port 23000 is given to both group1 storage and group2 storage"},
		{"storage port on a group's nginx port", []string{"--groups", "2", "--storage-base-port", "8889"},
			"port 8889 is given to both group1 storage and group2 nginx"},
		{"group on the tracker port", []string{"--groups", "1", "--http-base-port", "22122"},
			"port 22122 is given to both the tracker and group1 nginx"},
		{"ports past 65535", []string{"--groups", "2", "--storage-base-port", "65535"},
			"port 65536 of group2 storage is outside 1-65535"},
		{"group named twice", []string{"--group-names", "a,a"}, "group a is named twice"},
		{"underscore in group name", []string{"--group-names", "group_1"}, "FastDFS allows only letters and digits"},
		{"group name too long", []string{"--group-names", "abcdefghijklmnopq"}, "must be 1 to 16 characters"},
		{"group named tracker", []string{"--group-names", "tracker"}, "taken by the tracker's directory"},
		{"count and names disagree", []string{"--groups", "2", "--group-names", "a,b,c"}, "--groups 2 disagrees with the 3 names"},
		{"port list too short", []string{"--groups", "3", "--http-ports", "80,81"}, "--http-ports lists 2 ports for 3 groups"},
		{"no groups", nil, "give the number of groups"},
		{"wildcard host", []string{"--groups", "1", "--host-ip", "0.0.0.0"}, "is the wildcard address"},
		{"host name instead of IP", []string{"--groups", "1", "--host-ip", "fdfs.example"}, "is not an IP address"},
		{"relative base dir", []string{"--groups", "1", "--base-dir", "data/fastdfs"}, "must be a clean absolute path"},
		{"base dir needing quotes", []string{"--groups", "1", "--base-dir", "/data/fast dfs"}, "only letters, digits"},
		{"zero store paths", []string{"--groups", "1", "--store-paths", "0"}, "0 store paths; FastDFS takes 1 to 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			args := slices.Clone(base)
			args[3] = out
			code, _, stderr := runCLI(t, append(args, tt.args...)...)
			if code != exitProblems {
				t.Errorf("exit %d, want %d", code, exitProblems)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", stderr, tt.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("refused layout still wrote %d entries", len(entries))
			}
		})
	}
}

func TestRenderRefusesToOverwrite(t *testing.T) {
	dir := renderThree(t)
	edited := []byte("# hand edit\n")
	if err := os.WriteFile(filepath.Join(dir, "group1", "storage.conf"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "--host-ip", "192.0.2.10", "--groups", "3", "--out", dir)
	if code != exitProblems || !strings.Contains(stderr, "pass --force to overwrite") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := readFile(t, dir, "group1/storage.conf"); !bytes.Equal(got, edited) {
		t.Fatal("the hand edit was overwritten")
	}
	code, _, stderr = runCLI(t, "--host-ip", "192.0.2.10", "--groups", "3", "--out", dir, "--force", "--log-level", "warn")
	if code != exitOK {
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
	if code, stdout, _ := runCLI(t, "--check", dir); code != exitOK {
		t.Fatalf("after --force: %s", stdout)
	}
}

// edit replaces old with new in one file of the deployment, failing if old
// is not there, so that a test never checks an edit that did not happen.
func edit(t *testing.T, dir, rel, old, new string) {
	t.Helper()
	data := string(readFile(t, dir, rel))
	if !strings.Contains(data, old) {
		t.Fatalf("%s does not contain %q", rel, old)
	}
	if err := os.WriteFile(filepath.Join(dir, rel), []byte(strings.Replace(data, old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCatchesHandEdits(t *testing.T) {
	tests := []struct {
		name      string
		rel       string
		old, new  string
		want      []string
		removeRel string
	}{
		{name: "group name in mod_fastdfs.conf differs from storage.conf",
			rel: "group2/mod_fastdfs.conf", old: "group_name = group2", new: "group_name = group9",
			want: []string{"group2/mod_fastdfs.conf: group_name = group9 differs from group_name = group2 in group2/storage.conf"}},
		{name: "two storages on one port",
			rel: "group2/storage.conf", old: "port = 23001", new: "port = 23000",
			want: []string{
				"port 23000 is given to both group1 storage (group1/storage.conf port) and group2 storage (group2/storage.conf port)",
				"group2/mod_fastdfs.conf: storage_server_port = 23001 differs from port = 23000 in group2/storage.conf",
				"service group2: label fdfsfs.cluster.storage-port = 23001, but group2/storage.conf says 23000",
			}},
		{name: "tracker_server mismatch between groups",
			rel: "group3/storage.conf", old: "tracker_server = 192.0.2.10:22122", new: "tracker_server = 192.0.2.11:22122",
			want: []string{
				"group3/storage.conf: tracker_server [192.0.2.11:22122] differs from [192.0.2.10:22122] in group1/storage.conf",
				"group3/mod_fastdfs.conf: tracker_server [192.0.2.10:22122] differs from [192.0.2.11:22122] in group3/storage.conf",
			}},
		{name: "tracker_server on a port no tracker has",
			rel: "tracker/tracker.conf", old: "port = 22122", new: "port = 22123",
			want: []string{"group1/storage.conf: no tracker_server uses port 22123, the port of tracker/tracker.conf",
				"label fdfsfs.cluster.port = 22122, but tracker/tracker.conf has port = 22123"}},
		{name: "nginx listens elsewhere",
			rel: "group2/nginx.conf", old: "listen 8889;", new: "listen 8888;",
			want: []string{"group2/nginx.conf: no server listens on port 8889",
				"port 8888 is given to both group1 nginx (group1/nginx.conf listen) and group2 nginx (group2/nginx.conf listen)"}},
		{name: "nginx location for another group",
			rel: "group1/nginx.conf", old: "location /group1/M00", new: "location /group2/M00",
			want: []string{"location /group2/M00 sends group group2's URLs to this nginx",
				"has no \"location /group1/M00\" with ngx_fastdfs_module"}},
		{name: "location without the module",
			rel: "group3/nginx.conf", old: "ngx_fastdfs_module;", new: "root /data;",
			want: []string{"group3/nginx.conf: the server on port 8890 has no \"location /group3/M00\" with ngx_fastdfs_module for store_path0"}},
		{name: "store paths of two groups overlap",
			rel: "group2/storage.conf", old: "store_path0 = /data/fastdfs/group2/store0", new: "store_path0 = /data/fastdfs/group1/store0",
			want: []string{"/data/fastdfs/group1/store0 (group1 store_path0) and /data/fastdfs/group1/store0 (group2 store_path0) overlap",
				"group2/mod_fastdfs.conf: store_path0 = /data/fastdfs/group2/store0 differs from /data/fastdfs/group1/store0 in group2/storage.conf",
				"service group2 mounts no directory holding /data/fastdfs/group1/store0"}},
		{name: "tracker_server without port and relative base_path",
			rel: "group1/storage.conf", old: "tracker_server = 192.0.2.10:22122\n", new: "tracker_server = 192.0.2.10\nbase_path = data\n",
			want: []string{"group1/storage.conf: tracker_server = 192.0.2.10: not HOST:PORT",
				"group1/storage.conf: base_path is set twice"}},
		{name: "relative base_path in mod_fastdfs.conf",
			rel: "group1/mod_fastdfs.conf", old: "base_path = /data/fastdfs/group1/base", new: "base_path = logs",
			want: []string{"group1/mod_fastdfs.conf: base_path = logs is not an absolute path"}},
		{name: "url without group name",
			rel: "group1/mod_fastdfs.conf", old: "url_have_group_name = true", new: "url_have_group_name = false",
			want: []string{"group1/mod_fastdfs.conf: url_have_group_name is not true"}},
		{name: "key set twice",
			rel: "group1/storage.conf", old: "port = 23000\n", new: "port = 23000\nport = 23005\n",
			want: []string{"group1/storage.conf: port is set twice"}},
		{name: "http.conf port differs",
			rel: "group1/http.conf", old: "http.server_port = 8888", new: "http.server_port = 8080",
			want: []string{"group1/http.conf: http.server_port = 8080 differs from http.server_port = 8888 in group1/storage.conf"}},
		{name: "compose mounts another group's file",
			rel: "compose.yaml", old: "./group2/mod_fastdfs.conf:", new: "./group1/mod_fastdfs.conf:",
			want: []string{"service group2 mounts group1/mod_fastdfs.conf alongside group2/storage.conf",
				"service group2 does not mount group2/mod_fastdfs.conf"}},
		{name: "compose starts nginx with another file",
			rel: "compose.yaml", old: "nginx -c /etc/fdfs/nginx.conf", new: "nginx -c /etc/nginx/nginx.conf",
			want: []string{"service group1 mounts nginx.conf at /etc/fdfs/nginx.conf but starts nginx with -c /etc/nginx/nginx.conf"}},
		{name: "compose on a bridge network",
			rel: "compose.yaml", old: "network_mode: host", new: "network_mode: bridge",
			want: []string{"service tracker (line 10): network_mode is \"bridge\", not host"}},
		{name: "http.conf missing", removeRel: "group3/http.conf",
			want: []string{"group3/http.conf: missing; group3/mod_fastdfs.conf includes it"}},
		{name: "mod_fastdfs.conf missing", removeRel: "group1/mod_fastdfs.conf",
			want: []string{"group1/mod_fastdfs.conf: missing; nginx would not serve group1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := renderThree(t)
			if tt.removeRel != "" {
				if err := os.Remove(filepath.Join(dir, tt.removeRel)); err != nil {
					t.Fatal(err)
				}
			} else {
				edit(t, dir, tt.rel, tt.old, tt.new)
			}
			code, stdout, _ := runCLI(t, "--check", dir)
			if code != exitProblems {
				t.Errorf("exit %d, want %d", code, exitProblems)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("report lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestCheckAcceptsOtherSpellings checks a deployment written by hand in the
// other forms nginx and compose allow: it is as consistent as the rendered
// one.
func TestCheckAcceptsOtherSpellings(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "--host-ip", "192.0.2.20", "--groups", "1", "--out", dir, "--log-level", "warn")
	if code != exitOK {
		t.Fatal(stderr)
	}
	nginx := `# a bare server block, as included by an nginx already on the host
server {
    listen 0.0.0.0:8888 default_server;
    location ~/group1/M00/ {   # regex form, as many guides write it
        ngx_fastdfs_module;
    }
}
`
	compose := `services:
  tracker:
    image: delron/fastdfs
    network_mode: "host"
    command: ["sh", "-c", "fdfs_trackerd /etc/fdfs/tracker.conf start; tail -F /dev/null"]
    volumes:
      - type: bind
        source: ./tracker/tracker.conf
        target: /etc/fdfs/tracker.conf
      - /data/fastdfs:/data/fastdfs
  storage-1:
    image: delron/fastdfs
    network_mode: host
    entrypoint: |
      sh -c 'fdfs_storaged /etc/fdfs/storage.conf start &&
      nginx -g "daemon off;"'
    volumes:
    - ./group1/storage.conf:/etc/fdfs/storage.conf
    - ./group1/mod_fastdfs.conf:/etc/fdfs/mod_fastdfs.conf:ro
    - './group1/http.conf:/etc/fdfs/http.conf'
    - ./group1/nginx.conf:/usr/local/nginx/conf/nginx.conf
    - /data/fastdfs/group1:/data/fastdfs/group1
    labels:
      - fdfsfs.cluster.group=group1
`
	for rel, text := range map[string]string{"group1/nginx.conf": nginx, "compose.yaml": compose} {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, stdout, _ := runCLI(t, "--check", dir); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	// The same compose file with the tracker's data outside every mount.
	edit(t, dir, "compose.yaml", "      - /data/fastdfs:/data/fastdfs\n", "")
	code, stdout, _ := runCLI(t, "--check", dir)
	if code != exitProblems || !strings.Contains(stdout, "service tracker mounts no directory holding base_path /data/fastdfs/tracker") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
}

func TestCheckUnreadableFiles(t *testing.T) {
	tests := []struct {
		rel, text, want string
	}{
		{"compose.yaml", "services:\n  a: {image: x\n", "compose.yaml: yaml: line 1: did not find expected ',' or '}'"},
		{"compose.yaml", "services:\n  a:\n    image: *img\n", "unknown anchor 'img'"},
		{"compose.yaml", "services:\n  a:\n  a:\n", "key \"a\" appears twice"},
		{"compose.yaml", "services:\n\t a:\n", "compose.yaml: yaml: line 2: found character that cannot start any token"},
		{"group1/nginx.conf", "http {\n server {\n listen 8888;\n", "line 2: block of \"server\" is not closed"},
		{"group1/nginx.conf", "server { listen 8888 }\n", "directive \"listen\" is not terminated"},
		{"group1/nginx.conf", "}\n", "unexpected \"}\""},
		{"group1/storage.conf", "group_name group1\n", "line 1 \"group_name group1\" is not key = value"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			dir := t.TempDir()
			if code, _, stderr := runCLI(t, "--host-ip", "192.0.2.10", "--groups", "1", "--out", dir, "--log-level", "warn"); code != exitOK {
				t.Fatal(stderr)
			}
			if err := os.WriteFile(filepath.Join(dir, tt.rel), []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, _ := runCLI(t, "--check", dir)
			if code != exitProblems || !strings.Contains(stdout, tt.want) {
				t.Errorf("exit %d, report lacks %q:\n%s", code, tt.want, stdout)
			}
		})
	}
}

func TestCheckEmptyDirectory(t *testing.T) {
	code, stdout, _ := runCLI(t, "--check", t.TempDir())
	for _, want := range []string{"tracker/tracker.conf: missing", "no group directories", "compose.yaml: missing"} {
		if code != exitProblems || !strings.Contains(stdout, want) {
			t.Errorf("exit %d, report lacks %q:\n%s", code, want, stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--host-ip", "192.0.2.10", "--groups", "1"},
		{"--check", "a", "--out", "b"},
		{"--no-such-flag"},
		{"--check", "a", "extra"},
		{"--check", "a", "--log-level", "loud"},
	} {
		if code, _, _ := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
