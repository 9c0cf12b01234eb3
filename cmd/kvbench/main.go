// Command kvbench puts load on a running kvd and reports throughput and
// latency. The work is done by package bench; this file only reads flags.
//
//	kvbench -scenario get -c 64 -d 10s
//	kvbench -scenario incr-hot -rate 2000 -d 30s -verify -out incr.svg
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kvd/kvd/bench"
	"github.com/kvd/kvd/internal/buildinfo"
)

func main() {
	// The first signal ends the run gently (requests in flight finish and
	// the report is written); restoring the default lets a second one kill.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
	}
	os.Exit(exitCode(err))
}

// usageError is a mistake on the command line: nothing was run.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode is 0 for success and -h, 2 for a mistake in the flags (caught
// here or by the library before any load), 1 for a run that failed.
func exitCode(err error) int {
	var usage usageError
	var config bench.ConfigError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage), errors.As(err, &config):
		return 2
	}
	return 1
}

// run parses args, runs one scenario and writes the report to stdout; live
// progress goes to stderr. A run that failed as a whole (Result.Failed: a
// failed verification, operations with no answer, not one success) is an
// error after its report, so the exit status tells a script.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	fs.StringVar(&cfg.URL, "url", bench.DefaultURL, "kvd base `URL`")
	fs.StringVar(&cfg.DB, "db", bench.DefaultDB, "database `name`")
	fs.IntVar(&cfg.DBs, "dbs", 1, "spread operations over `N` databases, <db>-0 … <db>-(N-1) (1: <db> itself)")
	fresh := fs.Bool("fresh", false, "suffix -db with a timestamp, so each run starts from an empty database")
	fs.StringVar(&cfg.Table, "table", "", "table `name` (default: kvd's kv_store)")
	fs.StringVar(&cfg.Token, "token", "", "bearer `token` (default $KVBENCH_TOKEN)")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "PEM `file` of the CA to trust for an https -url, instead of the system's")
	fs.StringVar(&cfg.Scenario, "scenario", "get", "one of: "+strings.Join(bench.Scenarios, ", "))
	fs.IntVar(&cfg.Conns, "c", bench.DefaultConns, "connections (concurrent workers)")
	fs.DurationVar(&cfg.Duration, "d", 0, "`duration` of the load (default 10s unless -n is given)")
	fs.Int64Var(&cfg.Requests, "n", 0, "stop after this many operations (0: no limit)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: operations per second, latency counted from each one's due time (0: closed loop)")
	fs.IntVar(&cfg.Keys, "keys", 0, fmt.Sprintf("keys to spread over in each database (default %d; cas %d; incr-hot always 1)", bench.DefaultKeys, bench.DefaultCASKeys))
	fs.IntVar(&cfg.ValueSize, "value-size", bench.DefaultValueSize, "value size in `bytes`")
	fs.Float64Var(&cfg.ReadRatio, "read-ratio", bench.DefaultReadRatio, "mixed: fraction of operations that are reads, 0..1")
	fs.IntVar(&cfg.BatchSize, "batch", bench.DefaultBatchSize, "batch-set: items per request, 1..100")
	fs.BoolVar(&cfg.ETag, "etag", false, "cas: compare the version (If-Match: ETag) instead of the value (if_match=)")
	fs.BoolVar(&cfg.Verify, "verify", false, "incr-hot, incr-spread, cas: read counters back; fail unless every acknowledged write is stored exactly once")
	fs.IntVar(&cfg.Watchers, "watchers", 0, fmt.Sprintf("watch: watchers following the writes (default %d); incr-hot: watchers of the hot key, which must see every increment in order", bench.DefaultWatchers))
	fs.BoolVar(&cfg.WatchEach, "watch-each", false, "watch: each watcher on a key of its own, the writes spread over those keys (else all watch the prefix)")
	fs.DurationVar(&cfg.Timeout, "timeout", bench.DefaultTimeout, "give up on a request not answered in full within this time")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	out := fs.String("out", "", "also plot latency percentiles and throughput over time to this `file` (.svg or .png)")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	version := fs.Bool("version", false, "print kvbench's version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kvbench [flags]\n\nPuts load on a running kvd and reports throughput and latency.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *version {
		_, err := fmt.Fprintln(stdout, buildinfo.Read().Line("kvbench"))
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	// The library takes 0 for "the default": given on the command line, 0
	// or less is a mistake, not a wish for the default.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, v := range map[string]int64{"c": int64(cfg.Conns), "dbs": int64(cfg.DBs), "keys": int64(cfg.Keys), "value-size": int64(cfg.ValueSize),
		"batch": int64(cfg.BatchSize), "timeout": int64(cfg.Timeout), "watchers": int64(cfg.Watchers)} {
		if given[name] && v <= 0 {
			return usagef("-%s must be positive", name)
		}
	}
	if ext := strings.ToLower(filepath.Ext(*out)); *out != "" && ext != ".svg" && ext != ".png" {
		return usagef("-out %s: want a .svg or .png file", *out) // before the load, not after
	}
	if cfg.ReadRatio == 0 && cfg.Scenario == "mixed" {
		cfg.Scenario = "put" // the library reads 0 as "default"; all writes is put
	}
	if cfg.Token == "" {
		cfg.Token = os.Getenv("KVBENCH_TOKEN")
	}
	if *fresh {
		cfg.DB += "-" + time.Now().Format("20060102-150405")
	}
	if !*quiet {
		cfg.Progress = stderr
	}

	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteTable(stdout)
	}
	if err != nil {
		return err
	}
	if *out != "" {
		if err := res.WritePlot(*out); err != nil {
			return err
		}
		if !*quiet {
			fmt.Fprintln(stderr, "plot written to", *out)
		}
	}
	return res.Failed()
}
