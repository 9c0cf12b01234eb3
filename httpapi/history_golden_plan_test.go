package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"
)

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

// goldenPlanner draws a workload from a seeded generator; it never looks at an
// answer, so the same seed plans the same requests.
type goldenPlanner struct {
	rng   *rand.Rand
	m     *goldenModel
	now   int64 // ms
	steps []goldenStep
	n     int
}

func (p *goldenPlanner) advance() time.Duration {
	choices := []time.Duration{0, 0, 0, time.Millisecond, 7 * time.Millisecond, 250 * time.Millisecond,
		999 * time.Millisecond, time.Second, 3 * time.Second, 17 * time.Second, 61 * time.Second, 5 * time.Minute}
	return choices[p.rng.IntN(len(choices))]
}

// add plans a request at now+adv; keys are the keys it writes.
func (p *goldenPlanner) add(adv time.Duration, method, path, body, ctype string, table int, keys ...string) {
	p.now += adv.Milliseconds()
	p.m.end = p.now
	p.steps = append(p.steps, goldenStep{advance: adv, method: method, path: path, body: body, ctype: ctype})
	p.m.all = append(p.m.all, p.now)
	for _, k := range keys {
		id := goldenTables[table].name + "|" + k
		p.m.times[id] = append(p.m.times[id], p.now)
	}
}

func (p *goldenPlanner) sweep(adv time.Duration) {
	p.now += adv.Milliseconds()
	p.m.end = p.now
	p.steps = append(p.steps, goldenStep{advance: adv, method: "SWEEP"})
}

