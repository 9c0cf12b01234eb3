package httpapi_test

import (
	"strings"
	"testing"
)

// TestParams_ATypoIsRefusedNotIgnored: ttl misspelt must not store a key
// that never expires, and a parameter given twice must not be half read.
func TestParams_ATypoIsRefusedNotIgnored(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	cases := []struct {
		method, path, names string
	}{
		{"PUT", kv("k", q+"&tll=60"), `"tll"`},
		{"PUT", kv("k", "db=app&db=other&create_db_if_missing=true"), `"db" is given 2 times`},
		{"PUT", kv("k", q+"&ttl=60&ttl=1"), `"ttl" is given 2 times`},
		{"POST", kv("k/incr", q+"&detla=5"), `"detla"`},
		{"GET", kv("k", "db=app&at_timestamp=1&at_timestamp=2"), `"at_timestamp" is given 2 times`},
		{"GET", kv("k", "db=app&create_db_if_missing=true"), `"create_db_if_missing"`}, // reads never create
		{"POST", batchPath + "set?" + q + "&ttl=5", `"ttl"`},                           // batch TTLs go per item
		{"GET", "/api/v1/sqlite/kv?db=app&prefix=a&prefx=b", `"prefx"`},
		{"POST", "/api/v1/sqlite/db/create?path=x&db=x", `"db"`},
		{"GET", "/api/v1/sqlite/db/backup?db=app&db=app", `"db" is given 2 times`},
		{"PUT", kv("k", q+";ttl=60"), "Malformed query string"},
		{"PUT", kv("k", q+"&ttl=%zz"), "Malformed query string"},
		{"PUT", kv("k", q+"&%74tl=60&t%74l=1"), `"ttl" is given 2 times`}, // names are decoded first
		{"PUT", kv("k", q+strings.Repeat("&ttl=1", 100)), "Too many query parameters (102)"},
	}
	for _, c := range cases {
		r := ts.do(t, c.method, c.path, `{"items":[{"key":"k","value":"v"}]}`)
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, c.names) {
			t.Errorf("%s %s: message %q does not name %s", c.method, c.path, msg, c.names)
		}
	}
	// None of them wrote anything.
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=app", ""), 404, "DATABASE_NOT_FOUND")
	wantError(t, ts.do(t, "GET", kv("k", "db=other"), ""), 404, "DATABASE_NOT_FOUND")
	// Spelt right, it works; probes and metrics ignore what they do not use.
	wantStatus(t, ts.do(t, "PUT", kv("k", q+"&ttl=60"), "v"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", "&db=%61pp&&t%74l=6%30"), "v"), 200) // empty pairs skipped, escapes decoded
	if ts.do(t, "HEAD", kv("k", "db=app"), "").Header.Get("X-Expire-At") == "" {
		t.Fatal("ttl=60 set no expiry")
	}
	for _, path := range []string{"/healthz?probe=1", "/readyz?x=1&x=2", "/metrics?name[]=up", "/api/v1/openapi.json?v=1"} {
		wantStatus(t, ts.do(t, "GET", path, ""), 200)
	}
}

// TestParams_EveryEndpointTakesWhatItsDocumentListsAndNothingElse walks the
// OpenAPI document: each operation of the API refuses a parameter it does
// not list and one it lists given twice, and none refuses one it lists as
// unknown.
func TestParams_EveryEndpointTakesWhatItsDocumentListsAndNothingElse(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In string }
		}
	}
	if err := jsonUnmarshal(ts.do(t, "GET", "/api/v1/openapi.json", "").Body, &doc); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/v1/sqlite/") {
			continue
		}
		for method, op := range ops {
			method = strings.ToUpper(method)
			url := strings.ReplaceAll(path, "{key}", "k") + "?"
			send := func(query string) map[string]any {
				t.Helper()
				r := ts.do(t, method, url+query, "")
				if method == "HEAD" { // no body: the code travels in a header
					return map[string]any{"code": r.Header.Get("X-Error-Code"), "message": r.Header.Get("X-Error-Code")}
				}
				if r.Status < 400 {
					return map[string]any{}
				}
				return r.JSON(t)
			}
			if m := send("zzz=1"); m["code"] != "INVALID_PARAMETERS" || (method != "HEAD" && !contains(m["message"], `"zzz"`)) {
				t.Errorf("%s %s?zzz=1: got %v, want INVALID_PARAMETERS naming zzz", method, path, m)
			}
			for _, p := range op.Parameters {
				if p.In != "query" {
					continue
				}
				if m := send(p.Name + "=1&" + p.Name + "=2"); m["code"] != "INVALID_PARAMETERS" || (method != "HEAD" && !contains(m["message"], `"`+p.Name+`" is given 2 times`)) {
					t.Errorf("%s %s with %s twice: got %v", method, path, p.Name, m)
				}
				if m := send(p.Name + "=1"); contains(m["message"], "Unknown query parameter") {
					t.Errorf("%s %s refuses %s, which its document lists: %v", method, path, p.Name, m)
				}
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d operations, want every one of the API (20 or more)", checked)
	}
}
