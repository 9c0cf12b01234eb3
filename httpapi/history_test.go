package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// event is one write in the model of a key's life.
type event struct {
	at       int64 // Unix ms
	op       string
	value    string
	removes  bool
	gap      bool
	expireAt int64
}

// kvModel predicts what time travel must answer from the writes a test made.
type kvModel map[string][]event

// state is the model's answer for key at an inclusive bound (ms).
func (m kvModel) state(key string, at int64) (value string, present, gap bool) {
	var last *event
	for i := range m[key] {
		if m[key][i].at <= at {
			last = &m[key][i]
		}
	}
	switch {
	case last == nil || last.removes:
		return "", false, false
	case last.gap:
		return "", false, true
	case last.expireAt != 0 && last.expireAt <= at:
		return "", false, false
	}
	return last.value, true, false
}

func (m kvModel) keys() []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestHistory_ScriptedSequenceMatchesTheModel(t *testing.T) {
	ts := newTestServer(t)
	t0 := ts.Clock.Now().Unix()
	model := kvModel{}
	step := 0
	// write advances the clock to the next 10 s mark and makes one write.
	write := func(method, key, query, body, op string) {
		t.Helper()
		step++
		ts.Clock.Advance(time.Unix(t0+int64(10*step), 0).Sub(ts.Clock.Now()))
		r := ts.do(t, method, kv(url.PathEscape(key)+opSuffix(op), "db=app&create_db_if_missing=true"+query), body)
		wantStatus(t, r, 200)
		e := event{at: ts.Clock.Now().UnixMilli(), op: op, value: body}
		e.removes = op == "delete"
		if q, _ := url.ParseQuery(query); q.Get("history") == "false" {
			e.gap = true
		}
		if q, _ := url.ParseQuery(query); q.Get("ttl") != "" {
			ttl, _ := strconv.Atoi(q.Get("ttl"))
			e.expireAt = e.at + int64(ttl)*1000
		}
		if op == "incr" || op == "decr" {
			e.value = strconv.FormatInt(int64(r.JSON(t)["value"].(float64)), 10)
		}
		model[key] = append(model[key], e)
	}
	write("PUT", "a", "", "a1", "set")          // 1
	write("PUT", "b", "", `{"v":1}`, "set")     // 2
	write("POST", "c", "", "", "incr")          // 3
	write("PUT", "a", "", "a2", "set")          // 4
	write("POST", "c", "&delta=5", "", "incr")  // 5
	write("PUT", "e", "&ttl=15", "temp", "set") // 6: expires at t0+75
	write("DELETE", "b", "", "", "delete")      // 7
	write("PUT", "b", "", `{"v":2}`, "set")     // 8
	write("POST", "c", "", "", "decr")          // 9
	write("PUT", "a", "&history=false", "a3", "set")
	write("PUT", "d", "", "x", "set")  // 11
	write("PUT", "a", "", "a4", "set") // 12
	sweep(t, ts)                       // e expired at t0+75: the sweep records it at t0+120
	model["e"] = append(model["e"], event{at: ts.Clock.Now().UnixMilli(), op: "expire", removes: true})
	write("PUT", "e", "", "again", "set")       // 13
	write("DELETE", "d", "", "", "delete")      // 14
	write("POST", "c", "", "", "incr")          // 15
	write("PUT", "b", "", `{"v":3}`, "set")     // 16
	write("PUT", "a", "", "a5", "set")          // 17
	write("DELETE", "a", "", "", "delete")      // 18
	write("PUT", "a", "", "a6", "set")          // 19
	write("POST", "c", "&delta=10", "", "incr") // 20
	write("PUT", "f", "", "f1", "set")          // 21
	write("PUT", "f", "&history=false", "f2", "set")
	write("PUT", "f", "", "f3", "set")         // 23
	write("DELETE", "e", "", "", "delete")     // 24
	write("PUT", "d", "", "y", "set")          // 25
	write("POST", "c", "&delta=2", "", "decr") // 26
	write("PUT", "b", "", `{"v":4}`, "set")    // 27
	write("PUT", "g", "", "g1", "set")         // 28
	write("DELETE", "g", "", "", "delete")     // 29
	write("PUT", "a", "", "a7", "set")         // 30
	if step != 30 {
		t.Fatalf("script made %d writes, want 30", step)
	}

	end := t0 + 10*int64(step) + 20
	for sec := t0; sec <= end; sec += 5 {
		bound := sec*1000 + 999
		wantKeys, wantGaps := []string{}, []string{}
		for _, key := range model.keys() {
			value, present, gap := model.state(key, bound)
			r := ts.do(t, "GET", at(key, t0, float64(sec-t0)), "")
			switch {
			case gap:
				wantError(t, r, 409, "TIME_TRAVEL_GAP")
				wantGaps = append(wantGaps, key)
			case !present:
				wantError(t, r, 404, "KEY_NOT_FOUND")
			default:
				wantKeys = append(wantKeys, key)
				if string(r.Body) != value {
					t.Fatalf("%s at t0+%d: got %d %q, want %q", key, sec-t0, r.Status, r.Body, value)
				}
			}
		}
		list := ts.do(t, "GET", fmt.Sprintf("/api/v1/sqlite/kv?db=app&at_timestamp=%d", sec), "").JSON(t)
		if got := strs(list["keys"]); !slices.Equal(got, wantKeys) {
			t.Fatalf("keys at t0+%d: got %v, want %v", sec-t0, got, wantKeys)
		}
		if got := strs(list["gap_keys"]); !slices.Equal(got, wantGaps) || list["has_gaps"] != (len(wantGaps) > 0) {
			t.Fatalf("gap keys at t0+%d: got %v, want %v", sec-t0, got, wantGaps)
		}
		snap := ts.do(t, "GET", fmt.Sprintf("/api/v1/sqlite/kv/snapshot?db=app&timestamp=%d", sec), "").JSON(t)
		entries := snap["entries"].(map[string]any)
		if len(entries) != len(wantKeys) || !slices.Equal(strs(snap["gap_keys"]), wantGaps) {
			t.Fatalf("snapshot at t0+%d: got %v gaps %v, want keys %v gaps %v", sec-t0, entries, snap["gap_keys"], wantKeys, wantGaps)
		}
		for _, key := range wantKeys {
			value, _, _ := model.state(key, bound)
			if got := fmt.Sprint(jsonText(entries[key])); got != value {
				t.Fatalf("snapshot %s at t0+%d: got %s, want %s", key, sec-t0, got, value)
			}
		}
	}

	checkHistoryAndOpSnapshots(t, ts, model)
	checkDiff(t, ts, model, t0+25, t0+275)
	checkDiff(t, ts, model, t0+5, t0+125)
	checkKeyRollbacks(t, ts)
}

