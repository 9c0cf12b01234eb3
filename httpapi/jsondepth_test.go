package httpapi_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// nested is depth arrays, one inside the other: [[[...]]].
func nested(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

// A JSON document deeper than kvd takes JSON is refused wherever kvd would
// label or build JSON: labelled text/plain, it came back as a string where
// the client had sent a document (and at 10,000 levels, labelled JSON, its
// answers were more than encoding/json, and so kvd's own client, reads).
func TestJSON_DeeperThanKvdTakesIsRefusedWhereItWouldBeJSON(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("arr", "db=app&create_db_if_missing=true"), `[]`), 200)
	over := nested(sqlitekv.MaxJSONDepth + 1)
	wantTooDeep := func(t *testing.T, r response, say string) {
		t.Helper()
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if m := r.JSON(t); !contains(m["message"], say) {
			t.Fatalf("message: got %q, want it to say %q", m["message"], say)
		}
	}
	for _, body := range []string{over, nested(10000), nested(20000), `{"a":` + over + `}`} {
		t.Run(strconv.Itoa(len(body)), func(t *testing.T) {
			wantTooDeep(t, ts.do(t, "PUT", kv("k", "db=app"), body, "Content-Type", "application/json"), "nested deeper than")
			wantTooDeep(t, ts.do(t, "PUT", kv("k", "db=app"), body), "nested deeper than") // no header: sniffed
			wantTooDeep(t, ts.do(t, "PUT", kv("doc", "db=app&path=a"), body, "Content-Type", "text/plain"), "nested deeper than")
			wantTooDeep(t, ts.do(t, "POST", kv("arr/push", "db=app"), body), "nested deeper than")
			for _, ct := range []string{``, `,"content_type":"application/json"`} {
				batch := `{"items":[{"key":"k","value":` + strconv.Quote(body) + ct + `}]}`
				wantTooDeep(t, ts.do(t, "POST", "/api/v1/sqlite/kv/batch/set?db=app", batch), "items[0].value is JSON nested deeper than")
			}
			wantError(t, ts.do(t, "GET", kv("k", "db=app"), ""), 404, "KEY_NOT_FOUND")
		})
	}
	// A push or a write under a path that would build such a document.
	wantTooDeep(t, ts.do(t, "POST", kv("arr/push", "db=app"), nested(sqlitekv.MaxJSONDepth)), "would be JSON nested deeper than")
	wantStatus(t, ts.do(t, "PUT", kv("doc", "db=app"), `{"a":[]}`), 200)
	wantTooDeep(t, ts.do(t, "PUT", kv("doc", "db=app&path=a[0]"), nested(sqlitekv.MaxJSONDepth-1)), "would be JSON nested deeper than")
	if got := ts.do(t, "GET", kv("arr", "db=app"), ""); string(got.Body) != `[]` {
		t.Fatalf("arr: got %s, want []", got.Body)
	}
	// Text that only opens brackets is no JSON at any depth: text, as before.
	put := ts.do(t, "PUT", kv("t", "db=app"), strings.Repeat("[", 20000), "Content-Type", "application/json")
	wantStatus(t, put, 200)
	if ct := ts.do(t, "GET", kv("t", "db=app"), "").Header.Get("Content-Type"); ct != "text/plain" {
		t.Fatalf("brackets only: Content-Type got %q, want text/plain", ct)
	}
}

// A document as deep as kvd takes JSON is JSON in every answer, and each
// answer stays within what encoding/json (kvd's Go client, kvctl) reads.
func TestJSON_AsDeepAsKvdTakesIsJSONInEveryAnswer(t *testing.T) {
	ts := newTestServer(t)
	deepest := nested(sqlitekv.MaxJSONDepth)
	from := strconv.FormatInt(ts.Clock.Now().Unix()-1, 10)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), deepest), 200)
	ts.Clock.Advance(2 * time.Second)
	to := strconv.FormatInt(ts.Clock.Now().Unix(), 10)
	get := ts.do(t, "GET", kv("k", "db=app"), "")
	if ct := get.Header.Get("Content-Type"); ct != "application/json" || string(get.Body) != deepest {
		t.Fatalf("GET: Content-Type %q, %d bytes; want application/json, the %d sent", ct, len(get.Body), len(deepest))
	}
	inline := func(name string, v any) {
		t.Helper()
		if _, ok := v.([]any); !ok {
			t.Errorf("%s: got %.60v, want the document inline", name, v)
		}
	}
	m := ts.do(t, "POST", "/api/v1/sqlite/kv/batch/get?db=app", `{"keys":["k"]}`).JSON(t)
	inline("batch/get", m["values"].(map[string]any)["k"].(map[string]any)["value"])
	m = ts.do(t, "GET", kv("k/history", "db=app"), "").JSON(t)
	inline("history", m["operations"].([]any)[0].(map[string]any)["operation"].(map[string]any)["new_value"])
	m = ts.do(t, "GET", kv("k/snapshot", "db=app&op_number=1"), "").JSON(t)
	inline("key snapshot", m["value"])
	m = ts.do(t, "GET", "/api/v1/sqlite/kv/snapshot?db=app&timestamp="+to, "").JSON(t)
	inline("table snapshot", m["entries"].(map[string]any)["k"])
	m = ts.do(t, "GET", "/api/v1/sqlite/kv/diff?db=app&from="+from+"&to="+to, "").JSON(t)
	inline("diff", m["changes"].([]any)[0].(map[string]any)["new_value"])
	m = ts.do(t, "GET", kv("k/watch", "db=app&after_op=0&wait=1s"), "").JSON(t)
	inline("watch", m["events"].([]any)[0].(map[string]any)["value"])
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), `1`), 200)
	m = ts.do(t, "POST", kv("k/rollback", "db=app"), "").JSON(t)
	inline("rollback", m["value"])
}
