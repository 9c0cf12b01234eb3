package httpapi_test

import (
	"net/url"
	"testing"
	"time"
)

func TestCAS_IfMatchComparesStoredValue(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("k", q), "v1 & more")
	wantError(t, ts.do(t, "PUT", kv("k", q+"&if_match=wrong"), "v2"), 412, "CAS_MISMATCH")
	wantError(t, ts.do(t, "PUT", kv("missing", q+"&if_match=v1"), "v2"), 412, "CAS_KEY_MISSING")
	wantStatus(t, ts.do(t, "PUT", kv("k", q+"&if_match="+url.QueryEscape("v1 & more")), "v2"), 200)
	if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "v2" {
		t.Fatalf("after CAS: got %q, want v2", got)
	}
	wantError(t, ts.do(t, "GET", kv("missing", "db=app"), ""), 404, "KEY_NOT_FOUND")
}

func TestCAS_IfMatchUnderPathComparesFragment(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("cfg", q), `{"theme":"dark","size":3}`)
	wantError(t, ts.do(t, "PUT", kv("cfg", q+"&path=theme&if_match=light"), `"blue"`), 412, "CAS_MISMATCH")
	wantStatus(t, ts.do(t, "PUT", kv("cfg", q+"&path=theme&if_match=dark"), `"blue"`), 200)
	wantStatus(t, ts.do(t, "PUT", kv("cfg", q+"&path=size&if_match=3"), `4`), 200)
	if got := string(ts.do(t, "GET", kv("cfg", "db=app&path=theme"), "").Body); got != `"blue"` {
		t.Fatalf("theme: got %s, want \"blue\"", got)
	}

	// As JSON, as remove compares: spacing, member order, escapes and a
	// number's spelling do not matter; its kind and content do.
	ts.do(t, "PUT", kv("doc", q), `{"a": {"b": 1, "c": [1.50, "d\u0061rk"]}, "n": 100, "s": "dark"}`)
	for _, c := range []struct {
		path, ifMatch string
		status        int
	}{
		{"a", `{"c":[1.5,"dark"],"b":1}`, 200},
		{"a.c", `[15e-1, "\u0064ark"]`, 200},
		{"n", `1e2`, 200},
		{"s", `"d\u0061rk"`, 200},
		{"s", `dark`, 200},
		{"n", `"100"`, 412},
		{"a", `{"b":1}`, 412},
		{"a", `{"b":1,"c":[1.5,"dark"]} trailing`, 412},
		{"a.c", `[1.5,"dark",null]`, 412},
	} {
		r := ts.do(t, "PUT", kv("doc", "db=app&path="+c.path+"&if_match="+url.QueryEscape(c.ifMatch)), `{"x":1}`)
		wantStatus(t, r, c.status)
		if c.status == 200 { // put the fragment back for the next case
			ts.do(t, "PUT", kv("doc", q), `{"a": {"b": 1, "c": [1.50, "d\u0061rk"]}, "n": 100, "s": "dark"}`)
		}
	}

	// A lone surrogate escape decodes as U+FFFD but does not say it: only
	// its own text matches it, not U+FFFD however sent.
	for ifMatch, status := range map[string]int{"\uFFFD": 412, `"\ufffd"`: 412, `"\ud800"`: 200} {
		ts.do(t, "PUT", kv("lone", q), `{"l":"\ud800"}`)
		wantStatus(t, ts.do(t, "PUT", kv("lone", "db=app&path=l&if_match="+url.QueryEscape(ifMatch)), `1`), status)
	}
}

