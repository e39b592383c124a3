package main

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Paths inside the containers. fastdfs-nginx-module reads its configuration
// from a path compiled into it (FDFS_MOD_CONF_FILENAME in its src/config),
// which is why every group runs in a container of its own: each one gets its
// own /etc/fdfs/mod_fastdfs.conf.
const (
	containerConfDir = "/etc/fdfs"
	composeFile      = "compose.yaml"
)

// Names of the rendered files, relative to the output directory.
const (
	trackerConfName = "tracker.conf"
	storageConfName = "storage.conf"
	modConfName     = "mod_fastdfs.conf"
	httpConfName    = "http.conf"
	nginxConfName   = "nginx.conf"
)

// groupConfNames are the files every group directory holds, in the order the
// compose file mounts them.
var groupConfNames = []string{storageConfName, modConfName, httpConfName, nginxConfName}

// Render returns every file of the deployment, keyed by its path relative
// to the output directory. It validates the layout first, and then checks the
// rendered files with the same code that --check runs, so that the kit never
// writes a tree it would itself call inconsistent.
func Render(l Layout) (map[string][]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	files := map[string][]byte{
		path.Join(trackerDir, trackerConfName): renderTrackerConf(l),
		composeFile:                            renderCompose(l),
	}
	for _, g := range l.Groups {
		files[path.Join(g.Name, storageConfName)] = renderStorageConf(l, g)
		files[path.Join(g.Name, modConfName)] = renderModFastDFSConf(l, g)
		files[path.Join(g.Name, httpConfName)] = renderHTTPConf(l, g)
		files[path.Join(g.Name, nginxConfName)] = renderNginxConf(l, g)
	}
	if problems := Check(files); len(problems) > 0 {
		return nil, fmt.Errorf("rendered files fail their own check (a bug in the kit):\n%s", formatProblems(problems))
	}
	return files, nil
}

// confText builds a FastDFS "key = value" file.
type confText struct{ b strings.Builder }

func (c *confText) comment(lines ...string) {
	for _, line := range lines {
		c.b.WriteString("# " + line + "\n")
	}
}

func (c *confText) set(key string, value any) {
	if value == "" {
		c.b.WriteString(key + " =\n")
		return
	}
	fmt.Fprintf(&c.b, "%s = %v\n", key, value)
}

func (c *confText) blank() { c.b.WriteString("\n") }

func (c *confText) bytes() []byte { return []byte(c.b.String()) }

func header(c *confText, what string) {
	c.comment(what+", rendered by scripts/cluster.",
		"Ports, group names, paths and tracker_server must agree across this",
		"deployment; after editing by hand run: go run ./scripts/cluster --check DIR")
	c.blank()
}

func renderTrackerConf(l Layout) []byte {
	var c confText
	header(&c, fmt.Sprintf("FastDFS tracker on %s", l.HostIP))
	c.set("disabled", false)
	c.comment("empty: listen on every address of the host")
	c.set("bind_addr", "")
	c.comment("storage.conf and mod_fastdfs.conf of every group name this port in tracker_server")
	c.set("port", l.TrackerPort)
	c.set("connect_timeout", 5)
	c.set("network_timeout", 60)
	c.blank()
	c.comment("data and logs of the tracker; a host directory mounted into its container")
	c.set("base_path", l.trackerBasePath())
	c.blank()
	c.set("max_connections", 1024)
	c.set("accept_threads", 1)
	c.set("work_threads", 4)
	c.set("min_buff_size", "8KB")
	c.set("max_buff_size", "128KB")
	c.blank()
	c.comment("2: upload to the group with the most free space")
	c.set("store_lookup", 2)
	c.comment("used only when store_lookup = 1")
	c.set("store_group", l.Groups[0].Name)
	c.set("store_server", 0)
	c.set("store_path", 0)
	c.set("download_server", 0)
	c.set("reserved_storage_space", "10%")
	c.blank()
	c.set("log_level", "info")
	c.set("run_by_group", "")
	c.set("run_by_user", "")
	c.set("allow_hosts", "*")
	c.set("sync_log_buff_interval", 1)
	c.set("check_active_interval", 120)
	c.set("thread_stack_size", "256KB")
	c.set("storage_ip_changed_auto_adjust", true)
	c.set("storage_sync_file_max_delay", 86400)
	c.set("storage_sync_file_max_time", 300)
	c.set("use_trunk_file", false)
	c.set("use_storage_id", false)
	c.set("storage_ids_filename", "storage_ids.conf")
	c.set("store_slave_file_use_link", false)
	c.set("use_connection_pool", true)
	c.set("connection_pool_max_idle_time", 3600)
	c.set("log_file_keep_days", 15)
	return c.bytes()
}

