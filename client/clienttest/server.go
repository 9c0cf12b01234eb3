// Package clienttest runs a real kvd (HTTP server, actors, SQLite files in
// a temporary folder) inside the test process, on 127.0.0.1, for tests of
// code that uses package client. Every server started is stopped by its
// Close or by the test's cleanup, which also checks each database's
// integrity.
package clienttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

// Options shape a test server.
type Options struct {
	// Tokens, when set, are the bearer tokens the API accepts.
	Tokens []string
	// Now is the server's clock (TTL, history times); nil is time.Now.
	Now func() time.Time
	// MaxValueBytes is the largest value; 0 is kvd's default, 10 MiB.
	MaxValueBytes int64
}

// Server is a running kvd.
type Server struct {
	URL     string // http://127.0.0.1:port
	DataDir string // where bare database names live

	srv     *httpapi.Server
	reg     *actors.Registry
	served  chan error
	removes string // a folder Start made, removed by Close
	once    sync.Once
	err     error
}

// New starts a server for tb and stops it when tb ends.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := start(tb.TempDir(), tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// Start starts a server outside any one test (in TestMain, say), in a
// folder of its own that Close removes.
func Start(opts Options) (*Server, error) {
	root, err := os.MkdirTemp("", "kvd-clienttest-")
	if err != nil {
		return nil, err
	}
	data, etc := filepath.Join(root, "data"), filepath.Join(root, "etc")
	for _, dir := range []string{data, etc} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
	}
	s, err := start(data, etc, opts)
	if err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	s.removes = root
	return s, nil
}

// start wires the stack as cmd/kvd does: resolver, registry, HTTP server.
func start(dataDir, etcDir string, opts Options) (*Server, error) {
	resolver, err := sqlitekv.NewResolver(dataDir, nil, false)
	if err != nil {
		return nil, fmt.Errorf("clienttest: resolver: %w", err)
	}
	hcfg := httpapi.Config{MaxValueBytes: opts.MaxValueBytes}
	if len(opts.Tokens) > 0 {
		file := filepath.Join(etcDir, "tokens")
		if err := os.WriteFile(file, []byte(strings.Join(opts.Tokens, "\n")+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("clienttest: token file: %w", err)
		}
		if hcfg.Tokens, err = httpapi.LoadTokens(file); err != nil {
			return nil, fmt.Errorf("clienttest: %w", err)
		}
	}
	reg := actors.NewRegistry(actors.Config{Resolver: resolver, Store: sqlitekv.Options{Now: opts.Now, MaxValueBytes: opts.MaxValueBytes}, Now: opts.Now})
	hcfg.Registry = reg
	srv := httpapi.New(hcfg)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		reg.Close()
		return nil, fmt.Errorf("clienttest: %w", err)
	}
	s := &Server{URL: "http://" + srv.Addr().String(), DataDir: resolver.DataDir(), srv: srv, reg: reg, served: make(chan error, 1)}
	go func() { s.served <- srv.Serve() }()
	return s, nil
}

// Close stops the server in kvd's order (HTTP, then the databases), checks
// every database file left behind, and removes a folder Start made. It may
// be called more than once.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs := []error{s.srv.Shutdown(ctx), <-s.served, s.reg.Close(), CheckIntegrity(s.DataDir)}
		if s.removes != "" {
			errs = append(errs, os.RemoveAll(s.removes))
		}
		if s.err = errors.Join(errs...); s.err != nil {
			s.err = fmt.Errorf("clienttest: close: %w", s.err)
		}
	})
	return s.err
}

// CheckIntegrity runs PRAGMA integrity_check on every database in dir
// (files that do not start with SQLite's header, planted by a test, are
// skipped).
func CheckIntegrity(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if !sqlitekv.IsSQLiteFile(f) {
			continue // empty, or planted by a test
		}
		errs = append(errs, integrityOf(f))
	}
	return errors.Join(errs...)
}

func integrityOf(file string) error {
	conn, err := sqlite3.OpenFlags(file, sqlite3.OPEN_READONLY)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer conn.Close()
	stmt, _, err := conn.Prepare(`PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("integrity_check %s: %w", file, err)
	}
	defer stmt.Close()
	if !stmt.Step() {
		return fmt.Errorf("integrity_check %s: %v", file, stmt.Err())
	}
	if got := stmt.ColumnText(0); got != "ok" {
		return fmt.Errorf("integrity_check %s: got %q, want ok", filepath.Base(file), got)
	}
	return nil
}