func TestCAS_ETagHeaders(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	create := ts.do(t, "PUT", kv("k", q), "v1", "If-None-Match", "*")
	wantStatus(t, create, 200)
	wantError(t, ts.do(t, "PUT", kv("k", q), "again", "If-None-Match", "*"), 412, "CAS_MISMATCH")
	tag := create.Header.Get("ETag")
	update := ts.do(t, "PUT", kv("k", q), "v2", "If-Match", tag)
	wantStatus(t, update, 200)
	wantError(t, ts.do(t, "PUT", kv("k", q), "v3", "If-Match", tag), 412, "CAS_MISMATCH")
	wantError(t, ts.do(t, "PUT", kv("nope", q), "v3", "If-Match", tag), 412, "CAS_KEY_MISSING")
	wantError(t, ts.do(t, "DELETE", kv("k", q), "", "If-Match", tag), 412, "CAS_MISMATCH")
	// Lists and * as HTTP defines them. If-Match compares strongly (a weak
	// tag never matches), If-None-Match weakly.
	current := update.Header.Get("ETag")
	wantError(t, ts.do(t, "PUT", kv("k", q), "v3", "If-Match", "W/"+current), 412, "CAS_MISMATCH")
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "v3", "If-Match", `"1", `+current), 200)
	// A comma may sit inside a tag: "a,b" is one tag kvd never gave.
	wantError(t, ts.do(t, "PUT", kv("k", q), "v3", "If-Match", `"a,b"`), 412, "CAS_MISMATCH")
	current = ts.do(t, "HEAD", kv("k", "db=app"), "").Header.Get("ETag")
	wantError(t, ts.do(t, "PUT", kv("k", q), "v4", "If-None-Match", `"1", W/`+current), 412, "CAS_MISMATCH")
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "v4", "If-None-Match", `"1", "2"`), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "v5", "If-Match", "*"), 200)
	wantError(t, ts.do(t, "PUT", kv("nope", q), "v", "If-Match", "*"), 412, "CAS_KEY_MISSING")
	wantStatus(t, ts.do(t, "PUT", kv("fresh", q), "v", "If-None-Match", `"1"`), 200) // nothing to match
	// A missing key fails If-Match before it is found missing.
	wantError(t, ts.do(t, "DELETE", kv("nope", q), "", "If-Match", "*"), 412, "CAS_KEY_MISSING")
	wantError(t, ts.do(t, "DELETE", kv("nope", q), ""), 404, "KEY_NOT_FOUND")
	// Reads: If-None-Match answers 304, a failed If-Match 412.
	current = ts.do(t, "HEAD", kv("k", "db=app"), "").Header.Get("ETag")
	for _, method := range []string{"GET", "HEAD"} {
		for header, want := range map[[2]string]int{
			{"If-None-Match", `"1", ` + current}: 304,
			{"If-None-Match", "*"}:               304,
			{"If-None-Match", `"1"`}:             200,
			{"If-Match", `"1"`}:                  412,
			{"If-Match", current}:                200,
			{"If-Match", "*"}:                    200,
			// well-formed tags kvd never gave match nothing
			{"If-Match", `"abc"`}:                412,
			{"If-Match", `"1", "x"`}:             412,
			{"If-Match", `"x", ` + current}:      200,
			{"If-None-Match", `"abc"`}:           200,
			{"If-None-Match", `"x", ` + current}: 304,
			// a malformed header is ignored, as caches expect
			{"If-Match", `abc`}: 200,
		} {
			if got := ts.do(t, method, kv("k", "db=app"), "", header[0], header[1]); got.Status != want {
				t.Errorf("%s with %s: %s: got %d, want %d", method, header[0], header[1], got.Status, want)
			}
		}
	}
	// A header on two lines is one list: the second line counts too.
	wantError(t, ts.do(t, "PUT", kv("k", q), "v6", "If-None-Match", `"1"`, "If-None-Match", current), 412, "CAS_MISMATCH")
	wantError(t, ts.do(t, "PUT", kv("k", q), "v6", "If-None-Match", `"1"`, "If-None-Match", "*"), 400, "INVALID_PARAMETERS")
	wantStatus(t, ts.do(t, "GET", kv("k", "db=app"), "", "If-None-Match", `"1"`, "If-None-Match", current), 304)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "v6", "If-Match", `"1"`, "If-Match", current), 200)
	if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "v6" {
		t.Fatalf("after the conditional writes: got %q, want v6", got)
	}
	current = ts.do(t, "HEAD", kv("k", "db=app"), "").Header.Get("ETag")
	// Empty list elements are skipped, as HTTP asks of a recipient.
	wantStatus(t, ts.do(t, "DELETE", kv("k", q), "", "If-Match", `, "1",, `+current+`,`), 200)
}

