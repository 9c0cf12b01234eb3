// Package kvdtest runs a real kvd stack (HTTP server, actors, SQLite files)
// inside a test process on 127.0.0.1, wired as cmd/kvd wires it. Closing it
// stops it in kvd's order and checks the integrity of every database left
// behind, so every test that uses it checks its files. httpapi's tests use
// it directly; client/clienttest is its public face for client code.
package kvdtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

// Configure adjusts the stack's configuration before it starts. Metrics
// left unset are made here, fed by the actors and watching the registry, as
// in kvd; a Configure that sets its own wires them itself.
type Configure func(*actors.Config, *httpapi.Config)

// Server is a running kvd.
type Server struct {
	URL      string // http://127.0.0.1:port (https with httpapi.Config.TLS)
	DataDir  string // where bare database names live
	Registry *actors.Registry
	HTTP     *httpapi.Server

	served chan error
	once   sync.Once
	err    error
}

// Start serves a kvd whose bare database names live in dataDir.
func Start(dataDir string, configure ...Configure) (*Server, error) {
	resolver, err := sqlitekv.NewResolver(dataDir, nil, false)
	if err != nil {
		return nil, fmt.Errorf("kvdtest: resolver: %w", err)
	}
	acfg := actors.Config{Resolver: resolver, Store: sqlitekv.Options{ReservedKeys: httpapi.ReservedKeys()}}
	var hcfg httpapi.Config
	for _, c := range configure {
		c(&acfg, &hcfg)
	}
	if acfg.Store.MaxValueBytes == 0 { // as kvd: one limit for bodies and directory-mode files
		acfg.Store.MaxValueBytes = hcfg.MaxValueBytes
	}
	ownMetrics := hcfg.Metrics == nil
	if ownMetrics {
		hcfg.Metrics = httpapi.NewMetrics()
		acfg.Hooks = hcfg.Metrics.Hooks()
	}
	reg := actors.NewRegistry(acfg)
	if ownMetrics {
		hcfg.Metrics.Watch(reg)
	}
	hcfg.Registry = reg
	srv := httpapi.New(hcfg)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		reg.Close()
		return nil, fmt.Errorf("kvdtest: %w", err)
	}
	s := &Server{
		URL: srv.URL(), DataDir: acfg.Resolver.DataDir(), // a Configure may have pointed it elsewhere
		Registry: reg, HTTP: srv, served: make(chan error, 1),
	}
	go func() { s.served <- srv.Serve() }()
	return s, nil
}

// Close stops the server in kvd's order (HTTP, then the databases) and
// checks every database file in DataDir. It may be called more than once.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.err = errors.Join(s.HTTP.Shutdown(ctx), <-s.served, s.Registry.Close(), CheckIntegrity(s.DataDir))
		if s.err != nil {
			s.err = fmt.Errorf("kvdtest: close: %w", s.err)
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
		if sqlitekv.IsSQLiteFile(f) {
			errs = append(errs, sqlitekv.CheckIntegrity(f))
		}
	}
	return errors.Join(errs...)
}
