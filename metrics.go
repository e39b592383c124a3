package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"fdfsfs/cache"
	"fdfsfs/fdfs"
)

// fdfsMetrics are the FastDFS side of a mount's metrics, fed by the
// client's Observe hook.
type fdfsMetrics struct {
	took     *prometheus.HistogramVec
	failed   *prometheus.CounterVec
	sent     *prometheus.CounterVec
	received *prometheus.CounterVec
}

func newFdfsMetrics(reg prometheus.Registerer) *fdfsMetrics {
	m := &fdfsMetrics{
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fdfsfs_fdfs_command_duration_seconds", Help: "Time of one exchange with a tracker or storage, by FastDFS command.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9), // 0.5ms .. 33s
		}, []string{"command"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fdfsfs_fdfs_errors_total", Help: "Failed FastDFS exchanges, by command and status (the errno a server answered, or network/protocol).",
		}, []string{"command", "status"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fdfsfs_fdfs_sent_bytes_total", Help: "Bytes sent to FastDFS servers, headers included, by command.",
		}, []string{"command"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fdfsfs_fdfs_received_bytes_total", Help: "Bytes received from FastDFS servers, headers included, by command.",
		}, []string{"command"}),
	}
	reg.MustRegister(m.took, m.failed, m.sent, m.received)
	return m
}

// observe is an fdfs.Config.Observe hook.
func (m *fdfsMetrics) observe(cmd byte, _ string, took time.Duration, sent, received int64, err error) {
	name := fdfs.CmdName(cmd)
	m.took.WithLabelValues(name).Observe(took.Seconds())
	m.sent.WithLabelValues(name).Add(float64(sent))
	m.received.WithLabelValues(name).Add(float64(received))
	if err != nil {
		m.failed.WithLabelValues(name, fdfsStatus(err)).Inc()
	}
}

// fdfsStatus names an exchange's failure for a label.
func fdfsStatus(err error) string {
	var se *fdfs.StatusError
	switch {
	case errors.As(err, &se):
		if n := unix.ErrnoName(syscall.Errno(se.Status)); n != "" {
			return n
		}
		return fmt.Sprintf("%d", se.Status)
	case errors.Is(err, fdfs.ErrProtocol):
		return "protocol"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "network"
}

// openConnsGauge reports the client's open connections at scrape time.
func openConnsGauge(reg prometheus.Registerer, c *fdfs.Client) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fdfsfs_fdfs_open_connections", Help: "Connections to trackers and storages open now, idle or in use.",
	}, func() float64 { return float64(c.OpenConns()) }))
}

// cacheCollector reads the block cache's counters at scrape time.
type cacheCollector struct {
	c                                                                           *cache.Cache
	hits, misses, fetches, fetched, prefetches, evictions, skips, bytes, blocks *prometheus.Desc
}

func newCacheCollector(c *cache.Cache) *cacheCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &cacheCollector{
		c:          c,
		hits:       d("fdfsfs_cache_hits_total", "Block lookups by reads answered from the disk cache."),
		misses:     d("fdfsfs_cache_misses_total", "Block lookups by reads that needed a fetch (or joined one)."),
		fetches:    d("fdfsfs_cache_fetches_total", "Blocks fetched from FastDFS, by reads or readahead."),
		fetched:    d("fdfsfs_cache_fetched_bytes_total", "Bytes those fetches brought in."),
		prefetches: d("fdfsfs_cache_prefetches_total", "Fetches started by readahead."),
		evictions:  d("fdfsfs_cache_evictions_total", "Blocks dropped to stay under the cache size."),
		skips:      d("fdfsfs_cache_store_skips_total", "Fetched blocks not written to the cache disk because its write queue was full."),
		bytes:      d("fdfsfs_cache_bytes", "Bytes of blocks on disk now."),
		blocks:     d("fdfsfs_cache_blocks", "Blocks on disk now."),
	}
}

func (cc *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cc.hits, cc.misses, cc.fetches, cc.fetched, cc.prefetches, cc.evictions, cc.skips, cc.bytes, cc.blocks} {
		ch <- d
	}
}

func (cc *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := cc.c.Stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(cc.hits, s.Hits)
	counter(cc.misses, s.Misses)
	counter(cc.fetches, s.Fetches)
	counter(cc.fetched, s.FetchedBytes)
	counter(cc.prefetches, s.Prefetches)
	counter(cc.evictions, s.Evictions)
	counter(cc.skips, s.StoreSkips)
	gauge(cc.bytes, s.Bytes)
	gauge(cc.blocks, s.Blocks)
}

// newRegistry holds a mount's metrics with the Go runtime's and the
// process's own.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveMetrics listens on addr before the mount starts, so that a taken
// port fails the mount instead of leaving it unobservable, and serves
// /metrics until the returned stop is called.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { srv.Close() }, nil
}