func renderStorageConf(l Layout, g Group) []byte {
	var c confText
	header(&c, fmt.Sprintf("FastDFS storage server of group %s on %s", g.Name, l.HostIP))
	c.set("disabled", false)
	c.comment("files of this server are addressed as "+g.Name+"/M00/...;",
		"mod_fastdfs.conf beside this file must name the same group")
	c.set("group_name", g.Name)
	c.comment("empty: listen on every address of the host")
	c.set("bind_addr", "")
	c.set("client_bind", true)
	c.comment("every storage server on one host needs its own port")
	c.set("port", g.StoragePort)
	c.set("connect_timeout", 5)
	c.set("network_timeout", 60)
	c.set("heart_beat_interval", 30)
	c.set("stat_report_interval", 60)
	c.blank()
	c.comment("data and logs of this server, kept apart from the store paths as FastDFS asks")
	c.set("base_path", l.groupBasePath(g))
	c.blank()
	c.set("max_connections", 1024)
	c.set("buff_size", "256KB")
	c.set("accept_threads", 1)
	c.set("work_threads", 4)
	c.set("disk_rw_separated", true)
	c.set("disk_reader_threads", 1)
	c.set("disk_writer_threads", 1)
	c.set("sync_wait_msec", 50)
	c.set("sync_interval", 0)
	c.set("sync_start_time", "00:00")
	c.set("sync_end_time", "23:59")
	c.set("write_mark_file_freq", 500)
	c.blank()
	c.comment("store path N is M0N in file IDs; never reorder them")
	c.set("store_path_count", g.StorePathCount)
	for i, p := range l.storePaths(g) {
		c.set(storePathKey(i), p)
	}
	c.set("subdir_count_per_path", 256)
	c.blank()
	c.set("tracker_server", l.trackerServer())
	c.blank()
	c.set("log_level", "info")
	c.set("run_by_group", "")
	c.set("run_by_user", "")
	c.set("allow_hosts", "*")
	c.set("file_distribute_path_mode", 0)
	c.set("file_distribute_rotate_count", 100)
	c.set("fsync_after_written_bytes", 0)
	c.set("sync_log_buff_interval", 1)
	c.set("sync_binlog_buff_interval", 1)
	c.set("sync_stat_file_interval", 300)
	c.set("thread_stack_size", "512KB")
	c.set("upload_priority", 10)
	c.set("if_alias_prefix", "")
	c.set("check_file_duplicate", 0)
	c.set("use_access_log", false)
	c.set("use_connection_pool", true)
	c.set("connection_pool_max_idle_time", 3600)
	c.set("check_store_path_mark", true)
	c.blank()
	c.comment("the port of this group's nginx; FastDFS up to V6.12 reports it to the",
		"tracker (and so to clients), later versions ignore the key")
	c.set("http.domain_name", "")
	c.set("http.server_port", g.HTTPPort)
	return c.bytes()
}

