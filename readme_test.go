package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the README's generated mount flag table")

const (
	flagTableStart = "<!-- mount flags: generated from the flag set by TestREADMEMountFlags (go test -run TestREADMEMountFlags . -update-readme) -->\n"
	flagTableEnd   = "<!-- end of mount flags -->\n"
)

// mountFlagTable is the README's table of mount's flags, made from the
// flag set itself: name, -o form, default and help.
func mountFlagTable() string {
	fl := flagSet("mount")
	var mf mountFlags
	mf.register(fl)
	var b strings.Builder
	b.WriteString("| flag | `-o` form | default | what |\n|---|---|---|---|\n")
	fl.VisitAll(func(f *pflag.Flag) {
		name := "`--" + f.Name + "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		opt := "`" + optionName(f.Name) + "`"
		switch {
		case notOptions[f.Name]:
			opt = ""
		case f.Value.Type() != "bool":
			opt = "`" + optionName(f.Name) + "=`"
		}
		def := f.DefValue
		switch {
		case def == "" || def == "[]" || def == "false" || def == "0s" && f.Name == "network-timeout":
			def = ""
		case f.Value.Type() == "bytes":
			n, _ := strconv.ParseInt(def, 10, 64)
			def = "`" + sizeString(n) + "`"
		default:
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, opt, def, strings.ReplaceAll(f.Usage, "|", `\|`))
	})
	return b.String()
}

// sizeString writes a size the way parseSize reads it, in the largest
// unit that divides it.
func sizeString(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// TestREADMEMountFlags checks that the README lists every flag of mount,
// with its -o form, as the flag set has them.
func TestREADMEMountFlags(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(readme, []byte(flagTableStart))
	end := bytes.Index(readme, []byte(flagTableEnd))
	if start < 0 || end < start {
		t.Fatalf("README.md lacks the markers of the mount flag table:\n%s...\n%s", flagTableStart, flagTableEnd)
	}
	start += len(flagTableStart)
	want := mountFlagTable()
	if string(readme[start:end]) == want {
		return
	}
	if *updateREADME {
		out := append(append(append([]byte{}, readme[:start]...), want...), readme[end:]...)
		if err := os.WriteFile("README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the README's mount flag table differs from the flag set; run go test -run TestREADMEMountFlags . -update-readme\nwant:\n%s", want)
}
