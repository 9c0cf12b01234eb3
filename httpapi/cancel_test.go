package httpapi_test

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A client that pipelines writes and then closes its sending side (a
// half-close) is still reading, but Go's server ends the context of the
// request it serves when it reads that EOF. A write whose context ended
// before it reached its database is not applied: it answers 503, never a
// 500, and every 200 is a write that counted.
func TestCancelledRequests_Answer503AndApplyNothing(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "POST", kv("c/incr", "db=app&create_db_if_missing=true"), ""), 200)
	counted := 1
	for round := 0; round < 5; round++ {
		c := dialRaw(t, ts)
		var pipeline strings.Builder
		for range 200 {
			pipeline.WriteString("POST /api/v1/sqlite/kv/c/incr?db=app HTTP/1.1\r\nHost: kvd\r\nContent-Length: 0\r\n\r\n")
		}
		c.send(t, pipeline.String())
		if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range 200 {
			res, err := http.ReadResponse(c.r, nil)
			if err != nil {
				break // the server closed the connection after the half-close
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				break
			}
			r := response{Status: res.StatusCode, Header: res.Header, Body: body}
			switch r.Status {
			case 200:
				counted++
			case 503:
				wantError(t, r, 503, "OVERLOADED")
			default:
				t.Fatalf("pipelined incr after a half-close: %d %s", r.Status, r.Body)
			}
		}
	}
	if got := string(ts.do(t, "GET", kv("c", "db=app"), "").Body); got != strconv.Itoa(counted) {
		t.Fatalf("counter: got %s, want %d (the incrs answered 200)", got, counted)
	}
}
