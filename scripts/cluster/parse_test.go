package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// dumpYAML prints a node compactly, for comparing parse results.
func dumpYAML(n *yamlNode) string {
	switch n.kind {
	case yamlScalar:
		return fmt.Sprintf("%q", n.value)
	case yamlMap:
		parts := make([]string, len(n.keys))
		for i, k := range n.keys {
			parts[i] = k + ":" + dumpYAML(n.vals[k])
		}
		return "{" + strings.Join(parts, " ") + "}"
	case yamlSeq:
		parts := make([]string, len(n.items))
		for i, it := range n.items {
			parts[i] = dumpYAML(it)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return "~"
}

func TestParseYAML(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"nested mapping", "a:\n  b: c\n  d: 'e f'\n", `{a:{b:"c" d:"e f"}}`},
		{"sequence indented under key", "a:\n  - x\n  - \"y: z\"\n", `{a:["x" "y: z"]}`},
		{"sequence at the key's indentation", "a:\n- x\n- y\nb: 1\n", `{a:["x" "y"] b:"1"}`},
		{"mappings in a sequence", "v:\n  - type: bind\n    source: ./a\n  - /b:/b\n", `{v:[{type:"bind" source:"./a"} "/b:/b"]}`},
		{"flow sequence", `c: ["sh", '-c', x y, "a,b"]` + "\n", `{c:["sh" "-c" "x y" "a,b"]}`},
		{"empty flow collections", "a: []\nb: {}\n", `{a:[] b:{}}`},
		{"comments and document marker", "---\n# top\na: b # trailing\nc: \"d # not a comment\"\n", `{a:"b" c:"d # not a comment"}`},
		{"literal block", "e: |\n  one\n   two\n\nf: g\n", `{e:"one\n two\n" f:"g"}`},
		{"folded block, stripped", "e: >-\n  one\n  two\n", `{e:"one two"}`},
		{"escapes", `a: "tab\there \"q\" \u00e9"` + "\n", `{a:"tab\there \"q\" é"}`},
		{"single quote doubling", "a: 'it''s'\n", `{a:"it's"}`},
		{"null value", "a:\nb: c\n", `{a:~ b:"c"}`},
		{"colon without space is not a key", "- ./x:/y:ro\n", `["./x:/y:ro"]`},
		{"quoted key", "\"a b\": c\n", `{a b:"c"}`},
		{"CRLF line ends", "a: b\r\nc: d\r\n", `{a:"b" c:"d"}`},
		{"flow mapping", "a: {b: c, d: [e]}\n", `{a:{b:"c" d:["e"]}}`},
		{"anchor and alias", "x: &v [a, b]\ny: *v\n", `{x:["a" "b"] y:["a" "b"]}`},
		{"merge key, own keys win", "base: &b {p: 1, q: 2}\ns:\n  <<: *b\n  q: 3\n", `{base:{p:"1" q:"2"} s:{q:"3" p:"1"}}`},
		{"tags", "a: !!str 1\n", `{a:"1"}`},
		{"empty document", "", `~`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := parseYAML([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpYAML(n); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseYAMLRefuses(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a: b\n  c: d\n", "line 2"},
		{"a: [b,\n  c\n", "line"},
		{"a: \"open\n", "line"},
		{"a: *ref\n", "unknown anchor"},
		{"a: b\na: c\n", "key \"a\" appears twice"},
		{"? [a]\n: b\n", "not a plain value"},
		{"a: {<<: x}\n", "merge key"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseYAML([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseYAMLDepthBound(t *testing.T) {
	var b strings.Builder
	for i := range maxYAMLDepth + 5 {
		b.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	if _, err := parseYAML([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("error %v, want the depth bound", err)
	}
}

// TestParseYAMLAliasBound: aliases that expand exponentially are refused
// instead of expanded.
func TestParseYAMLAliasBound(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	if _, err := parseYAML([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "expand to more than") {
		t.Errorf("error %v, want the alias bound", err)
	}
}

func TestParseNginx(t *testing.T) {
	conf := `
# comment { not a block }
events { worker_connections 64; }
http {
    server {
        listen [::]:8080 ipv6only=on;
        listen 192.0.2.10;
        listen unix:/run/n.sock;
        server_name "a b" 'c';
        location = /group1/M00 { ngx_fastdfs_module; }
        location ^~ /group1/M01/ {
            location /group1/M01/inner { ngx_fastdfs_module; }
        }
    }
}
server { listen *:9000; }
`
	directives, err := parseNginx([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	servers := nginxServers(directives)
	if len(servers) != 2 {
		t.Fatalf("%d servers, want 2", len(servers))
	}
	if !slices.Equal(servers[0].ports, []int{8080, 80}) || !slices.Equal(servers[1].ports, []int{9000}) {
		t.Errorf("ports %v and %v", servers[0].ports, servers[1].ports)
	}
	var got []string
	for _, loc := range servers[0].locations {
		got = append(got, fmt.Sprintf("%s:%v@%d", loc.path, loc.fastdfsMod, loc.line))
	}
	want := []string{"/group1/M00:true@10", "/group1/M01:false@11", "/group1/M01/inner:true@12"}
	if !slices.Equal(got, want) {
		t.Errorf("locations %v, want %v", got, want)
	}
	name := directives[1].block[0].block[3]
	if name.name != "server_name" || !slices.Equal(name.args, []string{"a b", "c"}) {
		t.Errorf("server_name %+v", name)
	}
}

func TestParseNginxRefuses(t *testing.T) {
	for _, in := range []string{"a \"b;\n", "{ }", "; a;", "a { b; ", "a b", "a; }"} {
		if _, err := parseNginx([]byte(in)); err == nil {
			t.Errorf("%q parsed without error", in)
		}
	}
	deep := strings.Repeat("a {", maxNginxDepth+2) + strings.Repeat("}", maxNginxDepth+2)
	if _, err := parseNginx([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestParseFDFSConf(t *testing.T) {
	conf := `# comment
  group_name =  group1  
tracker_server=192.0.2.10:22122
tracker_server = 192.0.2.11:22122
#include http.conf
store_path_count = 2
store_path0 = /a
store_path1 = /b
store_path2 = /c
bad line
= value
[group1]
group_name = other
port = x
`
	c := parseFDFSConf("s.conf", []byte(conf))
	if v, _ := c.get("group_name"); v != "group1" {
		t.Errorf("group_name %q: the [group1] section must not leak into the global one", v)
	}
	if got := c.all("tracker_server"); !slices.Equal(got, []string{"192.0.2.10:22122", "192.0.2.11:22122"}) {
		t.Errorf("tracker_server %q", got)
	}
	if !slices.Equal(c.includes, []string{"http.conf"}) {
		t.Errorf("includes %q", c.includes)
	}
	if got := c.storePaths(); !slices.Equal(got, []string{"/a", "/b"}) {
		t.Errorf("store paths %q", got)
	}
	if c.port("port") != 0 {
		t.Error("a missing global port read as a port")
	}
	var msgs []string
	for _, p := range c.problems {
		msgs = append(msgs, p.Msg)
	}
	want := []string{
		`line 10 "bad line" is not key = value; FastDFS ignores it`,
		"line 11 has a value but no key",
		"store_path2 is set but store_path_count = 2, so FastDFS ignores it",
		"port is missing",
	}
	if !slices.Equal(msgs, want) {
		t.Errorf("problems\n%q\nwant\n%q", msgs, want)
	}
	for _, v := range []string{"true", "Yes", "ON", "1"} {
		if !parseFDFSConf("", []byte("k = "+v)).boolValue("k", false) {
			t.Errorf("%q is not true", v)
		}
	}
	if parseFDFSConf("", []byte("k = no")).boolValue("k", true) {
		t.Error(`"no" is true`)
	}
}

// seedRendered adds every file of a rendered three-group layout to a fuzz
// corpus, for the parser that reads files of that kind.
func seedRendered(f *testing.F, match func(name string) bool) {
	l, err := PlanLayout(Options{HostIP: "192.0.2.10", Groups: 3, TrackerPort: 22122, StorageBasePort: 23000,
		HTTPBasePort: 8888, StorePaths: 2, BaseDir: "/data/fastdfs", Image: defaultImage, NginxPrefix: "/usr/local/nginx"})
	if err != nil {
		f.Fatal(err)
	}
	files, err := Render(l)
	if err != nil {
		f.Fatal(err)
	}
	for name, data := range files {
		if match(name) {
			f.Add(data)
		}
	}
}

func FuzzParseYAML(f *testing.F) {
	seedRendered(f, func(name string) bool { return name == composeFile })
	f.Add([]byte("a:\n- b: |\n    x\n  c: [d, 'e']\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if n, err := parseYAML(data); err == nil && n == nil {
			t.Fatal("nil node without error")
		}
		_, _ = parseCompose(data)
	})
}

func FuzzParseNginx(f *testing.F) {
	seedRendered(f, func(name string) bool { return strings.HasSuffix(name, nginxConfName) })
	f.Fuzz(func(t *testing.T, data []byte) {
		directives, err := parseNginx(data)
		if err == nil {
			nginxServers(directives)
		}
	})
}

func FuzzCheck(f *testing.F) {
	seedRendered(f, func(name string) bool { return strings.HasSuffix(name, ".conf") })
	f.Fuzz(func(t *testing.T, data []byte) {
		// Any bytes as any of the files: the checker reports, never panics.
		for _, name := range []string{"tracker/tracker.conf", "g/storage.conf", "g/mod_fastdfs.conf", "g/http.conf"} {
			Check(map[string][]byte{name: data, "g/nginx.conf": data, composeFile: data})
		}
	})
}
