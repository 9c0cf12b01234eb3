package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// at asks for key k as of t0+offset seconds (offset may be fractional).
func at(k string, t0 int64, offset float64) string {
	return kv(k, "db=app&at_timestamp="+strconv.FormatFloat(float64(t0)+offset, 'f', -1, 64))
}

func TestTimeTravel_BeforeBetweenAfterWritesAndAcrossGaps(t *testing.T) {
	ts := newTestServer(t)
	t0 := ts.Clock.Now().Unix()
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("other", q), "x") // the table exists before k does
	write := func(offset int64, method, query, body string) {
		ts.Clock.Advance(time.Unix(t0+offset, 0).Sub(ts.Clock.Now()))
		wantStatus(t, ts.do(t, method, kv("k", q+query), body), 200)
	}
	write(10, "PUT", "", "v1")
	write(20, "PUT", "", "v2")
	write(30, "DELETE", "", "")
	write(40, "PUT", "&history=false", "v3")
	write(50, "PUT", "", "v4")
	write(60, "PUT", "&ttl=5", "v5")
	// A time still to come reads as now: v5, though its TTL runs out
	// before then. (Its TTL was run out ahead of time: a 404.)
	if r := ts.do(t, "GET", at("k", t0, 100), ""); r.Status != 200 || string(r.Body) != "v5" {
		t.Errorf("at a time still to come: got %d %q, want v5, as now", r.Status, r.Body)
	}
	later := strconv.FormatInt(t0+100, 10)
	if m := ts.do(t, "GET", "/api/v1/sqlite/kv/snapshot?db=app&timestamp="+later, "").JSON(t); m["entries"].(map[string]any)["k"] != "v5" {
		t.Errorf("table snapshot at a time still to come: got %v, want k as now", m)
	}
	if m := ts.do(t, "GET", "/api/v1/sqlite/kv?db=app&at_timestamp="+later, "").JSON(t); fmt.Sprint(m["keys"]) != "[k other]" {
		t.Errorf("listing at a time still to come: got %v, want k and other, as now", m)
	}
	if m := ts.do(t, "GET", "/api/v1/sqlite/kv/diff?db=app&from="+strconv.FormatInt(t0+60, 10)+"&to="+later, "").JSON(t); len(m["changes"].([]any)) != 0 {
		t.Errorf("diff to a time still to come: got %v, want no change", m)
	}
	ts.Clock.Advance(40 * time.Second) // every time below is past

	cases := []struct {
		offset float64
		want   string // value, or an error code
	}{
		{5, "KEY_NOT_FOUND"}, // before the key was created
		{10, "v1"},           // the end of the second of the write
		{15, "v1"},
		{19.5, "v1"}, // a fraction names an instant
		{20, "v2"},
		{29.999, "v2"},
		{30, "KEY_NOT_FOUND"}, // deleted
		{35, "KEY_NOT_FOUND"},
		{40, "TIME_TRAVEL_GAP"}, // written with history=false
		{45, "TIME_TRAVEL_GAP"},
		{50, "v4"},
		{60, "v5"},
		{64, "v5"},
		{65, "KEY_NOT_FOUND"}, // its TTL ran out
	}
	for _, c := range cases {
		r := ts.do(t, "GET", at("k", t0, c.offset), "")
		switch c.want {
		case "KEY_NOT_FOUND":
			wantError(t, r, 404, c.want)
		case "TIME_TRAVEL_GAP":
			wantError(t, r, 409, c.want)
		default:
			if r.Status != 200 || string(r.Body) != c.want {
				t.Errorf("at t0+%v: got %d %q, want %q", c.offset, r.Status, r.Body, c.want)
			}
		}
	}
	wantError(t, ts.do(t, "GET", at("never", t0, 100), ""), 404, "KEY_NOT_FOUND")
}

