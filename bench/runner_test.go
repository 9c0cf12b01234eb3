package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// run is Run with the test's context, failing the test on error.
func run(tb testing.TB, cfg Config) *Result {
	tb.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Run: %v", err)
	}
	return res
}

func TestRun_ClosedLoopStopsAfterDuration(t *testing.T) {
	_, u := newFake(t, nil)
	start := time.Now()
	res := run(t, Config{URL: u, Scenario: "noop", Conns: 4, Duration: 200 * time.Millisecond})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("run took %v, want about 200ms", took)
	}
	if res.Requests == 0 || res.Status["200"] != res.Requests || res.Errors != 0 {
		t.Errorf("got %d requests, status %v, %d errors; want all 200", res.Requests, res.Status, res.Errors)
	}
	if res.Hist.Count() != res.Requests {
		t.Errorf("histogram holds %d values, want %d", res.Hist.Count(), res.Requests)
	}
	if res.Mode != "closed" || len(res.Timeline) == 0 {
		t.Errorf("got mode %q and %d timeline points, want closed and some", res.Mode, len(res.Timeline))
	}
}

func TestRun_ClosedLoopStopsAfterRequests(t *testing.T) {
	f, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "noop", Conns: 4, Requests: 300})
	if res.Requests != 300 || f.healthz.Load() != 300 {
		t.Errorf("got %d answered, server saw %d; want 300 and 300", res.Requests, f.healthz.Load())
	}
}

func TestRun_OpenLoopKeepsTheRate(t *testing.T) {
	_, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "noop", Conns: 4, Rate: 400, Duration: 500 * time.Millisecond})
	if res.Requests < 190 || res.Requests > 200 {
		t.Errorf("got %d requests, want 200 due in 500ms at 400/s (a few may miss)", res.Requests)
	}
	if res.Mode != "open" || res.Dropped != 200-res.Requests-res.Errors {
		t.Errorf("got mode %q, dropped %d", res.Mode, res.Dropped)
	}
	if res.Elapsed < 0.45 || res.Elapsed > 1.5 {
		t.Errorf("elapsed %.2fs, want about 0.5s", res.Elapsed)
	}
}

func TestRun_OpenLoopWithCountStops(t *testing.T) {
	_, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "noop", Conns: 2, Rate: 1000, Requests: 100})
	if res.Requests != 100 || res.Dropped != 0 {
		t.Errorf("got %d requests, %d dropped; want 100, 0", res.Requests, res.Dropped)
	}
}

// A 200ms stall on one request holds up everything due behind it. The open
// loop charges that wait to each of them; the closed loop, which simply
// stops sending, reports it as one slow request.
func TestRun_OpenLoopCountsAStallFromDueTime(t *testing.T) {
	stalled := func(tb testing.TB) string {
		_, u := newFake(tb, &fakeKV{stallAt: 10, stall: 200 * time.Millisecond})
		return u
	}
	open := run(t, Config{URL: stalled(t), Scenario: "noop", Conns: 1, Rate: 200, Duration: 500 * time.Millisecond})
	if p90 := open.Hist.Percentile(90); p90 < 100*time.Millisecond {
		t.Errorf("open loop p90 %v, want >= 100ms: the stall must show", p90)
	}
	closed := run(t, Config{URL: stalled(t), Scenario: "noop", Conns: 1, Duration: 500 * time.Millisecond})
	if p90 := closed.Hist.Percentile(90); p90 > 50*time.Millisecond {
		t.Errorf("closed loop p90 %v, want small: it hides the stall", p90)
	}
	if max := closed.Hist.Max(); max < 200*time.Millisecond {
		t.Errorf("closed loop max %v, want >= 200ms", max)
	}
}

func TestRun_GetPreloadsEveryKey(t *testing.T) {
	f, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "get", Conns: 4, Requests: 500, Keys: 250, ValueSize: 64})
	if res.Status["200"] != 500 || len(res.Status) != 1 {
		t.Errorf("got status %v, want 500 × 200: no GET may miss", res.Status)
	}
	if f.len() != 250 {
		t.Errorf("server holds %d keys, want 250", f.len())
	}
	if v, _ := f.value(DefaultDB, "kvbench/000249"); len(v) != 64 {
		t.Errorf("got value of %d bytes, want 64", len(v))
	}
}

func TestRun_PutWritesToTheDB(t *testing.T) {
	f, u := newFake(t, nil)
	res := run(t, Config{URL: u, DB: "other", Scenario: "put", Conns: 4, Requests: 200, Keys: 10})
	if res.Status["200"] != 200 || f.puts.Load() != 200 {
		t.Errorf("got status %v, %d puts; want 200 × 200", res.Status, f.puts.Load())
	}
	if _, ok := f.value("other", "kvbench/000003"); !ok {
		t.Error("key kvbench/000003 not written to db other")
	}
}

func TestRun_MixedKeepsTheReadRatio(t *testing.T) {
	f, u := newFake(t, nil)
	run(t, Config{URL: u, Scenario: "mixed", Conns: 4, Requests: 2000, Keys: 100, ReadRatio: 0.8})
	gets := float64(f.gets.Load())
	if ratio := gets / 2000; ratio < 0.75 || ratio > 0.85 {
		t.Errorf("got read ratio %.3f, want 0.8", ratio)
	}
}

func TestRun_BatchSetCountsItems(t *testing.T) {
	f, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "batch-set", Conns: 2, Requests: 20, Keys: 250})
	if res.Items != 2000 || res.ItemsRate <= res.Throughput {
		t.Errorf("got %d items at %.0f/s (%.0f req/s), want 2000 items, 100 per request", res.Items, res.ItemsRate, res.Throughput)
	}
	if f.len() > 250 {
		t.Errorf("server holds %d keys, want at most 250", f.len())
	}
}

