package httpapi_test

import (
	"strconv"
	"strings"
	"testing"
)

// malformedRequests are requests Go's HTTP server refuses before kvd sees
// them, with the answer kvd sends in place of net/http's plain text.
var malformedRequests = []struct {
	name, request string
	status        int
	code, message string
}{
	{"broken escape", "GET /api/v1/sqlite/kv/%zz?db=app HTTP/1.1\r\nHost: x\r\n\r\n", 400, "INVALID_PARAMETERS", "Malformed HTTP request: the request line"},
	{"raw space", "GET /api/v1/sqlite/kv/a b?db=app HTTP/1.1\r\nHost: x\r\n\r\n", 400, "INVALID_PARAMETERS", "Malformed HTTP request: the request line"},
	{"negative length", "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "INVALID_PARAMETERS", "Malformed HTTP request: the request line"},
	{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "INVALID_PARAMETERS", "Malformed HTTP request: missing required Host header"},
	{"bad header name", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "INVALID_PARAMETERS", "Malformed HTTP request: "},
	{"head past 64 KiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, "REQUEST_HEADERS_TOO_LARGE", "The request line and headers exceed 64 KiB"},
	{"unknown transfer coding", "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "NOT_IMPLEMENTED", "Unsupported Transfer-Encoding"},
	{"HTTP/3.0", "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED", "Unsupported HTTP version"},
	{"unknown expectation", "GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417, "EXPECTATION_FAILED", "Unsupported Expect header"},
	{"unknown expectation, HTTP/1.0", "GET /healthz HTTP/1.0\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417, "EXPECTATION_FAILED", "Unsupported Expect header"},
}

// wantRefusedInJSON checks one of malformedRequests' answers: kvd's JSON
// error, with a request id, and the connection closed.
func wantRefusedInJSON(t *testing.T, conn *rawConn, status int, code, message string) {
	t.Helper()
	r := conn.answer(t)
	if r.Status != status || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Connection") != "close" || r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("got %d %v %s, want %d in JSON with a request id, the connection closed", r.Status, r.Header, r.Body, status)
	}
	body := r.JSON(t)
	if body["statusCode"] != float64(status) || body["code"] != code || !strings.HasPrefix(body["message"].(string), message) {
		t.Fatalf("got %s, want statusCode %d, code %s, a message starting %q", r.Body, status, code, message)
	}
	conn.wantClosed(t)
}

// A request Go's HTTP server refuses before kvd sees it is answered with
// kvd's JSON error all the same, and its connection is closed: as the
// first request of a connection, behind one served on it, and behind one
// in the same packet.
func TestMalformedRequests_AnsweredInJSON(t *testing.T) {
	ts := newTestServer(t)
	const served = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, c := range malformedRequests {
		t.Run(c.name, func(t *testing.T) {
			conn := dialRaw(t, ts)
			conn.send(t, c.request)
			wantRefusedInJSON(t, conn, c.status, c.code, c.message)

			conn = dialRaw(t, ts)
			conn.send(t, served)
			wantStatus(t, conn.answer(t), 200)
			conn.send(t, c.request)
			wantRefusedInJSON(t, conn, c.status, c.code, c.message)

			conn = dialRaw(t, ts)
			conn.send(t, served+c.request)
			wantStatus(t, conn.answer(t), 200)
			wantRefusedInJSON(t, conn, c.status, c.code, c.message)
		})
	}
	wantStatus(t, ts.do(t, "GET", "/healthz", ""), 200)
}

// So over TLS, where kvd sees the decrypted stream.
func TestTLS_MalformedRequestsAnsweredInJSON(t *testing.T) {
	ts, ca := newTLSServer(t, 0)
	for _, c := range malformedRequests {
		conn := dialTLS(t, ts, ca, nil)
		conn.send(t, c.request)
		wantRefusedInJSON(t, conn, c.status, c.code, c.message)
	}
}

// A value whose bytes end with exactly Go's plain-text refusal is served
// as stored, however its answer is cut into writes: net/http sends a
// value of a few KiB as a first write of 4 KiB (the head and the value's
// start) and a second of the rest, which then is that refusal alone.
func TestMalformedRequests_AValueLikeGosRefusalIsServedAsStored(t *testing.T) {
	ts := newTestServer(t)
	const refusal = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"
	q := "db=app&create_db_if_missing=true"
	for filler := 3600; filler <= 4096; filler++ {
		value := strings.Repeat("a", filler) + refusal
		key := "k" + strconv.Itoa(filler)
		wantStatus(t, ts.do(t, "PUT", kv(key, q), value, "Content-Type", "text/plain; charset=utf-8"), 200)
		if r := ts.do(t, "GET", kv(key, "db=app"), ""); r.Status != 200 || string(r.Body) != value {
			t.Fatalf("%d bytes before the refusal's text: got %d, %d bytes ending %q; want the value as stored", filler, r.Status, len(r.Body), r.Body[max(0, len(r.Body)-60):])
		}
	}
}
