package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kvd/kvd/bench"
	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/client/clienttest"
)

// Every scenario against a real kvd (HTTP, actors, SQLite files), closed
// and open loop: each request is answered, only with the statuses the
// scenario allows, and -verify finds every acknowledged write counted once.
func TestRun_EveryScenarioAgainstARealKvd(t *testing.T) {
	kvd := clienttest.New(t, clienttest.Options{})
	const n = 200
	for _, tc := range []struct {
		name    string
		args    []string
		allowed []string // statuses besides 200
		verify  bool
	}{
		{name: "noop", args: []string{"-scenario", "noop"}},
		{name: "get", args: []string{"-scenario", "get", "-keys", "50"}},
		{name: "put", args: []string{"-scenario", "put", "-value-size", "300"}},
		{name: "mixed", args: []string{"-scenario", "mixed", "-keys", "50", "-read-ratio", "0.5"}},
		{name: "batch-set", args: []string{"-scenario", "batch-set", "-keys", "100", "-batch", "20"}},
		{name: "incr-hot", args: []string{"-scenario", "incr-hot"}, verify: true},
		{name: "incr-spread", args: []string{"-scenario", "incr-spread", "-keys", "20"}, verify: true},
		{name: "cas", args: []string{"-scenario", "cas", "-keys", "2"}, allowed: []string{"412"}, verify: true},
		{name: "cas-etag", args: []string{"-scenario", "cas", "-keys", "2", "-etag"}, allowed: []string{"412"}, verify: true},
		{name: "incr-open-loop", args: []string{"-scenario", "incr-spread", "-keys", "5", "-rate", "1000"}, verify: true},
		{name: "watch", args: []string{"-scenario", "watch", "-watchers", "3", "-keys", "10"}},
		{name: "watch-each", args: []string{"-scenario", "watch", "-watchers", "5", "-watch-each", "-rate", "1000"}},
		{name: "incr-hot-watched", args: []string{"-scenario", "incr-hot", "-watchers", "1"}, verify: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-url", kvd.URL, "-db", "bench-" + tc.name, "-n", strconv.Itoa(n), "-c", "8", "-json", "-quiet"}, tc.args...)
			if tc.verify {
				args = append(args, "-verify")
			}
			var stdout, stderr bytes.Buffer
			if err := run(t.Context(), args, &stdout, &stderr); err != nil {
				t.Fatalf("run %v: %v\n%s", args, err, stderr.String())
			}
			var res struct {
				Requests int64            `json:"requests"`
				Errors   int64            `json:"errors"`
				Dropped  int64            `json:"dropped"`
				Items    int64            `json:"items"`
				Status   map[string]int64 `json:"status"`
				Verify   *struct {
					OK      bool   `json:"ok"`
					Applied int64  `json:"applied"`
					Message string `json:"message"`
				} `json:"verify"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
			}
			if res.Requests != n || res.Errors != 0 || res.Dropped != 0 {
				t.Fatalf("got %d answered, %d errors, %d dropped; want %d, 0, 0", res.Requests, res.Errors, res.Dropped, n)
			}
			for status, count := range res.Status {
				if status != "200" && !slices.Contains(tc.allowed, status) {
					t.Errorf("got %d answers of %s (statuses %v)", count, status, res.Status)
				}
			}
			if res.Status["200"] == 0 {
				t.Errorf("no 200 at all: %v", res.Status)
			}
			if tc.name == "batch-set" && res.Items != n*20 {
				t.Errorf("got %d items written, want %d", res.Items, n*20)
			}
			if tc.verify && (res.Verify == nil || !res.Verify.OK || res.Verify.Applied != res.Status["200"]) {
				t.Errorf("got verification %+v, want ok with %d applied", res.Verify, res.Status["200"])
			}
			if tc.name != "noop" {
				if _, err := os.Stat(filepath.Join(kvd.DataDir, "bench-"+tc.name+".db")); err != nil {
					t.Errorf("database file: %v", err)
				}
			}
		})
	}
}

// Against a real kvd that wants a token, a run with the wrong one gets a
// 401 for every write: it still reports, then fails as a whole.
// The watchers of a watch run see each acknowledged write once, and say
// how long after its acknowledgement.
func TestRun_WatchersSeeEveryWriteOnce(t *testing.T) {
	kvd := clienttest.New(t, clienttest.Options{})
	for _, args := range [][]string{
		{"-scenario", "watch", "-watchers", "4", "-keys", "20"},
		{"-scenario", "watch", "-watchers", "6", "-watch-each"},
		{"-scenario", "incr-hot", "-watchers", "2"},
	} {
		full := append([]string{"-url", kvd.URL, "-db", "watch-" + args[1] + strconv.Itoa(len(args)), "-n", "300", "-c", "8", "-json", "-quiet"}, args...)
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), full, &stdout, &stderr); err != nil {
			t.Fatalf("run %v: %v\n%s", full, err, stderr.String())
		}
		var res struct {
			Succeeded int64              `json:"succeeded"`
			Watch     *bench.WatchReport `json:"watch"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.Watch == nil {
			t.Fatalf("%v: report %s: %v", args, stdout.String(), err)
		}
		w := res.Watch
		perWatcher := res.Succeeded
		if args[len(args)-1] == "-watch-each" {
			perWatcher = res.Succeeded / int64(w.Watchers) // about: each sees its key's writes
		}
		if !w.OK() || w.Events != w.Expected || w.Events < perWatcher || w.Watchers != map[bool]int{true: 6, false: 4}[args[3] == "6"] && args[1] != "incr-hot" {
			t.Fatalf("%v: got %+v (%d writes acknowledged)", args, *w, res.Succeeded)
		}
		if args[1] == "watch" && w.Latency.Max <= 0 {
			t.Fatalf("%v: no event latency measured: %+v", args, *w)
		}
	}
}

func TestRun_AWrongTokenFailsTheRun(t *testing.T) {
	kvd := clienttest.New(t, clienttest.Options{Tokens: []string{"right"}})
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-url", kvd.URL, "-token", "wrong", "-scenario", "put", "-n", "20", "-c", "2", "-json", "-quiet"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no operation succeeded (status 401: 20)") {
		t.Fatalf("got error %v, want one saying no operation succeeded", err)
	}
	var res struct {
		Succeeded int64 `json:"succeeded"`
		Requests  int64 `json:"requests"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.Requests != 20 || res.Succeeded != 0 {
		t.Errorf("report: %+v, %v; want 20 answered, 0 succeeded", res, err)
	}
}

// -dbs 8 against a real kvd: incr-spread with -verify and batch-set each
// create 8 database files, and reading every database back over HTTP finds
// the totals the report gives: each database's counters add up to its
// acknowledged increments, and every batch-set database holds every key.
func TestRun_SpreadsOverEightDatabasesOfARealKvd(t *testing.T) {
	kvd := clienttest.New(t, clienttest.Options{})
	const dbs, n = 8, 400
	kv, err := client.New(client.Config{URL: kvd.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kv.Close)
	runJSON := func(t *testing.T, args ...string) (res struct {
		DBs      int              `json:"dbs"`
		Requests int64            `json:"requests"`
		Status   map[string]int64 `json:"status"`
		Verify   *bench.Verification
	}) {
		t.Helper()
		args = append([]string{"-url", kvd.URL, "-dbs", strconv.Itoa(dbs), "-n", strconv.Itoa(n), "-c", "8", "-json", "-quiet"}, args...)
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), args, &stdout, &stderr); err != nil {
			t.Fatalf("run %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
		}
		if res.DBs != dbs || res.Requests != n || res.Status["200"] != n {
			t.Fatalf("got dbs %d, %d answered, status %v; want %d and %d × 200", res.DBs, res.Requests, res.Status, dbs, n)
		}
		return res
	}
	files := func(t *testing.T, prefix string) {
		t.Helper()
		for i := range dbs {
			if _, err := os.Stat(filepath.Join(kvd.DataDir, fmt.Sprintf("%s-%d.db", prefix, i))); err != nil {
				t.Errorf("database file %d: %v", i, err)
			}
		}
		if _, err := os.Stat(filepath.Join(kvd.DataDir, prefix+".db")); err == nil {
			t.Errorf("%s.db exists: with -dbs the plain name is not used", prefix)
		}
	}

	t.Run("incr-spread", func(t *testing.T) {
		res := runJSON(t, "-db", "spread", "-scenario", "incr-spread", "-keys", "20", "-verify")
		if v := res.Verify; v == nil || !v.OK || v.Applied != n || len(v.PerDB) != dbs {
			t.Fatalf("got verification %+v, want ok, %d applied over %d databases", v, n, dbs)
		}
		files(t, "spread")
		var total int64
		for _, d := range res.Verify.PerDB {
			var stored int64
			list, err := kv.List(t.Context(), client.DB(d.DB), client.Prefix("kvbench/counter/"), client.Limit(1000))
			if err != nil {
				t.Fatalf("list %s: %v", d.DB, err)
			}
			for _, key := range list.Keys {
				e, err := kv.Get(t.Context(), key, client.DB(d.DB))
				if err != nil {
					t.Fatalf("get %s in %s: %v", key, d.DB, err)
				}
				v, err := strconv.ParseInt(string(e.Data), 10, 64)
				if err != nil {
					t.Fatalf("%s in %s holds %q", key, d.DB, e.Data)
				}
				stored += v
			}
			// Round robin: 400 operations from 8 workers fall 50 to a database.
			if stored != d.Acknowledged || stored != n/dbs {
				t.Errorf("database %s: counters add up to %d, report acknowledged %d, want %d", d.DB, stored, d.Acknowledged, n/dbs)
			}
			total += stored
		}
		if total != n {
			t.Errorf("counters add up to %d over all databases, want %d", total, n)
		}
	})

	t.Run("batch-set", func(t *testing.T) {
		// One body of all 100 keys, so each batch a database takes writes
		// every key: 50 batches per database.
		runJSON(t, "-db", "batch", "-scenario", "batch-set", "-keys", "100", "-batch", "100")
		files(t, "batch")
		for i := range dbs {
			db := fmt.Sprintf("batch-%d", i)
			list, err := kv.List(t.Context(), client.DB(db), client.Limit(1000))
			if err != nil {
				t.Fatalf("list %s: %v", db, err)
			}
			if list.Count != 100 {
				t.Errorf("database %s holds %d keys, want 100", db, list.Count)
			}
			h, err := kv.History(t.Context(), "kvbench/000042", client.DB(db), client.Limit(1000))
			if err != nil || len(h) != n/dbs {
				t.Errorf("database %s: kvbench/000042 has %d versions (%v), want %d: one per batch", db, len(h), err, n/dbs)
			}
		}
	})
}

// -watchers 0 or less, given on the command line, is a mistake as -c 0
// is, not a wish for the default 10 watchers: nothing runs.
func TestRun_WatchersOfZeroOrLessAreRefused(t *testing.T) {
	kvd := clienttest.New(t, clienttest.Options{})
	for _, n := range []string{"0", "-3"} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"-url", kvd.URL, "-db", "bench-watchers", "-scenario", "watch", "-n", "20", "-quiet", "-watchers", n}, &stdout, &stderr)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "-watchers") || stdout.Len() != 0 {
			t.Errorf("-watchers %s: got %v (exit %d), stdout %q; want a usage error naming -watchers, and no run", n, err, exitCode(err), stdout.String())
		}
	}
}
