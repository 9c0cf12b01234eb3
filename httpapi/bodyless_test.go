package httpapi_test

import (
	"strings"
	"testing"
)

// A write that takes no body refuses one, naming itself: parameters a
// client put there (`{"delta":5}` to an incr) must not be silently
// ignored, as an unknown query parameter is not. A body that says nothing
// (none, whitespace, an empty JSON object or null) passes, as a generated
// client may send one; so does an empty chunked body, whatever content
// coding it names. A read's body is left alone: it has
// no meaning in HTTP, and nothing it could say changes data.
func TestBodylessEndpoints_RefuseABody(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("n", q), "5"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("arr", q), "[1,2,3]"), 200)
	for _, c := range []struct{ method, path, route string }{
		{"POST", kv("n/incr", q), "POST /kv/{key}/incr"},
		{"POST", kv("n/decr", q), "POST /kv/{key}/decr"},
		{"POST", kv("n/rollback", q), "POST /kv/{key}/rollback"},
		{"POST", kv("arr/pop", q), "POST /kv/{key}/pop"},
		{"DELETE", kv("n", q), "DELETE /kv/{key}"},
	} {
		for _, body := range []string{`{"delta":5}`, "7", "[]", `""`, strings.Repeat("x", 100<<10)} {
			r := ts.do(t, c.method, c.path, body)
			wantError(t, r, 400, "INVALID_PARAMETERS")
			if msg := r.JSON(t)["message"]; !contains(msg, c.route) || !contains(msg, "no request body") {
				t.Errorf("%s %s with a body of %d bytes: message %q", c.method, c.path, len(body), msg)
			}
		}
		for _, body := range []string{"", " \r\n", "{}", "{ }", "{\n}", " null "} {
			if r := ts.do(t, c.method, c.path, body); r.Status == 400 {
				t.Errorf("%s %s with body %q: %d %s", c.method, c.path, body, r.Status, r.Body)
			}
			wantStatus(t, ts.do(t, "PUT", kv("n", q), "5"), 200) // back, after a delete or rollback
			wantStatus(t, ts.do(t, "PUT", kv("arr", q), "[1,2,3]"), 200)
		}
	}
	if got := string(ts.do(t, "GET", kv("n", "db=app"), "").Body); got != "5" {
		t.Fatalf("n after refused writes: %q, want 5", got)
	}
	if r := ts.do(t, "GET", kv("n", "db=app"), `{"path":"$.a"}`); r.Status != 200 || string(r.Body) != "5" {
		t.Fatalf("a GET with a body: %d %s, want 200 5", r.Status, r.Body)
	}

	// An empty chunked body, as a streaming client sends for nothing.
	c := dialRaw(t, ts)
	c.send(t, "POST /api/v1/sqlite/kv/n/incr?db=app HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n0\r\n\r\n")
	wantStatus(t, c.answer(t), 200)
	c.send(t, "POST /api/v1/sqlite/kv/n/incr?db=app HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n{\"delta\":5}\r\n0\r\n\r\n")
	wantError(t, c.answer(t), 400, "INVALID_PARAMETERS")
	if got := string(ts.do(t, "GET", kv("n", "db=app"), "").Body); got != "6" {
		t.Fatalf("n after one incr with an empty chunked body: %q, want 6", got)
	}
}
