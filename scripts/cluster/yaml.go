package main

import (
	"fmt"
	"strconv"
	"strings"
)

// This file reads the part of YAML that compose files are written in: block
// mappings and sequences, plain and quoted scalars, one-line flow sequences
// ([a, "b"]), literal and folded block scalars (| and >), and comments.
// Anchors, aliases, tags, flow mappings and multi-line flow collections are
// refused with a message naming the line, so --check never guesses. The kit
// adds no YAML library to the module for one file it writes itself.

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

type yamlLine struct {
	num    int
	indent int
	text   string // without indentation, comment and trailing blanks
	raw    string // the whole line, for block scalars
}

// maxYAMLDepth bounds nesting for the same reason as maxNginxDepth.
const maxYAMLDepth = 64

type yamlParser struct {
	lines []yamlLine
	pos   int
	depth int
}

func parseYAML(data []byte) (*yamlNode, error) {
	p := &yamlParser{}
	for i, raw := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		indent := len(raw) - len(strings.TrimLeft(raw, " "))
		text := strings.TrimRight(stripYAMLComment(raw[indent:]), " \t")
		if strings.HasPrefix(text, "\t") {
			return nil, fmt.Errorf("line %d: tabs cannot indent YAML", i+1)
		}
		if indent == 0 && (text == "---" || text == "...") {
			text = ""
		}
		p.lines = append(p.lines, yamlLine{num: i + 1, indent: indent, text: text, raw: raw})
	}
	root, err := p.parseNode(0)
	if err != nil {
		return nil, err
	}
	p.skipBlank()
	if p.pos < len(p.lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.pos].num)
	}
	return root, nil
}

// stripYAMLComment cuts a "#" comment that starts the text or follows a blank,
// outside quotes.
func stripYAMLComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			if i == 0 || strings.ContainsRune(" \t[,:-", rune(s[i-1])) {
				quote = c
			}
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

func (p *yamlParser) skipBlank() {
	for p.pos < len(p.lines) && p.lines[p.pos].text == "" {
		p.pos++
	}
}

func isSeqEntry(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

// parseNode reads the node whose lines are indented at least minIndent.
func (p *yamlParser) parseNode(minIndent int) (*yamlNode, error) {
	p.skipBlank()
	if p.pos >= len(p.lines) || p.lines[p.pos].indent < minIndent {
		return &yamlNode{kind: yamlNull}, nil
	}
	p.depth++
	defer func() { p.depth-- }()
	l := p.lines[p.pos]
	if p.depth > maxYAMLDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d", l.num, maxYAMLDepth)
	}
	switch {
	case isSeqEntry(l.text):
		return p.parseSeq(l.indent)
	case mappingColon(l.text) >= 0:
		return p.parseMap(l.indent)
	}
	p.pos++
	return p.inline(l.text, l)
}

func (p *yamlParser) parseMap(indent int) (*yamlNode, error) {
	n := &yamlNode{kind: yamlMap, vals: map[string]*yamlNode{}, line: p.lines[p.pos].num}
	for {
		p.skipBlank()
		if p.pos >= len(p.lines) || p.lines[p.pos].indent < indent {
			return n, nil
		}
		l := p.lines[p.pos]
		if l.indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", l.num)
		}
		colon := mappingColon(l.text)
		if colon < 0 {
			if isSeqEntry(l.text) {
				return nil, fmt.Errorf("line %d: a list entry where a key was expected", l.num)
			}
			return nil, fmt.Errorf("line %d: %q is not \"key: value\"", l.num, l.text)
		}
		key, err := yamlScalarText(strings.TrimSpace(l.text[:colon]), l.num)
		if err != nil {
			return nil, err
		}
		if _, dup := n.vals[key]; dup {
			return nil, fmt.Errorf("line %d: key %q appears twice", l.num, key)
		}
		rest := strings.TrimSpace(l.text[colon+1:])
		p.pos++
		var value *yamlNode
		switch {
		case rest != "":
			value, err = p.inline(rest, l)
		default:
			// A sequence may sit at the same indentation as its key.
			p.skipBlank()
			if p.pos < len(p.lines) && p.lines[p.pos].indent == indent && isSeqEntry(p.lines[p.pos].text) {
				value, err = p.parseSeq(indent)
			} else {
				value, err = p.parseNode(indent + 1)
			}
		}
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, key)
		n.vals[key] = value
	}
}

func (p *yamlParser) parseSeq(indent int) (*yamlNode, error) {
	n := &yamlNode{kind: yamlSeq, line: p.lines[p.pos].num}
	for {
		p.skipBlank()
		if p.pos >= len(p.lines) || p.lines[p.pos].indent != indent || !isSeqEntry(p.lines[p.pos].text) {
			if p.pos < len(p.lines) && p.lines[p.pos].indent > indent {
				return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.pos].num)
			}
			return n, nil
		}
		l := p.lines[p.pos]
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		var item *yamlNode
		var err error
		switch {
		case rest == "":
			p.pos++
			item, err = p.parseNode(indent + 1)
		case isSeqEntry(rest) || mappingColon(rest) >= 0:
			// "- key: value" opens a mapping (or "- - x" a sequence) whose
			// column is that of the text after the dash: re-read this line
			// as if it started there.
			p.lines[p.pos].indent = indent + len(l.text) - len(rest)
			p.lines[p.pos].text = rest
			item, err = p.parseNode(p.lines[p.pos].indent)
		default:
			p.pos++
			item, err = p.inline(rest, l)
		}
		if err != nil {
			return nil, err
		}
		n.items = append(n.items, item)
	}
}

