package fs

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// Metrics are the FUSE-side Prometheus metrics of a mount: requests and
// their latency by FUSE operation, failures by errno, and the data that
// crossed to FastDFS. They are kept outside the nodes: Instrument wraps
// the raw file system that go-fuse serves and Backend wraps the FastDFS
// side, so no node method knows about them.
type Metrics struct {
	ops       *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	uploading prometheus.Gauge
	uploaded  prometheus.Counter
	fetched   prometheus.Counter
	opens     *prometheus.CounterVec
}

// NewMetrics registers the mount's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fdfsfs_fuse_ops_total", Help: "FUSE requests answered, by operation.",
		}, []string{"op"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fdfsfs_fuse_op_duration_seconds", Help: "Time to answer a FUSE request, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs .. 26s
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fdfsfs_fuse_errors_total", Help: "FUSE requests answered with an error, by operation and errno.",
		}, []string{"op", "errno"}),
		uploading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fdfsfs_uploads_in_flight", Help: "Uploads and modifies to FastDFS under way.",
		}),
		uploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fdfsfs_uploaded_bytes_total", Help: "File content bytes sent to FastDFS (uploads and modifies).",
		}),
		fetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fdfsfs_downloaded_bytes_total", Help: "File content bytes downloaded from FastDFS.",
		}),
		opens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fdfsfs_fuse_opens_total", Help: "Files opened, by how the kernel reads them: page_cache, direct_io, passthrough (the block cache's file), passthrough_direct_io (a passthrough open whose reads and writes the mount serves).",
		}, []string{"mode"}),
	}
	reg.MustRegister(m.ops, m.latency, m.errors, m.uploading, m.uploaded, m.fetched, m.opens)
	return m
}

// done records one FUSE request that started at start and answered st.
func (m *Metrics) done(op string, start time.Time, st fuse.Status) fuse.Status {
	m.ops.WithLabelValues(op).Inc()
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if st != fuse.OK {
		name := unix.ErrnoName(syscall.Errno(st))
		if name == "" {
			name = st.String()
		}
		m.errors.WithLabelValues(op, name).Inc()
	}
	return st
}

// Instrument wraps the raw file system go-fuse serves (fusefs.NewNodeFS)
// so that every request is counted and timed.
func (m *Metrics) Instrument(raw fuse.RawFileSystem) fuse.RawFileSystem {
	return meteredFS{raw, m}
}

// meteredFS times the requests that matter to users; the rest (locks,
// ioctl, forget, init) go straight through the embedded file system.
// In `m.done(op, time.Now(), call)` the clock is read before the call:
// Go evaluates operands left to right.
type meteredFS struct {
	fuse.RawFileSystem
	m *Metrics
}

type cancel = <-chan struct{}

func (r meteredFS) Lookup(c cancel, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return r.m.done("lookup", time.Now(), r.RawFileSystem.Lookup(c, h, name, out))
}

func (r meteredFS) GetAttr(c cancel, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return r.m.done("getattr", time.Now(), r.RawFileSystem.GetAttr(c, in, out))
}

func (r meteredFS) SetAttr(c cancel, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return r.m.done("setattr", time.Now(), r.RawFileSystem.SetAttr(c, in, out))
}

func (r meteredFS) Statx(c cancel, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	return r.m.done("statx", time.Now(), r.RawFileSystem.Statx(c, in, out))
}

func (r meteredFS) Mknod(c cancel, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.m.done("mknod", time.Now(), r.RawFileSystem.Mknod(c, in, name, out))
}

func (r meteredFS) Mkdir(c cancel, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.m.done("mkdir", time.Now(), r.RawFileSystem.Mkdir(c, in, name, out))
}

func (r meteredFS) Unlink(c cancel, h *fuse.InHeader, name string) fuse.Status {
	return r.m.done("unlink", time.Now(), r.RawFileSystem.Unlink(c, h, name))
}

func (r meteredFS) Rmdir(c cancel, h *fuse.InHeader, name string) fuse.Status {
	return r.m.done("rmdir", time.Now(), r.RawFileSystem.Rmdir(c, h, name))
}

func (r meteredFS) Rename(c cancel, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	return r.m.done("rename", time.Now(), r.RawFileSystem.Rename(c, in, oldName, newName))
}

func (r meteredFS) Link(c cancel, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.m.done("link", time.Now(), r.RawFileSystem.Link(c, in, name, out))
}

func (r meteredFS) Symlink(c cancel, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return r.m.done("symlink", time.Now(), r.RawFileSystem.Symlink(c, h, target, name, out))
}

func (r meteredFS) Readlink(c cancel, h *fuse.InHeader) ([]byte, fuse.Status) {
	start := time.Now()
	out, st := r.RawFileSystem.Readlink(c, h)
	return out, r.m.done("readlink", start, st)
}

func (r meteredFS) Access(c cancel, in *fuse.AccessIn) fuse.Status {
	return r.m.done("access", time.Now(), r.RawFileSystem.Access(c, in))
}

func (r meteredFS) GetXAttr(c cancel, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := r.RawFileSystem.GetXAttr(c, h, attr, dest)
	return n, r.m.done("getxattr", start, st)
}

func (r meteredFS) ListXAttr(c cancel, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := r.RawFileSystem.ListXAttr(c, h, dest)
	return n, r.m.done("listxattr", start, st)
}