func TestRun_SendsTheBearerToken(t *testing.T) {
	_, u := newFake(t, &fakeKV{token: "s3cret"})
	with := run(t, Config{URL: u, Token: "s3cret", Scenario: "put", Conns: 2, Requests: 20})
	without := run(t, Config{URL: u, Scenario: "put", Conns: 2, Requests: 20})
	if with.Status["200"] != 20 || without.Status["401"] != 20 {
		t.Errorf("with token %v, without %v; want 20 × 200 and 20 × 401", with.Status, without.Status)
	}
}

func TestRun_CountsTransportErrors(t *testing.T) {
	// Port 1 on loopback: nothing listens there, so every dial is refused.
	res, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1", Scenario: "noop", Conns: 2, Requests: 10})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Errors != 10 || res.ErrorKinds["connection refused"] != 10 {
		t.Errorf("got %d errors %v, want 10 × connection refused", res.Errors, res.ErrorKinds)
	}
}

// With kvd down, a closed loop backs off between refused dials instead of
// dialing as fast as the refusals come back.
func TestRun_BacksOffWhileConnectionsAreRefused(t *testing.T) {
	res, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1", Scenario: "noop", Conns: 4, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// 1+2+4+...+64 ms, then 100 ms at a time: about 10 tries a worker.
	if res.Errors == 0 || res.Errors > 100 || res.ErrorKinds["connection refused"] != res.Errors {
		t.Errorf("got %d errors %v in 500 ms of 4 workers, want a few dozen refusals", res.Errors, res.ErrorKinds)
	}
}

func TestRun_RejectsBadConfig(t *testing.T) {
	_, u := newFake(t, nil)
	for name, cfg := range map[string]Config{
		"unknown scenario":   {URL: u, Scenario: "nope"},
		"verify without sum": {URL: u, Scenario: "get", Verify: true},
		"negative rate":      {URL: u, Scenario: "noop", Rate: -1},
		"bad url":            {URL: "ftp://x", Scenario: "noop"},
		"batch too large":    {URL: u, Scenario: "batch-set", BatchSize: 101},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}

func TestRun_StopsWhenCanceled(t *testing.T) {
	_, u := newFake(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, Config{URL: u, Scenario: "noop", Conns: 2, Duration: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.Interrupted || res.Elapsed > 5 {
		t.Errorf("got interrupted=%v after %.1fs, want an early stop", res.Interrupted, res.Elapsed)
	}
}

// With DBs, every scenario spreads its operations evenly over DB-0 …
// DB-(n-1), each created by its first write, and never touches DB itself.
func TestRun_SpreadsEveryScenarioOverTheDatabases(t *testing.T) {
	const dbs, keys, requests = 4, 20, 400
	for _, tc := range []struct {
		scenario    string
		perOp, prep int64 // requests per operation, and per database before the load
	}{
		{"get", 1, 1}, // one batch preloads the keys
		{"put", 1, 0},
		{"mixed", 1, 1},
		{"batch-set", 1, 0},
		{"incr-hot", 1, 1},    // the initial value of the one key
		{"incr-spread", 1, 1}, // the initial values, in one batch/get
		{"cas", 2, keys},      // a GET and a PUT per attempt; a PUT of 0 per key first
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			f, u := newFake(t, nil)
			res := run(t, Config{URL: u, DB: "load", DBs: dbs, Scenario: tc.scenario, Keys: keys, Conns: 4, Requests: requests})
			if res.DBs != dbs || res.Errors != 0 || res.Status["200"]+res.Status["412"] != requests {
				t.Fatalf("got dbs %d, status %v, %d errors; want %d and every operation answered", res.DBs, res.Status, res.Errors, dbs)
			}
			if tc.scenario == "get" && res.Status["200"] != requests {
				t.Errorf("got status %v: a GET missed, so some database was not preloaded", res.Status)
			}
			exist, ops := f.databases()
			if len(exist) != dbs || exist["load"] {
				t.Errorf("databases %v, want load-0 … load-3 only", exist)
			}
			for i := range dbs {
				db := fmt.Sprintf("load-%d", i)
				// Operation i goes to database i mod 4, whichever worker
				// sends it.
				if want := requests/dbs*tc.perOp + tc.prep; ops[db] != want {
					t.Errorf("database %s got %d requests, want %d (all: %v)", db, ops[db], want, ops)
				}
				// Preloaded, reset or batched keys are all there; random
				// writes may have missed a few.
				n, want := f.keysIn(db), keys
				if tc.scenario == "incr-hot" {
					want = 1
				}
				full := tc.scenario != "put" && tc.scenario != "incr-spread"
				if n > want || n < 1 || full && n != want {
					t.Errorf("database %s holds %d keys, want %d", db, n, want)
				}
			}
		})
	}
}

// One database is DB itself, as before -dbs existed.
func TestRun_OneDatabaseIsTheDBItself(t *testing.T) {
	f, u := newFake(t, nil)
	res := run(t, Config{URL: u, DB: "solo", DBs: 1, Scenario: "incr-spread", Keys: 5, Conns: 2, Requests: 50, Verify: true})
	if exist, _ := f.databases(); len(exist) != 1 || !exist["solo"] {
		t.Errorf("databases %v, want solo alone", exist)
	}
	if res.DBs != 1 || !res.Verify.OK || res.Verify.PerDB != nil {
		t.Errorf("got dbs %d, verification %+v; want 1, ok, no per-database totals", res.DBs, res.Verify)
	}
}