func TestJSONPath_GetAndPutLeaves(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("u", q), `{"prefs":{"theme":"dark"},"items":[{"price":1},{"price":2},{"price":3}]}`)
	for path, want := range map[string]string{
		"prefs.theme":    `"dark"`,
		"$.prefs.theme":  `"dark"`,
		"items[2].price": `3`,
		"prefs":          `{"theme":"dark"}`,
	} {
		r := ts.do(t, "GET", kv("u", "db=app&path="+url.QueryEscape(path)), "")
		if string(r.Body) != want || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("path %s: got %s (%s), want %s", path, r.Body, r.Header.Get("Content-Type"), want)
		}
	}
	wantError(t, ts.do(t, "GET", kv("u", "db=app&path=prefs.missing"), ""), 404, "PATH_NOT_FOUND")
	ts.do(t, "PUT", kv("text", q), "not json")
	wantError(t, ts.do(t, "GET", kv("text", "db=app&path=a"), ""), 400, "INVALID_PARAMETERS")

	wantStatus(t, ts.do(t, "PUT", kv("u", q+"&path=prefs.lang"), `"en"`), 200)
	if got := string(ts.do(t, "GET", kv("u", "db=app&path=prefs.lang"), "").Body); got != `"en"` {
		t.Fatalf("after path put: got %s, want \"en\"", got)
	}
	if got := string(ts.do(t, "GET", kv("u", "db=app&path=prefs.theme"), "").Body); got != `"dark"` {
		t.Fatalf("sibling after path put: got %s, want \"dark\"", got)
	}
	wantStatus(t, ts.do(t, "PUT", kv("fresh", q+"&path=a.b"), `true`), 200)
	if got := string(ts.do(t, "GET", kv("fresh", "db=app"), "").Body); got != `{"a":{"b":true}}` {
		t.Fatalf("path put on missing key: got %s, want {\"a\":{\"b\":true}}", got)
	}
	// "$" is the whole document, held to JSON like any other path.
	wantError(t, ts.do(t, "GET", kv("text", "db=app&path=%24"), ""), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("text", q+"&path=%24"), "still not json"), 400, "INVALID_PARAMETERS")
	if r := ts.do(t, "GET", kv("fresh", "db=app&path=%24"), ""); string(r.Body) != `{"a":{"b":true}}` || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("path $: got %s (%s)", r.Body, r.Header.Get("Content-Type"))
	}
	wantStatus(t, ts.do(t, "PUT", kv("whole", q+"&path=%24"), `{"a":1}`, "Content-Type", "image/png"), 200)
	if ct := ts.do(t, "GET", kv("whole", "db=app"), "").Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("put under path $: Content-Type %q, want application/json", ct)
	}
	// An incr at $ of a missing key starts a counter, as one at a.b
	// starts a field.
	if m := ts.do(t, "POST", kv("count/incr", q+"&path=%24"), "").JSON(t); m["value"] != 1.0 {
		t.Fatalf("incr at $ of a missing key: got %v, want value 1", m)
	}
	if got := string(ts.do(t, "GET", kv("count", "db=app"), "").Body); got != "1" {
		t.Fatalf("after incr at $: got %s, want 1", got)
	}
}