// mappingColon finds the ": " (or final ":") that ends a mapping key, outside
// quotes and flow brackets; -1 when the text is not "key: value".
func mappingColon(text string) int {
	if strings.HasPrefix(text, "[") || strings.HasPrefix(text, "{") {
		return -1
	}
	i := 0
	if text != "" && (text[0] == '"' || text[0] == '\'') {
		end := closingQuote(text)
		if end < 0 {
			return -1
		}
		i = end + 1
	}
	for ; i < len(text); i++ {
		if text[i] == ':' && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\t') {
			return i
		}
	}
	return -1
}

// closingQuote returns the index of the quote closing the one at text[0].
func closingQuote(text string) int {
	q := text[0]
	for i := 1; i < len(text); i++ {
		switch {
		case q == '"' && text[i] == '\\':
			i++
		case text[i] == q && q == '\'' && i+1 < len(text) && text[i+1] == '\'':
			i++
		case text[i] == q:
			return i
		}
	}
	return -1
}

// inline reads a value written after "key:" or "-": a scalar, a one-line flow
// sequence, or the indicator of a block scalar on the following lines.
func (p *yamlParser) inline(text string, l yamlLine) (*yamlNode, error) {
	switch text[0] {
	case '[':
		return flowSeq(text, l.num)
	case '{':
		if strings.TrimSpace(text[1:]) == "}" {
			return &yamlNode{kind: yamlMap, vals: map[string]*yamlNode{}, line: l.num}, nil
		}
		return nil, fmt.Errorf("line %d: flow mappings ({...}) are not read by --check; write the mapping as a block", l.num)
	case '|', '>':
		return p.blockScalar(text, l)
	case '&', '*', '!':
		return nil, fmt.Errorf("line %d: anchors, aliases and tags are not read by --check", l.num)
	}
	s, err := yamlScalarText(text, l.num)
	if err != nil {
		return nil, err
	}
	return &yamlNode{kind: yamlScalar, value: s, line: l.num}, nil
}

func flowSeq(text string, line int) (*yamlNode, error) {
	if !strings.HasSuffix(text, "]") {
		return nil, fmt.Errorf("line %d: a flow sequence must close on its own line", line)
	}
	n := &yamlNode{kind: yamlSeq, line: line}
	body := strings.TrimSpace(text[1 : len(text)-1])
	for body != "" {
		var item string
		if body[0] == '"' || body[0] == '\'' {
			end := closingQuote(body)
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated quoted string", line)
			}
			item, body = body[:end+1], strings.TrimSpace(body[end+1:])
		} else {
			end := strings.IndexByte(body, ',')
			if end < 0 {
				end = len(body)
			}
			item, body = strings.TrimSpace(body[:end]), body[end:]
		}
		if strings.ContainsAny(item[:1], "[{") {
			return nil, fmt.Errorf("line %d: nested flow collections are not read by --check", line)
		}
		s, err := yamlScalarText(item, line)
		if err != nil {
			return nil, err
		}
		n.items = append(n.items, &yamlNode{kind: yamlScalar, value: s, line: line})
		if body != "" {
			if body[0] != ',' {
				return nil, fmt.Errorf("line %d: expected \",\" in flow sequence", line)
			}
			body = strings.TrimSpace(body[1:])
		}
	}
	return n, nil
}

// blockScalar reads "|" or ">" (with an optional "-" or "+" chomping
// indicator) and the more-indented lines after it.
func (p *yamlParser) blockScalar(indicator string, l yamlLine) (*yamlNode, error) {
	style, chomp := indicator[0], ""
	if len(indicator) > 1 {
		chomp = indicator[1:]
	}
	if chomp != "" && chomp != "-" && chomp != "+" {
		return nil, fmt.Errorf("line %d: block scalar indicator %q is not read by --check", l.num, indicator)
	}
	var lines []string
	contentIndent := -1
	for p.pos < len(p.lines) {
		next := p.lines[p.pos]
		if strings.TrimSpace(next.raw) == "" {
			lines = append(lines, "")
			p.pos++
			continue
		}
		if next.indent <= l.indent || (contentIndent >= 0 && next.indent < contentIndent) {
			break
		}
		if contentIndent < 0 {
			contentIndent = next.indent
		}
		lines = append(lines, next.raw[contentIndent:])
		p.pos++
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" && chomp != "+" {
		lines = lines[:len(lines)-1]
	}
	sep := "\n"
	if style == '>' {
		sep = " "
	}
	value := strings.Join(lines, sep)
	if chomp != "-" && value != "" {
		value += "\n"
	}
	return &yamlNode{kind: yamlScalar, value: value, line: l.num}, nil
}

// yamlScalarText unquotes a single-line scalar.
func yamlScalarText(s string, line int) (string, error) {
	if s == "" {
		return "", nil
	}
	switch s[0] {
	case '"':
		if closingQuote(s) != len(s)-1 {
			return "", fmt.Errorf("line %d: unterminated or trailing text after quoted string %s", line, s)
		}
		v, err := strconv.Unquote(s)
		if err != nil {
			return "", fmt.Errorf("line %d: cannot read quoted string %s: %v", line, s, err)
		}
		return v, nil
	case '\'':
		if closingQuote(s) != len(s)-1 {
			return "", fmt.Errorf("line %d: unterminated or trailing text after quoted string %s", line, s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	}
	return s, nil
}