// Once the clock stepped back (NTP, a resumed VM, a database failed
// over to a node whose clock is behind), history stamps new writes at
// the newest time it holds, ahead of the clock. The present, or a time
// still to come, still sees them: before, a read at such a time answered
// as of the clock, missing them, and a table rollback to the current
// second deleted every key written since the clock stepped back.
func TestTimeTravel_AfterTheClockSteppedBackThePresentSeesEveryWrite(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("a", q), "1"), 200)
	ts.Clock.Advance(-2 * time.Second)
	wantStatus(t, ts.do(t, "PUT", kv("b", q), "2"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("c", q+"&ttl=1"), "3"), 200)

	now := strconv.FormatInt(ts.Clock.Now().Unix(), 10)
	later := strconv.FormatInt(ts.Clock.Now().Unix()+100, 10)
	for _, when := range []string{now, later} {
		for k, want := range map[string]string{"a": "1", "b": "2", "c": "3"} {
			if r := ts.do(t, "GET", kv(k, "db=app&at_timestamp="+when), ""); r.Status != 200 || string(r.Body) != want {
				t.Errorf("%s at %s: got %d %s, want %s, as now", k, when, r.Status, r.Body, want)
			}
		}
		if m := ts.do(t, "GET", "/api/v1/sqlite/kv/snapshot?db=app&timestamp="+when, "").JSON(t); len(m["entries"].(map[string]any)) != 3 {
			t.Errorf("table snapshot at %s: got %v, want a, b and c, as now", when, m)
		}
		if m := ts.do(t, "GET", "/api/v1/sqlite/kv/diff?db=app&from=1&to="+when, "").JSON(t); len(m["changes"].([]any)) != 3 {
			t.Errorf("diff from long before to %s: got %v, want a, b and c added", when, m)
		}
		r := ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&confirm=yes&to_timestamp="+when, "{}")
		if m := r.JSON(t); r.Status != 200 || m["count"] != 0.0 {
			t.Errorf("table rollback to %s: got %d %s, want nothing to change", when, r.Status, r.Body)
		}
	}
	for _, k := range []string{"a", "b", "c"} {
		wantStatus(t, ts.do(t, "GET", kv(k, "db=app"), ""), 200)
	}
}

// A key snapshot by an op number judges TTLs at that op's time, so the
// point stays put whatever the clock does (after the clock stepped back,
// a key expired by op 2 was alive there again); by an op number past the
// newest write, at now, as at_timestamp still to come does (it judged
// them at the newest write's time: a key expired now was served).
func TestTimeTravel_ASnapshotByOpJudgesTTLsAtItsOp(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	snapshot := func(op string) response { return ts.do(t, "GET", kv("k/snapshot", "db=app&op_number="+op), "") }
	wantStatus(t, ts.do(t, "PUT", kv("k", q+"&ttl=1"), "v"), 200) // op 1
	ts.Clock.Advance(5 * time.Second)
	wantError(t, snapshot("5000"), 404, "KEY_NOT_FOUND")
	wantStatus(t, ts.do(t, "PUT", kv("x", q), "x"), 200) // op 2, after k expired
	wantError(t, snapshot("2"), 404, "KEY_NOT_FOUND")
	ts.Clock.Advance(-4500 * time.Millisecond)
	wantError(t, snapshot("2"), 404, "KEY_NOT_FOUND")
}

func TestTimeTravel_SameSecondAnswersTheLastWrite(t *testing.T) {
	ts := newTestServer(t)
	t0 := ts.Clock.Now().Unix()
	q := "db=app&create_db_if_missing=true"
	ts.Clock.Advance(200 * time.Millisecond)
	ts.do(t, "PUT", kv("k", q), "early")
	ts.Clock.Advance(500 * time.Millisecond)
	ts.do(t, "PUT", kv("k", q), "late")
	if got := ts.do(t, "GET", at("k", t0, 0), ""); string(got.Body) != "late" {
		t.Fatalf("end of second: got %q, want late", got.Body)
	}
	if got := ts.do(t, "GET", at("k", t0, 0.5), ""); string(got.Body) != "early" {
		t.Fatalf("at t0+0.5: got %q, want early", got.Body)
	}
}