func renderModFastDFSConf(l Layout, g Group) []byte {
	var c confText
	header(&c, fmt.Sprintf("fastdfs-nginx-module for group %s on %s", g.Name, l.HostIP))
	c.set("connect_timeout", 2)
	c.set("network_timeout", 30)
	c.comment("must exist before nginx starts; the container creates it")
	c.set("base_path", l.groupBasePath(g))
	c.set("load_fdfs_parameters_from_tracker", true)
	c.set("storage_sync_file_max_delay", 86400)
	c.set("use_storage_id", false)
	c.set("storage_ids_filename", "storage_ids.conf")
	c.blank()
	c.comment("the same trackers, group, port and store paths as storage.conf")
	c.set("tracker_server", l.trackerServer())
	c.set("storage_server_port", g.StoragePort)
	c.set("group_name", g.Name)
	c.comment("URLs carry the group: /" + g.Name + "/M00/00/00/...")
	c.set("url_have_group_name", true)
	c.set("store_path_count", g.StorePathCount)
	for i, p := range l.storePaths(g) {
		c.set(storePathKey(i), p)
	}
	c.blank()
	c.set("log_level", "info")
	c.comment("empty: log to nginx's error log")
	c.set("log_filename", "")
	c.comment("proxy: fetch a file not yet synced here from the storage that has it")
	c.set("response_mode", "proxy")
	c.set("if_alias_prefix", "")
	c.blank()
	c.comment("the module refuses to start without the http.* keys of this file;",
		"the # is part of the directive")
	c.b.WriteString("#include " + httpConfName + "\n")
	c.blank()
	c.set("flv_support", true)
	c.set("flv_extension", "flv")
	c.comment("one group per nginx: this container serves " + g.Name + " only")
	c.set("group_count", 0)
	return c.bytes()
}

func renderHTTPConf(l Layout, g Group) []byte {
	var c confText
	header(&c, fmt.Sprintf("HTTP settings of fastdfs-nginx-module for group %s", g.Name))
	c.comment("the port nginx listens on for this group")
	c.set("http.server_port", g.HTTPPort)
	c.set("http.default_content_type", "application/octet-stream")
	c.comment("absolute: a relative name is looked up beside mod_fastdfs.conf")
	c.set("http.mime_types_filename", path.Join(l.NginxPrefix, "conf", "mime.types"))
	c.set("http.anti_steal.check_token", false)
	return c.bytes()
}

func renderNginxConf(l Layout, g Group) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# nginx with fastdfs-nginx-module for group %s on %s, rendered by scripts/cluster.\n", g.Name, l.HostIP)
	b.WriteString("# The server block is what an nginx already running on the host needs.\n")
	b.WriteString("# The listen port must equal http.server_port in storage.conf and http.conf.\n\n")
	b.WriteString("worker_processes 1;\n")
	b.WriteString("error_log stderr warn;\n\n")
	b.WriteString("events {\n    worker_connections 1024;\n}\n\n")
	b.WriteString("http {\n")
	fmt.Fprintf(&b, "    include %s;\n", path.Join(l.NginxPrefix, "conf", "mime.types"))
	b.WriteString("    default_type application/octet-stream;\n")
	b.WriteString("    sendfile on;\n")
	b.WriteString("    access_log off;\n\n")
	b.WriteString("    server {\n")
	fmt.Fprintf(&b, "        listen %d;\n", g.HTTPPort)
	fmt.Fprintf(&b, "        server_name %s;\n", l.HostIP)
	for i := range g.StorePathCount {
		fmt.Fprintf(&b, "\n        # store path %d of %s: %s\n", i, g.Name, l.storePath(g, i))
		fmt.Fprintf(&b, "        location %s {\n", storeLocation(g.Name, i))
		b.WriteString("            ngx_fastdfs_module;\n")
		b.WriteString("        }\n")
	}
	b.WriteString("    }\n}\n")
	return []byte(b.String())
}

