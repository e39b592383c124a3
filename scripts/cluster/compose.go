package main

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// composeView is what the checks need of one compose service.
type composeView struct {
	name        string
	line        int
	networkMode string
	// networkModeLine is where network_mode is set, else where the service starts.
	networkModeLine int
	command         string // entrypoint and command, joined by blanks
	mounts          []composeMount
	labels          map[string]string
}

type composeMount struct {
	source string // cleaned; relative sources lose their "./"
	target string
}

// isHostDir says whether the mount binds a host directory by absolute path,
// rather than a file of the rendered tree or a named volume.
func (m composeMount) isHostDir() bool { return strings.HasPrefix(m.source, "/") }

// parseCompose reads the services of a compose file, sorted by name.
func parseCompose(data []byte) ([]composeView, error) {
	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	if root.kind != yamlMap {
		return nil, fmt.Errorf("the file is not a mapping with a services key")
	}
	services := root.get("services")
	if services == nil || services.kind != yamlMap {
		return nil, fmt.Errorf("no services mapping")
	}
	var views []composeView
	for _, name := range services.keys {
		s := services.vals[name]
		v := composeView{name: name, line: s.line, labels: map[string]string{}}
		if s.kind != yamlMap {
			return nil, fmt.Errorf("line %d: service %s is not a mapping", s.line, name)
		}
		v.networkMode, v.networkModeLine = s.get("network_mode").text(), s.line
		if nm := s.get("network_mode"); nm != nil {
			v.networkModeLine = nm.line
		}
		v.command = strings.TrimSpace(joinWords(s.get("entrypoint")) + " " + joinWords(s.get("command")))
		if v.mounts, err = readMounts(name, s.get("volumes")); err != nil {
			return nil, err
		}
		if err := readLabels(v.labels, s.get("labels")); err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		views = append(views, v)
	}
	sort.Slice(views, func(i, j int) bool { return views[i].name < views[j].name })
	return views, nil
}

func joinWords(n *yamlNode) string {
	if n == nil {
		return ""
	}
	if n.kind == yamlScalar {
		return n.value
	}
	words := make([]string, 0, len(n.items))
	for _, it := range n.items {
		words = append(words, it.text())
	}
	return strings.Join(words, " ")
}

// readMounts reads both the short ("SRC:DST[:MODE]") and the long
// (source/target mapping) volume syntax.
func readMounts(service string, n *yamlNode) ([]composeMount, error) {
	if n == nil || n.kind == yamlNull {
		return nil, nil
	}
	if n.kind != yamlSeq {
		return nil, fmt.Errorf("line %d: volumes of %s is not a list", n.line, service)
	}
	var mounts []composeMount
	for _, it := range n.items {
		var m composeMount
		switch it.kind {
		case yamlScalar:
			parts := strings.Split(it.value, ":")
			if len(parts) < 2 || len(parts) > 3 {
				// An anonymous volume has no source and cannot hold our files.
				continue
			}
			m = composeMount{source: parts[0], target: parts[1]}
		case yamlMap:
			m = composeMount{source: it.get("source").text(), target: it.get("target").text()}
		default:
			return nil, fmt.Errorf("line %d: a volume of %s is neither a string nor a mapping", it.line, service)
		}
		if m.source == "" || m.target == "" {
			continue
		}
		m.source, m.target = path.Clean(m.source), path.Clean(m.target)
		mounts = append(mounts, m)
	}
	return mounts, nil
}

// readLabels reads labels written as a mapping or as a list of "key=value".
func readLabels(labels map[string]string, n *yamlNode) error {
	if n == nil || n.kind == yamlNull {
		return nil
	}
	switch n.kind {
	case yamlMap:
		for _, k := range n.keys {
			labels[k] = n.vals[k].text()
		}
	case yamlSeq:
		for _, it := range n.items {
			k, v, _ := strings.Cut(it.text(), "=")
			labels[k] = v
		}
	default:
		return fmt.Errorf("line %d: labels are neither a mapping nor a list", n.line)
	}
	return nil
}

// mountOf returns the mount whose source is the given file of the tree.
func (v composeView) mountOf(source string) (composeMount, bool) {
	for _, m := range v.mounts {
		if m.source == source {
			return m, true
		}
	}
	return composeMount{}, false
}

// covers says whether dir inside the container lies in a mounted directory,
// so that what the server writes there outlives the container.
func (v composeView) covers(dir string) bool {
	for _, m := range v.mounts {
		if m.target == "/" || dir == m.target || strings.HasPrefix(dir, m.target+"/") {
			return true
		}
	}
	return false
}