// A write's own timestamp, as history shows it, finds that write when
// passed back, to time travel and to a watch. Read through a float64,
// 2170884354.811 s fell a millisecond short of it.
func TestTimeTravel_AWritesOwnTimestampFindsIt(t *testing.T) {
	for name, c := range map[string]struct {
		at    int64 // the write's Unix ms
		stamp string
	}{
		// Seconds × 1000 through a float64 fell a hair under …812.
		"after 2038": {2_170_884_354_812, "2170884354.812"},
		// Shown as 2170884355, it would mean the end of that second.
		"on a whole second": {2_170_884_355_000, "2170884355.000"},
	} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t)
			ts.Clock.Advance(time.UnixMilli(c.at - 1).Sub(ts.Clock.Now()))
			ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "before")
			ts.Clock.Advance(time.Millisecond)
			ts.do(t, "PUT", kv("k", "db=app"), "v")
			ts.Clock.Advance(500 * time.Millisecond)
			ts.do(t, "PUT", kv("k", "db=app"), "later in the second")

			var h struct {
				Operations []struct {
					Timestamp json.Number `json:"timestamp"`
				} `json:"operations"`
			}
			if err := json.Unmarshal(ts.do(t, "GET", kv("k/history", "db=app"), "").Body, &h); err != nil || len(h.Operations) != 3 {
				t.Fatalf("history: %v %+v", err, h)
			}
			stamp := string(h.Operations[1].Timestamp) // newest first
			if stamp != c.stamp {
				t.Fatalf("the write's timestamp is %s, want %s", stamp, c.stamp)
			}
			if got := ts.do(t, "GET", kv("k", "db=app&at_timestamp="+stamp), ""); string(got.Body) != "v" {
				t.Errorf("at its own timestamp %s: got %d %q, want v", stamp, got.Status, got.Body)
			}
			events := ts.do(t, "GET", kv("k/watch", "db=app&since="+stamp+"&wait=1ms"), "").JSON(t)["events"].([]any)
			if len(events) != 2 || events[0].(map[string]any)["op_number"] != 2.0 {
				t.Errorf("watch since %s: got %v, want the writes of ops 2 and 3", stamp, events)
			}
		})
	}
}

func TestTimeTravel_PrunedHistoryIsAGapNotAGuess(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 3 }))
	t0 := ts.Clock.Now().Unix()
	q := "db=app&create_db_if_missing=true"
	for i := 1; i <= 10; i++ {
		ts.Clock.Advance(10 * time.Second)
		ts.do(t, "PUT", kv("k", q), fmt.Sprintf("v%d", i))
	}
	if n := countRows(t, ts, "app.db", "kv_store:history"); n > 4 {
		t.Fatalf("history rows with keep=3: got %d, want at most 4", n)
	}
	wantError(t, ts.do(t, "GET", at("k", t0, 5), ""), 404, "KEY_NOT_FOUND") // before creation: still known
	wantError(t, ts.do(t, "GET", at("k", t0, 15), ""), 409, "TIME_TRAVEL_GAP")
	wantError(t, ts.do(t, "GET", at("k", t0, 65), ""), 409, "TIME_TRAVEL_GAP")
	if got := ts.do(t, "GET", at("k", t0, 100), ""); string(got.Body) != "v10" {
		t.Fatalf("latest: got %q, want v10", got.Body)
	}
	if got := ts.do(t, "GET", at("k", t0, 95), ""); string(got.Body) != "v9" {
		t.Fatalf("retained: got %q, want v9", got.Body)
	}

	// The same by op number: k's first ten writes are ops 1 to 10, and a
	// pruned op's time is not known, only that it came before the kept ones.
	ts.Clock.Advance(10 * time.Second)
	ts.do(t, "PUT", kv("late", q), "l") // op 11, never pruned
	snapshot := func(key string, op int) response {
		return ts.do(t, "GET", kv(key+"/snapshot", fmt.Sprintf("db=app&op_number=%d", op)), "")
	}
	var history struct {
		Operations []struct {
			OpNumber int `json:"op_number"`
		} `json:"operations"`
	}
	if err := json.Unmarshal(ts.do(t, "GET", kv("k/history", "db=app"), "").Body, &history); err != nil || len(history.Operations) == 0 {
		t.Fatalf("history of k: %v %v", history, err)
	}
	oldest := history.Operations[len(history.Operations)-1].OpNumber
	for _, op := range []int{1, oldest - 1} {
		wantError(t, snapshot("k", op), 409, "TIME_TRAVEL_GAP")
	}
	if got := snapshot("k", oldest); got.Status != 200 || got.JSON(t)["value"] != fmt.Sprintf("v%d", oldest) {
		t.Fatalf("snapshot of k at op %d: got %d %s", oldest, got.Status, got.Body)
	}
	wantError(t, snapshot("late", 1), 404, "KEY_NOT_FOUND")
	wantError(t, snapshot("late", 10), 404, "KEY_NOT_FOUND")
}

func TestTimeTravel_MaxAgeKeepsEachKeysNewestVersion(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryMaxAge = time.Hour }))
	t0 := ts.Clock.Now().Unix()
	q := "db=app&create_db_if_missing=true"
	for i := 1; i <= 5; i++ {
		ts.Clock.Advance(time.Minute)
		ts.do(t, "PUT", kv("k", q), fmt.Sprintf("v%d", i))
	}
	ts.Clock.Advance(2 * time.Hour)
	db, err := ts.Registry.Open(context.Background(), "app", false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	res, err := db.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Pruned != 4 {
		t.Fatalf("sweep pruned %d rows, want the four old versions", res.Pruned)
	}
	if n := countRows(t, ts, "app.db", "kv_store:history"); n != 1 {
		t.Fatalf("history rows: got %d, want 1 (the newest)", n)
	}
	wantError(t, ts.do(t, "GET", at("k", t0, 90), ""), 409, "TIME_TRAVEL_GAP")
	if got := ts.do(t, "GET", at("k", t0, 400), ""); string(got.Body) != "v5" {
		t.Fatalf("after the newest write: got %q, want v5", got.Body)
	}
}

