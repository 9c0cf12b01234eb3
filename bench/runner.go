package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kvd/kvd/client"
)

// Config is one run. Zero fields take the defaults below.
type Config struct {
	URL, DB, Table, Token string
	Scenario              string
	DBs                   int    // databases the load spreads over (0: 1); see dbNames
	CAFile                string // PEM certificates to trust for an https URL, instead of the system's

	Conns    int           // workers, each with one keep-alive connection
	Duration time.Duration // stop after this long (0 with Requests set: no time limit)
	Requests int64         // stop after this many operations (0: no count limit)
	Rate     float64       // operations per second; 0 is a closed loop

	Keys      int     // keys the load spreads over in each database (0: scenario default)
	ValueSize int     // bytes per value
	ReadRatio float64 // mixed: fraction of reads (0: DefaultReadRatio)
	BatchSize int     // batch-set: items per request
	ETag      bool    // cas: If-Match with the ETag instead of if_match=value
	Verify    bool    // counters: read back and check after the run
	Watchers  int     // watch: watchers (0: DefaultWatchers); incr-hot: watchers of the hot key
	WatchEach bool    // watch: each watcher on a key of its own (keys = watchers), else all on the prefix

	Timeout  time.Duration // give up on a request not answered in full within this time
	Progress io.Writer     // one line per second while running; nil for none
}

// Run defaults.
const (
	DefaultURL      = client.DefaultURL
	DefaultDB       = "bench"
	DefaultConns    = 64 // enough writers to fill kvd's group commits
	DefaultDuration = 10 * time.Second
	DefaultTimeout  = 30 * time.Second
)

// openLoopGrace bounds how long an open loop that fell behind may keep
// working off its backlog after the schedule ends; what is left is reported
// as dropped.
const openLoopGrace = 2 * time.Second

func (cfg Config) withDefaults() Config {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.DB == "" {
		cfg.DB = DefaultDB
	}
	if cfg.DBs <= 0 {
		cfg.DBs = 1
	}
	if cfg.Conns <= 0 {
		cfg.Conns = DefaultConns
	}
	if cfg.Duration == 0 && cfg.Requests == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Keys <= 0 {
		cfg.Keys = DefaultKeys
		if cfg.Scenario == "cas" {
			cfg.Keys = DefaultCASKeys
		}
	}
	if cfg.Scenario == "incr-hot" {
		cfg.Keys = 1
	}
	if cfg.ValueSize <= 0 {
		cfg.ValueSize = DefaultValueSize
	}
	if cfg.ReadRatio == 0 {
		cfg.ReadRatio = DefaultReadRatio
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return cfg
}

// dbNames lists the databases of a run: DB itself when there is one, else
// DB-0 … DB-(DBs-1), so that a run on one database reads and writes where it
// always did. Each is created by its first write (create_db_if_missing).
func (cfg Config) dbNames() []string {
	if cfg.DBs <= 1 {
		return []string{cfg.DB}
	}
	names := make([]string, cfg.DBs)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", cfg.DB, i)
	}
	return names
}

// ConfigError is a Config that Run refuses before any load: the caller's
// mistake (kvbench exits 2 for it), not a run that failed.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

func (cfg Config) validate() error {
	switch {
	case cfg.Duration < 0 || cfg.Requests < 0:
		return errors.New("duration and requests must not be negative")
	case cfg.Rate < 0 || math.IsInf(cfg.Rate, 0) || math.IsNaN(cfg.Rate):
		return errors.New("rate must be a positive number of requests per second")
	case cfg.ReadRatio < 0 || cfg.ReadRatio > 1:
		return errors.New("read ratio must be within 0..1")
	}
	return nil
}

