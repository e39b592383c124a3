package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// copyThrough moves size bytes through a progress reader and writer that
// report on out, slowly enough for the line to be redrawn.
func copyThrough(t *testing.T, out *os.File, size int) {
	t.Helper()
	data := bytes.Repeat([]byte("x"), size)
	pr := newProgress(bytes.NewReader(data), int64(size), "up.bin", out)
	pw := newProgressWriter(io.Discard, int64(size), "down.bin", out)
	buf := make([]byte, size/4)
	for {
		n, err := pr.Read(buf)
		pw.Write(buf[:n])
		if err == io.EOF {
			break
		}
	}
	pr.done()
	pw.done()
}

func TestProgressQuietWhenPiped(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	copyThrough(t, w, 1<<20)
	w.Close()
	if out, _ := io.ReadAll(r); len(out) != 0 {
		t.Errorf("progress wrote %q to a pipe", out)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if isTerminal(devNull) {
		t.Error("/dev/null counts as a terminal")
	}
}

// openPTY returns both ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

func TestProgressOnTerminal(t *testing.T) {
	master, tty := openPTY(t)
	got := make(chan string, 1)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		for strings.Count(string(all), "\n") < 2 {
			n, err := master.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- string(all)
	}()
	copyThrough(t, tty, 1<<20)
	var out string
	select {
	case out = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no progress line on the terminal")
	}
	for _, want := range []string{"\rup.bin ", "\rdown.bin ", "100% |", "(1.0/1.0 MB, ", "B/s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
}
