package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// Config wires the server to the registry of databases.
type Config struct {
	Registry      *actors.Registry
	MaxValueBytes int64 // 0 means 10 MiB
	Logger        *slog.Logger
}

// Server is kvd's HTTP server. It owns its listener: Listen binds (tests
// use 127.0.0.1:0 and ask Addr), Serve serves, Shutdown drains.
type Server struct {
	cfg    Config
	log    *slog.Logger
	router *httprouter.Router
	kv     map[kvRoute]kvHandler
	srv    *http.Server
	ln     net.Listener

	ready     atomic.Bool
	idPrefix  string
	idCounter atomic.Uint64
}

func New(cfg Config) *Server {
	if cfg.MaxValueBytes <= 0 {
		cfg.MaxValueBytes = 10 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var prefix [4]byte
	rand.Read(prefix[:])
	s := &Server{cfg: cfg, log: cfg.Logger, idPrefix: hex.EncodeToString(prefix[:]) + "-"}
	s.kv = s.kvRoutes()
	s.router = s.newRouter()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s
}

func (s *Server) newRouter() *httprouter.Router {
	r := httprouter.New()
	r.GET("/healthz", s.handleHealthz)
	r.GET("/readyz", s.handleReadyz)
	r.GET("/api/v1/sqlite/kv", s.handleListKeys)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPost} {
		r.Handle(m, kvPrefix+"*rest", s.routeKV)
	}
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, sqlitekv.Errorf(codeNotFound, "Unknown endpoint"))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, sqlitekv.Errorf(codeMethodNotAllowed, "%s is not allowed here", req.Method))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, p any) {
		s.writeError(w, req, fmt.Errorf("panic: %v", p))
	}
	return r
}

// ServeHTTP tags every request with an id, returned as X-Request-Id and
// used in the log line of any 5xx.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", s.idPrefix+strconv.FormatUint(s.idCounter.Add(1), 10))
	s.router.ServeHTTP(w, r)
}

// Listen binds the address; the server is ready once it serves.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (useful after Listen on port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until Shutdown; it returns nil after a clean shutdown.
func (s *Server) Serve() error {
	s.ready.Store(true)
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting, reports not-ready, and waits for in-flight
// requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	return s.srv.Shutdown(ctx)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