// Run prepares the scenario, puts the load on, and, with Verify, checks the
// counters. It returns an error when the run could not be made; a failed
// verification is in the Result (Result.Verify.OK).
//
// Canceling ctx ends the run early but gently: no new operation starts, and
// those in flight finish (within Timeout), so the outcome of every write is
// known and verification stays exact.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, ConfigError{err}
	}
	c, err := NewClient(cfg.URL, cfg.DB, cfg.Table, cfg.Token, cfg.Conns, cfg.Timeout)
	if err != nil {
		return nil, ConfigError{err}
	}
	if cfg.CAFile != "" {
		if err := c.trustCAFile(cfg.CAFile); err != nil {
			return nil, ConfigError{err}
		}
	}
	defer c.Close()
	sc, err := NewScenario(cfg.Scenario, c, cfg)
	if err != nil {
		return nil, ConfigError{err}
	}
	v, canVerify := sc.(verifier)
	if cfg.Verify && !canVerify {
		return nil, ConfigError{fmt.Errorf("-verify applies to incr-hot, incr-spread and cas, not %s", cfg.Scenario)}
	}
	if err := sc.Prepare(ctx); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", cfg.Scenario, err)
	}
	counters := 0
	if canVerify {
		counters = v.Counters()
	}
	res := load(ctx, cfg, sc, counters)
	if wr, ok := sc.(watchReporter); ok {
		res.Watch = wr.finishWatch(ctx, res.Succeeded)
	}
	if cfg.Verify {
		// Even after an interrupt the counters deserve a look, with a clock
		// of their own.
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		res.Verify = v.Verify(vctx, res.acked, res.unknown)
	}
	return res, nil
}