// Looking at a past time goes over the keys with history page by page:
// each page names the key the next one starts after.
func TestTimeTravel_ListingSnapshotAndDiffPageByKey(t *testing.T) {
	ts := newTestServer(t)
	t0 := ts.Clock.Now().Unix()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		wantStatus(t, ts.do(t, "PUT", kv(k, "db=app&create_db_if_missing=true"), k), 200)
	}
	ts.Clock.Advance(time.Second)
	when := fmt.Sprint(t0)
	type page struct {
		Keys      []string       `json:"keys"`
		Entries   map[string]any `json:"entries"`
		Changes   []any          `json:"changes"`
		Truncated bool           `json:"candidate_truncated"`
		NextAfter string         `json:"next_after"`
	}
	for _, base := range []string{
		"/api/v1/sqlite/kv?db=app&limit=2&at_timestamp=" + when,
		"/api/v1/sqlite/kv/snapshot?db=app&limit=2&timestamp=" + when,
		"/api/v1/sqlite/kv/diff?db=app&limit=2&from=" + fmt.Sprint(t0-1) + "&to=" + when,
		// Keys named: the same pages, prefix and limit applied to them too.
		"/api/v1/sqlite/kv/diff?db=app&limit=2&keys=e,x,a,c,b,d,a&from=" + fmt.Sprint(t0-1) + "&to=" + when,
	} {
		var seen []int
		after := ""
		for range 5 {
			var p page
			r := ts.do(t, "GET", base+"&after="+after, "")
			wantStatus(t, r, 200)
			if err := jsonUnmarshal(r.Body, &p); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, len(p.Keys)+len(p.Entries)+len(p.Changes))
			if p.Truncated != (p.NextAfter != "") {
				t.Fatalf("%s after=%q: truncated %v with next_after %q", base, after, p.Truncated, p.NextAfter)
			}
			if after = p.NextAfter; after == "" {
				break
			}
		}
		if fmt.Sprint(seen) != "[2 2 1]" {
			t.Fatalf("%s: pages of %v keys, want [2 2 1]", base, seen)
		}
	}
	named := ts.do(t, "GET", "/api/v1/sqlite/kv/diff?db=app&keys=a,b&prefix=zzz&from="+fmt.Sprint(t0-1)+"&to="+when, "").JSON(t)
	if changes := named["changes"].([]any); len(changes) != 0 {
		t.Fatalf("diff of keys a,b under prefix zzz: got %v, want no changes", changes)
	}
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=app&offset=abc&at_timestamp="+when, ""), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=app&offset=2&at_timestamp="+when, ""), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv/diff?db=app&from=20&to=10", ""), 400, "INVALID_PARAMETERS")
}

// A diff shows a binary value in base64 and says so, as batch/get and a
// snapshot do: else text that reads as base64 and bytes look the same.
func TestDiff_MarksBinaryValues(t *testing.T) {
	ts := newTestServer(t)
	t0 := ts.Clock.Now().Unix()
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("bin", q), "\x00\x01\x02", "Content-Type", "application/octet-stream"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("txt", q), "AAEC", "Content-Type", "text/plain"), 200)
	ts.Clock.Advance(time.Second)
	var d struct {
		Changes []map[string]any `json:"changes"`
	}
	r := ts.do(t, "GET", fmt.Sprintf("/api/v1/sqlite/kv/diff?db=app&from=%d&to=%d", t0-1, t0), "")
	if err := jsonUnmarshal(r.Body, &d); err != nil || len(d.Changes) != 2 {
		t.Fatalf("diff: %s (%v)", r.Body, err)
	}
	for _, c := range d.Changes {
		want := map[string]any{"bin": "base64", "txt": nil}[c["key"].(string)]
		if c["new_value"] != "AAEC" || c["new_encoding"] != want || c["old_encoding"] != nil {
			t.Errorf("change of %s: %v, want new_value AAEC with new_encoding %v", c["key"], c, want)
		}
	}
}
