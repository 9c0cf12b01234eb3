package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/client/clienttest"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/kvdtest"
)

// The history golden pins every history-related answer of kvd (history
// pages, time travel, snapshots, diffs, keys-at, watch replays) for a fixed
// workload, so that a change of how history is stored can prove it answers
// exactly as before; v1-history.db is the database that workload leaves,
// for the migration check (history_migration_test.go).
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/history_golden.txt and testdata/v1-history.db")

const (
	goldenPath  = "testdata/history_golden.txt"
	fixturePath = "testdata/v1-history.db"
	goldenDB    = "hist"
	goldenOther = "orders"      // the second table, named with the table parameter
	goldenKeep  = 8             // small, so per-key pruning happens often
	goldenAge   = 3 * time.Hour // prunes phase 1's first hours at the sweeps
)

// goldenStart is where phase 1's clock starts (newTestServer's too).
var goldenStart = time.Unix(1_700_000_000, 0)

// goldenTables are the two tables of the workload: their query suffix and keys.
var goldenTables = []struct {
	name, q string
	keys    []string
}{
	{"kv_store", "", []string{"user/alice", "user/bob", "user/carol", "cfg/theme", "cfg/limits", "cnt/hits",
		"cnt/misses", "tmp/session1", "tmp/session2", "doc/a", "doc/b", "bin/blob", "gap/k", "arr/q", "long/x"}},
	{goldenOther, "&table=" + goldenOther, []string{"ord/1", "ord/2", "ord/3", "ord/4", "ord/5", "cnt/orders",
		"tmp/o", "long/y"}},
}

// goldenStep is one planned action: advance the clock, then send a request (or
// run a sweep, when method is "SWEEP").
type goldenStep struct {
	advance      time.Duration
	method, path string
	body, ctype  string
	sweepAfter   bool // a read that may find a key expired: flush the expiry it queues
}

// goldenModel is what the read phase probes, known from the plan alone (no
// answer), so the migration test can rebuild it without replaying writes.
type goldenModel struct {
	start, end int64              // Unix ms of the first planned moment and of the last
	times      map[string][]int64 // per "<table>|<key>": planned write times (ms)
	all        []int64            // every planned write time, in order
}

func newGoldenModel(start time.Time) *goldenModel {
	ms := start.UnixMilli()
	return &goldenModel{start: ms, end: ms, times: map[string][]int64{}}
}

// planner draws a workload from a seeded generator; it never looks at an
// answer, so the same seed plans the same requests.
type planner struct {
	rng   *rand.Rand
	m     *goldenModel
	now   int64 // ms
	steps []goldenStep
	n     int
}

func (p *planner) advance() time.Duration {
	choices := []time.Duration{0, 0, 0, time.Millisecond, 7 * time.Millisecond, 250 * time.Millisecond,
		999 * time.Millisecond, time.Second, 3 * time.Second, 17 * time.Second, 61 * time.Second, 5 * time.Minute}
	return choices[p.rng.IntN(len(choices))]
}

// add plans a request at now+adv; keys are the keys it writes.
func (p *planner) add(adv time.Duration, method, path, body, ctype string, table int, keys ...string) {
	p.now += adv.Milliseconds()
	p.m.end = p.now
	p.steps = append(p.steps, goldenStep{advance: adv, method: method, path: path, body: body, ctype: ctype})
	p.m.all = append(p.m.all, p.now)
	for _, k := range keys {
		id := goldenTables[table].name + "|" + k
		p.m.times[id] = append(p.m.times[id], p.now)
	}
}

func (p *planner) sweep(adv time.Duration) {
	p.now += adv.Milliseconds()
	p.m.end = p.now
	p.steps = append(p.steps, goldenStep{advance: adv, method: "SWEEP"})
}