// If-Match and If-None-Match hold on every write to one key, not only on
// PUT and DELETE: an incr, an array operation or a rollback that a client
// made conditional must not go through when the condition fails. A write
// that names no key has no version to compare, so it refuses them.
func TestCAS_ETagHeadersOnEveryKeyWrite(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("n", q), "5"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("arr", q), "[1,2,3]"), 200)
	stale := `"999999"`
	for path, body := range map[string]string{kv("n/incr", q): "", kv("n/decr", q): "", kv("n/rollback", q): "",
		kv("arr/push", q): "4", kv("arr/pop", q): "", kv("arr/remove", q): "4"} {
		wantError(t, ts.do(t, "POST", path, body, "If-Match", stale), 412, "CAS_MISMATCH")
		wantError(t, ts.do(t, "POST", path, body, "If-None-Match", "*"), 412, "CAS_MISMATCH")
	}
	wantError(t, ts.do(t, "POST", kv("fresh/incr", q), "", "If-Match", "*"), 412, "CAS_KEY_MISSING")
	// An expired key is a missing one to a condition, on DELETE too.
	tag := ts.do(t, "PUT", kv("brief", q+"&ttl=1"), "x").Header.Get("ETag")
	ts.Clock.Advance(2 * time.Second)
	wantError(t, ts.do(t, "DELETE", kv("brief", q), "", "If-Match", tag), 412, "CAS_KEY_MISSING")
	wantError(t, ts.do(t, "POST", kv("brief/incr", q), "", "If-Match", tag), 412, "CAS_KEY_MISSING")
	if got := string(ts.do(t, "GET", kv("n", "db=app"), "").Body); got != "5" {
		t.Fatalf("n after refused writes: got %q, want 5", got)
	}
	if got := string(ts.do(t, "GET", kv("arr", "db=app"), "").Body); got != "[1,2,3]" {
		t.Fatalf("arr after refused writes: got %q, want [1,2,3]", got)
	}
	// With the current ETag each goes through.
	for _, key := range []string{"n", "arr"} {
		tag := ts.do(t, "HEAD", kv(key, "db=app"), "").Header.Get("ETag")
		op, body := map[string]string{"n": "/incr", "arr": "/push"}[key], map[string]string{"n": "", "arr": "4"}[key]
		wantStatus(t, ts.do(t, "POST", kv(key+op, q), body, "If-Match", tag), 200)
	}
	wantStatus(t, ts.do(t, "POST", kv("fresh/incr", q), "", "If-None-Match", "*"), 200)

	for _, c := range []struct{ path, body string }{
		{kv("batch/set", q), `{"items":[{"key":"n","value":"7"}]}`},
		{kv("batch/delete", q), `{"keys":["n"]}`},
		{kv("rollback", "db=app&to_timestamp=1&confirm=yes"), ""},
		{"/api/v1/sqlite/db/create?path=other", ""},
	} {
		r := ts.do(t, "POST", c.path, c.body, "If-Match", stale)
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"]; !contains(msg, "If-Match") {
			t.Errorf("POST %s with If-Match: message %q, want one about If-Match", c.path, msg)
		}
	}
	if got := string(ts.do(t, "GET", kv("n", "db=app"), "").Body); got != "6" {
		t.Fatalf("n after refused batch and rollback: got %q, want 6", got)
	}
}

// SPEC: a table that does not exist reads as a missing key, and If-Match
// on a missing key is a failed precondition. So a delete, pop, remove or rollback
// with If-Match answers 412 whether or not the key's table exists.
func TestCAS_IfMatchOnAKeyOfAMissingTableFails(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v") // kv_store exists, t does not
	for _, c := range []struct{ method, path string }{
		{"DELETE", kv("nope", "db=app")},
		{"DELETE", kv("nope", "db=app&table=t")},
		{"POST", kv("nope/pop", "db=app")},
		{"POST", kv("nope/pop", "db=app&table=t")},
		{"POST", kv("nope/remove", "db=app&index=0")},
		{"POST", kv("nope/rollback", "db=app")},
		{"POST", kv("nope/rollback", "db=app&table=t")},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			wantError(t, ts.do(t, c.method, c.path, "", "If-Match", `"1"`), 412, "CAS_KEY_MISSING")
			wantError(t, ts.do(t, c.method, c.path, ""), 404, "KEY_NOT_FOUND")
		})
	}
}
