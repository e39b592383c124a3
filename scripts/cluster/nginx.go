package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// nginxDirective is one directive of an nginx configuration: a name, its
// arguments, and for block directives (http, server, location) the block.
type nginxDirective struct {
	name     string
	args     []string
	block    []nginxDirective
	hasBlock bool
	line     int
}

// maxNginxDepth bounds block nesting; real configurations nest a handful
// of levels, and the bound keeps a hostile file from exhausting the stack.
const maxNginxDepth = 32

type nginxToken struct {
	text   string
	quoted bool // a quoted word is never punctuation, even if it reads "{"
	line   int
}

// parseNginx reads an nginx configuration into its directive tree.
func parseNginx(data []byte) ([]nginxDirective, error) {
	tokens, err := tokenizeNginx(string(data))
	if err != nil {
		return nil, err
	}
	p := nginxParser{tokens: tokens}
	directives, err := p.parseBlock(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.tokens) {
		return nil, fmt.Errorf("line %d: unexpected \"}\"", p.tokens[p.pos].line)
	}
	return directives, nil
}

func tokenizeNginx(s string) ([]nginxToken, error) {
	var tokens []nginxToken
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			tokens = append(tokens, nginxToken{text: string(c), line: line})
			i++
		case c == '"' || c == '\'':
			start := line
			var b strings.Builder
			i++
			for ; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				if s[i] == '\n' {
					line++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("line %d: unterminated quoted string", start)
			}
			i++
			tokens = append(tokens, nginxToken{text: b.String(), quoted: true, line: start})
		default:
			start := i
			for i < len(s) && !strings.ContainsRune(" \t\r\n;{}\"'", rune(s[i])) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				i++
			}
			tokens = append(tokens, nginxToken{text: s[start:i], line: line})
		}
	}
	return tokens, nil
}

type nginxParser struct {
	tokens []nginxToken
	pos    int
}

func (p *nginxParser) punct(text string) bool {
	t := p.tokens[p.pos]
	return !t.quoted && t.text == text
}

// parseBlock reads directives up to a closing brace or the end of input,
// leaving the brace for the caller.
func (p *nginxParser) parseBlock(depth int) ([]nginxDirective, error) {
	if depth > maxNginxDepth {
		return nil, fmt.Errorf("line %d: blocks nested deeper than %d", p.tokens[p.pos].line, maxNginxDepth)
	}
	var directives []nginxDirective
	for p.pos < len(p.tokens) && !p.punct("}") {
		if p.punct(";") || p.punct("{") {
			return nil, fmt.Errorf("line %d: %q without a directive name", p.tokens[p.pos].line, p.tokens[p.pos].text)
		}
		d := nginxDirective{name: p.tokens[p.pos].text, line: p.tokens[p.pos].line}
		p.pos++
		for p.pos < len(p.tokens) && !p.punct(";") && !p.punct("{") && !p.punct("}") {
			d.args = append(d.args, p.tokens[p.pos].text)
			p.pos++
		}
		if p.pos >= len(p.tokens) || p.punct("}") {
			return nil, fmt.Errorf("line %d: directive %q is not terminated by \";\"", d.line, d.name)
		}
		if p.punct("{") {
			p.pos++
			block, err := p.parseBlock(depth + 1)
			if err != nil {
				return nil, err
			}
			if p.pos >= len(p.tokens) {
				return nil, fmt.Errorf("line %d: block of %q is not closed", d.line, d.name)
			}
			d.block, d.hasBlock = block, true
		}
		p.pos++ // the ";" or the "}" closing the block
		directives = append(directives, d)
	}
	return directives, nil
}

// nginxServer is what the checks need of a server block.
type nginxServer struct {
	line      int
	ports     []int
	locations []nginxLocation
}

type nginxLocation struct {
	path       string // the URI prefix, without modifiers such as "~" or "^~"
	line       int
	fastdfsMod bool // the block hands requests to fastdfs-nginx-module
}

// nginxServers finds every server block, whether the file is a whole
// nginx.conf (server inside http) or a bare server block to be included.
func nginxServers(directives []nginxDirective) []nginxServer {
	var servers []nginxServer
	for _, d := range directives {
		switch {
		case d.name == "http" && d.hasBlock:
			servers = append(servers, nginxServers(d.block)...)
		case d.name == "server" && d.hasBlock:
			servers = append(servers, readServer(d))
		}
	}
	return servers
}

func readServer(d nginxDirective) nginxServer {
	s := nginxServer{line: d.line}
	for _, inner := range d.block {
		switch {
		case inner.name == "listen" && len(inner.args) > 0:
			if port, ok := listenPort(inner.args[0]); ok {
				s.ports = append(s.ports, port)
			}
		case inner.name == "location" && inner.hasBlock:
			s.locations = append(s.locations, readLocations(inner)...)
		}
	}
	return s
}

// readLocations flattens a location and the locations nested in it.
func readLocations(d nginxDirective) []nginxLocation {
	loc := nginxLocation{line: d.line}
	if len(d.args) > 0 {
		loc.path = locationPrefix(d.args)
	}
	var nested []nginxLocation
	for _, inner := range d.block {
		if inner.name == "ngx_fastdfs_module" {
			loc.fastdfsMod = true
		}
		if inner.name == "location" && inner.hasBlock {
			nested = append(nested, readLocations(inner)...)
		}
	}
	return append([]nginxLocation{loc}, nested...)
}

// locationPrefix takes "location [=|~|~*|^~] uri" arguments (the modifier
// may also be glued to the URI, as in "~/group1/M00") and returns the URI
// without modifier and without a trailing slash.
func locationPrefix(args []string) string {
	uri := args[len(args)-1]
	for _, mod := range []string{"^~", "~*", "~", "="} {
		if strings.HasPrefix(uri, mod) {
			uri = uri[len(mod):]
			break
		}
	}
	uri = strings.TrimPrefix(uri, "^")
	return strings.TrimRight(uri, "/")
}

// listenPort reads the port of "listen 8888", "listen *:8888",
// "listen 192.0.2.10:8888" or "listen [::]:8888"; unix sockets have none.
func listenPort(arg string) (int, bool) {
	if strings.HasPrefix(arg, "unix:") {
		return 0, false
	}
	portText := arg
	if _, p, err := net.SplitHostPort(arg); err == nil {
		portText = p
	} else if net.ParseIP(strings.Trim(arg, "[]")) != nil || arg == "*" {
		return 80, true // an address alone listens on nginx's default port
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return 0, false
	}
	return port, true
}
