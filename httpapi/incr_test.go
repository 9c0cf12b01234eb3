package httpapi_test

import (
	"strconv"
	"strings"
	"testing"
)

func TestIncrDecr_CountsFromZeroWithDelta(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	steps := []struct {
		path        string
		value, prev float64
	}{
		{kv("c/incr", q), 1, 0},
		{kv("c/incr", q+"&delta=10"), 11, 1},
		{kv("c/decr", q), 10, 11},
		{kv("c/decr", q+"&delta=25"), -15, 10},
	}
	for _, s := range steps {
		r := ts.do(t, "POST", s.path, "")
		wantStatus(t, r, 200)
		m := r.JSON(t)
		if m["key"] != "c" || m["value"] != s.value || m["previous"] != s.prev {
			t.Fatalf("%s: got %s, want value %v previous %v", s.path, r.Body, s.value, s.prev)
		}
	}
	get := ts.do(t, "GET", kv("c", "db=app"), "")
	if string(get.Body) != "-15" || get.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("stored counter: got %q (%s), want -15 (text/plain)", get.Body, get.Header.Get("Content-Type"))
	}
}

func TestIncr_RejectsBadDeltaAndNonNumericValues(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for _, d := range []string{"0", "-1", "1.5", "abc", "", "99999999999999999999"} {
		r := ts.do(t, "POST", kv("c/incr", q+"&delta="+d), "")
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if got := r.JSON(t)["message"]; got != "delta must be a positive integer" {
			t.Fatalf("delta=%s message: got %q", d, got)
		}
	}
	ts.do(t, "PUT", kv("word", q), "hello")
	r := ts.do(t, "POST", kv("word/incr", q), "")
	wantError(t, r, 400, "INVALID_PARAMETERS")
	if got := r.JSON(t)["message"]; got != "Value at path is not numeric" {
		t.Fatalf("message: got %q, want Value at path is not numeric", got)
	}
	if got := string(ts.do(t, "GET", kv("word", "db=app"), "").Body); got != "hello" {
		t.Fatalf("value after refused incr: got %q, want hello", got)
	}
}

// A stored counter is an integer as JSON writes one: "+5", "007" and
// "-007" are refused (strconv took them, and incr rewrote them as 6 and
// 8), as Redis's INCR refuses them; spaces, tabs and line breaks around
// it are tolerated (echo 5 | curl --data-binary @- stores "5\n"). incr
// under a path holds the number there to the same rule.
func TestIncr_StoredCounterMustBeAnIntegerAsJSONWritesIt(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for _, c := range []struct {
		stored   string
		previous float64 // -1: refused
	}{
		{"5", 5}, {" 5", 5}, {"5\n", 5}, {"\t-7\r\n", -7}, {"0", 0}, {"-0", 0}, {"9223372036854775806", 9223372036854775806},
		{"+5", -1}, {"007", -1}, {"-007", -1}, {"00", -1}, {"+0", -1}, {"-", -1}, {"5.0", -1}, {"1e2", -1},
		{"0x10", -1}, {"5 5", -1}, {"--5", -1}, {"\v5", -1}, {"\u00a05", -1}, {"9223372036854775808", -1},
	} {
		for _, ct := range []string{"text/plain", "application/json"} {
			wantStatus(t, ts.do(t, "PUT", kv("c", q), c.stored, "Content-Type", ct), 200)
			r := ts.do(t, "POST", kv("c/incr", q), "")
			if c.previous == -1 {
				wantError(t, r, 400, "INVALID_PARAMETERS")
				if got := string(ts.do(t, "GET", kv("c", "db=app"), "").Body); got != c.stored {
					t.Errorf("%q after a refused incr: got %q", c.stored, got)
				}
				continue
			}
			wantStatus(t, r, 200)
			if m := r.JSON(t); m["previous"] != c.previous || m["value"] != c.previous+1 {
				t.Errorf("incr of %q (%s): got %s, want previous %v", c.stored, ct, r.Body, c.previous)
			}
		}
		// The same text as a member of a document (no JSON when refused).
		wantStatus(t, ts.do(t, "PUT", kv("doc", q), `{"n":`+c.stored+`}`, "Content-Type", "application/json"), 200)
		r := ts.do(t, "POST", kv("doc/incr", q+"&path=n"), "")
		if c.previous == -1 {
			wantError(t, r, 400, "INVALID_PARAMETERS")
			continue
		}
		if m := r.JSON(t); m["previous"] != c.previous {
			t.Errorf("incr under path of %q: got %s, want previous %v", c.stored, r.Body, c.previous)
		}
	}
}

// A key that holds JSON null is an initialized counter, as the seed page
// says and as null under a path already was: incr counts it from 0. The
// text "null" is no number.
func TestIncr_OfAStoredJSONNullCountsFromZero(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("n", q), "null", "Content-Type", "application/json"), 200)
	if m := ts.do(t, "POST", kv("n/incr", q+"&delta=5"), "").JSON(t); m["previous"] != 0.0 || m["value"] != 5.0 {
		t.Fatalf("incr of JSON null: got %v, want previous 0, value 5", m)
	}
	if r := ts.do(t, "GET", kv("n", "db=app"), ""); string(r.Body) != "5" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("after: got %q (%s), want 5 as JSON", r.Body, r.Header.Get("Content-Type"))
	}
	wantStatus(t, ts.do(t, "PUT", kv("t", q), "null", "Content-Type", "text/plain"), 200)
	wantError(t, ts.do(t, "POST", kv("t/incr", q), ""), 400, "INVALID_PARAMETERS")
}

