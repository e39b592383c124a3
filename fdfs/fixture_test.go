package fdfs

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureDir holds the frames captured from a real FastDFS V6.16.1 cluster.
const fixtureDir = "testdata/wire"

// streamedLength is the header length of an answer whose size is not known
// in advance (INFINITE_FILE_SIZE).
const streamedLength = int64(1) << 58

// frame is one captured message: its header and its body.
type frame struct {
	raw    []byte // header and body as captured
	header Header
	body   []byte
}

type fixture struct {
	name     string
	request  frame
	response frame
}

// loadFixture reads NN-name.hex: '#' comments, a "request" line and a
// "response" line, each followed by hex bytes.
func loadFixture(t testing.TB, name string) fixture {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(fixtureDir, name+"*.hex"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("fixture %s: found %v (%v)", name, matches, err)
	}
	f, err := os.Open(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fx := fixture{name: strings.TrimSuffix(filepath.Base(matches[0]), ".hex")}
	var cur *frame
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "request":
			cur = &fx.request
		case line == "response":
			cur = &fx.response
		case cur == nil:
			t.Fatalf("%s: bytes before a section: %q", fx.name, line)
		default:
			b, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
			if err != nil {
				t.Fatalf("%s: %q: %v", fx.name, line, err)
			}
			cur.raw = append(cur.raw, b...)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, fr := range []*frame{&fx.request, &fx.response} {
		h, err := DecodeHeader(fr.raw)
		if err != nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		fr.header, fr.body = h, fr.raw[HeaderSize:]
		// A streamed answer (command 26) says INFINITE_FILE_SIZE and
		// carries its real length in its last 8 bytes.
		if h.Length == streamedLength {
			continue
		}
		if int64(len(fr.body)) != h.Length {
			t.Fatalf("%s: header says %d body bytes, file has %d", fx.name, h.Length, len(fr.body))
		}
	}
	return fx
}

// allFixtureNames lists the captured files by their number prefix.
func allFixtureNames(t testing.TB) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(fixtureDir, "*.hex"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(m), ".hex"))
	}
	return names
}
