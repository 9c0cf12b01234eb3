// Package clienttest runs a real kvd (HTTP server, actors, SQLite files in
// a temporary folder) inside the test process, on 127.0.0.1, for tests of
// code that uses package client: a public face on internal/kvdtest. Every
// server started is stopped by its Close or by the test's cleanup, which
// also checks each database's integrity.
package clienttest

import (
	"crypto/tls"
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
	"github.com/kvd/kvd/internal/kvdtest"
)

// Options shape a test server.
type Options struct {
	// Tokens, when set, are the bearer tokens the API accepts.
	Tokens []string
	// Now is the server's clock (TTL, history times); nil is time.Now.
	Now func() time.Time
	// MaxValueBytes is the largest value; 0 is kvd's default, 10 MiB.
	MaxValueBytes int64
	// MaxAnswerBytes bounds an answer that lists values; 0 is kvd's
	// default, 16 MiB.
	MaxAnswerBytes int64
	// TLS, when set, makes the server speak HTTPS (URL https://...).
	TLS *tls.Config
	// HistoryKeep is the versions kept per key (kvd's --history-keep);
	// 0 is kvd's default, 1000.
	HistoryKeep int
}

// Server is a running kvd.
type Server struct {
	URL     string // http://127.0.0.1:port, or https:// with Options.TLS
	DataDir string // where bare database names live

	stack   *kvdtest.Server
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

func start(dataDir, etcDir string, opts Options) (*Server, error) {
	var tokens *httpapi.Tokens
	if len(opts.Tokens) > 0 {
		file := filepath.Join(etcDir, "tokens")
		if err := os.WriteFile(file, []byte(strings.Join(opts.Tokens, "\n")+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("clienttest: token file: %w", err)
		}
		var err error
		if tokens, err = httpapi.LoadTokens(file); err != nil {
			return nil, fmt.Errorf("clienttest: %w", err)
		}
	}
	stack, err := kvdtest.Start(dataDir, func(a *actors.Config, h *httpapi.Config) {
		a.Store.Now, a.Now = opts.Now, opts.Now
		a.Store.HistoryKeep = opts.HistoryKeep
		h.MaxValueBytes, h.MaxAnswerBytes, h.Tokens, h.TLS = opts.MaxValueBytes, opts.MaxAnswerBytes, tokens, opts.TLS
	})
	if err != nil {
		return nil, fmt.Errorf("clienttest: %w", err)
	}
	return &Server{URL: stack.URL, DataDir: stack.DataDir, stack: stack}, nil
}

// Close stops the server in kvd's order (HTTP, then the databases), checks
// every database file left behind, and removes a folder Start made. It may
// be called more than once.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.err = s.stack.Close()
		if s.removes != "" {
			s.err = errors.Join(s.err, os.RemoveAll(s.removes))
		}
	})
	return s.err
}
