package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// DefaultReadTimeout is the time a request body may take to arrive: 10 MiB
// at about 1.4 Mbit/s.
const DefaultReadTimeout = 60 * time.Second

// Config wires the server to the registry of databases.
type Config struct {
	Registry      *actors.Registry
	MaxValueBytes int64    // 0 means 10 MiB
	Tokens        *Tokens  // nil: no authentication
	Cluster       Cluster  // nil: kvd serves alone
	Metrics       *Metrics // required
	Logger        *slog.Logger

	// ReadHeaderTimeout bounds how long a client may take to send its
	// headers (slow-loris defence); 0 means 10s.
	ReadHeaderTimeout time.Duration

	// ReadTimeout bounds how long a request body may take to arrive,
	// from its handler's start; past it the request answers 408 and its
	// connection closes. 0 means 60s.
	ReadTimeout time.Duration

	// MaxConnections caps the client connections kept open (see
	// connLimiter); 0 means no cap.
	MaxConnections int

	// MaxBodyMemory bounds the request bodies held in memory at once,
	// across all requests; past it, a request with a body answers 503. 0
	// means 256 MiB or two of the largest batch bodies, whichever is more;
	// less than one batch body is raised to one, or it could never pass.
	MaxBodyMemory int64

	// TLS, when set, makes the server speak HTTPS only (see
	// Certificate.TLSConfig), with TLS 1.2 at least; nil is plain HTTP.
	TLS *tls.Config

	// MaxAnswerBytes bounds an answer that lists values (history, table
	// snapshot, diff, batch get, listings): past it the answer ends early
	// with a cursor to the rest. At least one item is always answered, so
	// a single item may exceed it. 0 means DefaultMaxAnswerBytes.
	MaxAnswerBytes int64

	// AccessLog logs one info line per request (--access-log); without
	// it that line is logged at debug level only.
	AccessLog bool

	// WatchHeartbeat is how often an idle watch stream gets a comment
	// line; 0 means DefaultWatchHeartbeat.
	WatchHeartbeat time.Duration

	// CORSOrigins are the web origins whose pages may call kvd from a
	// browser ("*": any); none means no CORS header is ever sent.
	CORSOrigins []string

	// MaxBackups bounds the backups being made or sent at once, each a
	// full copy of its database on that database's disk; past it a backup
	// answers 503. 0 means DefaultMaxBackups.
	MaxBackups int
}

// DefaultMaxBackups is Config.MaxBackups's default.
const DefaultMaxBackups = 2

// Server is kvd's HTTP server. It owns its listener: Listen binds (tests
// use 127.0.0.1:0 and ask Addr), Serve serves, Shutdown drains.
type Server struct {
	cfg      Config
	log      *slog.Logger
	router   *router
	metrics  http.Handler    // the Prometheus text of cfg.Metrics
	reserved map[string]bool // ReservedKeys
	srv      *http.Server
	ln       net.Listener

	cors       corsPolicy
	ready      atomic.Bool
	idPrefix   string
	idCounter  atomic.Uint64
	bodyBudget atomic.Int64 // bytes of request bodies that may still be read
	// answerMemory: bytes that large answers may still hold (answermemory.go)
	answerMemory atomic.Int64
	watches      atomic.Int64  // open now
	maxWatches   int           // see takeWatchSlot
	refusals     throttle      // the log lines of 503s (errors.go)
	backups      chan struct{} // a token per backup being made or sent (backup.go)

	// stopping ends when Shutdown begins: watch streams, which would
	// otherwise never finish, end then (stop ends it).
	stopping context.Context
	stop     context.CancelFunc
	streams  sync.WaitGroup // watch streams on hijacked connections
}

