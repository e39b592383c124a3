package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sys/unix"
)

// put and get show one progress bar per file (bytes, rate, time left) on a
// terminal, drawn by schollz/progressbar, and nothing when stderr is piped
// or redirected.

// newBar returns a bar for one file on out, or nil when out is not a
// terminal.
func newBar(out *os.File, total int64, name string) *progressbar.ProgressBar {
	if !isTerminal(out) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
	)
}

// isTerminal asks the tty driver, so that /dev/null (also a character
// device) counts as redirected.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressReader counts what is read from a file on its bar. It seeks as
// the file does, so an upload sent again from the start (see fdfs's
// exchange) is counted again from there.
type progressReader struct {
	r   io.ReadSeeker
	bar *progressbar.ProgressBar // nil: nothing is drawn
}

// newProgress counts what is read from r on a bar on stderr.
func newProgress(r io.ReadSeeker, total int64, name string, stderr *os.File) *progressReader {
	return &progressReader{r: r, bar: newBar(stderr, total, name)}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.bar != nil {
		p.bar.Add(n)
	}
	return n, err
}

func (p *progressReader) Seek(off int64, whence int) (int64, error) {
	pos, err := p.r.Seek(off, whence)
	if err == nil && p.bar != nil {
		p.bar.Set64(pos)
	}
	return pos, err
}

func (p *progressReader) done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// progressWriter counts what is written to w on its bar.
type progressWriter struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

// newProgressWriter counts what is written to w on a bar on stderr.
func newProgressWriter(w io.Writer, total int64, name string, stderr *os.File) *progressWriter {
	return &progressWriter{w: w, bar: newBar(stderr, total, name)}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if p.bar != nil {
		p.bar.Add(n)
	}
	return n, err
}

func (p *progressWriter) done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
