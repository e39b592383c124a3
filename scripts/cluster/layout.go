package main

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
)

// Limits FastDFS itself enforces (common/fdfs_define.h, fdfs_validate_group_name).
const (
	maxGroupNameLen = 16
	// File IDs name the store path as M%02X, so 256 is the most a storage can have.
	maxStorePaths = 256
)

// trackerDir is the directory, both in the rendered tree and under the base
// directory, that belongs to the tracker; no group may take its name.
const trackerDir = "tracker"

// Options is what an operator gives the kit. Ports not listed explicitly are
// counted up from the base ports, one per group in order.
type Options struct {
	HostIP          string
	Groups          int      // number of groups named group1..groupN; 0 when GroupNames is given
	GroupNames      []string // explicit names; wins over Groups when both agree
	TrackerPort     int
	StorageBasePort int
	HTTPBasePort    int
	StoragePorts    []int // explicit storage ports, one per group; overrides StorageBasePort
	HTTPPorts       []int // explicit nginx ports, one per group; overrides HTTPBasePort
	StorePaths      int   // store paths per storage server
	BaseDir         string
	Image           string
	NginxPrefix     string
}

// Layout is one host's deployment: a tracker and several groups, each group
// one storage server with its own nginx and fastdfs-nginx-module. Host paths
// and container paths are the same, so a path in a config file names the
// same directory on the host and inside the container.
type Layout struct {
	HostIP      string
	TrackerPort int
	BaseDir     string
	Image       string
	NginxPrefix string
	Groups      []Group
}

// Group is one storage group served by one storage server on this host.
type Group struct {
	Name           string
	StoragePort    int
	HTTPPort       int
	StorePathCount int
}

func (l Layout) trackerServer() string {
	return net.JoinHostPort(l.HostIP, strconv.Itoa(l.TrackerPort))
}

func (l Layout) trackerBasePath() string { return path.Join(l.BaseDir, trackerDir) }

// groupDataDir holds everything the group's container writes; it is the one
// host directory mounted into that container.
func (l Layout) groupDataDir(g Group) string { return path.Join(l.BaseDir, g.Name) }

func (l Layout) groupBasePath(g Group) string { return path.Join(l.groupDataDir(g), "base") }

func (l Layout) storePath(g Group, i int) string {
	return path.Join(l.groupDataDir(g), "store"+strconv.Itoa(i))
}

func (l Layout) storePaths(g Group) []string {
	paths := make([]string, g.StorePathCount)
	for i := range paths {
		paths[i] = l.storePath(g, i)
	}
	return paths
}

// PlanLayout turns options into a layout, refusing inconsistent input with
// every reason at once.
func PlanLayout(o Options) (Layout, error) {
	var errs []error
	names := o.GroupNames
	switch {
	case len(names) == 0 && o.Groups <= 0:
		errs = append(errs, errors.New("give the number of groups (--groups N) or their names (--group-names a,b)"))
	case len(names) == 0:
		for i := 1; i <= o.Groups; i++ {
			names = append(names, "group"+strconv.Itoa(i))
		}
	case o.Groups > 0 && o.Groups != len(names):
		errs = append(errs, fmt.Errorf("--groups %d disagrees with the %d names in --group-names", o.Groups, len(names)))
	}
	if len(o.StoragePorts) > 0 && len(o.StoragePorts) != len(names) {
		errs = append(errs, fmt.Errorf("--storage-ports lists %d ports for %d groups", len(o.StoragePorts), len(names)))
	}
	if len(o.HTTPPorts) > 0 && len(o.HTTPPorts) != len(names) {
		errs = append(errs, fmt.Errorf("--http-ports lists %d ports for %d groups", len(o.HTTPPorts), len(names)))
	}
	if len(errs) > 0 {
		return Layout{}, errors.Join(errs...)
	}

	l := Layout{
		HostIP:      o.HostIP,
		TrackerPort: o.TrackerPort,
		BaseDir:     o.BaseDir,
		Image:       o.Image,
		NginxPrefix: o.NginxPrefix,
	}
	for i, name := range names {
		g := Group{
			Name:           name,
			StoragePort:    o.StorageBasePort + i,
			HTTPPort:       o.HTTPBasePort + i,
			StorePathCount: o.StorePaths,
		}
		if len(o.StoragePorts) > 0 {
			g.StoragePort = o.StoragePorts[i]
		}
		if len(o.HTTPPorts) > 0 {
			g.HTTPPort = o.HTTPPorts[i]
		}
		l.Groups = append(l.Groups, g)
	}
	if err := l.Validate(); err != nil {
		return Layout{}, err
	}
	return l, nil
}

