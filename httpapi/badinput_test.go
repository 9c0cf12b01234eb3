package httpapi_test

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

// TestBadInput_EveryHostileRequestGetsA4xxJSONError sends malformed and
// hostile requests; each must answer the right 4xx JSON error, and the
// daemon must stay healthy and keep its data.
func TestBadInput_EveryHostileRequestGetsA4xxJSONError(t *testing.T) {
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxValueBytes = 1 << 16 })
	ok := "db=app&create_db_if_missing=true"
	read := "db=app" // reads take no create_db_if_missing
	ts.do(t, "PUT", kv("safe", ok), `{"n":1,"list":[1,2]}`)
	ts.do(t, "PUT", kv("text", ok), "plain")
	ts.do(t, "PUT", kv("max", ok), "9223372036854775807")
	os.WriteFile(filepath.Join(ts.DataDir, "fake.db"), []byte("#!/bin/sh\necho not a database\n"), 0o600)
	os.WriteFile(filepath.Join(ts.DataDir, "short.db"), []byte("SQLite for"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(ts.DataDir, "passwd.db"))
	os.Symlink(t.TempDir(), filepath.Join(ts.DataDir, "outside"))
	big := strings.Repeat("x", 1<<16+1)

	type c struct {
		method, path, body string
		status             int
		code               string
		header             []string
	}
	cases := []c{
		// database paths
		{"GET", kv("k", "db="), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", ""), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=..%2Fx"), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=a%2F..%2Fb"), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=%2Fetc%2Fpasswd"), "", 400, "INVALID_DB_PATH", nil},
		{"PUT", kv("k", "create_db_if_missing=true&db=%2Ftmp%2Fowned.db"), "x", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=passwd"), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=outside%2Fx"), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=%3Amemory%3A"), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=a%00b"), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=file%3Aapp.db"), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=a%5Cb"), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=."), "", 400, "INVALID_DB_PATH", nil},
		{"GET", kv("k", "db=fake"), "", 400, "INVALID_SQLITE_HEADER", nil},
		{"PUT", kv("k", "db=fake"), "x", 400, "INVALID_SQLITE_HEADER", nil},
		{"GET", kv("k", "db=short"), "", 400, "INVALID_SQLITE_HEADER", nil},
		{"GET", kv("k", "db=nothere"), "", 404, "DATABASE_NOT_FOUND", nil},
		{"PUT", kv("k", "db=nothere"), "x", 404, "DATABASE_NOT_FOUND", nil},
		// tables: SQL has no way in
		{"GET", kv("k", "db=app&table=kv_store%3B%20DROP%20TABLE%20kv_store"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("k", "db=app&table=kv_store%22%20--"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("k", "db=app&table=a%27b"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("k", "db=app&table=sqlite_master"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("k", "db=app&table=9lives"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("k", "db=app&table="+strings.Repeat("t", 64)), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("k", "db=app&table=%C3%A9t%C3%A9"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("k", "db=app;table=x"), "", 400, "INVALID_PARAMETERS", nil},
		// keys
		{"PUT", kv("", ok), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv(strings.Repeat("k", 1025), ok), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("a%00b", ok), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("a%0Ab", ok), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("a%7Fb", ok), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("a%C2%85b", ok), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("%FF%FE", ok), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("%C3", ok), "x", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("%2F", read), "", 404, "KEY_NOT_FOUND", nil},
		// ttl
		{"PUT", kv("k", ok+"&ttl=0"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&ttl=-1"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&ttl=1.5"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&ttl=1e3"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&ttl=99999999999999999999"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&ttl=9223372036854775807"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&ttl="), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&ttl=0x10"), "x", 400, "INVALID_PARAMETERS", nil},
		// delta
		{"POST", kv("c/incr", ok+"&delta=0"), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("c/incr", ok+"&delta=-5"), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("c/incr", ok+"&delta=2.5"), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("c/decr", ok+"&delta=9223372036854775808"), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("c/incr", ok+"&delta=%201"), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("c/incr", ok+"&delta=NaN"), "", 400, "INVALID_PARAMETERS", nil},
		// overflow and non-numbers
		{"POST", kv("max/incr", ok), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("text/incr", ok), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("safe/incr", ok+"&path=list"), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("safe/incr", ok), "", 400, "INVALID_PARAMETERS", nil},
		// JSON paths
		{"GET", kv("safe", read+"&path="), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&path=a..b"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&path=a%5B"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&path=a%5B-1%5D"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&path=a%5Bx%5D"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&path=a%22b"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&path="+strings.Repeat("a.", 600)+"a"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&path=nope"), "", 404, "PATH_NOT_FOUND", nil},
		{"GET", kv("safe", read+"&path=list%5B9%5D"), "", 404, "PATH_NOT_FOUND", nil},
		{"GET", kv("text", read+"&path=a"), "", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("safe", ok+"&path=n"), "{broken", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("safe", ok+"&path=list%5B5%5D"), "1", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("safe", ok+"&path=n.deeper"), "1", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("text", ok+"&path=a"), "1", 400, "INVALID_PARAMETERS", nil},
		// booleans and conflicting flags
		{"PUT", kv("k", "db=app&create_db_if_missing=yesplease"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", "db=app&create_db_if_missing=true&auto_create=false"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&history=2"), "x", 400, "INVALID_PARAMETERS", nil},
		{"PUT", kv("k", ok+"&ref=maybe"), "x", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("k", read+"&rebuild=please"), "", 400, "INVALID_PARAMETERS", nil},
		// time travel
		{"GET", kv("safe", read+"&at_timestamp=tomorrow"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&at_timestamp=-1"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&at_timestamp=Inf"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&at_timestamp=1e300"), "", 400, "INVALID_PARAMETERS", nil},
		// Go's number syntax is not Unix seconds: 16, ten times a second, 1e9 as its start
		{"GET", kv("safe", read+"&at_timestamp=0x1p4"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&at_timestamp=1796455831_0"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&at_timestamp=1e9"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&at_timestamp=%2B5"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe", read+"&at_timestamp=5."), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", "/api/v1/sqlite/kv/diff?" + read + "&from=0x10&to=20", "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe/watch", read+"&since=1e9&wait=1ms"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe/snapshot", read+"&op_number=-3"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe/snapshot", read), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", kv("safe/history", read+"&limit=1001"), "", 400, "INVALID_PARAMETERS", nil},
		{"GET", "/api/v1/sqlite/kv/diff?" + read + "&from=1", "", 400, "INVALID_PARAMETERS", nil},
		{"GET", "/api/v1/sqlite/kv/snapshot?" + read, "", 400, "INVALID_PARAMETERS", nil},
		// CAS headers
		{"PUT", kv("safe", ok), "x", 400, "INVALID_PARAMETERS", []string{"If-Match", `*, "1"`}},
		{"PUT", kv("safe", ok), "x", 400, "INVALID_PARAMETERS", []string{"If-Match", `, ,`}},
		{"PUT", kv("safe", ok), "x", 400, "INVALID_PARAMETERS", []string{"If-None-Match", ``}},
		{"PUT", kv("safe", ok), "x", 400, "INVALID_PARAMETERS", []string{"If-Match", `abc`}},
		{"PUT", kv("safe", ok), "x", 400, "INVALID_PARAMETERS", []string{"If-Match", `"a b"`}},
		// well-formed tags kvd never gave match nothing
		{"PUT", kv("safe", ok), "x", 412, "CAS_MISMATCH", []string{"If-Match", `"-1"`}},
		{"PUT", kv("safe", ok), "x", 412, "CAS_MISMATCH", []string{"If-Match", `"abc"`}},
		{"PUT", kv("safe", ok), "x", 412, "CAS_MISMATCH", []string{"If-Match", `""`}},
		{"PUT", kv("safe", ok), "x", 412, "CAS_MISMATCH", []string{"If-Match", `"999999"`}},
		{"PUT", kv("safe", ok), "x", 400, "INVALID_PARAMETERS", []string{"If-None-Match", `W/1`}},
		{"PUT", kv("safe", ok), "x", 400, "INVALID_PARAMETERS", []string{"Content-Type", strings.Repeat("t", 300)}},
		// bodies
		{"PUT", kv("k", ok), big, 413, "PAYLOAD_TOO_LARGE", nil},
		{"POST", kv("arr/push", ok), big, 413, "PAYLOAD_TOO_LARGE", nil},
		{"PUT", kv("k", ok), "x", 400, "INVALID_PARAMETERS", []string{"Content-Encoding", "gzip"}},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":"x"}]}`, 400, "INVALID_PARAMETERS", []string{"Content-Encoding", "identity, br"}},
		{"POST", kv("arr/push", ok), "", 400, "INVALID_PARAMETERS", nil},
		{"POST", kv("arr/push", ok), "[1,", 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":"` + big + `"}]}`, 413, "PAYLOAD_TOO_LARGE", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":"x"}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":{"key":"a"}}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":{"x":1}}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":null}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":7,"value":"x"}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"value":"x"}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":"x","ttl":"10"}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":"x","ttl":1.5}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":"%%%","encoding":"base64"}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, "\xff\xfe", 400, "INVALID_PARAMETERS", nil},
		// member names exactly as documented, each once
		{"POST", batchPath + "set?" + ok, `{"Items":[{"key":"a","value":"x"}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"Key":"a","value":"x"}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":"x","key":"b"}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `{"items":[{"key":"a","value":"x"}],"items":[{"key":"b","value":"x"}]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "delete?" + ok, `{"keys":["a"],"keys":["b"]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", "/api/v1/sqlite/kv/rollback?" + ok + "&to_timestamp=1", `{"KEYS":["a"]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "set?" + ok, `null`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "get?" + ok, `{"keys":[]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "get?" + ok, `{"keys":[null]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "get?" + ok, `{"keys":["` + strings.Repeat("k", 1025) + `"]}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", batchPath + "delete?" + ok, `"keys"`, 400, "INVALID_PARAMETERS", nil},
		{"POST", "/api/v1/sqlite/kv/rollback?" + ok + "&to_timestamp=1", `{"keys":"all"}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", "/api/v1/sqlite/kv/rollback?" + ok + "&to_timestamp=1&confirm=true", `{}`, 400, "INVALID_PARAMETERS", nil},
		{"POST", "/api/v1/sqlite/kv/rollback?" + ok + "&to_timestamp=1&confirm=", `{}`, 400, "INVALID_PARAMETERS", nil},
		// routes and methods
		{"PATCH", kv("k", ok), "", 405, "METHOD_NOT_ALLOWED", nil},
		{"GET", kv("k/incr", ok), "", 405, "METHOD_NOT_ALLOWED", nil},
		{"DELETE", batchPath + "set?" + ok, "", 405, "METHOD_NOT_ALLOWED", nil},
		{"GET", "/api/v1/sqlite/nope", "", 404, "NOT_FOUND", nil},
		{"GET", "/" + kv("safe", ok), "", 404, "NOT_FOUND", nil}, // no redirect to a guessed path
		{"GET", "/healthz/", "", 404, "NOT_FOUND", nil},
		{"GET", "/API/v1/sqlite/kv?" + ok, "", 404, "NOT_FOUND", nil},
		{"GET", "/../../etc/passwd", "", 404, "NOT_FOUND", nil},
		{"PUT", kv("k", ok), "x", 400, "INVALID_PARAMETERS", []string{"Content-Type", "text/plain; a=\"\u00ff"}},
		{"PUT", kv("k", ok), "x", 400, "INVALID_PARAMETERS", []string{"Content-Type", "foo"}},                          // no type/subtype
		{"PUT", kv("k", ok), "x", 400, "INVALID_PARAMETERS", []string{"Content-Type", "text/plain; name=\"caf\xff\""}}, // JSON answers could not show it as sent
		{"GET", kv("k", "db=app&limit=1&%zz=1"), "", 400, "INVALID_PARAMETERS", nil},
	}
	if len(cases) < 100 {
		t.Fatalf("only %d hostile cases, want at least 100", len(cases))
	}
	for i, c := range cases {
		name := fmt.Sprintf("%03d %s %.60s", i, c.method, c.path)
		t.Run(name, func(t *testing.T) {
			r := ts.do(t, c.method, c.path, c.body, c.header...)
			wantError(t, r, c.status, c.code)
		})
	}
	// What Go's HTTP client will not even send goes raw over TCP: broken
	// escapes in the path, control bytes in headers. Go's HTTP parser, or
	// kvd behind it, answers 400.
	for _, raw := range []string{
		"PUT /api/v1/sqlite/kv/a%ZZ?" + ok + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
		"PUT /api/v1/sqlite/kv/a%?" + ok + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
		"PUT /api/v1/sqlite/kv/k?" + ok + " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\x7f\r\nContent-Length: 1\r\n\r\nx",
		"GET /api/v1/sqlite/kv/k?" + ok + " HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
		"GET /api/v1/sqlite/kv/a\x01b?" + ok + " HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		if status := rawStatus(t, ts, raw); !strings.HasPrefix(status, "HTTP/1.1 400") {
			t.Errorf("raw %q: got %q, want a 400", raw, status)
		}
	}
	// Nothing was lost or changed, and the daemon is healthy.
	if got := string(ts.do(t, "GET", kv("safe", "db=app"), "").Body); got != `{"n":1,"list":[1,2]}` {
		t.Fatalf("value after the hostile requests: got %s", got)
	}
	wantStatus(t, ts.do(t, "GET", "/healthz", ""), 200)
	if _, err := os.Stat("/tmp/owned.db"); err == nil {
		t.Fatal("/tmp/owned.db was created")
	}
}

func TestBadInput_SlowHeadersAreCutOff(t *testing.T) {
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.ReadHeaderTimeout = 200 * time.Millisecond })
	u, _ := url.Parse(ts.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The server gives up on the half-sent headers and closes the connection.
	if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if !strings.Contains(line, "408") {
			t.Logf("server answered the slow client: %q", line)
		}
	}
	wantStatus(t, ts.do(t, "GET", "/healthz", ""), 200)
}

// A write refused before its body is read is answered at once, even when
// the client waits for "100 Continue" before sending the body, or has
// announced more body than the server will read.
func TestBadInput_EarlyAnswersDoNotWaitForTheBody(t *testing.T) {
	ts := newTestServer(t)
	for _, c := range []struct{ query, header, want string }{
		{"db=app&ttl=bad", "Expect: 100-continue\r\nContent-Length: 5", "HTTP/1.1 400 Bad Request"},
		{"db=app&create_db_if_missing=true", "Expect: 100-continue\r\nContent-Length: 20000000", "HTTP/1.1 413 Request Entity Too Large"},
		{"db=app&create_db_if_missing=true", "Content-Length: 20000000", "HTTP/1.1 413 Request Entity Too Large"},
	} {
		req := "PUT /api/v1/sqlite/kv/k?" + c.query + " HTTP/1.1\r\nHost: x\r\n" + c.header + "\r\n\r\n"
		if got := rawStatus(t, ts, req); got != c.want {
			t.Errorf("%s with %q: got %q, want %q", c.query, c.header, got, c.want)
		}
	}
}

// rawStatus sends a raw request and returns the status line of the answer.
func rawStatus(t *testing.T, ts *testServer, req string) string {
	t.Helper()
	u, _ := url.Parse(ts.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}