// load runs the workers until the schedule ends and merges what they saw.
func load(ctx context.Context, cfg Config, sc Scenario, counters int) *Result {
	recs := make([]*recorder, cfg.Conns)
	for i := range recs {
		recs[i] = newRecorder(counters)
	}
	var live liveCounts
	sched := newSchedule(cfg, time.Now())
	sampled := make(chan []sample, 1)
	stop := make(chan struct{})
	go func() { sampled <- sampleLoop(sched.start, &live, cfg.Progress, stop) }()

	// Requests outlive a cancel: see Run.
	reqCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for i, rec := range recs {
		wg.Go(func() {
			w := sc.NewWorker(uint64(i) + 1)
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			var backoff time.Duration
			for {
				at, ok := sched.next(ctx, timer)
				if !ok {
					return
				}
				o := w.Do(reqCtx)
				rec.record(o, time.Since(at))
				live.add(o)
				if backoff = nextBackoff(backoff, o.Err, sched.rate); backoff > 0 {
					sleep(ctx, timer, backoff)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(sched.start)
	close(stop)
	res := newResult(cfg, elapsed, recs, <-sampled)
	res.Interrupted = ctx.Err() != nil
	if sched.rate > 0 && !res.Interrupted {
		res.Dropped = max(0, sched.expected()-res.Requests-res.Errors)
	}
	return res
}

// nextBackoff is how long a closed loop's worker waits after an operation
// whose connection was refused (kvd down): 1 ms, doubling to 100 ms while
// refusals go on, none once one gets through. Without it a worker dialed as
// fast as refusals came back, 290,000 times a second. An open loop keeps
// its rate, refused or not.
func nextBackoff(last time.Duration, err error, rate float64) time.Duration {
	if rate > 0 || !errors.Is(err, syscall.ECONNREFUSED) {
		return 0
	}
	return min(max(2*last, time.Millisecond), 100*time.Millisecond)
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, timer *time.Timer, d time.Duration) {
	timer.Reset(d)
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// schedule hands out operations to the workers. In a closed loop an
// operation starts when a worker is free; in an open loop operation i is due
// at start + i/rate whoever is free, and its latency counts from then.
type schedule struct {
	start  time.Time
	end    time.Time // no operation is due at or after end; zero: none
	stopBy time.Time // open loop: give up on the backlog after this
	limit  int64     // operations in all; 0: no limit
	rate   float64   // open loop, operations per second; 0: closed loop
	issued atomic.Int64
}

func newSchedule(cfg Config, start time.Time) *schedule {
	s := &schedule{start: start, limit: cfg.Requests}
	if cfg.Duration > 0 {
		s.end = start.Add(cfg.Duration)
	}
	if cfg.Rate > 0 {
		s.rate = cfg.Rate
		if s.limit > 0 {
			if end := s.due(s.limit); s.end.IsZero() || end.Before(s.end) {
				s.end = end
			}
		}
		s.stopBy = s.end.Add(openLoopGrace)
	}
	return s
}

// due is when operation i of an open loop should start. It is computed from
// i, not by adding intervals, so rounding never drifts.
func (s *schedule) due(i int64) time.Time {
	return s.start.Add(time.Duration(float64(i) / s.rate * float64(time.Second)))
}

// next reserves the next operation and returns when it is due, waiting for
// it in an open loop. It returns false when the run is over.
func (s *schedule) next(ctx context.Context, timer *time.Timer) (time.Time, bool) {
	if ctx.Err() != nil {
		return time.Time{}, false
	}
	i := s.issued.Add(1) - 1
	if s.limit > 0 && i >= s.limit {
		return time.Time{}, false
	}
	now := time.Now()
	if s.rate == 0 {
		return now, s.end.IsZero() || now.Before(s.end)
	}
	due := s.due(i)
	if !due.Before(s.end) || now.After(s.stopBy) {
		return time.Time{}, false
	}
	if wait := due.Sub(now); wait > 0 {
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
	return due, true
}

// expected is how many operations an open loop meant to start: those due
// before its end.
func (s *schedule) expected() int64 {
	n := int64(math.Ceil(s.end.Sub(s.start).Seconds() * s.rate))
	for n > 0 && !s.due(n-1).Before(s.end) {
		n-- // float rounding in the product above
	}
	if s.limit > 0 {
		n = min(n, s.limit)
	}
	return n
}

// recorder is one worker's tally; only that worker touches it until the
// run ends, so recording takes no lock.
type recorder struct {
	hist    *Histogram
	status  map[int]int64
	errs    map[string]int64
	items   int64
	acked   []int64 // per counter, for verification
	unknown []int64
}

func newRecorder(counters int) *recorder {
	return &recorder{
		hist:    NewHistogram(),
		status:  map[int]int64{},
		errs:    map[string]int64{},
		acked:   make([]int64, counters),
		unknown: make([]int64, counters),
	}
}

func (r *recorder) record(o Outcome, latency time.Duration) {
	if o.Key >= 0 && o.Key < len(r.acked) {
		acked, unknown := classify(o)
		if acked {
			r.acked[o.Key]++
		}
		if unknown {
			r.unknown[o.Key]++
		}
	}
	if o.Err != nil {
		r.errs[errorKind(o.Err)]++
		return
	}
	r.hist.Record(latency)
	r.status[o.Status]++
	if o.Status/100 == 2 {
		r.items += int64(max(o.Items, 1))
	}
}

// errorKind names an error without its URL, so errors group into a few
// kinds instead of one per key.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	if isTimeout(err) {
		return "timeout"
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u // the innermost error is the cause, free of addresses
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// liveCounts feeds the progress line and the timeline while workers run.
type liveCounts struct {
	done, failed atomic.Int64
}

func (l *liveCounts) add(o Outcome) {
	l.done.Add(1)
	if o.Err != nil || o.Status/100 != 2 {
		l.failed.Add(1)
	}
}

// sample is the live counts at one moment.
type sample struct {
	at           time.Duration
	done, failed int64
}

// sampleInterval is the timeline's resolution; progress prints every
// progressEvery samples.
const (
	sampleInterval = 100 * time.Millisecond
	progressEvery  = 10
)

// sampleLoop records the live counts until stop, printing a line each second.
func sampleLoop(start time.Time, live *liveCounts, progress io.Writer, stop <-chan struct{}) []sample {
	tick := time.NewTicker(sampleInterval)
	defer tick.Stop()
	samples := []sample{{}}
	take := func(now time.Time) sample {
		s := sample{now.Sub(start), live.done.Load(), live.failed.Load()}
		samples = append(samples, s)
		return s
	}
	for {
		select {
		case <-stop:
			// A last sliver of an interval would plot as a spike: fold it
			// into the interval before.
			if last := samples[len(samples)-1]; len(samples) > 1 && time.Since(start)-last.at < sampleInterval/2 {
				samples = samples[:len(samples)-1]
			}
			take(time.Now())
			return samples
		case now := <-tick.C:
			s := take(now)
			if progress != nil && (len(samples)-1)%progressEvery == 0 {
				prev := samples[len(samples)-1-progressEvery]
				rate := float64(s.done-prev.done) / (s.at - prev.at).Seconds()
				fmt.Fprintf(progress, "%6.1fs %10d ops %10.0f ops/s %8d not ok\n",
					s.at.Seconds(), s.done, rate, s.failed)
			}
		}
	}
}