func (p *goldenPlanner) value(key string) (body, ctype string) {
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

func goldenJSONString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func goldenKeyPath(key, query string) string {
	return "/api/v1/sqlite/kv/" + url.PathEscape(key) + "?db=" + goldenDB + "&create_db_if_missing=true" + query
}

// goldenTableOf is the index of the table key belongs to.
func goldenTableOf(key string) int {
	for i, tb := range goldenTables {
		if slices.Contains(tb.keys, key) {
			return i
		}
	}
	panic("no golden table has key " + key)
}

func goldenPick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// plan draws n actions over both tables.
func (p *goldenPlanner) plan(n int) {
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
		key := goldenPick(p.rng, plain)
		adv := p.advance()
		if i > 0 && i%97 == 0 {
			p.sweep(adv)
			continue
		}
		switch r := p.rng.IntN(100); {
		case r < 30: // the long keys, a few hundred versions
			key = []string{"long/x", "long/y"}[ti]
			body, ct := p.value(key)
			p.add(adv, "PUT", goldenKeyPath(key, tb.q), body, ct, ti, key)
		case r < 50:
			body, ct := p.value(key)
			p.add(adv, "PUT", goldenKeyPath(key, tb.q), body, ct, ti, key)
		case r < 55: // a TTL: some expire before the next write
			key = goldenPick(p.rng, []string{"tmp/session1", "tmp/session2", "tmp/o"})
			ti = goldenTableOf(key)
			body, ct := p.value(key)
			p.add(adv, "PUT", goldenKeyPath(key, goldenTables[ti].q+fmt.Sprintf("&ttl=%d", goldenPick(p.rng, []int{1, 2, 5, 30, 600}))), body, ct, ti, key)
		case r < 59: // unrecorded: a gap
			body, ct := p.value(key)
			p.add(adv, "PUT", goldenKeyPath(key, tb.q+"&history=false"), body, ct, ti, key)
		case r < 63: // JSON path writes
			key = goldenPick(p.rng, []string{"cfg/theme", "cfg/limits"})
			path := goldenPick(p.rng, []string{"prefs.theme", "limits.max", "a.b[0]", "$.top"})
			p.add(adv, "PUT", goldenKeyPath(key, "&path="+url.QueryEscape(path)), fmt.Sprintf(`{"v":%d}`, p.rng.IntN(100)), "application/json", 0, key)
		case r < 73: // counters
			key = goldenPick(p.rng, []string{"cnt/hits", "cnt/misses", "cnt/orders"})
			ti = goldenTableOf(key)
			op := goldenPick(p.rng, []string{"incr", "incr", "decr"})
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
			p.add(adv, "DELETE", goldenKeyPath(key, q), "", "", ti, key)
		case r < 84:
			var items []string
			var keys []string
			for range 2 + p.rng.IntN(4) {
				k := goldenPick(p.rng, plain)
				body, ct := p.value(k)
				item := fmt.Sprintf(`{"key":%q,"value":%s`, k, goldenJSONString(body))
				if ct == "application/octet-stream" {
					item = fmt.Sprintf(`{"key":%q,"value":%q,"encoding":"base64"`, k, base64.StdEncoding.EncodeToString([]byte(body)))
				}
				if p.rng.IntN(3) == 0 {
					item += fmt.Sprintf(`,"ttl":%d`, goldenPick(p.rng, []int{1, 3, 60}))
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
				keys = append(keys, goldenPick(p.rng, tb.keys))
			}
			p.add(adv, "POST", "/api/v1/sqlite/kv/batch/delete?db="+goldenDB+tb.q, `{"keys":["`+strings.Join(keys, `","`)+`"]}`, "application/json", ti, keys...)
		case r < 89:
			p.add(adv, "POST", "/api/v1/sqlite/kv/"+url.PathEscape(key)+"/rollback?db="+goldenDB+tb.q+fmt.Sprintf("&steps=%d", 1+p.rng.IntN(3)), "", "", ti, key)
		case r < 91: // a table rollback to a planned moment, maybe of a few keys, maybe a dry run
			to := p.m.start - 1000
			if len(p.m.all) > 0 { // mostly recent: older history is pruned
				to = goldenPick(p.rng, p.m.all[max(0, len(p.m.all)-40):]) + int64(p.rng.IntN(3)-1)
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
				keys = []string{goldenPick(p.rng, tb.keys), goldenPick(p.rng, tb.keys)}
				body = `{"keys":["` + strings.Join(keys, `","`) + `"]}`
			case 1:
				body = `{"exclude_keys":["` + goldenPick(p.rng, tb.keys) + `"]}`
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
			key = goldenPick(p.rng, []string{"tmp/session1", "tmp/session2"})
			p.now += adv.Milliseconds()
			p.m.end = p.now
			p.steps = append(p.steps, goldenStep{advance: adv, method: "GET", path: "/api/v1/sqlite/kv/" + url.PathEscape(key) + "?db=" + goldenDB, sweepAfter: true})
		default: // a burst inside one millisecond
			for range 3 + p.rng.IntN(5) {
				k := goldenPick(p.rng, plain)
				body, ct := p.value(k)
				p.add(adv, "PUT", goldenKeyPath(k, tb.q), body, ct, ti, k)
				adv = 0
			}
		}
	}
	// Many versions of one key in one millisecond, then TTLs run out.
	adv := time.Second
	for range 40 {
		body, ct := p.value("long/x")
		p.add(adv, "PUT", goldenKeyPath("long/x", ""), body, ct, 0, "long/x")
		adv = 0
	}
	p.sweep(11 * time.Minute)
}

// goldenPlan plans phase 1 and phase 2 (phase 2 continues phase 1's model
// and clock).
func goldenPlan() (phase1, phase2 []goldenStep, m1, m2 *goldenModel) {
	p := &goldenPlanner{rng: rand.New(rand.NewPCG(20261204, 1)), m: newGoldenModel(goldenStart), now: goldenStart.UnixMilli()}
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
				p.add(time.Second, "PUT", goldenKeyPath(k, tb.q), body, ct, ti, k)
			}
		}
	}
	p.plan(300)
	return phase1, p.steps, m1, p.m
}