func New(cfg Config) *Server {
	if cfg.MaxValueBytes <= 0 {
		cfg.MaxValueBytes = sqlitekv.DefaultMaxValueBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.MaxAnswerBytes <= 0 {
		cfg.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WatchHeartbeat <= 0 {
		cfg.WatchHeartbeat = DefaultWatchHeartbeat
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = math.MaxInt
	}
	if cfg.MaxBodyMemory <= 0 {
		cfg.MaxBodyMemory = max(256<<20, 2*BatchBodyLimit(cfg.MaxValueBytes))
	}
	if cfg.MaxBackups <= 0 {
		cfg.MaxBackups = DefaultMaxBackups
	}
	cfg.MaxBodyMemory = max(cfg.MaxBodyMemory, BatchBodyLimit(cfg.MaxValueBytes))
	cfg.TLS = serverTLS(cfg.TLS)
	if cfg.Metrics == nil {
		// Made here, they would miss the actors' hooks, given when the
		// registry was: half the series would stay at zero unnoticed.
		panic("httpapi.New: Config.Metrics is required (NewMetrics, its Hooks in the registry's config, then Watch)")
	}
	var prefix [4]byte
	rand.Read(prefix[:])
	s := &Server{cfg: cfg, log: cfg.Logger, idPrefix: hex.EncodeToString(prefix[:]) + "-", cors: newCORSPolicy(cfg.CORSOrigins)}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.backups = make(chan struct{}, cfg.MaxBackups)
	s.maxWatches = cfg.MaxConnections - max(1, cfg.MaxConnections/8)
	s.bodyBudget.Store(cfg.MaxBodyMemory)
	s.answerMemory.Store(cfg.MaxBodyMemory)
	cfg.Metrics.watchBodies(func() float64 { return float64(cfg.MaxBodyMemory - s.bodyBudget.Load()) })
	cfg.Metrics.watchWatches(func() float64 { return float64(s.watches.Load()) })
	s.router = s.newRouter()
	s.metrics = cfg.Metrics.Handler()
	s.reserved = map[string]bool{}
	for _, word := range ReservedKeys() {
		s.reserved[word] = true
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       120 * time.Second,
		ConnState:         trackConnState,
		ConnContext:       withConn,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s
}

// ServeHTTP wraps every request: an id (X-Request-Id, and in the log line
// of any 5xx), CORS, the body's budget and deadline, the refusal of a
// request framed two ways, the bearer token check, metrics, and a log line
// (info with --access-log, else debug).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c := connOf(r); c != nil && !c.startWork() {
		// Closed for a newcomer as the request came in: no answer at all
		// (a handler that returns writes net/http's empty 200).
		panic(http.ErrAbortHandler)
	}
	start := time.Now()
	id := s.requestID(r)
	w.Header().Set("X-Request-Id", id)
	corsAllowed := s.cors.allow(w.Header(), r)
	r, refund := meterBody(r, &s.bodyBudget, s.shedStalledUploads)
	defer refund()
	body := s.watchBody(w, r)
	defer body.finish()
	if c := connOf(r); c != nil {
		c.answering.Store(true) // until the connection is idle: its writes are this answer's
		defer c.handlerDone()   // a write's handler may have held its reads (withDB)
	}
	rec := &statusRecorder{ResponseWriter: w}
	if body != nil {
		rec.body = body
	}
	switch {
	case hasFramingClash(r):
		// Both lengths (or Transfer-Encoding in HTTP/1.0): the framing of
		// whatever follows on this connection is in doubt, so nothing
		// more is read from it.
		w.Header().Set("Connection", "close")
		s.writeError(rec, r, invalidParam("A request must not carry both Content-Length and Transfer-Encoding, nor Transfer-Encoding in HTTP/1.0"))
	case corsAllowed && isPreflight(r):
		answerPreflight(rec) // before the token check: a preflight carries none
	case s.cfg.Tokens != nil && needsToken(r.URL.Path) && !s.cfg.Tokens.allows(soleAuthorization(r)):
		w.Header().Set("WWW-Authenticate", `Bearer realm="kvd"`)
		s.writeError(rec, r, sqlitekv.Errorf(codeUnauthorized, "A valid bearer token is required"))
	default:
		s.dispatch(rec, r)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK // nothing written: net/http answers 200
	}
	took := time.Since(start)
	if rec.route == "" {
		rec.route = s.router.labelOf(r)
	}
	s.cfg.Metrics.observe(rec.route, rec.status, took)
	s.logRequest(r, rec, id, took)
}

// logRequest is the access log line: the path without its query (which may
// carry an if_match value), the route's label, the answer's status and
// bytes. slog quotes whatever a client put in the path.
func (s *Server) logRequest(r *http.Request, rec *statusRecorder, id string, took time.Duration) {
	level := slog.LevelDebug
	if s.cfg.AccessLog {
		level = slog.LevelInfo
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	s.log.LogAttrs(r.Context(), level, "request", slog.String("request_id", id), slog.String("method", r.Method),
		slog.String("route", rec.route), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes), slog.Duration("took", took), slog.String("remote", r.RemoteAddr))
}

// Listen binds the address; the server is ready once it serves.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.ln = newConnLimiter(ln, s.cfg.MaxConnections, s.cfg.Metrics, s.cfg.TLS, s.newRequestID)
	return nil
}

// Addr is the bound address (useful after Listen on port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the base URL of the bound address: https:// when serving TLS.
func (s *Server) URL() string {
	if s.cfg.TLS != nil {
		return "https://" + s.Addr().String()
	}
	return "http://" + s.Addr().String()
}

// Serve serves until Shutdown; it returns nil after a clean shutdown.
func (s *Server) Serve() error {
	s.ready.Store(true)
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Unready makes /readyz answer 503 while everything else is still served:
// the first step of a graceful stop behind a load balancer.
func (s *Server) Unready() { s.ready.Store(false) }

// Shutdown stops accepting, reports not-ready, and waits for in-flight
// requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.stop()
	err := s.srv.Shutdown(ctx)
	// net/http waits for no hijacked connection: the watch streams end
	// by themselves (stop), and are waited for here.
	ended := make(chan struct{})
	go func() { s.streams.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ target) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ target) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	if info, err := os.Stat(s.cfg.Registry.DataDir()); err != nil || !info.IsDir() {
		// Removed or replaced under kvd: no bare name can be served.
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready: the data directory is gone"})
		return
	}
	if s.cfg.Cluster != nil {
		if err := s.cfg.Cluster.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready: " + err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ target) {
	s.metrics.ServeHTTP(w, r)
}
