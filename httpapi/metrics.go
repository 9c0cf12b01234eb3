package httpapi

import (
	"maps"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/internal/buildinfo"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are kvd's Prometheus series, on a registry of their own (so
// nothing else, protoactor included, adds series unasked). Hooks feeds the
// actor-side series; Watch adds the per-database gauges.
type Metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	groupWrites   prometheus.Histogram
	commitLatency prometheus.Histogram
	expired       prometheus.Counter
	pruned        prometheus.Counter
	rescans       prometheus.Counter
	checkpointErr prometheus.Counter

	// series holds each route and status's children: WithLabelValues
	// hashes its labels and allocates on every call, three allocations a
	// request. Routes and statuses are few, so the map stays small, and
	// it is copied to add one: every request reads it without a lock
	// (a read lock's shared counter moved between the cores each time).
	mu     sync.Mutex // held to add a series
	series atomic.Pointer[map[seriesKey]requestSeries]
}

type seriesKey struct {
	route  string
	status int
}

type requestSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvd_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kvd_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. 3.3s
		}, []string{"route"}),
		groupWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kvd_group_commit_writes", Help: "Writes in one group commit, those refused in it (a failed CAS, say) included.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kvd_group_commit_seconds", Help: "Time to COMMIT one group.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvd_expired_keys_swept_total", Help: "Expired keys removed by the periodic sweep.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvd_history_rows_pruned_total", Help: "History rows removed by --history-max-age.",
		}),
		rescans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvd_dir_rescans_total", Help: "Directory-mode folder rescans (rebuild=true, table rollbacks).",
		}),
		checkpointErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvd_checkpoint_failures_total", Help: "Checkpoints that failed (a disk failing its writes or fsyncs): the log keeps their pages and grows.",
		}),
	}
	build := buildinfo.Read()
	buildInfo := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kvd_build_info", Help: "Always 1; its labels say which build of kvd is running.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion},
	}, func() float64 { return 1 })
	renewed := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "kvd_sqlite_connections_renewed_total", Help: "SQLite connections closed and opened afresh to give back the memory a large value made them take.",
	}, func() float64 { return float64(sqlitekv.ConnectionsRenewed()) })
	m.reg.MustRegister(buildInfo, renewed, m.requests, m.latency, m.groupWrites, m.commitLatency, m.expired, m.pruned, m.rescans, m.checkpointErr,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.series.Store(&map[seriesKey]requestSeries{})
	return m
}

// Watch exports the open databases of registry and their queue depths.
func (m *Metrics) Watch(registry *actors.Registry) {
	m.reg.MustRegister(registryCollector{registry})
}

// Register adds the metrics of another part of kvd (the cluster node's).
func (m *Metrics) Register(c prometheus.Collector) {
	m.reg.MustRegister(c)
}

// watchBodies exports how much of the body budget requests hold now. With
// Metrics shared by several servers (tests), the first one's gauge stays.
func (m *Metrics) watchBodies(inUse func() float64) {
	m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kvd_request_body_bytes", Help: "Bytes of request bodies held in memory now (see --max-body-memory).",
	}, inUse))
}

// watchWatches exports how many watches (streams and long polls) are
// open now: each holds a connection.
func (m *Metrics) watchWatches(open func() float64) {
	m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kvd_watches", Help: "Watches (GET .../watch) open now, streams and long polls.",
	}, open))
}

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Hooks returns the actor hooks that feed the group-commit, sweep and
// rescan series.
func (m *Metrics) Hooks() actors.Hooks {
	return actors.Hooks{
		Committed: func(n int, took time.Duration) {
			m.groupWrites.Observe(float64(n))
			m.commitLatency.Observe(took.Seconds())
		},
		Swept: func(r sqlitekv.SweepResult) {
			m.expired.Add(float64(r.Expired))
			m.pruned.Add(float64(r.Pruned))
		},
		Rescanned:        m.rescans.Inc,
		CheckpointFailed: m.checkpointErr.Inc,
	}
}

func (m *Metrics) observe(route string, status int, took time.Duration) {
	key := seriesKey{route, status}
	s, ok := (*m.series.Load())[key]
	if !ok {
		s = m.addSeries(key)
	}
	s.requests.Inc()
	s.latency.Observe(took.Seconds())
}

// addSeries makes key's series, in a copy of the map that replaces it.
func (m *Metrics) addSeries(key seriesKey) requestSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if s, ok := old[key]; ok { // added meanwhile
		return s
	}
	s := requestSeries{m.requests.WithLabelValues(key.route, strconv.Itoa(key.status)), m.latency.WithLabelValues(key.route)}
	series := maps.Clone(old)
	series[key] = s
	m.series.Store(&series)
	return s
}

// registryCollector reads the open databases and their queue depths at
// scrape time, so the hot path pays nothing for them.
type registryCollector struct{ r *actors.Registry }

var (
	openDesc  = prometheus.NewDesc("kvd_open_databases", "Databases open now.", nil, nil)
	queueDesc = prometheus.NewDesc("kvd_db_queue_depth", "Writes queued for a database's actor, by its name relative to its root.", []string{"db"}, nil)
	fileDesc  = prometheus.NewDesc("kvd_db_file_bytes", "Size of an open database's SQLite file (directory mode: its cache), by its name relative to its root.", []string{"db"}, nil)
	walDesc   = prometheus.NewDesc("kvd_db_wal_bytes", "Size of an open database's write-ahead log (its -wal file), by its name relative to its root.", []string{"db"}, nil)
)

func (c registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- openDesc
	ch <- queueDesc
	ch <- fileDesc
	ch <- walDesc
}

func (c registryCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(len(stats)))
	// Labelled by name, never the absolute path (anyone who reaches the
	// port reads /metrics). Two databases could share a name (outside/x.db
	// in two folders): their queues add up, since a series given twice
	// would fail the whole scrape.
	// The sizes are two stats a database, taken now: a WAL that keeps
	// growing says a reader holds back checkpoints.
	queued, file, wal := map[string]int64{}, map[string]int64{}, map[string]int64{}
	for _, s := range stats {
		queued[s.Name] += s.Queued
		file[s.Name] += fileSize(s.File)
		wal[s.Name] += fileSize(s.File + "-wal")
	}
	for name, n := range queued {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n), name)
		ch <- prometheus.MustNewConstMetric(fileDesc, prometheus.GaugeValue, float64(file[name]), name)
		ch <- prometheus.MustNewConstMetric(walDesc, prometheus.GaugeValue, float64(wal[name]), name)
	}
}

// fileSize is path's size, 0 when it is missing (no WAL between
// checkpoints on close, or a file removed behind kvd's back).
func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// metricMethod is method, or OTHER for one a client made up: they have no end.
func metricMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}

// statusRecorder remembers the status a handler wrote, and the route
// label routeKV found; body (if set) hears before the status goes out.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64 // of the body written (the access log's)
	route  string
	body   interface{ beforeAnswer(http.Header) }
}

// labelRoute tells ServeHTTP's recorder the request's route label.
func labelRoute(w http.ResponseWriter, label string) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.route = label
	}
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.answering()
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.answering()
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (a watch
// flushes each event and sets its write deadline).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) answering() {
	if w.body != nil {
		w.body.beforeAnswer(w.Header())
	}
}
