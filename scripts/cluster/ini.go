package main

import (
	"fmt"
	"strconv"
	"strings"
)

// fdfsConf is a FastDFS configuration file as libfastcommon's ini reader sees
// it: "key = value" lines with both sides trimmed, "#" comments, "#include
// FILE" directives and "[section]" headers. Only the unnamed global section
// is consulted by the checks; sections are kept apart so that a key in
// [group1] of mod_fastdfs.conf is not mistaken for a global one.
type fdfsConf struct {
	file     string
	items    []confItem
	includes []string
	problems []Problem
}

type confItem struct {
	section string
	key     string
	value   string
	line    int
}

// repeatableKeys may occur more than once; for every other key FastDFS
// reads one value, so a second one is a hand edit gone wrong.
var repeatableKeys = map[string]bool{"tracker_server": true, "allow_hosts": true}

func parseFDFSConf(file string, data []byte) *fdfsConf {
	c := &fdfsConf{file: file}
	section := ""
	firstLine := map[[2]string]int{}
	for i, raw := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#include"):
			if name := strings.TrimSpace(strings.TrimPrefix(line, "#include")); name != "" {
				c.includes = append(c.includes, name)
			}
			continue
		case strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			c.problems = append(c.problems, Problem{file, fmt.Sprintf("line %d %q is not key = value; FastDFS ignores it", lineNo, line)})
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if key == "" {
			c.problems = append(c.problems, Problem{file, fmt.Sprintf("line %d has a value but no key", lineNo)})
			continue
		}
		id := [2]string{section, key}
		if first, dup := firstLine[id]; dup && !repeatableKeys[key] {
			c.problems = append(c.problems, Problem{file, fmt.Sprintf("%s is set twice (lines %d and %d)", key, first, lineNo)})
			continue
		}
		firstLine[id] = lineNo
		c.items = append(c.items, confItem{section, key, value, lineNo})
	}
	return c
}

// all returns every global value of key, in file order.
func (c *fdfsConf) all(key string) []string {
	var values []string
	for _, it := range c.items {
		if it.section == "" && it.key == key {
			values = append(values, it.value)
		}
	}
	return values
}

func (c *fdfsConf) get(key string) (string, bool) {
	values := c.all(key)
	if len(values) == 0 {
		return "", false
	}
	return values[0], true
}

func (c *fdfsConf) has(key string) bool {
	_, ok := c.get(key)
	return ok
}

func (c *fdfsConf) report(format string, args ...any) {
	c.problems = append(c.problems, Problem{c.file, fmt.Sprintf(format, args...)})
}

// required returns the value of key, reporting its absence or emptiness.
func (c *fdfsConf) required(key string) string {
	v, ok := c.get(key)
	switch {
	case !ok:
		c.report("%s is missing", key)
	case v == "":
		c.report("%s is empty", key)
	}
	return v
}

// port returns key as a TCP port, or 0 after reporting why it is not one.
func (c *fdfsConf) port(key string) int {
	v := c.required(key)
	if v == "" {
		return 0
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		c.report("%s = %s is not a port", key, v)
		return 0
	}
	return p
}

// absPath returns key as an absolute path, or "" after reporting.
func (c *fdfsConf) absPath(key string) string {
	v := c.required(key)
	if v != "" && !strings.HasPrefix(v, "/") {
		c.report("%s = %s is not an absolute path", key, v)
		return ""
	}
	return v
}

// boolValue reads key the way libfastcommon's iniGetBoolValue does.
func (c *fdfsConf) boolValue(key string, def bool) bool {
	v, ok := c.get(key)
	if !ok || v == "" {
		return def
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true
	}
	return false
}

// storePaths reads store_path_count and store_path0..N-1.
func (c *fdfsConf) storePaths() []string {
	count := 1
	if v, ok := c.get("store_path_count"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxStorePaths {
			c.report("store_path_count = %s; FastDFS takes 1 to %d", v, maxStorePaths)
			return nil
		}
		count = n
	}
	paths := make([]string, 0, count)
	for i := range count {
		key := storePathKey(i)
		if !c.has(key) {
			c.report("%s is missing (store_path_count = %d); FastDFS would fall back to base_path, which it warns against", key, count)
			continue
		}
		paths = append(paths, c.absPath(key))
	}
	for _, it := range c.items {
		if it.section != "" || !strings.HasPrefix(it.key, "store_path") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(it.key, "store_path"))
		if err == nil && n >= count {
			c.report("%s is set but store_path_count = %d, so FastDFS ignores it", it.key, count)
		}
	}
	return paths
}
