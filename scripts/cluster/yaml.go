package main

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Compose files are read with go.yaml.in/yaml/v3 (the YAML organisation's
// maintained yaml.v3), which knows all of YAML: anchors, aliases and merge
// keys (<<) that compose files use to share settings, flow mappings, tags.
// This file only turns its node tree into the small tree the checks walk,
// with line numbers, and refuses what a compose file cannot mean: a key
// that is not a scalar, a key given twice, an alias that expands without
// bound.

type yamlKind int

const (
	yamlNull yamlKind = iota
	yamlScalar
	yamlMap
	yamlSeq
)

type yamlNode struct {
	kind  yamlKind
	value string
	keys  []string // mapping keys in file order
	vals  map[string]*yamlNode
	items []*yamlNode
	line  int
}

// get returns the value of key in a mapping, or nil.
func (n *yamlNode) get(key string) *yamlNode {
	if n == nil || n.kind != yamlMap {
		return nil
	}
	return n.vals[key]
}

// text returns a scalar's value, or "" for anything else.
func (n *yamlNode) text() string {
	if n == nil || n.kind != yamlScalar {
		return ""
	}
	return n.value
}

// maxYAMLDepth bounds nesting, aliases followed included; maxYAMLNodes
// bounds what aliases may expand to (a "billion laughs" file).
const (
	maxYAMLDepth = 64
	maxYAMLNodes = 100000
)

// parseYAML reads the first document of data. An empty document is null.
func parseYAML(data []byte) (*yamlNode, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return &yamlNode{kind: yamlNull, line: 1}, nil
	}
	c := yamlConverter{budget: maxYAMLNodes}
	return c.convert(doc.Content[0], 0)
}

type yamlConverter struct{ budget int }

func (c *yamlConverter) convert(n *yaml.Node, depth int) (*yamlNode, error) {
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d levels", n.Line, maxYAMLDepth)
	}
	if c.budget--; c.budget < 0 {
		return nil, fmt.Errorf("line %d: aliases expand to more than %d nodes", n.Line, maxYAMLNodes)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return c.convert(n.Alias, depth+1)
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return &yamlNode{kind: yamlNull, line: n.Line}, nil
		}
		return &yamlNode{kind: yamlScalar, value: n.Value, line: n.Line}, nil
	case yaml.SequenceNode:
		out := &yamlNode{kind: yamlSeq, line: n.Line}
		for _, it := range n.Content {
			v, err := c.convert(it, depth+1)
			if err != nil {
				return nil, err
			}
			out.items = append(out.items, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := &yamlNode{kind: yamlMap, line: n.Line, vals: map[string]*yamlNode{}}
		if err := c.mapping(out, n, depth, false); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// mapping adds n's pairs to out. Pairs of a merge key (<<) come in
// underneath: a key the mapping sets itself wins, as YAML says.
func (c *yamlConverter) mapping(out *yamlNode, n *yaml.Node, depth int, merged bool) error {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: a mapping key that is not a plain value", k.Line)
		}
		if _, dup := out.vals[k.Value]; dup {
			if merged {
				continue
			}
			return fmt.Errorf("line %d: key %q appears twice", k.Line, k.Value)
		}
		val, err := c.convert(v, depth+1)
		if err != nil {
			return err
		}
		out.keys = append(out.keys, k.Value)
		out.vals[k.Value] = val
	}
	for _, m := range merges {
		if err := c.merge(out, m, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// merge brings in a merge key's value: a mapping, or a list of them.
func (c *yamlConverter) merge(out *yamlNode, m *yaml.Node, depth int) error {
	if depth > maxYAMLDepth {
		return fmt.Errorf("line %d: nested deeper than %d levels", m.Line, maxYAMLDepth)
	}
	switch {
	case m.Kind == yaml.AliasNode:
		return c.merge(out, m.Alias, depth+1)
	case m.Kind == yaml.MappingNode:
		return c.mapping(out, m, depth, true)
	case m.Kind == yaml.SequenceNode:
		for _, it := range m.Content {
			if err := c.merge(out, it, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: a merge key (<<) takes a mapping or a list of them", m.Line)
}