// Validate refuses a layout that FastDFS would reject or that would put two
// servers on one port or one directory.
func (l Layout) Validate() error {
	var errs []error
	ip := net.ParseIP(l.HostIP)
	switch {
	case l.HostIP == "":
		errs = append(errs, errors.New("the host IP is missing (--host-ip); storages and clients reach the tracker at it"))
	case ip == nil:
		errs = append(errs, fmt.Errorf("host IP %q is not an IP address", l.HostIP))
	case ip.IsUnspecified():
		errs = append(errs, fmt.Errorf("host IP %s is the wildcard address; give the address other hosts reach this one at", l.HostIP))
	}
	if err := checkSafePath("base directory", l.BaseDir); err != nil {
		errs = append(errs, err)
	}
	if err := checkSafePath("nginx prefix", l.NginxPrefix); err != nil {
		errs = append(errs, err)
	}
	if l.Image == "" || strings.ContainsFunc(l.Image, func(r rune) bool { return !isImageRune(r) }) {
		errs = append(errs, fmt.Errorf("docker image %q is not an image reference", l.Image))
	}
	if len(l.Groups) == 0 {
		errs = append(errs, errors.New("a deployment needs at least one group"))
	}

	ports := portBook{}
	ports.add(l.TrackerPort, "the tracker")
	seen := map[string]bool{}
	for _, g := range l.Groups {
		if err := validGroupName(g.Name); err != nil {
			errs = append(errs, err)
		}
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("group %s is named twice", g.Name))
		}
		seen[g.Name] = true
		if g.StorePathCount < 1 || g.StorePathCount > maxStorePaths {
			errs = append(errs, fmt.Errorf("group %s: %d store paths; FastDFS takes 1 to %d", g.Name, g.StorePathCount, maxStorePaths))
		}
		ports.add(g.StoragePort, g.Name+" storage")
		ports.add(g.HTTPPort, g.Name+" nginx")
	}
	errs = append(errs, ports.errs()...)
	return errors.Join(errs...)
}

func validGroupName(name string) error {
	if name == "" || len(name) > maxGroupNameLen {
		return fmt.Errorf("group name %q must be 1 to %d characters", name, maxGroupNameLen)
	}
	for _, r := range name {
		if !isAlnum(r) {
			return fmt.Errorf("group name %q: FastDFS allows only letters and digits", name)
		}
	}
	if name == trackerDir {
		return fmt.Errorf("group name %q is taken by the tracker's directory", name)
	}
	return nil
}

// checkSafePath insists on absolute, clean paths made of characters that need
// no quoting in a shell command or a config file.
func checkSafePath(what, p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("%s %q must be a clean absolute path below /", what, p)
	}
	for _, r := range p {
		if !isAlnum(r) && !strings.ContainsRune("/._-", r) {
			return fmt.Errorf("%s %q: only letters, digits and / . _ - are allowed", what, p)
		}
	}
	return nil
}

func isAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

func isImageRune(r rune) bool { return isAlnum(r) || strings.ContainsRune("/._-:@", r) }

// portBook records who listens on which port of the host, to name both
// owners when two want the same one.
type portBook struct {
	owners map[int][]string
	order  []int
}

func (b *portBook) add(port int, owner string) {
	if b.owners == nil {
		b.owners = map[int][]string{}
	}
	if _, ok := b.owners[port]; !ok {
		b.order = append(b.order, port)
	}
	b.owners[port] = append(b.owners[port], owner)
}

func (b *portBook) errs() []error {
	var errs []error
	for _, port := range b.order {
		owners := b.owners[port]
		if port < 1 || port > 65535 {
			errs = append(errs, fmt.Errorf("port %d of %s is outside 1-65535", port, strings.Join(owners, " and ")))
			continue
		}
		if len(owners) > 1 {
			errs = append(errs, fmt.Errorf("port %d is given to both %s; every server on one host needs its own port", port, strings.Join(owners, " and ")))
		}
	}
	return errs
}
