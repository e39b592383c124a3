package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Problem is one inconsistency, in the file where it shows.
type Problem struct {
	File string // relative to the deployment directory; "" when it spans files
	Msg  string
}

func (p Problem) String() string {
	if p.File == "" {
		return p.Msg
	}
	return p.File + ": " + p.Msg
}

func formatProblems(problems []Problem) string {
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = "  " + p.String()
	}
	return strings.Join(lines, "\n")
}

// maxConfigFile bounds what --check reads of one file; configuration
// files are a few kilobytes.
const maxConfigFile = 1 << 20

// LoadTree reads a rendered (or hand-edited) deployment directory: the
// tracker's and the compose file, and the files of every other directory,
// each of which is taken for a group.
func LoadTree(ctx context.Context, dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	read := func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if len(data) > maxConfigFile {
			return fmt.Errorf("%s: larger than %d bytes; not a configuration file", rel, maxConfigFile)
		}
		files[rel] = data
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if err := read(composeFile); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		names := groupConfNames
		if e.Name() == trackerDir {
			names = []string{trackerConfName}
		}
		for _, name := range names {
			if err := read(path.Join(e.Name(), name)); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// groupView is one group as its files describe it.
type groupView struct {
	dir         string
	name        string
	storagePort int
	httpPort    int
	nginxPorts  []int
	basePath    string
	storePaths  []string
	trackers    []string
}

type checker struct {
	files       map[string][]byte
	problems    []Problem
	trackerPort int
	trackerBase string
	groups      []groupView
}

// Check reports every inconsistency of a deployment given as its files,
// keyed by path relative to the deployment directory. It is what --check
// runs, and what Render runs on its own output.
func Check(files map[string][]byte) []Problem {
	c := &checker{files: files}
	c.checkTracker()
	dirs := groupDirs(files)
	if len(dirs) == 0 {
		c.add("", "no group directories: expected <group>/storage.conf beside tracker/")
	}
	for _, dir := range dirs {
		c.groups = append(c.groups, c.checkGroup(dir))
	}
	c.checkAcrossGroups()
	c.checkCompose()
	return c.problems
}

func (c *checker) add(file, format string, args ...any) {
	c.problems = append(c.problems, Problem{file, fmt.Sprintf(format, args...)})
}

func (c *checker) conf(file string) *fdfsConf {
	data, ok := c.files[file]
	if !ok {
		return nil
	}
	return parseFDFSConf(file, data)
}

func (c *checker) absorb(conf *fdfsConf) {
	c.problems = append(c.problems, conf.problems...)
	conf.problems = nil
}

func groupDirs(files map[string][]byte) []string {
	seen := map[string]bool{}
	for name := range files {
		dir, _, ok := strings.Cut(name, "/")
		if ok && dir != trackerDir {
			seen[dir] = true
		}
	}
	dirs := make([]string, 0, len(seen))
	for d := range seen {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}

func (c *checker) checkTracker() {
	file := path.Join(trackerDir, trackerConfName)
	conf := c.conf(file)
	if conf == nil {
		c.add(file, "missing")
		return
	}
	defer c.absorb(conf)
	if conf.boolValue("disabled", false) {
		conf.report("disabled = true: the tracker would not start")
	}
	c.trackerPort = conf.port("port")
	c.trackerBase = conf.absPath("base_path")
}

func (c *checker) checkGroup(dir string) groupView {
	g := groupView{dir: dir}
	storageFile := path.Join(dir, storageConfName)
	sc := c.conf(storageFile)
	if sc == nil {
		c.add(storageFile, "missing; the other files of %s/ have no storage server to describe", dir)
		return g
	}
	if sc.boolValue("disabled", false) {
		sc.report("disabled = true: this storage server would not start")
	}
	g.name = sc.required("group_name")
	if g.name != "" {
		if err := validGroupName(g.name); err != nil {
			sc.report("%v", err)
		}
		if g.name != dir {
			sc.report("group_name = %s, but the directory is %s/; the kit names group directories after their group", g.name, dir)
		}
	}
	g.storagePort = sc.port("port")
	g.httpPort = sc.port("http.server_port")
	g.basePath = sc.absPath("base_path")
	g.storePaths = sc.storePaths()
	g.trackers = sc.all("tracker_server")
	if len(g.trackers) == 0 {
		sc.report("no tracker_server; the storage server would not know where to register")
	}
	for _, t := range g.trackers {
		if err := validTrackerServer(t); err != nil {
			sc.report("tracker_server = %s: %v", t, err)
		}
	}
	c.absorb(sc)

	c.checkModFastDFS(g)
	g.nginxPorts = c.checkNginx(g)
	return g
}

func validTrackerServer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not HOST:PORT")
	}
	if host == "" {
		return errors.New("no host")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q is not a port", port)
	}
	return nil
}

func (c *checker) checkModFastDFS(g groupView) {
	storageFile := path.Join(g.dir, storageConfName)
	file := path.Join(g.dir, modConfName)
	mc := c.conf(file)
	if mc == nil {
		c.add(file, "missing; nginx would not serve %s", g.dir)
		return
	}
	defer c.absorb(mc)
	if v, ok := mc.get("group_count"); ok && v != "0" && v != "" {
		mc.report("group_count = %s: the kit runs one group per nginx, and [groupN] sections would override group_name", v)
	}
	if name := mc.required("group_name"); name != "" && g.name != "" && name != g.name {
		mc.report("group_name = %s differs from group_name = %s in %s; nginx would serve the wrong group's URLs", name, g.name, storageFile)
	}
	if port := mc.port("storage_server_port"); port != 0 && g.storagePort != 0 && port != g.storagePort {
		mc.report("storage_server_port = %d differs from port = %d in %s", port, g.storagePort, storageFile)
	}
	mc.absPath("base_path")
	if paths := mc.storePaths(); g.storePaths != nil && paths != nil {
		if len(paths) != len(g.storePaths) {
			mc.report("%d store paths, but %s has %d; they must be the same", len(paths), storageFile, len(g.storePaths))
		} else {
			for i := range paths {
				if paths[i] != g.storePaths[i] {
					mc.report("%s = %s differs from %s in %s", storePathKey(i), paths[i], g.storePaths[i], storageFile)
				}
			}
		}
	}
	if !mc.boolValue("url_have_group_name", false) {
		mc.report("url_have_group_name is not true, but the nginx locations carry the group (/%s/M00); the module would take the group for part of the file name", g.name)
	}
	trackers := mc.all("tracker_server")
	if mc.boolValue("load_fdfs_parameters_from_tracker", false) && len(trackers) == 0 {
		mc.report("load_fdfs_parameters_from_tracker is true but no tracker_server is set")
	}
	if len(trackers) > 0 && !sameSet(trackers, g.trackers) {
		mc.report("tracker_server %v differs from %v in %s", trackers, g.trackers, storageFile)
	}

	// The http.* keys come from an included file or from this one.
	httpFile := ""
	for _, inc := range mc.includes {
		if path.Base(inc) == httpConfName {
			httpFile = path.Join(g.dir, inc)
		}
	}
	switch {
	case httpFile != "" && !path.IsAbs(httpFile):
		c.checkHTTPConf(g, httpFile)
	case httpFile == "" && !mc.has("http.mime_types_filename"):
		mc.report("neither includes %s nor sets http.mime_types_filename; the module refuses to start without it", httpConfName)
	}
}

func (c *checker) checkHTTPConf(g groupView, file string) {
	hc := c.conf(file)
	if hc == nil {
		c.add(file, "missing; %s includes it and the module will not load without it", path.Join(g.dir, modConfName))
		return
	}
	defer c.absorb(hc)
	if hc.boolValue("http.disabled", false) {
		return
	}
	hc.required("http.mime_types_filename")
	hc.required("http.default_content_type")
	if hc.has("http.server_port") {
		if port := hc.port("http.server_port"); port != 0 && g.httpPort != 0 && port != g.httpPort {
			hc.report("http.server_port = %d differs from http.server_port = %d in %s", port, g.httpPort, path.Join(g.dir, storageConfName))
		}
	}
}

// storeURI matches the location of a store path: /GROUP/M00 to /GROUP/MFF.
var storeURI = regexp.MustCompile(`^/([A-Za-z0-9]+)/M([0-9A-Fa-f]{2})`)

// checkNginx checks that nginx serves every store path of the group on
// http.server_port, and returns the ports it listens on.
func (c *checker) checkNginx(g groupView) []int {
	file := path.Join(g.dir, nginxConfName)
	data, ok := c.files[file]
	if !ok {
		c.add(file, "missing; nothing would serve %s over HTTP", g.dir)
		return nil
	}
	directives, err := parseNginx(data)
	if err != nil {
		c.add(file, "%v", err)
		return nil
	}
	servers := nginxServers(directives)
	if len(servers) == 0 {
		c.add(file, "no server block")
		return nil
	}
	var ports []int
	var ours *nginxServer
	for i, s := range servers {
		for _, p := range s.ports {
			if !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
			if p == g.httpPort && ours == nil {
				ours = &servers[i]
			}
		}
		for _, loc := range s.locations {
			m := storeURI.FindStringSubmatch(loc.path)
			if m != nil && g.name != "" && m[1] != g.name {
				c.add(file, "line %d: location %s sends group %s's URLs to this nginx, whose mod_fastdfs.conf serves %s", loc.line, loc.path, m[1], g.name)
			}
		}
	}
	if g.httpPort == 0 || g.name == "" {
		return ports
	}
	if ours == nil {
		c.add(file, "no server listens on port %d, http.server_port in %s (listening on %v)", g.httpPort, path.Join(g.dir, storageConfName), ports)
		return ports
	}
	for i := range g.storePaths {
		want := storeLocation(g.name, i)
		found := false
		for _, loc := range ours.locations {
			if loc.path == want && loc.fastdfsMod { // nginx prefixes and file IDs are case-sensitive
				found = true
			}
		}
		if !found {
			c.add(file, "the server on port %d has no \"location %s\" with ngx_fastdfs_module for %s", g.httpPort, want, storePathKey(i))
		}
	}
	return ports
}

func (c *checker) checkAcrossGroups() {
	names := map[string][]string{}
	ports := portBook{}
	if c.trackerPort != 0 {
		ports.add(c.trackerPort, "the tracker ("+path.Join(trackerDir, trackerConfName)+")")
	}
	var dirs []ownedDir
	if c.trackerBase != "" {
		dirs = append(dirs, ownedDir{c.trackerBase, trackerDir, "base_path"})
	}
	var first *groupView
	for i := range c.groups {
		g := &c.groups[i]
		storageFile := path.Join(g.dir, storageConfName)
		if g.name != "" {
			names[g.name] = append(names[g.name], storageFile)
		}
		if g.storagePort != 0 {
			ports.add(g.storagePort, g.dir+" storage ("+storageFile+" port)")
		}
		nginxPorts := g.nginxPorts
		if nginxPorts == nil && g.httpPort != 0 {
			nginxPorts = []int{g.httpPort}
		}
		for _, p := range nginxPorts {
			ports.add(p, g.dir+" nginx ("+path.Join(g.dir, nginxConfName)+" listen)")
		}
		if g.basePath != "" {
			dirs = append(dirs, ownedDir{g.basePath, g.dir, "base_path"})
		}
		for j, p := range g.storePaths {
			if p != "" {
				dirs = append(dirs, ownedDir{p, g.dir, storePathKey(j)})
			}
		}
		if len(g.trackers) == 0 {
			continue
		}
		if c.trackerPort != 0 && !slices.ContainsFunc(g.trackers, func(t string) bool { return hasPort(t, c.trackerPort) }) {
			c.add(storageFile, "no tracker_server uses port %d, the port of tracker/tracker.conf", c.trackerPort)
		}
		if first == nil {
			first = g
		} else if !sameSet(g.trackers, first.trackers) {
			c.add(storageFile, "tracker_server %v differs from %v in %s; the groups of one cluster report to the same trackers", g.trackers, first.trackers, path.Join(first.dir, storageConfName))
		}
	}
	for _, name := range sortedKeys(names) {
		if files := names[name]; len(files) > 1 {
			c.add("", "group_name = %s is claimed by %s; each group needs its own name", name, strings.Join(files, " and "))
		}
	}
	for _, err := range ports.errs() {
		c.add("", "%v", err)
	}
	for i := range dirs {
		for _, b := range dirs[i+1:] {
			a := dirs[i]
			switch {
			case a.owner == b.owner && a.dir == b.dir:
				// One server's base path may hold its store paths, but not be one.
				c.add("", "%s: %s and %s are both %s; FastDFS asks for them to differ", a.owner, a.key, b.key, a.dir)
			case a.owner != b.owner && (a.dir == b.dir || strings.HasPrefix(a.dir, b.dir+"/") || strings.HasPrefix(b.dir, a.dir+"/")):
				c.add("", "%s (%s %s) and %s (%s %s) overlap; two servers would write into one directory", a.dir, a.owner, a.key, b.dir, b.owner, b.key)
			}
		}
	}
}

// ownedDir is a directory a server writes to: its base path or a store path.
type ownedDir struct {
	dir   string
	owner string // "tracker" or the group directory
	key   string
}

func hasPort(hostPort string, port int) bool {
	_, p, err := net.SplitHostPort(hostPort)
	return err == nil && p == strconv.Itoa(port)
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *checker) checkCompose() {
	data, ok := c.files[composeFile]
	if !ok {
		c.add(composeFile, "missing; nothing starts the servers")
		return
	}
	services, err := parseCompose(data)
	if err != nil {
		c.add(composeFile, "%v", err)
		return
	}
	trackerConf := path.Join(trackerDir, trackerConfName)
	var trackerServices []string
	groupServices := map[string][]string{}
	hostDirs := map[string]string{}
	for _, s := range services {
		for _, m := range s.mounts {
			if !m.isHostDir() {
				continue
			}
			if other, dup := hostDirs[m.source]; dup && other != s.name {
				c.add(composeFile, "host directory %s is mounted into both %s and %s", m.source, other, s.name)
			}
			hostDirs[m.source] = s.name
		}
		if _, ok := s.mountOf(trackerConf); ok {
			trackerServices = append(trackerServices, s.name)
			c.checkTrackerService(s)
		}
		for i := range c.groups {
			g := &c.groups[i]
			if _, ok := s.mountOf(path.Join(g.dir, storageConfName)); ok {
				groupServices[g.dir] = append(groupServices[g.dir], s.name)
				c.checkGroupService(s, g)
			}
		}
	}
	if len(trackerServices) == 0 {
		c.add(composeFile, "no service mounts %s; the tracker would not start", trackerConf)
	}
	if len(trackerServices) > 1 {
		c.add(composeFile, "services %s all run the tracker on one port", strings.Join(trackerServices, ", "))
	}
	for _, g := range c.groups {
		switch s := groupServices[g.dir]; {
		case len(s) == 0:
			c.add(composeFile, "no service mounts %s; group %s would not start", path.Join(g.dir, storageConfName), g.dir)
		case len(s) > 1:
			c.add(composeFile, "services %s all run group %s on one port", strings.Join(s, ", "), g.dir)
		}
	}
}

func (c *checker) checkHostNetwork(s composeView) {
	if s.networkMode != "host" {
		c.add(composeFile, "service %s (line %d): network_mode is %q, not host; the tracker would hand clients the container's address", s.name, s.networkModeLine, s.networkMode)
	}
}

// nginxConfArg returns the file given to nginx's -c in a shell command, or
// "" when nginx is started without one.
func nginxConfArg(command string) string {
	words := strings.Fields(command)
	for i, w := range words {
		if path.Base(strings.Trim(w, `'"`)) != "nginx" {
			continue
		}
	args:
		for j := i + 1; j < len(words); j++ {
			switch words[j] {
			case "&&", "||", ";", "|":
				break args
			case "-c":
				if j+1 < len(words) {
					return strings.Trim(words[j+1], `'";`)
				}
			}
		}
	}
	return ""
}

func (c *checker) checkTrackerService(s composeView) {
	c.checkHostNetwork(s)
	m, _ := s.mountOf(path.Join(trackerDir, trackerConfName))
	if s.command != "" && !strings.Contains(s.command, m.target) {
		c.add(composeFile, "service %s mounts tracker.conf at %s but its command does not use it", s.name, m.target)
	}
	if c.trackerBase != "" && !s.covers(c.trackerBase) {
		c.add(composeFile, "service %s mounts no directory holding base_path %s; the tracker's data would die with the container", s.name, c.trackerBase)
	}
	if v, ok := s.labels[labelPort]; ok && c.trackerPort != 0 && v != strconv.Itoa(c.trackerPort) {
		c.add(composeFile, "service %s: label %s = %s, but tracker/tracker.conf has port = %d", s.name, labelPort, v, c.trackerPort)
	}
}

func (c *checker) checkGroupService(s composeView, g *groupView) {
	c.checkHostNetwork(s)
	for _, m := range s.mounts {
		dir, name, ok := strings.Cut(m.source, "/")
		if ok && !strings.Contains(name, "/") && dir != g.dir && slices.Contains(groupConfNames, name) {
			c.add(composeFile, "service %s mounts %s alongside %s/%s; a container must take all its files from one group", s.name, m.source, g.dir, storageConfName)
		}
	}
	targets := map[string]string{}
	for _, name := range groupConfNames {
		m, ok := s.mountOf(path.Join(g.dir, name))
		if !ok {
			c.add(composeFile, "service %s does not mount %s", s.name, path.Join(g.dir, name))
			continue
		}
		targets[name] = m.target
	}
	modTarget := path.Join(containerConfDir, modConfName)
	if t, ok := targets[modConfName]; ok && t != modTarget {
		c.add(composeFile, "service %s mounts %s at %s; fastdfs-nginx-module reads only %s", s.name, path.Join(g.dir, modConfName), t, modTarget)
	}
	if t, ok := targets[httpConfName]; ok && t != path.Join(containerConfDir, httpConfName) {
		c.add(composeFile, "service %s mounts %s at %s; mod_fastdfs.conf includes it from %s", s.name, path.Join(g.dir, httpConfName), t, containerConfDir)
	}
	if t, ok := targets[storageConfName]; ok && s.command != "" && !strings.Contains(s.command, t) {
		c.add(composeFile, "service %s mounts storage.conf at %s but its command does not use it", s.name, t)
	}
	if t, ok := targets[nginxConfName]; ok {
		if conf := nginxConfArg(s.command); conf != "" && conf != t {
			c.add(composeFile, "service %s mounts nginx.conf at %s but starts nginx with -c %s", s.name, t, conf)
		}
	}
	for _, dir := range append([]string{g.basePath}, g.storePaths...) {
		if dir != "" && !s.covers(dir) {
			c.add(composeFile, "service %s mounts no directory holding %s; the group's data would die with the container", s.name, dir)
		}
	}
	for _, lw := range [][2]string{
		{labelGroup, g.name},
		{labelStoragePort, strconv.Itoa(g.storagePort)},
		{labelHTTPPort, strconv.Itoa(g.httpPort)},
	} {
		label, want := lw[0], lw[1]
		if v, ok := s.labels[label]; ok && v != want {
			c.add(composeFile, "service %s: label %s = %s, but %s says %s", s.name, label, v, path.Join(g.dir, storageConfName), want)
		}
	}
}