func opSuffix(op string) string {
	if op == "incr" || op == "decr" {
		return "/" + op
	}
	return ""
}

func sweep(t *testing.T, ts *testServer) {
	t.Helper()
	db, err := ts.Registry.Open(context.Background(), "app", false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	if _, err := db.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func strs(v any) []string {
	out := []string{}
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// jsonText turns a decoded JSON value back into the text it was stored as.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// checkHistoryAndOpSnapshots compares every key's history with the model,
// then asks the snapshot of each op number for the state it left.
func checkHistoryAndOpSnapshots(t *testing.T, ts *testServer, model kvModel) {
	t.Helper()
	for _, key := range model.keys() {
		r := ts.do(t, "GET", kv(key+"/history", "db=app"), "")
		wantStatus(t, r, 200)
		var h struct {
			Key        string
			Operations []struct {
				OpNumber  int64   `json:"op_number"`
				Timestamp float64 `json:"timestamp"`
				Operation struct {
					Op          string          `json:"op"`
					NewValue    json.RawMessage `json:"new_value"`
					RawNewValue []byte          `json:"raw_new_value"`
					OldValue    json.RawMessage `json:"old_value"`
					RawOldValue []byte          `json:"raw_old_value"`
					Unrecorded  bool            `json:"unrecorded"`
				} `json:"operation"`
			}
		}
		if err := json.Unmarshal(r.Body, &h); err != nil {
			t.Fatal(err)
		}
		events := model[key]
		if h.Key != key || len(h.Operations) != len(events) {
			t.Fatalf("history of %s: got %d operations, want %d: %s", key, len(h.Operations), len(events), r.Body)
		}
		for i, op := range h.Operations {
			e := events[len(events)-1-i] // newest first
			newValue := string(op.Operation.RawNewValue)
			if op.Operation.NewValue != nil {
				newValue = string(op.Operation.NewValue)
			}
			wantValue := e.value
			if e.removes || e.gap {
				wantValue = ""
			}
			if op.Operation.Op != e.op || op.Operation.Unrecorded != e.gap || newValue != wantValue || int64(op.Timestamp*1000) != e.at {
				t.Fatalf("history of %s, entry %d: got %s %q unrecorded=%v at %v, want %s %q gap=%v at %d",
					key, i, op.Operation.Op, newValue, op.Operation.Unrecorded, op.Timestamp, e.op, wantValue, e.gap, e.at)
			}
			if i > 0 && op.OpNumber >= h.Operations[i-1].OpNumber {
				t.Fatalf("history of %s: op numbers not strictly decreasing", key)
			}
			if i+1 < len(events) {
				prev := events[len(events)-2-i]
				oldValue := string(op.Operation.RawOldValue)
				if op.Operation.OldValue != nil {
					oldValue = string(op.Operation.OldValue)
				}
				if !prev.removes && !prev.gap && oldValue != prev.value {
					t.Fatalf("history of %s, entry %d: old value %q, want %q", key, i, oldValue, prev.value)
				}
			}
			snap := ts.do(t, "GET", kv(key+"/snapshot", "db=app&op_number="+strconv.FormatInt(op.OpNumber, 10)), "")
			switch {
			case e.gap:
				wantError(t, snap, 409, "TIME_TRAVEL_GAP")
			case e.removes:
				wantError(t, snap, 404, "KEY_NOT_FOUND")
			default:
				m := snap.JSON(t)
				if jsonText(m["value"]) != e.value || m["op_number"] != float64(op.OpNumber) || m["success"] != true {
					t.Fatalf("snapshot of %s at op %d: got %s, want %q", key, op.OpNumber, snap.Body, e.value)
				}
			}
		}
	}
}

func checkDiff(t *testing.T, ts *testServer, model kvModel, from, to int64) {
	t.Helper()
	r := ts.do(t, "GET", fmt.Sprintf("/api/v1/sqlite/kv/diff?db=app&from=%d&to=%d", from, to), "")
	wantStatus(t, r, 200)
	var d struct {
		Stats   map[string]int
		Changes []struct {
			Key, Change string
			OldValue    any `json:"old_value"`
			NewValue    any `json:"new_value"`
		}
		GapKeys []string `json:"gap_keys"`
	}
	if err := json.Unmarshal(r.Body, &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	var wantGaps []string
	stats := map[string]int{"created": 0, "modified": 0, "deleted": 0}
	for _, key := range model.keys() {
		ov, op, og := model.state(key, from*1000+999)
		nv, np, ng := model.state(key, to*1000+999)
		kind := ""
		switch {
		case og || ng:
			wantGaps = append(wantGaps, key)
			continue
		case !op && np:
			kind = "created"
		case op && !np:
			kind = "deleted"
		case op && np && ov != nv:
			kind = "modified"
		default:
			continue
		}
		want[key] = kind
		stats[kind]++
	}
	got := map[string]string{}
	for _, c := range d.Changes {
		got[c.Key] = c.Change
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(d.Stats) != fmt.Sprint(stats) || fmt.Sprint(d.GapKeys) != fmt.Sprint(nonNil(wantGaps)) {
		t.Fatalf("diff %d..%d: got %v %v gaps %v, want %v %v gaps %v", from, to, got, d.Stats, d.GapKeys, want, stats, wantGaps)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// checkKeyRollbacks undoes writes of a and f after the script: a's last
// writes are delete, a6, a7; f's are f1, f2 (unrecorded), f3.
func checkKeyRollbacks(t *testing.T, ts *testServer) {
	t.Helper()
	roll := func(key, query string) response {
		return ts.do(t, "POST", kv(key+"/rollback", "db=app"+query), "")
	}
	if r := roll("a", ""); r.Status != 200 || r.JSON(t)["value"] != "a6" {
		t.Fatalf("rollback a by 1: got %s, want a6", r.Body)
	}
	if got := string(ts.do(t, "GET", kv("a", "db=app"), "").Body); got != "a6" {
		t.Fatalf("a after rollback: got %q, want a6", got)
	}
	if r := roll("a", ""); r.JSON(t)["value"] != "a7" { // a rollback is a write: undo it
		t.Fatalf("rollback of the rollback: got %s, want a7", r.Body)
	}
	if r := roll("a", "&steps=4"); r.Status != 200 || r.JSON(t)["value"] != nil {
		t.Fatalf("rollback a by 4 (to its deletion): got %s, want value null", r.Body)
	}
	wantError(t, ts.do(t, "GET", kv("a", "db=app"), ""), 404, "KEY_NOT_FOUND")
	wantError(t, roll("f", ""), 409, "TIME_TRAVEL_GAP")
	wantError(t, roll("f", "&steps=0"), 400, "INVALID_PARAMETERS")
	wantError(t, roll("nope", ""), 404, "KEY_NOT_FOUND")
	if got := string(ts.do(t, "GET", kv("f", "db=app"), "").Body); got != "f3" {
		t.Fatalf("f after refused rollback: got %q, want f3", got)
	}
}

// An empty value is a value: history shows it as "", not as no value.
func TestHistory_EmptyValueIsShown(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("e", "db=app&create_db_if_missing=true"), "", "Content-Type", "text/plain")
	op := ts.do(t, "GET", kv("e/history", "db=app"), "").JSON(t)["operations"].([]any)[0].(map[string]any)["operation"].(map[string]any)
	if raw, ok := op["raw_new_value"]; !ok || raw != "" {
		t.Fatalf("history of an empty value: got %v, want raw_new_value \"\"", op)
	}
}

// A snapshot by the op number of a write made before a key's first write,
// in the same millisecond, finds no key there (404) after retention pruned
// that first write: the horizon keeps the first write's op number, not
// only its time, which could not tell before it from after (409).
func TestSnapshot_BeforeAPrunedFirstWriteInItsMillisecondFindsNoKey(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 1 }))
	q := "db=r&create_db_if_missing=true"
	// ops 1 (x) and 2 (k's first write), then 3 and 4: k keeps op 4 only. The
	// test clock stands still: every op is in one millisecond.
	wantStatus(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"x","value":"1"},{"key":"k","value":"1"}]}`), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "2"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "3"), 200)
	snapshot := func(op int) response {
		return ts.do(t, "GET", kv("k/snapshot", "db=r&op_number="+strconv.Itoa(op)), "")
	}
	wantError(t, snapshot(1), 404, "KEY_NOT_FOUND")
	wantError(t, snapshot(2), 409, "TIME_TRAVEL_GAP")
	if r := snapshot(4); r.Status != 200 || r.JSON(t)["value"] != 3.0 {
		t.Fatalf("snapshot at op 4: %d %s, want 3", r.Status, r.Body)
	}
}
