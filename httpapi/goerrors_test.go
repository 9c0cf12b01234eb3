package httpapi_test

import (
	"strings"
	"testing"
)

// A request Go's HTTP server refuses before kvd sees it is answered with
// kvd's JSON error all the same, and its connection is closed.
func TestMalformedRequests_AnsweredInJSON(t *testing.T) {
	ts := newTestServer(t)
	for _, c := range []struct {
		name, request string
		status        int
		code, message string
	}{
		{"broken escape", "GET /api/v1/sqlite/kv/%zz?db=app HTTP/1.1\r\nHost: x\r\n\r\n", 400, "INVALID_PARAMETERS", "Malformed HTTP request: the request line"},
		{"raw space", "GET /api/v1/sqlite/kv/a b?db=app HTTP/1.1\r\nHost: x\r\n\r\n", 400, "INVALID_PARAMETERS", "Malformed HTTP request: the request line"},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "INVALID_PARAMETERS", "Malformed HTTP request: missing required Host header"},
		{"head past 64 KiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, "PAYLOAD_TOO_LARGE", "The request line and headers exceed 64 KiB"},
		{"unknown transfer coding", "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "INVALID_PARAMETERS", "Unsupported Transfer-Encoding"},
		{"HTTP/3.0", "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 505, "INVALID_PARAMETERS", "Unsupported HTTP version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dialRaw(t, ts)
			conn.send(t, c.request)
			r := conn.answer(t)
			if r.Status != c.status || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Connection") != "close" {
				t.Fatalf("got %d %v %s, want %d in JSON, the connection closed", r.Status, r.Header, r.Body, c.status)
			}
			body := r.JSON(t)
			if body["statusCode"] != float64(c.status) || body["code"] != c.code || !strings.HasPrefix(body["message"].(string), c.message) {
				t.Fatalf("got %s, want statusCode %d, code %s, a message starting %q", r.Body, c.status, c.code, c.message)
			}
			conn.wantClosed(t)
		})
	}
	wantStatus(t, ts.do(t, "GET", "/healthz", ""), 200)
}

// A value whose bytes are exactly Go's plain-text refusal is served as
// stored: only net/http's own write is replaced.
func TestMalformedRequests_AValueLikeGosRefusalIsServedAsStored(t *testing.T) {
	ts := newTestServer(t)
	const refusal = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), refusal, "Content-Type", "text/plain; charset=utf-8"), 200)
	r := ts.do(t, "GET", kv("k", "db=app"), "")
	if r.Status != 200 || string(r.Body) != refusal {
		t.Fatalf("got %d %q, want the value as stored", r.Status, r.Body)
	}
}