func (r meteredFS) SetXAttr(c cancel, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return r.m.done("setxattr", time.Now(), r.RawFileSystem.SetXAttr(c, in, attr, data))
}

func (r meteredFS) RemoveXAttr(c cancel, h *fuse.InHeader, attr string) fuse.Status {
	return r.m.done("removexattr", time.Now(), r.RawFileSystem.RemoveXAttr(c, h, attr))
}

func (r meteredFS) Create(c cancel, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return r.m.done("create", time.Now(), r.RawFileSystem.Create(c, in, name, out))
}

func (r meteredFS) Open(c cancel, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := r.m.done("open", time.Now(), r.RawFileSystem.Open(c, in, out))
	if st == fuse.OK {
		r.m.opens.WithLabelValues(openMode(out.OpenFlags)).Inc()
	}
	return st
}

// openMode names how the kernel reads a file opened with flags.
func openMode(flags uint32) string {
	switch pt, direct := flags&fuse.FOPEN_PASSTHROUGH != 0, flags&fuse.FOPEN_DIRECT_IO != 0; {
	case pt && direct:
		return "passthrough_direct_io"
	case pt:
		return "passthrough"
	case direct:
		return "direct_io"
	default:
		return "page_cache"
	}
}

func (r meteredFS) Read(c cancel, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	start := time.Now()
	res, st := r.RawFileSystem.Read(c, in, buf)
	return res, r.m.done("read", start, st)
}

func (r meteredFS) Write(c cancel, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := r.RawFileSystem.Write(c, in, data)
	return n, r.m.done("write", start, st)
}

func (r meteredFS) Writev(c cancel, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := r.RawFileSystem.Writev(c, in, data)
	if st == fuse.ENOSYS { // go-fuse falls back to Write, which counts itself
		return n, st
	}
	return n, r.m.done("write", start, st)
}

func (r meteredFS) CopyFileRange(c cancel, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	start := time.Now()
	n, st := r.RawFileSystem.CopyFileRange(c, in)
	return n, r.m.done("copy_file_range", start, st)
}

func (r meteredFS) Lseek(c cancel, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return r.m.done("lseek", time.Now(), r.RawFileSystem.Lseek(c, in, out))
}

func (r meteredFS) Release(c cancel, in *fuse.ReleaseIn) {
	start := time.Now()
	r.RawFileSystem.Release(c, in)
	r.m.done("release", start, fuse.OK)
}

func (r meteredFS) Flush(c cancel, in *fuse.FlushIn) fuse.Status {
	return r.m.done("flush", time.Now(), r.RawFileSystem.Flush(c, in))
}

func (r meteredFS) Fsync(c cancel, in *fuse.FsyncIn) fuse.Status {
	return r.m.done("fsync", time.Now(), r.RawFileSystem.Fsync(c, in))
}

func (r meteredFS) Fallocate(c cancel, in *fuse.FallocateIn) fuse.Status {
	return r.m.done("fallocate", time.Now(), r.RawFileSystem.Fallocate(c, in))
}

func (r meteredFS) OpenDir(c cancel, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return r.m.done("opendir", time.Now(), r.RawFileSystem.OpenDir(c, in, out))
}

func (r meteredFS) ReadDir(c cancel, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.m.done("readdir", time.Now(), r.RawFileSystem.ReadDir(c, in, out))
}

func (r meteredFS) ReadDirPlus(c cancel, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.m.done("readdirplus", time.Now(), r.RawFileSystem.ReadDirPlus(c, in, out))
}

func (r meteredFS) ReleaseDir(in *fuse.ReleaseIn) {
	start := time.Now()
	r.RawFileSystem.ReleaseDir(in)
	r.m.done("releasedir", start, fuse.OK)
}

func (r meteredFS) StatFs(c cancel, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return r.m.done("statfs", time.Now(), r.RawFileSystem.StatFs(c, h, out))
}

// Backend wraps b so that the bytes sent to and read from FastDFS, and the
// uploads under way, are counted.
func (m *Metrics) Backend(b Backend) Backend { return meteredBackend{b, m} }

type meteredBackend struct {
	Backend
	m *Metrics
}

func (b meteredBackend) Upload(ctx context.Context, group, ext string, r io.Reader, size int64, appender bool) (string, error) {
	b.m.uploading.Inc()
	defer b.m.uploading.Dec()
	return b.Backend.Upload(ctx, group, ext, countingReader{r, b.m.uploaded}, size, appender)
}

func (b meteredBackend) Modify(ctx context.Context, fileID string, off int64, r io.Reader, size int64) error {
	b.m.uploading.Inc()
	defer b.m.uploading.Dec()
	return b.Backend.Modify(ctx, fileID, off, countingReader{r, b.m.uploaded}, size)
}

func (b meteredBackend) Download(ctx context.Context, fileID string, off, length int64, w io.Writer) (int64, error) {
	n, err := b.Backend.Download(ctx, fileID, off, length, w)
	b.m.fetched.Add(float64(n))
	return n, err
}

// countingReader counts what is read through it: the bytes that really
// went out, not the size asked for.
type countingReader struct {
	r io.Reader
	c prometheus.Counter
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.c.Add(float64(n))
	return n, err
}