func renderCompose(l Layout) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# FastDFS on %s: one tracker and %d storage groups, rendered by scripts/cluster.\n", l.HostIP, len(l.Groups))
	b.WriteString("# Start from this directory: docker compose up -d\n")
	b.WriteString("# Every container uses the host network: a storage server is known to the\n")
	b.WriteString("# tracker by the address the tracker sees it connect from, and a NAT'd\n")
	b.WriteString("# bridge address would reach clients as an unreachable storage.\n")
	b.WriteString("services:\n")

	trackerConf := path.Join(containerConfDir, trackerConfName)
	writeService(&b, serviceSpec{
		name:  trackerDir,
		image: l.Image,
		command: fmt.Sprintf("mkdir -p %s && fdfs_trackerd %s start && exec tail -F %s",
			l.trackerBasePath(), trackerConf, path.Join(l.trackerBasePath(), "logs", "trackerd.log")),
		volumes: []string{
			"./" + path.Join(trackerDir, trackerConfName) + ":" + trackerConf + ":ro",
			l.trackerBasePath() + ":" + l.trackerBasePath(),
		},
		labels: [][2]string{
			{labelRole, "tracker"},
			{labelPort, strconv.Itoa(l.TrackerPort)},
		},
	})
	for _, g := range l.Groups {
		dirs := append([]string{l.groupBasePath(g)}, l.storePaths(g)...)
		volumes := make([]string, 0, len(groupConfNames)+1)
		for _, name := range groupConfNames {
			volumes = append(volumes, "./"+path.Join(g.Name, name)+":"+path.Join(containerConfDir, name)+":ro")
		}
		volumes = append(volumes, l.groupDataDir(g)+":"+l.groupDataDir(g))
		writeService(&b, serviceSpec{
			name:      g.Name,
			image:     l.Image,
			dependsOn: trackerDir,
			// fdfs_storaged puts itself in the background; nginx holds the
			// foreground so that the container lives as long as it does.
			command: fmt.Sprintf("mkdir -p %s && fdfs_storaged %s start && exec %s -c %s -g 'daemon off;'",
				strings.Join(dirs, " "), path.Join(containerConfDir, storageConfName),
				path.Join(l.NginxPrefix, "sbin", "nginx"), path.Join(containerConfDir, nginxConfName)),
			volumes: volumes,
			labels: [][2]string{
				{labelRole, "storage"},
				{labelGroup, g.Name},
				{labelStoragePort, strconv.Itoa(g.StoragePort)},
				{labelHTTPPort, strconv.Itoa(g.HTTPPort)},
			},
		})
	}
	return []byte(b.String())
}

// Labels on the containers say which group and ports each serves, so that
// `docker ps` answers it and --check can compare them with the config files.
const (
	labelRole        = "fdfsfs.cluster.role"
	labelGroup       = "fdfsfs.cluster.group"
	labelPort        = "fdfsfs.cluster.port"
	labelStoragePort = "fdfsfs.cluster.storage-port"
	labelHTTPPort    = "fdfsfs.cluster.http-port"
)

type serviceSpec struct {
	name      string
	image     string
	dependsOn string
	command   string
	volumes   []string
	labels    [][2]string
}

func writeService(b *strings.Builder, s serviceSpec) {
	fmt.Fprintf(b, "  %s:\n", s.name)
	fmt.Fprintf(b, "    image: %s\n", yamlQuote(s.image))
	fmt.Fprintf(b, "    container_name: %s\n", yamlQuote("fastdfs-"+s.name))
	b.WriteString("    network_mode: host\n")
	b.WriteString("    restart: unless-stopped\n")
	if s.dependsOn != "" {
		fmt.Fprintf(b, "    depends_on:\n      - %s\n", s.dependsOn)
	}
	b.WriteString("    entrypoint:\n")
	for _, arg := range []string{"/bin/sh", "-c", s.command} {
		fmt.Fprintf(b, "      - %s\n", yamlQuote(arg))
	}
	b.WriteString("    volumes:\n")
	for _, v := range s.volumes {
		fmt.Fprintf(b, "      - %s\n", yamlQuote(v))
	}
	b.WriteString("    labels:\n")
	for _, kv := range s.labels {
		fmt.Fprintf(b, "      %s: %s\n", kv[0], yamlQuote(kv[1]))
	}
}

// yamlQuote writes s as a YAML double-quoted scalar. The inputs are
// validated to printable ASCII, where Go's and YAML's escapes agree.
func yamlQuote(s string) string { return strconv.Quote(s) }

func storePathKey(i int) string { return "store_path" + strconv.Itoa(i) }

// storeLocation is the URL prefix of store path i of a group, as file IDs
// spell it: M00, M01, ..., M0A, ... (upper-case hex).
func storeLocation(group string, i int) string { return fmt.Sprintf("/%s/M%02X", group, i) }
