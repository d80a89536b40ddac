package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	syncer "fieldsync/sync"
)

// metrics are the server's Prometheus collectors, on a registry of their own (so that two
// servers in one process never mix). They are always counted; they are served only on the
// separate listen address of --metrics (ServeMetrics), never on the API's port.
type metrics struct {
	reg       *prometheus.Registry
	pushes    *prometheus.CounterVec
	pulls     *prometheus.CounterVec
	mutations *prometheus.CounterVec
	group     prometheus.Histogram
	commit    prometheus.Histogram
	fanout    prometheus.Histogram
	logins    *prometheus.CounterVec
	requests  *prometheus.CounterVec
	http      *http.Server
	handlers  map[string]bool // "METHOD /path" of every route with a handler
	prefixes  map[string]bool // paths of every route and middleware
}

var _ syncer.Metrics = (*metrics)(nil)

// newMetrics registers the collectors; the gauges read the engine when scraped.
func newMetrics(e *syncer.Engine) *metrics {
	reg := prometheus.NewRegistry()
	f := promauto(reg)
	m := &metrics{
		reg: reg,
		pushes: f.counterVec("fieldsync_sync_pushes_total",
			"Pushes from devices (WebSocket and HTTP) by result: ok (judged; see the mutations), refused (the whole push), error.", "result"),
		pulls: f.counterVec("fieldsync_sync_pulls_total",
			"Pull requests from devices by result: ok, refused (e.g. checkpoint_expired), error.", "result"),
		mutations: f.counterVec("fieldsync_sync_mutations_total",
			"Pushed mutations by status (applied, merged, duplicate, rejected) and, for a rejection, its code.", "status", "code"),
		group: f.histogram("fieldsync_write_group_batches",
			"Batches committed together in one transaction of the write path (group commit).",
			[]float64{1, 2, 4, 8, 16, 32, 64}),
		commit: f.histogram("fieldsync_write_commit_seconds",
			"Time of one transaction of the write path, from begin to the answers.", prometheus.ExponentialBuckets(0.0005, 2, 14)),
		fanout: f.histogram("fieldsync_live_fanout_seconds",
			"From a commit being published to a live connection's changes being ready to send.", prometheus.ExponentialBuckets(0.0005, 2, 14)),
		logins: f.counterVec("fieldsync_logins_failed_total",
			"Failed logins by kind (web, device) and reason (bad_credentials, rate_limited).", "kind", "reason"),
		requests: f.counterVec("fieldsync_http_requests_total",
			"HTTP requests by route pattern (\"unmatched\" for no route), method and status.", "route", "method", "status"),
	}
	live := func(device bool) func() float64 {
		return func() float64 {
			d, o := e.Hub.Live()
			if device {
				return float64(d)
			}
			return float64(o)
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldsync_connected_devices", Help: "Live sync connections: technicians' devices and office feeds.",
			ConstLabels: prometheus.Labels{"kind": "device"}}, live(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldsync_connected_devices", Help: "Live sync connections: technicians' devices and office feeds.",
			ConstLabels: prometheus.Labels{"kind": "office"}}, live(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldsync_write_queue_depth", Help: "Batches waiting for the writer."},
			func() float64 { return float64(e.QueueDepth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fieldsync_blob_stored_bytes_total", Help: "Bytes of blobs (signatures, stamps, photos) stored since the start."},
			func() float64 {
				if e.Blobs == nil {
					return 0
				}
				return float64(e.Blobs.StoredBytes())
			}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// factory registers collectors on one registry.
type factory struct{ reg *prometheus.Registry }

func promauto(reg *prometheus.Registry) factory { return factory{reg} }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (m *metrics) Pushed(result string, results []syncer.Result) {
	m.pushes.WithLabelValues(result).Inc()
	for _, r := range results {
		m.mutations.WithLabelValues(r.Status, r.Code).Inc()
	}
}

func (m *metrics) Pulled(result string) { m.pulls.WithLabelValues(result).Inc() }

func (m *metrics) Committed(batches int, took time.Duration) {
	m.group.Observe(float64(batches))
	m.commit.Observe(took.Seconds())
}

func (m *metrics) Delivered(took time.Duration) { m.fanout.Observe(took.Seconds()) }

// httpMethods are the methods counted by name; any other is "other", so that a client
// cannot make new series.
var httpMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// loginRoutes are the routes whose 401 and 429 answers are failed logins.
var loginRoutes = map[string]string{"/api/v1/auth/login": "web", "/mobile/v1/auth/login": "device"}

// learnRoutes records the app's routes, so that a request is counted by a route pattern
// the app registered and never by its path (ids would make every request a new series).
func (m *metrics) learnRoutes(app *fiber.App) {
	m.handlers, m.prefixes = map[string]bool{}, map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		m.handlers[r.Method+" "+r.Path] = true
	}
	for _, r := range app.GetRoutes(false) {
		m.prefixes[r.Path] = true
	}
}

// request counts one answered HTTP request by its route: the pattern of the handler that
// answered, or of the group middleware that refused it first (a 401 before the route), or
// "unmatched" when no route took it (Fiber's own 404, err).
func (m *metrics) request(c *fiber.Ctx, err error) {
	status := c.Response().StatusCode()
	method := "other"
	if m := c.Method(); httpMethods[m] {
		method = strings.Clone(m) // Fiber reuses the buffer behind it
	}
	route := "unmatched"
	var fe *fiber.Error
	if r := c.Route(); r != nil && !(errors.As(err, &fe) && fe.Code == fiber.StatusNotFound) {
		switch {
		case m.handlers[r.Method+" "+r.Path]:
			route = r.Path
		case status != fiber.StatusNotFound && m.prefixes[r.Path]:
			route = r.Path
		}
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	if kind, ok := loginRoutes[route]; ok {
		switch status {
		case fiber.StatusUnauthorized:
			m.logins.WithLabelValues(kind, "bad_credentials").Inc()
		case fiber.StatusTooManyRequests:
			m.logins.WithLabelValues(kind, "rate_limited").Inc()
		}
	}
}

// ServeMetrics serves GET /metrics (Prometheus text format) on ln until Shutdown.
func (s *Server) ServeMetrics(ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.metrics.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	err := s.metrics.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// closeMetrics stops the metrics listener, if one was started.
func (m *metrics) close(ctx context.Context) {
	if m.http != nil {
		m.http.Shutdown(ctx)
	}
}
