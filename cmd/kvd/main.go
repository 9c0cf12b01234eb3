// Command kvd serves a key-value store over HTTP, kept in SQLite files.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/buildinfo"
	"github.com/kvd/kvd/sqlitekv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling: a second
	// SIGINT/SIGTERM ends the process at once instead of waiting.
	go func() { <-ctx.Done(); stop() }()
	switch err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); {
	case errors.Is(err, flag.ErrHelp):
		return // -h: the usage is the answer
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "kvd:", err)
		os.Exit(2) // as flag.ExitOnError: a mistake on the command line or in KVD_*
	case err != nil:
		fmt.Fprintln(os.Stderr, "kvd:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag, argument or KVD_* value: kvd exits 2, as
// programs do for a mistake in how they were called; any other failure
// to start exits 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// afterStart, set only in test builds (build tag kvdwedge), reaches into
// a started kvd.
var afterStart func(*actors.Registry, *slog.Logger)

// run starts kvd and blocks until ctx is cancelled, then shuts down in
// reverse order of start-up: HTTP first, then the actors with their
// databases, each committed and checkpointed; each step gets
// --shutdown-timeout.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, environ, stderr)
	if err != nil {
		return usageError{err}
	}
	if cfg.version {
		_, err := fmt.Fprintln(stdout, buildinfo.Read().Line("kvd"))
		return err
	}
	log, err := cfg.logger(stderr)
	if err != nil {
		return usageError{err}
	}
	for _, name := range cfg.unknownEnv {
		log.Warn("ignoring an environment variable that names no flag", "name", name)
	}
	files, err := budgetFiles(cfg, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	resolver, err := sqlitekv.NewResolver(cfg.dataDir, cfg.allowDirs, cfg.allowAnyAbsolute)
	if err != nil {
		return fmt.Errorf("open data dir: %w", err)
	}
	var tokens *httpapi.Tokens
	if cfg.authTokenFile != "" {
		if tokens, err = httpapi.LoadTokens(cfg.authTokenFile); err != nil {
			return fmt.Errorf("load auth tokens: %w", err)
		}
	}
	var cert *httpapi.Certificate
	var tlsConfig *tls.Config
	if cfg.tlsCert != "" {
		if cert, err = httpapi.LoadCertificate(cfg.tlsCert, cfg.tlsKey); err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsConfig = cert.TLSConfig()
	}
	defer reloadOnHangup(log, tokens, cert)()
	var registry *actors.Registry
	node, err := cfg.cluster.start(ctx, cfg.listen, resolver.DataDir(), log, func(path string) { registry.CloseDB(path) })
	if err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	var owner actors.Owner
	var fence func(path string) error
	var member httpapi.Cluster
	if node != nil {
		owner, fence, member = node, node.Fence, node
		defer func() { // after the registry closed every database (below)
			if err := node.Close(); err != nil {
				log.Warn("leaving the cluster", "err", err)
			}
		}()
	}
	metrics := httpapi.NewMetrics()
	registry = actors.NewRegistry(actors.Config{
		Resolver: resolver,
		Store: sqlitekv.Options{
			Sync:          sqlitekv.SyncMode(cfg.sync),
			HistoryKeep:   cfg.historyKeep,
			HistoryMaxAge: cfg.historyMaxAge,
			CacheBytes:    cfg.cacheBytes,
			ReservedKeys:  httpapi.ReservedKeys(),
			MaxValueBytes: cfg.maxValueBytes,
			MaxTables:     cfg.maxTables,
			Fence:         fence,
			Readers:       files.readers,
		},
		Owner:         owner,
		MaxQueue:      cfg.maxQueue,
		MaxOpen:       files.databases,
		IdleTimeout:   cfg.idleTimeout,
		SweepInterval: cfg.sweepInterval,
		Logger:        log,
		Hooks:         metrics.Hooks(),
	})
	metrics.Watch(registry)
	if node != nil {
		metrics.Register(node.Collector())
	}
	server := httpapi.New(httpapi.Config{
		Registry: registry, MaxValueBytes: cfg.maxValueBytes, MaxBodyMemory: cfg.maxBodyMemory, MaxAnswerBytes: cfg.maxAnswerBytes, MaxBackups: cfg.maxBackups, Tokens: tokens, Metrics: metrics, Logger: log,
		Cluster:     member,
		ReadTimeout: cfg.readTimeout, MaxConnections: files.connections, TLS: tlsConfig,
		AccessLog: cfg.accessLog, CORSOrigins: cfg.corsOrigins,
	})
	if cfg.pprofListen != "" {
		stopPprof, err := servePprof(cfg.pprofListen, log)
		if err != nil {
			registry.Close()
			return fmt.Errorf("pprof listener: %w", err)
		}
		defer stopPprof()
	}
	if err := server.Listen(cfg.listen); err != nil {
		registry.Close()
		return err
	}
	log.Info("kvd started", "addr", server.Addr().String(), "data_dir", resolver.DataDir(), "sync", cfg.sync, "auth", tokens != nil, "tls", cert != nil, "max_connections", files.connections, "max_open_dbs", files.databases)
	if cert != nil {
		log.Info("serving HTTPS", "serial", cert.Leaf().SerialNumber.String(), "not_after", cert.Leaf().NotAfter)
	}
	if tokens != nil && cert == nil && !isLoopback(server.Addr()) {
		log.Warn("bearer tokens travel in plain text on this address: serve HTTPS with --tls-cert and --tls-key")
	}
	fmt.Fprintf(stdout, "kvd listening on %s\n", server.URL())

	served := make(chan error, 1)
	go func() { served <- server.Serve() }()
	if afterStart != nil {
		afterStart(registry, log)
	}
	stopWatchdog := notifyReady(log, registry.Alive)
	select {
	case err = <-served:
	case <-ctx.Done():
		if cfg.drainDelay > 0 {
			// Load balancers polling /readyz see 503 and move traffic away
			// while everything is still served.
			log.Info("kvd stopping: not ready, still serving", "for", cfg.drainDelay)
			server.Unready()
			time.Sleep(cfg.drainDelay)
		}
		log.Info("kvd stopping: draining requests")
	}
	notifyStopping(log)
	stopWatchdog()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if shutErr := server.Shutdown(shutdownCtx); shutErr != nil {
		log.Warn("in-flight requests did not finish in time", "err", shutErr)
	}
	if closeErr := closeDatabases(registry, cfg.shutdownTimeout); closeErr != nil {
		log.Error("closing databases", "err", closeErr)
		if err == nil {
			err = closeErr
		}
	}
	log.Info("kvd stopped")
	return err
}

// closeDatabases commits and closes every database, waiting at most
// timeout: a window of its own, so that requests slow to drain leave the
// checkpoints their time, and bounded, so that an actor wedged in a system
// call cannot keep kvd from exiting (the databases left open are named
// in the log).
func closeDatabases(registry *actors.Registry, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return registry.Shutdown(ctx)
}

// reloadOnHangup rereads the token file and the TLS certificate (those
// given) on every SIGHUP until the returned func is called. It handles
// SIGHUP for the whole run, draining included: the signal's default action
// would end kvd without draining, and `systemctl reload` sends it whether
// or not there is anything to reload.
func reloadOnHangup(log *slog.Logger, tokens *httpapi.Tokens, cert *httpapi.Certificate) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				reload(log, tokens, cert)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// reload rereads each of tokens and cert that is set; one that fails keeps
// what it had, so a half-written file never locks clients out.
func reload(log *slog.Logger, tokens *httpapi.Tokens, cert *httpapi.Certificate) {
	if tokens == nil && cert == nil {
		log.Info("SIGHUP: nothing to reload (no --auth-token-file, no --tls-cert)")
	}
	if tokens != nil {
		if err := tokens.Reload(); err != nil {
			log.Error("reloading auth tokens; keeping the previous ones", "err", err)
		} else {
			log.Info("auth tokens reloaded")
		}
	}
	if cert != nil {
		if err := cert.Reload(); err != nil {
			log.Error("reloading TLS certificate; keeping the previous one", "err", err)
		} else {
			log.Info("TLS certificate reloaded", "serial", cert.Leaf().SerialNumber.String(), "not_after", cert.Leaf().NotAfter)
		}
	}
}

// isLoopback: only this machine can reach the address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
