package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

// config is everything kvd can be told, from flags or KVD_* variables.
type config struct {
	listen           string
	dataDir          string
	allowDirs        []string
	allowAnyAbsolute bool
	sync             string
	maxValueBytes    int64
	maxBodyMemory    int64
	maxAnswerBytes   int64
	maxQueue         int
	maxBackups       int
	maxOpenDBs       int
	maxTables        int
	cacheBytes       int64
	idleTimeout      time.Duration
	historyKeep      int
	historyMaxAge    time.Duration
	sweepInterval    time.Duration
	shutdownTimeout  time.Duration
	readTimeout      time.Duration
	maxConnections   int
	drainDelay       time.Duration
	authTokenFile    string
	tlsCert, tlsKey  string
	logFormat        string
	logLevel         string
	pprofListen      string
	version          bool

	cluster clusterFlags

	accessLog   bool
	corsOrigins []string
	unknownEnv  []string // KVD_* variables that name no flag: warned of once there is a logger
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, string(os.PathListSeparator)) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// parseConfig reads flags; a flag not given on the command line falls back
// to KVD_<NAME> (dashes as underscores; a list is split on the path list
// separator, ':'), and one given there beside its variable is refused
// (applyEnv). environ is os.Environ's "NAME=value" list.
func parseConfig(args []string, environ []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("kvd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory of databases named by bare names")
	fs.Var((*stringList)(&c.allowDirs), "allow-dir", "extra root for absolute db paths (repeatable)")
	fs.BoolVar(&c.allowAnyAbsolute, "allow-any-absolute-db-path", false, "allow absolute db paths outside the roots (unsafe on a network)")
	fs.StringVar(&c.sync, "sync", "full", "durability: full (survives power loss) or normal (survives a process crash)")
	bytesVar(fs, &c.maxValueBytes, "max-value-bytes", sqlitekv.DefaultMaxValueBytes, "largest value accepted, in bytes")
	bytesVar(fs, &c.maxBodyMemory, "max-body-memory", 0, "request bodies held in memory at once, all requests together, before a request with a body answers 503 (0: 256 MiB or 8 × --max-value-bytes, whichever is more)")
	bytesVar(fs, &c.maxAnswerBytes, "max-answer-bytes", httpapi.DefaultMaxAnswerBytes, "bytes of values one answer lists (history, snapshot, diff, batch get, listings) before it ends early with a cursor to the rest; one item always goes out whole")
	fs.IntVar(&c.maxQueue, "max-queue", 10000, "writes queued per database before 503 OVERLOADED")
	fs.IntVar(&c.maxBackups, "max-backups", httpapi.DefaultMaxBackups, "backups made or sent at once, each a copy of its database on that database's disk; past it a backup answers 503")
	fs.IntVar(&c.maxOpenDBs, "max-open-dbs", 1024, "databases open at once, lowered at start to fit RLIMIT_NOFILE beside the connections; the least recently used is closed first")
	fs.IntVar(&c.maxTables, "max-tables", sqlitekv.DefaultMaxTables, "tables a write may bring one database to (file mode); past it creating a table answers 400")
	bytesVar(fs, &c.cacheBytes, "cache-bytes", sqlitekv.DefaultCacheBytes, "SQLite page cache of each open database's writer, in bytes (1 MiB to 128 MiB)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 5*time.Minute, "close a database unused this long (0: never)")
	fs.IntVar(&c.historyKeep, "history-keep", 1000, "history versions kept per key (-1: all)")
	fs.DurationVar(&c.historyMaxAge, "history-max-age", 0, "drop history older than this (0: keep)")
	fs.DurationVar(&c.sweepInterval, "sweep-interval", 30*time.Second, "how often each database removes expired keys and old history (0: never)")
	fs.DurationVar(&c.readTimeout, "read-timeout", httpapi.DefaultReadTimeout, "how long a request body may take to arrive before 408 (raise it for large uploads over slow links)")
	fs.IntVar(&c.maxConnections, "max-connections", 0, "client connections kept open; past it a new one replaces the stalest idle or stalled one (0: RLIMIT_NOFILE less room for --max-open-dbs databases)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may finish, then how long the databases may take to close (a window each)")
	fs.DurationVar(&c.drainDelay, "drain-delay", 0, "on SIGTERM, keep serving this long with /readyz answering 503 before draining (for load balancers)")
	fs.StringVar(&c.authTokenFile, "auth-token-file", "", "file of bearer tokens, one per line; reread on SIGHUP (empty: no auth)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with, TLS 1.2 at least; reread on SIGHUP (empty: plain HTTP)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert; reread with it on SIGHUP")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.pprofListen, "pprof-listen", "", "address for Go's profiler, e.g. 127.0.0.1:6060 (empty: off)")
	fs.BoolVar(&c.accessLog, "access-log", false, "log one info line per request")
	fs.Var((*originList)(&c.corsOrigins), "cors-origin", "web origin whose pages may call kvd from a browser, e.g. https://app.example.com, or * for any (repeatable, or comma-separated)")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	c.cluster.register(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.version {
		return c, nil // nothing else matters: --version answers even beside a bad flag value
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var err error
	if c.unknownEnv, err = applyEnv(fs, environ); err != nil {
		return c, err
	}
	if c.sync != string(sqlitekv.SyncFull) && c.sync != string(sqlitekv.SyncNormal) {
		return c, fmt.Errorf("--sync must be full or normal, not %q", c.sync)
	}
	if c.maxValueBytes <= 0 || c.maxAnswerBytes <= 0 {
		return c, fmt.Errorf("--max-value-bytes and --max-answer-bytes must be positive")
	}
	if c.maxValueBytes > maxValueBytesLimit {
		return c, fmt.Errorf("--max-value-bytes must be at most 512 MiB (SQLite keeps a value in one piece, and a batch body may be 4 × it), not %d", c.maxValueBytes)
	}
	if c.cacheBytes < 1<<20 || c.cacheBytes > sqlitekv.MaxCacheBytes {
		return c, fmt.Errorf("--cache-bytes must be from 1 MiB to 128 MiB, not %d", c.cacheBytes)
	}
	if batch := httpapi.BatchBodyLimit(c.maxValueBytes); c.maxBodyMemory != 0 && c.maxBodyMemory < batch {
		return c, fmt.Errorf("--max-body-memory must hold one batch body: at least 4 × --max-value-bytes = %d", batch)
	}
	if err := c.checkRanges(); err != nil {
		return c, err
	}
	if stray := strayClusterFlags(fs, c.cluster.node); len(stray) > 0 {
		return c, fmt.Errorf("cluster flags without --cluster-node (kvd would serve alone and ignore them): %s", strings.Join(stray, ", "))
	}
	return c, c.cluster.check(c)
}

// maxValueBytesLimit bounds --max-value-bytes: SQLite stores a value of at
// most 1 GB, and the body limits computed from it must not overflow.
const maxValueBytesLimit = 512 << 20

// strayClusterFlags lists the cluster's flags set (on the command line or
// by KVD_ variables) on a kvd that is no cluster node.
func strayClusterFlags(fs *flag.FlagSet, node string) (stray []string) {
	if node != "" {
		return nil
	}
	fs.Visit(func(f *flag.Flag) { // those set, even to their defaults
		clusterOnly := strings.HasPrefix(f.Name, "cluster-") || strings.HasPrefix(f.Name, "litestream")
		if clusterOnly && f.Name != "cluster-node" {
			stray = append(stray, "--"+f.Name)
		}
	})
	return stray
}

// checkRanges refuses values that would otherwise fall back to a default
// or mean "off" without saying so.
func (c config) checkRanges() error {
	switch {
	case !isListenAddress(c.listen):
		return fmt.Errorf("--listen must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080, not %q", c.listen)
	case c.dataDir == "":
		return fmt.Errorf("--data-dir must name a directory, e.g. ./data")
	case c.maxQueue <= 0 || c.maxOpenDBs <= 0 || c.maxBackups <= 0 || c.maxTables <= 0:
		return fmt.Errorf("--max-queue, --max-open-dbs, --max-backups and --max-tables must be positive")
	case c.readTimeout <= 0:
		return fmt.Errorf("--read-timeout must be positive")
	case c.shutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout must be positive: at 0 no database could close cleanly")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return fmt.Errorf("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
	case c.maxConnections < 0:
		return fmt.Errorf("--max-connections must not be negative (0: derived from RLIMIT_NOFILE)")
	case c.historyKeep == 0 || c.historyKeep < -1:
		return fmt.Errorf("--history-keep must be positive, or -1 to keep every version")
	case c.idleTimeout < 0 || c.sweepInterval < 0 || c.historyMaxAge < 0 || c.shutdownTimeout < 0 || c.drainDelay < 0:
		return fmt.Errorf("durations must not be negative (0 turns --idle-timeout, --sweep-interval and --history-max-age off)")
	}
	for _, dir := range c.allowDirs {
		if strings.TrimSpace(dir) == "" {
			return fmt.Errorf("--allow-dir must not be empty (a stray ':' in KVD_ALLOW_DIR?)")
		}
	}
	return nil
}

// applyEnv sets each flag not given on the command line from its KVD_
// variable, as etcd does: a variable given beside its flag is refused,
// since one of them would be silently ignored, and the KVD_ variables that
// name no flag (a typo, an old name) are returned to be warned of. An
// empty variable counts as unset.
func applyEnv(fs *flag.FlagSet, environ []string) (unknown []string, err error) {
	env := map[string]string{}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "KVD_") {
			env[name] = value
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		name := "KVD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := env[name]
		if f.Name == "version" || err != nil {
			return
		}
		known[name] = true
		switch {
		case v == "":
			return
		case set[f.Name]:
			err = fmt.Errorf("%s is set and so is --%s on the command line: one would shadow the other (unset the variable or drop the flag)", name, f.Name)
			return
		}
		values := []string{v}
		if _, isList := f.Value.(*stringList); isList {
			values = filepath.SplitList(v)
		}
		for _, v := range values {
			if e := fs.Set(f.Name, v); e != nil { // marks it set, as the command line does
				err = fmt.Errorf("%s: invalid value %q: %w", name, v, e)
			}
		}
	})
	for name := range env {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown, err
}

func (c config) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", c.logFormat)
}

// isListenAddress tells whether addr is host:port as net.Listen takes it
// (an empty host: every interface; port 0: one the system picks).
func isListenAddress(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	return err == nil
}