func (p *planner) value(key string) (body, ctype string) {
	p.n++
	switch r := p.rng.IntN(10); {
	case r < 4:
		return fmt.Sprintf("%s#%d", key, p.n), "text/plain"
	case r < 7:
		return fmt.Sprintf(`{"k":%q,"n":%d,"tags":["t%d"],"ok":%v}`, key, p.n, p.rng.IntN(5), r == 5), "application/json"
	case r < 8:
		return string([]byte{0xff, 0x00, byte(p.n), byte(p.n >> 8), 0x80}), "application/octet-stream"
	case r < 9:
		return "", "" // empty, no Content-Type
	}
	return fmt.Sprintf("plain %d", p.n), "" // not JSON, sent with the client's default
}

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func keyPath(key, query string) string {
	return "/api/v1/sqlite/kv/" + url.PathEscape(key) + "?db=" + goldenDB + "&create_db_if_missing=true" + query
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// plan draws n actions over both tables.
func (p *planner) plan(n int) {
	for i := 0; i < n; i++ {
		ti := 0
		if p.rng.IntN(3) == 0 {
			ti = 1
		}
		tb := goldenTables[ti]
		// Plain writes leave counters, documents and the array to their own
		// writes, so that those mostly succeed.
		plain := slices.DeleteFunc(slices.Clone(tb.keys), func(k string) bool {
			return strings.HasPrefix(k, "cnt/") || strings.HasPrefix(k, "cfg/") || k == "arr/q"
		})
		key := pick(p.rng, plain)
		adv := p.advance()
		if i > 0 && i%97 == 0 {
			p.sweep(adv)
			continue
		}
		switch r := p.rng.IntN(100); {
		case r < 30: // the long keys, a few hundred versions
			key = map[int]string{0: "long/x", 1: "long/y"}[ti]
			body, ct := p.value(key)
			p.add(adv, "PUT", keyPath(key, tb.q), body, ct, ti, key)
		case r < 50:
			body, ct := p.value(key)
			p.add(adv, "PUT", keyPath(key, tb.q), body, ct, ti, key)
		case r < 55: // a TTL: some expire before the next write
			key = pick(p.rng, []string{"tmp/session1", "tmp/session2", "tmp/o"})
			ti = map[bool]int{true: 1, false: 0}[key == "tmp/o"]
			body, ct := p.value(key)
			p.add(adv, "PUT", keyPath(key, goldenTables[ti].q+fmt.Sprintf("&ttl=%d", pick(p.rng, []int{1, 2, 5, 30, 600}))), body, ct, ti, key)
		case r < 59: // unrecorded: a gap
			body, ct := p.value(key)
			p.add(adv, "PUT", keyPath(key, tb.q+"&history=false"), body, ct, ti, key)
		case r < 63: // JSON path writes
			key = pick(p.rng, []string{"cfg/theme", "cfg/limits"})
			path := pick(p.rng, []string{"prefs.theme", "limits.max", "a.b[0]", "$.top"})
			p.add(adv, "PUT", keyPath(key, "&path="+url.QueryEscape(path)), fmt.Sprintf(`{"v":%d}`, p.rng.IntN(100)), "application/json", 0, key)
		case r < 73: // counters
			key = pick(p.rng, []string{"cnt/hits", "cnt/misses", "cnt/orders"})
			ti = map[bool]int{true: 1, false: 0}[key == "cnt/orders"]
			op := pick(p.rng, []string{"incr", "incr", "decr"})
			q := goldenTables[ti].q + fmt.Sprintf("&delta=%d", 1+p.rng.IntN(20))
			if p.rng.IntN(8) == 0 {
				q += "&history=false"
			}
			p.add(adv, "POST", "/api/v1/sqlite/kv/"+url.PathEscape(key)+"/"+op+"?db="+goldenDB+"&create_db_if_missing=true"+q, "", "", ti, key)
		case r < 80:
			q := tb.q
			if p.rng.IntN(6) == 0 {
				q += "&history=false"
			}
			p.add(adv, "DELETE", keyPath(key, q), "", "", ti, key)
		case r < 84:
			var items []string
			var keys []string
			for range 2 + p.rng.IntN(4) {
				k := pick(p.rng, plain)
				body, ct := p.value(k)
				item := fmt.Sprintf(`{"key":%q,"value":%s`, k, jsonString(body))
				if ct == "application/octet-stream" {
					item = fmt.Sprintf(`{"key":%q,"value":%q,"encoding":"base64"`, k, base64.StdEncoding.EncodeToString([]byte(body)))
				}
				if p.rng.IntN(3) == 0 {
					item += fmt.Sprintf(`,"ttl":%d`, pick(p.rng, []int{1, 3, 60}))
				}
				if p.rng.IntN(3) == 0 {
					item += `,"content_type":"text/x-golden"`
				}
				items, keys = append(items, item+"}"), append(keys, k)
			}
			p.add(adv, "POST", "/api/v1/sqlite/kv/batch/set?db="+goldenDB+tb.q, `{"items":[`+strings.Join(items, ",")+`]}`, "application/json", ti, keys...)
		case r < 86:
			var keys []string
			for range 1 + p.rng.IntN(4) {
				keys = append(keys, pick(p.rng, tb.keys))
			}
			p.add(adv, "POST", "/api/v1/sqlite/kv/batch/delete?db="+goldenDB+tb.q, `{"keys":["`+strings.Join(keys, `","`)+`"]}`, "application/json", ti, keys...)
		case r < 89:
			p.add(adv, "POST", "/api/v1/sqlite/kv/"+url.PathEscape(key)+"/rollback?db="+goldenDB+tb.q+fmt.Sprintf("&steps=%d", 1+p.rng.IntN(3)), "", "", ti, key)
		case r < 91: // a table rollback to a planned moment, maybe of a few keys, maybe a dry run
			to := p.m.start - 1000
			if len(p.m.all) > 0 { // mostly recent: older history is pruned
				to = pick(p.rng, p.m.all[max(0, len(p.m.all)-40):]) + int64(p.rng.IntN(3)-1)
			}
			q := fmt.Sprintf("&to_timestamp=%d.%03d", to/1000, to%1000)
			if p.rng.IntN(4) != 0 {
				q += "&confirm=yes"
			} else {
				q += "&dry_run=true"
			}
			body, keys := `{}`, tb.keys
			switch p.rng.IntN(3) {
			case 0:
				keys = []string{pick(p.rng, tb.keys), pick(p.rng, tb.keys)}
				body = `{"keys":["` + strings.Join(keys, `","`) + `"]}`
			case 1:
				body = `{"exclude_keys":["` + pick(p.rng, tb.keys) + `"]}`
			}
			p.add(adv, "POST", "/api/v1/sqlite/kv/rollback?db="+goldenDB+tb.q+q, body, "application/json", ti, keys...)
		case r < 95: // a JSON array
			key = "arr/q"
			switch p.rng.IntN(3) {
			case 0:
				p.add(adv, "POST", "/api/v1/sqlite/kv/arr%2Fq/pop?db="+goldenDB, "", "", 0, key)
			default:
				p.add(adv, "POST", "/api/v1/sqlite/kv/arr%2Fq/push?db="+goldenDB+"&create_db_if_missing=true", fmt.Sprintf(`{"i":%d}`, p.rng.IntN(50)), "application/json", 0, key)
			}
		case r < 97: // a read that may find a TTL passed: its expiry is queued, then flushed
			key = pick(p.rng, []string{"tmp/session1", "tmp/session2"})
			p.now += adv.Milliseconds()
			p.m.end = p.now
			p.steps = append(p.steps, goldenStep{advance: adv, method: "GET", path: "/api/v1/sqlite/kv/" + url.PathEscape(key) + "?db=" + goldenDB, sweepAfter: true})
		default: // a burst inside one millisecond
			for j := range 3 + p.rng.IntN(5) {
				k := pick(p.rng, plain)
				body, ct := p.value(k)
				p.add(map[bool]time.Duration{true: adv}[j == 0], "PUT", keyPath(k, tb.q), body, ct, ti, k)
			}
		}
	}
	// Many versions of one key in one millisecond, then TTLs run out.
	for j := range 40 {
		body, ct := p.value("long/x")
		p.add(map[bool]time.Duration{true: time.Second}[j == 0], "PUT", keyPath("long/x", ""), body, ct, 0, "long/x")
	}
	p.sweep(11 * time.Minute)
}

// goldenPlan plans phase 1 and phase 2 (phase 2 continues phase 1's model
// and clock).
func goldenPlan() (phase1, phase2 []goldenStep, m1, m2 *goldenModel) {
	p := &planner{rng: rand.New(rand.NewPCG(20261204, 1)), m: newGoldenModel(goldenStart), now: goldenStart.UnixMilli()}
	p.plan(900)
	phase1 = p.steps
	m1 = &goldenModel{start: p.m.start, end: p.m.end, times: map[string][]int64{}, all: slices.Clone(p.m.all)}
	for k, v := range p.m.times {
		m1.times[k] = slices.Clone(v)
	}
	p.rng, p.steps = rand.New(rand.NewPCG(20261204, 2)), nil
	// Phase 2 writes again to keys pruned long ago and re-creates deleted ones.
	for ti, tb := range goldenTables {
		for _, k := range tb.keys {
			if k != "arr/q" && !strings.HasPrefix(k, "cnt/") {
				body, ct := p.value(k)
				p.add(time.Second, "PUT", keyPath(k, tb.q), body, ct, ti, k)
			}
		}
	}
	p.plan(300)
	return phase1, p.steps, m1, p.m
}

// goldenServer serves dir (bare names live there) on a fake clock at start,
// with the golden's retention; close stops it, merging the WAL.
func goldenServer(t *testing.T, dir string, start time.Time) (ts *testServer, close func()) {
	t.Helper()
	clock := clienttest.NewClock(start)
	srv, err := kvdtest.Start(dir, func(a *actors.Config, _ *httpapi.Config) {
		a.Store.Now, a.Now = clock.Now, clock.Now
		a.Store.HistoryKeep, a.Store.HistoryMaxAge = goldenKeep, goldenAge
		// No wall-clock timers: sweeps run where the plan says, and the
		// database stays open (a reopen would restart the retention dice).
		a.SweepInterval, a.IdleTimeout = 0, 0
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	close = func() {
		if !closed {
			closed = true
			if err := srv.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(close)
	return &testServer{URL: srv.URL, DataDir: srv.DataDir, Clock: clock, Registry: srv.Registry,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}, close
}

// transcript records requests and their answers, one line each.
type transcript struct {
	t   *testing.T
	ts  *testServer
	out strings.Builder
}

func (tr *transcript) section(name string) { fmt.Fprintf(&tr.out, "== %s\n", name) }

// do sends a request and records it with its answer: status, the headers
// a value read carries, and the body (quoted when it is not JSON). The
// Content-Type is written unless it is application/json.
func (tr *transcript) do(method, path, body, ctype string) response {
	tr.t.Helper()
	var h []string
	if ctype != "" {
		h = []string{"Content-Type", ctype}
	}
	r := tr.ts.do(tr.t, method, path, body, h...)
	fmt.Fprintf(&tr.out, "%s %s", method, strings.TrimPrefix(path, "/api/v1/sqlite"))
	if body != "" {
		fmt.Fprintf(&tr.out, " %q", body)
	}
	fmt.Fprintf(&tr.out, "\n  %d", r.Status)
	for _, name := range []string{"Content-Type", "ETag", "X-Created-At", "X-Updated-At", "X-Expire-At"} {
		v := r.Header.Get(name)
		if name == "Content-Type" && v == "application/json" {
			continue // most answers: not repeated on every line
		}
		if v != "" && (name == "Content-Type" || method == "GET" && r.Status == 200) {
			fmt.Fprintf(&tr.out, " %s=%s", name, v)
		}
	}
	if strings.Contains(r.Header.Get("Content-Type"), "application/json") {
		fmt.Fprintf(&tr.out, " %s\n", strings.TrimSpace(string(r.Body)))
	} else {
		fmt.Fprintf(&tr.out, " %q\n", r.Body)
	}
	if r.Status >= 500 {
		tr.t.Errorf("%s %s: %d %s", method, path, r.Status, r.Body)
	}
	return r
}

// run executes a plan on ts, recording every answer.
func (tr *transcript) run(steps []goldenStep) {
	tr.t.Helper()
	for _, s := range steps {
		tr.ts.Clock.Advance(s.advance)
		if s.method == "SWEEP" {
			sweepNow(tr.t, tr.ts, goldenDB)
			fmt.Fprintf(&tr.out, "SWEEP @%d\n", tr.ts.Clock.Now().UnixMilli())
			continue
		}
		tr.do(s.method, s.path, s.body, s.ctype)
		if s.sweepAfter { // the expiry this read may have queued commits now, at this time
			sweepNow(tr.t, tr.ts, goldenDB)
		}
	}
	fmt.Fprintf(&tr.out, "END @%d\n", tr.ts.Clock.Now().UnixMilli())
}

func atMs(ms int64) string { return fmt.Sprintf("%d.%03d", ms/1000, ms%1000) }

// moments picks up to n of xs, evenly spread, first and last included.
func moments(xs []int64, n int) []int64 {
	if len(xs) <= n {
		return xs
	}
	out := make([]int64, 0, n)
	for i := range n {
		out = append(out, xs[i*(len(xs)-1)/(n-1)])
	}
	return out
}

// readAll records every history-related answer about m's keys. It writes
// nothing: every key past its TTL was swept at the plan's end.
func (tr *transcript) readAll(m *goldenModel) {
	tr.t.Helper()
	db := "?db=" + goldenDB
	span := []int64{m.start - 1000}
	for i := range 13 {
		span = append(span, m.start+(m.end-m.start)*int64(i)/12)
	}
	span = append(span, moments(m.all, 12)...)
	span = append(span, m.end+1000)
	slices.Sort(span)
	span = slices.Compact(span)
	for ti, tb := range goldenTables {
		tr.section("table " + tb.name)
		tq := db + tb.q
		// Lists now and keys-at, in pages.
		tr.do("GET", "/api/v1/sqlite/kv"+tq, "", "")
		for off := 0; off < 30; off += 4 {
			tr.do("GET", "/api/v1/sqlite/kv"+tq+fmt.Sprintf("&limit=4&offset=%d", off), "", "")
		}
		tr.do("GET", "/api/v1/sqlite/kv"+tq+"&prefix=tmp%2F", "", "")
		for _, ms := range span {
			tr.do("GET", "/api/v1/sqlite/kv"+tq+"&at_timestamp="+atMs(ms), "", "")
			tr.do("GET", "/api/v1/sqlite/kv"+tq+"&limit=3&after=long%2Fx&at_timestamp="+atMs(ms), "", "")
		}
		// batch/get of every key now.
		tr.do("POST", "/api/v1/sqlite/kv/batch/get"+tq, `{"keys":["`+strings.Join(tb.keys, `","`)+`"]}`, "application/json")
		for _, key := range tb.keys {
			tr.section("key " + tb.name + " " + key)
			kp := "/api/v1/sqlite/kv/" + url.PathEscape(key)
			tr.do("GET", kp+tq, "", "")
			// History pages, following the cursor to the end.
			ops := map[int64]bool{}
			cursor := ""
			for page := 0; page < 200; page++ {
				r := tr.do("GET", kp+"/history"+tq+"&limit=3"+cursor, "", "")
				var h struct {
					Operations []struct {
						OpNumber int64 `json:"op_number"`
					} `json:"operations"`
					NextCursor string `json:"next_cursor"`
				}
				if r.Status != 200 || jsonUnmarshal(r.Body, &h) != nil || h.NextCursor == "" {
					break
				}
				for _, o := range h.Operations {
					ops[o.OpNumber] = true
				}
				cursor = "&cursor=" + url.QueryEscape(h.NextCursor)
			}
			tr.do("GET", kp+"/history"+tq, "", "")
			// Time travel: around each planned write of the key, and across the span.
			// (the newest dozen with their neighbours, where the retained history
			// and its horizon are, and a sample of the older ones).
			times := m.times[tb.name+"|"+key]
			recent := times[max(0, len(times)-12):]
			probe := append(moments(span, 10), moments(times, 8)...)
			for _, w := range recent {
				probe = append(probe, w-1, w, w+1)
			}
			slices.Sort(probe)
			probe = slices.Compact(probe)
			for _, ms := range probe {
				tr.do("GET", kp+tq+"&at_timestamp="+atMs(ms), "", "")
			}
			for _, w := range moments(recent, 6) { // whole seconds: the end of that second
				tr.do("GET", kp+tq+fmt.Sprintf("&at_timestamp=%d", w/1000), "", "")
			}
			if ti == 0 && strings.HasPrefix(key, "cfg/") {
				for _, w := range moments(recent, 5) {
					tr.do("GET", kp+tq+"&path=prefs.theme&at_timestamp="+atMs(w), "", "")
				}
			}
			// Key snapshots: the retained ops, their neighbours, and fixed ones (pruned or other keys').
			probeOps := []int64{1, 100, 300, 700, 1000, 5000} // op numbers count per table
			retained := slices.Sorted(maps.Keys(ops))
			for _, op := range moments(retained, 5) {
				probeOps = append(probeOps, op-1, op, op+1)
			}
			slices.Sort(probeOps)
			probeOps = slices.Compact(probeOps)
			for _, op := range probeOps {
				if op > 0 {
					tr.do("GET", kp+"/snapshot"+tq+fmt.Sprintf("&op_number=%d", op), "", "")
				}
			}
			// Watch replays of the key from several points.
			for _, after := range []int64{0, 320, 800, 1100} {
				tr.do("GET", kp+"/watch"+tq+fmt.Sprintf("&after_op=%d&wait=1ms", after), "", "")
			}
		}
		tr.section("table views " + tb.name)
		for _, ms := range span {
			tr.do("GET", "/api/v1/sqlite/kv/snapshot"+tq+"&timestamp="+atMs(ms), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/snapshot"+tq+"&limit=3&timestamp="+atMs(ms), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/snapshot"+tq+"&prefix=tmp%2F&timestamp="+atMs(ms), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/snapshot"+tq+"&limit=2&after=cnt%2Fz&timestamp="+atMs(ms), "", "")
		}
		for i := 0; i+1 < len(span); i++ {
			tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&from="+atMs(span[i])+"&to="+atMs(span[i+1]), "", "")
		}
		for i := 0; i+4 < len(span); i += 3 {
			if j := len(span) - 1 - i; i < j {
				tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&from="+atMs(span[i])+"&to="+atMs(span[j]), "", "")
			}
			tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&prefix=long%2F&from="+atMs(span[i])+"&to="+atMs(span[i+4]), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&limit=2&from="+atMs(span[i])+"&to="+atMs(span[i+4]), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&keys="+url.QueryEscape(strings.Join(tb.keys[:3], ","))+"&from="+atMs(span[i])+"&to="+atMs(span[i+2]), "", "")
		}
		// After_op values across both tables' op numbers (each table counts its
		// own): old ones replay a gap, the newest an empty answer after 1ms.
		for _, after := range []int64{0, 100, 250, 320, 500, 780, 820, 1000, 1200} {
			if after == 0 || after >= 780 { // whole-table replays are long: a few
				tr.do("GET", "/api/v1/sqlite/kv/watch"+tq+fmt.Sprintf("&after_op=%d&wait=1ms", after), "", "")
			}
			tr.do("GET", "/api/v1/sqlite/kv/watch"+tq+fmt.Sprintf("&prefix=tmp%%2F&after_op=%d&wait=1ms", after), "", "")
		}
	}
}

// goldenPart is one "=== phase ..." part of the golden and the line of
// the golden file it starts at.
type goldenPart struct {
	text string
	line int
}

// goldenSections splits a transcript into its "=== phase ..." parts.
func goldenSections(text string) map[string]goldenPart {
	parts := map[string]goldenPart{}
	name, start, startLine := "", 0, 1
	lines := strings.SplitAfter(text, "\n")
	offset := 0
	for i, line := range lines {
		if n, ok := strings.CutPrefix(line, "=== "); ok {
			parts[name] = goldenPart{text: text[start:offset], line: startLine}
			name, start, startLine = strings.TrimSpace(n), offset+len(line), i+2
		}
		offset += len(line)
	}
	parts[name] = goldenPart{text: text[start:], line: startLine}
	return parts
}

// compareGolden fails on the first line where got and want differ,
// showing the lines before it and, for long lines, the part around the
// first differing byte. from is want's first line in the golden file.
func compareGolden(t *testing.T, what, got, want string, from int) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	line := func(xs []string, i int) string {
		if i < len(xs) {
			return xs[i]
		}
		return "<end>"
	}
	i := 0
	for line(g, i) == line(w, i) {
		i++
	}
	gl, wl := line(g, i), line(w, i)
	col := 0
	for col < min(len(gl), len(wl)) && gl[col] == wl[col] {
		col++
	}
	cut := func(s string) string {
		lo, hi := max(0, col-100), min(len(s), col+200)
		return fmt.Sprintf("[bytes %d..%d of %d] %s", lo, hi, len(s), s[lo:hi])
	}
	t.Fatalf("%s differs from %s at line %d, byte %d (regenerate only on purpose: -update-golden)\nbefore it:\n%s\ngot:  %s\nwant: %s",
		what, goldenPath, from+i, col, strings.Join(w[max(0, i-3):i], "\n"), cut(gl), cut(wl))
}

// goldenPhase1 runs phase 1 on a fresh database in dir and returns its
// transcript (writes, then reads); the server is closed after.
func goldenPhase1(t *testing.T, dir string, steps []goldenStep, m *goldenModel) (writes, reads string) {
	ts, closeSrv := goldenServer(t, dir, goldenStart)
	tr := &transcript{t: t, ts: ts}
	tr.run(steps)
	if got := ts.Clock.Now().UnixMilli(); got != m.end {
		t.Fatalf("phase 1 ended at %d, the plan at %d", got, m.end)
	}
	writes = tr.out.String()
	tr.out.Reset()
	tr.readAll(m)
	closeSrv()
	return writes, tr.out.String()
}

// goldenPhase2 opens the database file at dbFile on a fresh server (so the
// writer's retention dice start over, as after any restart), reads it as
// phase 1 left it, writes phase 2 and reads again.
func goldenPhase2(t *testing.T, dbFile string, steps []goldenStep, m1, m2 *goldenModel) (reads1, writes, reads2 string) {
	dir := t.TempDir()
	data, err := os.ReadFile(dbFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, goldenDB+".db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	ts, closeSrv := goldenServer(t, dir, time.UnixMilli(m1.end))
	defer closeSrv()
	tr := &transcript{t: t, ts: ts}
	tr.readAll(m1)
	reads1 = tr.out.String()
	tr.out.Reset()
	tr.run(steps)
	if got := ts.Clock.Now().UnixMilli(); got != m2.end {
		t.Fatalf("phase 2 ended at %d, the plan at %d", got, m2.end)
	}
	writes = tr.out.String()
	tr.out.Reset()
	tr.readAll(m2)
	return reads1, writes, tr.out.String()
}

func assembleGolden(w1, r1, w2, r2 string) string {
	return "# kvd history golden: go test ./httpapi -run 'Golden|Migration' -update-golden rewrites it (and " + fixturePath + ")\n" +
		"=== phase1 writes\n" + w1 + "=== phase1 reads\n" + r1 + "=== phase2 writes\n" + w2 + "=== phase2 reads\n" + r2
}

// TestHistoryGolden_Transcript runs the workload on a fresh database and
// compares every answer to the golden; reopening the file it left must
// answer phase 1's reads the same before phase 2 goes on.
func TestHistoryGolden_Transcript(t *testing.T) {
	p1, p2, m1, m2 := goldenPlan()
	dir := t.TempDir()
	w1, r1 := goldenPhase1(t, dir, p1, m1)
	dbFile := filepath.Join(dir, goldenDB+".db")
	reread, w2, r2 := goldenPhase2(t, dbFile, p2, m1, m2)
	compareGolden(t, "phase 1 reads after a restart", reread, r1, goldenSections(assembleGolden(w1, r1, "", ""))["phase1 reads"].line)
	got := assembleGolden(w1, r1, w2, r2)
	if *updateGolden {
		data, err := os.ReadFile(dbFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixturePath, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes) and %s (%d bytes)", goldenPath, len(got), fixturePath, len(data))
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "transcript", got, string(want), 1)
}