func TestIncr_OverflowLeavesValueUnchanged(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	max := strconv.FormatInt(1<<63-1, 10)
	ts.do(t, "PUT", kv("big", q), max)
	wantError(t, ts.do(t, "POST", kv("big/incr", q), ""), 400, "INVALID_PARAMETERS")
	if got := string(ts.do(t, "GET", kv("big", "db=app"), "").Body); got != max {
		t.Fatalf("after overflow: got %s, want %s", got, max)
	}
	ts.do(t, "PUT", kv("small", q), "-9223372036854775807")
	wantStatus(t, ts.do(t, "POST", kv("small/decr", q), ""), 200)
	under := ts.do(t, "POST", kv("small/decr", q), "")
	wantError(t, under, 400, "INVALID_PARAMETERS")
	if msg := under.JSON(t)["message"]; msg != "Decrement would overflow a 64-bit integer" {
		t.Fatalf("decr past the smallest: message %q", msg)
	}
}

func TestIncr_UnderJSONPath(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("doc", q), `{"stats":{"views":41},"name":"x"}`)
	r := ts.do(t, "POST", kv("doc/incr", q+"&path=stats.views"), "")
	if m := r.JSON(t); m["value"] != 42.0 || m["previous"] != 41.0 {
		t.Fatalf("incr under path: got %s", r.Body)
	}
	r = ts.do(t, "POST", kv("doc/incr", q+"&path=$.stats.likes&delta=3"), "")
	if m := r.JSON(t); m["value"] != 3.0 || m["previous"] != 0.0 {
		t.Fatalf("incr of a missing field: got %s", r.Body)
	}
	wantError(t, ts.do(t, "POST", kv("doc/incr", q+"&path=name"), ""), 400, "INVALID_PARAMETERS")
	got := ts.do(t, "GET", kv("doc", "db=app&path=stats"), "")
	if string(got.Body) != `{"views":42,"likes":3}` && string(got.Body) != `{"views":42, "likes":3}` {
		t.Fatalf("document after path incr: got %s", got.Body)
	}
	fresh := ts.do(t, "POST", kv("newdoc/incr", q+"&path=a.b"), "")
	wantStatus(t, fresh, 200)
	if ct := ts.do(t, "GET", kv("newdoc", "db=app"), "").Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("new document under path: Content-Type %q, want application/json", ct)
	}
	// A value stored empty, or JSON labelled as text, is a JSON document
	// after an incr under a path, as after a PUT under one.
	for key, stored := range map[string]string{"empty": "", "text": `{"a":{"b":1}}`} {
		wantStatus(t, ts.do(t, "PUT", kv(key, q), stored, "Content-Type", "text/plain"), 200)
		wantStatus(t, ts.do(t, "POST", kv(key+"/incr", q+"&path=a.b"), ""), 200)
		if ct := ts.do(t, "GET", kv(key, "db=app"), "").Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s after an incr under a path: Content-Type %q, want application/json", key, ct)
		}
	}
}

// An index steps only into the array the path names: never into a sibling
// array after a member that holds a scalar.
func TestJSONPath_AnIndexAfterAScalarFindsNothing(t *testing.T) {
	ts := newTestServer(t)
	const doc = `{"b":true,"c":[5,6]}`
	ts.do(t, "PUT", kv("doc", "db=app&create_db_if_missing=true"), doc)
	wantError(t, ts.do(t, "GET", kv("doc", "db=app&path=b%5B0%5D"), ""), 404, "PATH_NOT_FOUND")
	wantError(t, ts.do(t, "POST", kv("doc/incr", "db=app&path=b%5B1%5D&delta=100"), ""), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("doc", "db=app&path=b%5B0%5D"), `"HIJACK"`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("doc", "db=app&path=b%5B0%5D&if_match=5"), `0`), 412, "CAS_MISMATCH") // not the sibling's 5
	if got := string(ts.do(t, "GET", kv("doc", "db=app"), "").Body); got != doc {
		t.Fatalf("document after refused path writes: got %s, want %s", got, doc)
	}
}

// A path may start at a root array with "$[n]", as kvd itself prints such
// a path in its messages.
func TestJSONPath_TheRootsIndexAfterTheDollar(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("list", "db=app&create_db_if_missing=true"), `[{"n":1},{"n":5}]`)
	if got := string(ts.do(t, "GET", kv("list", "db=app&path=$%5B1%5D.n"), "").Body); got != "5" {
		t.Fatalf("GET $[1].n: got %s, want 5", got)
	}
	if r := ts.do(t, "POST", kv("list/incr", "db=app&path=$%5B0%5D.n&delta=2"), ""); r.Status != 200 {
		t.Fatalf("incr $[0].n: %d %s", r.Status, r.Body)
	}
	r := ts.do(t, "GET", kv("list", "db=app&path=$%5B2%5D"), "")
	wantError(t, r, 404, "PATH_NOT_FOUND")
	if !strings.Contains(string(r.Body), "$[2]") {
		t.Fatalf("the message names the path as sent: %s", r.Body)
	}
	if got := string(ts.do(t, "GET", kv("list", "db=app"), "").Body); got != `[{"n":3},{"n":5}]` {
		t.Fatalf("document: got %s", got)
	}
}
