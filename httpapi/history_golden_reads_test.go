package httpapi_test

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// goldenTranscript records requests and their answers, one line each.
type goldenTranscript struct {
	t   *testing.T
	ts  *testServer
	out strings.Builder
}

func (tr *goldenTranscript) section(name string) { fmt.Fprintf(&tr.out, "== %s\n", name) }

// do sends a request and records it with its answer: status, the headers
// a value read carries, and the body (quoted when it is not JSON). The
// Content-Type is written unless it is application/json.
func (tr *goldenTranscript) do(method, path, body, ctype string) response {
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
func (tr *goldenTranscript) run(steps []goldenStep) {
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

func goldenAt(ms int64) string { return fmt.Sprintf("%d.%03d", ms/1000, ms%1000) }

// moments picks up to n of xs, evenly spread, first and last included.
func goldenSpread(xs []int64, n int) []int64 {
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
func (tr *goldenTranscript) readAll(m *goldenModel) {
	tr.t.Helper()
	db := "?db=" + goldenDB
	span := []int64{m.start - 1000}
	for i := range 13 {
		span = append(span, m.start+(m.end-m.start)*int64(i)/12)
	}
	span = append(span, goldenSpread(m.all, 12)...)
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
			tr.do("GET", "/api/v1/sqlite/kv"+tq+"&at_timestamp="+goldenAt(ms), "", "")
			tr.do("GET", "/api/v1/sqlite/kv"+tq+"&limit=3&after=long%2Fx&at_timestamp="+goldenAt(ms), "", "")
		}
		// batch/get of every key now.
		tr.do("POST", "/api/v1/sqlite/kv/batch/get"+tq, `{"keys":["`+strings.Join(tb.keys, `","`)+`"]}`, "application/json")
		for _, key := range tb.keys {
			tr.section("key " + tb.name + " " + key)
			kp := "/api/v1/sqlite/kv/" + url.PathEscape(key)
			if r := tr.do("GET", kp+tq, "", ""); strings.Contains(string(r.Body), "KEY_EXPIRED") {
				// That read queued a write (the expiry) that races with the reads after it.
				tr.t.Fatalf("%s was left past its TTL: the plan must sweep before reading", key)
			}
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
			probe := append(goldenSpread(span, 10), goldenSpread(times, 8)...)
			for _, w := range recent {
				probe = append(probe, w-1, w, w+1)
			}
			slices.Sort(probe)
			probe = slices.Compact(probe)
			for _, ms := range probe {
				tr.do("GET", kp+tq+"&at_timestamp="+goldenAt(ms), "", "")
			}
			for _, w := range goldenSpread(recent, 6) { // whole seconds: the end of that second
				tr.do("GET", kp+tq+fmt.Sprintf("&at_timestamp=%d", w/1000), "", "")
			}
			if ti == 0 && strings.HasPrefix(key, "cfg/") {
				for _, w := range goldenSpread(recent, 5) {
					tr.do("GET", kp+tq+"&path=prefs.theme&at_timestamp="+goldenAt(w), "", "")
				}
			}
			// Key snapshots: the retained ops, their neighbours, and fixed ones (pruned or other keys').
			probeOps := []int64{1, 100, 300, 700, 1000, 5000} // op numbers count per table
			retained := slices.Sorted(maps.Keys(ops))
			for _, op := range goldenSpread(retained, 5) {
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
			tr.do("GET", "/api/v1/sqlite/kv/snapshot"+tq+"&timestamp="+goldenAt(ms), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/snapshot"+tq+"&limit=3&timestamp="+goldenAt(ms), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/snapshot"+tq+"&prefix=tmp%2F&timestamp="+goldenAt(ms), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/snapshot"+tq+"&limit=2&after=cnt%2Fz&timestamp="+goldenAt(ms), "", "")
		}
		for i := 0; i+1 < len(span); i++ {
			tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&from="+goldenAt(span[i])+"&to="+goldenAt(span[i+1]), "", "")
		}
		for i := 0; i+4 < len(span); i += 3 {
			if j := len(span) - 1 - i; i < j {
				tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&from="+goldenAt(span[i])+"&to="+goldenAt(span[j]), "", "")
			}
			tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&prefix=long%2F&from="+goldenAt(span[i])+"&to="+goldenAt(span[i+4]), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&limit=2&from="+goldenAt(span[i])+"&to="+goldenAt(span[i+4]), "", "")
			tr.do("GET", "/api/v1/sqlite/kv/diff"+tq+"&keys="+url.QueryEscape(strings.Join(tb.keys[:3], ","))+"&from="+goldenAt(span[i])+"&to="+goldenAt(span[i+2]), "", "")
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
