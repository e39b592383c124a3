package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// progress shows bytes, rate and ETA on a terminal and nothing when the
// output is piped or redirected.
type progress struct {
	out   io.Writer // nil when not a terminal: nothing is drawn
	name  string
	total int64
	n     int64
	start time.Time
	last  time.Time
}

func newProgressOn(out *os.File, total int64, name string) progress {
	p := progress{name: name, total: total, start: time.Now()}
	if isTerminal(out) {
		p.out = out
	}
	return p
}

// isTerminal asks the tty driver, so that /dev/null (also a character
// device) counts as redirected.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// newProgress counts what is read from r on stderr's progress line.
func newProgress(r io.Reader, total int64, name string, stderr *os.File) *progressReader {
	return &progressReader{r: r, p: newProgressOn(stderr, total, name)}
}

// newProgressWriter counts what is written to w on stderr's progress line.
func newProgressWriter(w io.Writer, total int64, name string, stderr *os.File) *progressWriter {
	return &progressWriter{w: w, p: newProgressOn(stderr, total, name)}
}

type progressReader struct {
	r io.Reader
	p progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(n)
	return n, err
}

func (pr *progressReader) done() { pr.p.finish() }

type progressWriter struct {
	w io.Writer
	p progress
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.add(n)
	return n, err
}

func (pw *progressWriter) done() { pw.p.finish() }

func (p *progress) add(n int) {
	p.n += int64(n)
	if p.out == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	fmt.Fprintf(p.out, "\r%s\033[K", progressLine(p.name, p.n, p.total, time.Since(p.start)))
}

// progressLine is one state of the line: name, percent, bytes done of the
// total, the mean rate so far and the time left at that rate.
func progressLine(name string, n, total int64, elapsed time.Duration) string {
	rate := float64(n) / max(elapsed.Seconds(), 1e-3)
	eta := "--"
	switch {
	case total <= n:
		eta = "0s"
	case rate > 0:
		eta = time.Duration(float64(total-n) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = float64(n) * 100 / float64(total)
	}
	return fmt.Sprintf("%s %5.1f%% %s/%s %s/s ETA %s", name, pct, human(n), human(total), human(int64(rate)), eta)
}

func (p *progress) finish() {
	if p.out != nil && !p.last.IsZero() {
		p.draw()
		fmt.Fprintln(p.out)
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
