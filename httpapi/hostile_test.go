package httpapi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

// rawConn is a client connection that writes bytes as given and reads
// HTTP answers, each read bounded by 5s.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(tb testing.TB, ts *testServer) *rawConn {
	tb.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) send(tb testing.TB, raw string) {
	tb.Helper()
	if _, err := c.Write([]byte(raw)); err != nil {
		tb.Fatal(err)
	}
}

// answer reads the next response in full.
func (c *rawConn) answer(tb testing.TB) response {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		tb.Fatalf("reading an answer: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("reading an answer's body: %v", err)
	}
	if res.Close { // ReadResponse takes "Connection: close" out of the header
		res.Header.Set("Connection", "close")
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// wantClosed checks that the server closes the connection without a
// further answer.
func (c *rawConn) wantClosed(tb testing.TB) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.r.Read(make([]byte, 512))
	if n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("connection after the answer: got %d more bytes, %v; want it closed", n, err)
	}
}

// Content-Length and Transfer-Encoding together frame a body two ways
// (request smuggling): refused with a JSON 400, and the connection closed
// so that nothing pipelined behind it is read (RFC 9112 §6.1).
func TestFramingClash_RefusedAndTheConnectionClosed(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "before"), 200)
	put := "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\n"
	next := "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nsmuggled"
	for name, raw := range map[string]string{
		"length first":          put + "Content-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
		"encoding first":        put + "Transfer-Encoding: chunked\r\nX-Other: 1\r\nContent-Length: 11\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
		"lower case":            put + "transfer-encoding: chunked\r\ncontent-length: 11\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
		"zero length":           put + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
		"unknown coding":        put + "Transfer-Encoding: gzip\r\nContent-Length: 6\r\n\r\nhidden",
		"folded encoding":       put + "Content-Length: 11\r\nTransfer-Encoding:\r\n chunked\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
		"encoding folded first": put + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 11\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
		"HTTP/1.0":              strings.Replace(put, "HTTP/1.1", "HTTP/1.0", 1) + "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 11\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
		"after a good one":      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + put + "Content-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
		"behind a chunked one":  put + "Transfer-Encoding: chunked\r\n\r\n4\r\nokay\r\n0\r\n\r\n" + put + "Content-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhidden\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, ts)
			c.send(t, raw+next)
			first := c.answer(t)
			if strings.HasPrefix(name, "after") || strings.HasPrefix(name, "behind") {
				wantStatus(t, first, 200)
				first = c.answer(t)
			}
			wantError(t, first, 400, "INVALID_PARAMETERS")
			if got := first.Header.Get("Connection"); got != "close" {
				t.Errorf("Connection: got %q, want close", got)
			}
			c.wantClosed(t)
		})
	}
	if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "before" && got != "okay" {
		t.Fatalf("value after the refused requests: got %q, want before (or okay, the good chunked PUT)", got)
	}
}

// Every request on a connection is checked, whatever came before it: an
// HTTP/1.0 request (whose Transfer-Encoding Go ignores), a CONNECT, a
// header folded onto the line before (obs-fold, which Go joins), blank
// lines after a POST (which Go skips). The guard once stopped looking at
// those, and a clash behind them was served, framed by Transfer-Encoding,
// with what was pipelined behind it.
func TestFramingClash_RefusedWhateverCameBefore(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "before"), 200)
	put := func(proto string) string { return "PUT /api/v1/sqlite/kv/p?db=app " + proto + "\r\nHost: x\r\n" }
	clash := put("HTTP/1.1") + "Content-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhidden\r\n0\r\n\r\n"
	next := "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nsmuggled"
	for _, c := range []struct {
		name, before string
		status       int
	}{
		{"HTTP/1.0", "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200},
		{"HTTP/1.0 with a body", put("HTTP/1.0") + "Connection: keep-alive\r\nContent-Length: 5\r\n\r\nfirst", 200},
		{"CONNECT", "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n", 404},
		{"folded Transfer-Encoding", put("HTTP/1.1") + "Transfer-Encoding:\r\n chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n", 200},
		{"folded Content-Length", put("HTTP/1.1") + "Content-Length:\r\n\t5\r\n\r\nfirst", 200},
		{"Content-Length again, folded", put("HTTP/1.1") + "Content-Length: 5\r\nContent-Length:\r\n 5\r\n\r\nfirst", 200},
		{"blank lines after a POST", "POST /api/v1/sqlite/kv/n/incr?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\r\n\r\n", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dialRaw(t, ts)
			conn.send(t, c.before+clash+next)
			if r := conn.answer(t); r.Status != c.status {
				t.Fatalf("the request before: got %d %s, want %d", r.Status, r.Body, c.status)
			}
			r := conn.answer(t)
			wantError(t, r, 400, "INVALID_PARAMETERS")
			if got := r.Header.Get("Connection"); got != "close" {
				t.Errorf("Connection: got %q, want close", got)
			}
			conn.wantClosed(t)
		})
	}
	if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "before" {
		t.Fatalf("value after the refused requests: got %q, want before", got)
	}
}

// HTTP/1.0 has no Transfer-Encoding, and Go ignores one there: a body
// that a proxy in front framed as chunked would be read as requests of
// their own. Such a request is refused, and its connection closed, as a
// clash is (RFC 9112 section 6.1: faulty framing).
func TestFramingClash_TransferEncodingInHTTP10IsRefused(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "before"), 200)
	hidden := "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nsmuggled"
	conn := dialRaw(t, ts)
	conn.send(t, "POST /api/v1/sqlite/kv/n/incr?db=app HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"+
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(hidden), hidden))
	r := conn.answer(t)
	wantError(t, r, 400, "INVALID_PARAMETERS")
	conn.wantClosed(t)
	if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "before" {
		t.Fatalf("value after the refused request: got %q, want before", got)
	}
}

// The guard that finds such requests follows each request's framing: bodies
// that look like request heads, chunk extensions and trailers, pipelined
// one after another, are served and stored byte for byte.
func TestFramingGuard_PipelinedBodiesPassUntouched(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), "x"), 200)
	fake := "\r\n\r\nPUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
	chunked := func(key string) string {
		return "PUT /api/v1/sqlite/kv/" + key + "?db=app HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"4;ext=1\r\n" + fake[:4] + "\r\n" + fmt.Sprintf("%X", len(fake)-4) + "\r\n" + fake[4:] + "\r\n0\r\nX-Trailer: t\r\n\r\n"
	}
	withLength := "PUT /api/v1/sqlite/kv/b?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(fake)) + "\r\n\r\n" + fake
	c := dialRaw(t, ts)
	c.send(t, chunked("a")+withLength+chunked("c")+"GET /api/v1/sqlite/kv/b?db=app HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 3 {
		if r := c.answer(t); r.Status != 200 {
			t.Fatalf("pipelined write %d: got %d %s", i, r.Status, r.Body)
		}
	}
	if r := c.answer(t); r.Status != 200 || string(r.Body) != fake {
		t.Fatalf("pipelined read: got %d %q, want %q", r.Status, r.Body, fake)
	}
	for _, key := range []string{"a", "b", "c"} {
		if got := string(ts.do(t, "GET", kv(key, "db=app"), "").Body); got != fake {
			t.Errorf("%s: got %q, want %q", key, got, fake)
		}
	}
}

// An answer sent before the request's body was read goes out at once, and
// the connection is closed rather than drained: a client that announced a
// body and stalls holds nothing.
func TestEarlyAnswer_ClosesTheConnectionInsteadOfWaitingForTheBody(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokenFile, []byte("secret\n"), 0o600)
	tokens, err := httpapi.LoadTokens(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.Tokens = tokens })
	for _, c := range []struct {
		name, head string
		status     int
		code       string
	}{
		{"no token", "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 401, "UNAUTHORIZED"},
		{"bad query", "PUT /api/v1/sqlite/kv/k?db=app&ttl=bad HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nContent-Length: 100\r\n\r\n", 400, "INVALID_PARAMETERS"},
		{"unknown route", "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 404, "NOT_FOUND"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dialRaw(t, ts)
			conn.send(t, c.head+"partial") // and then nothing
			start := time.Now()
			r := conn.answer(t)
			wantError(t, r, c.status, c.code)
			if got := r.Header.Get("Connection"); got != "close" {
				t.Errorf("Connection: got %q, want close", got)
			}
			conn.wantClosed(t)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("answer and close took %v, want well under the read timeout", took)
			}
		})
	}
}

// A body that trickles in is cut once the read timeout has passed since
// its request started: 408 REQUEST_TIMEOUT, and the connection closed.
// trickle writes one byte every 50ms, n at most, until the returned stop
// is called: a body that never stalls outright and never arrives.
func trickle(w io.Writer, n int) (stop func()) {
	done := make(chan struct{})
	go func() {
		for range n {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

func TestReadTimeout_TricklingBodyIsCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.ReadTimeout = timeout })
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "before"), 200)
	c := dialRaw(t, ts)
	start := time.Now()
	c.send(t, "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	defer trickle(c, 100)()
	r := c.answer(t)
	took := time.Since(start)
	wantError(t, r, 408, "REQUEST_TIMEOUT")
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("cut after %v, want about %v", took, timeout)
	}
	c.wantClosed(t)
	if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "before" {
		t.Fatalf("value after the cut write: got %q, want before", got)
	}
	// A body sent in time is not cut by the time its write then takes.
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "after"), 200)
}

// A write holds its connection's reads while it waits for its database.
// One that sends a body where it takes none (incr) is refused, and the
// request behind it on the connection is served; writes pipelined on one
// connection are read and answered in order, and so is a read behind them.
func TestWrite_RefusedBodyAndPipelinedRequestsOnOneConnection(t *testing.T) {
	ts := newTestServer(t)
	incr := "POST /api/v1/sqlite/kv/n/incr?db=app&create_db_if_missing=true HTTP/1.1\r\nHost: x\r\n"
	wantValue := func(r response, want int) {
		t.Helper()
		wantStatus(t, r, 200)
		if got := r.JSON(t)["value"]; got != float64(want) {
			t.Fatalf("incr: got value %v, want %d", got, want)
		}
	}
	c := dialRaw(t, ts)
	c.send(t, incr+"Content-Length: 5\r\n\r\nhello"+incr+"Content-Length: 0\r\n\r\n")
	wantError(t, c.answer(t), 400, "INVALID_PARAMETERS") // incr takes no body
	wantValue(c.answer(t), 1)

	c = dialRaw(t, ts)
	c.send(t, incr+"\r\n"+incr+"Content-Length: 0\r\n\r\n"+"GET /api/v1/sqlite/kv/n?db=app HTTP/1.1\r\nHost: x\r\n\r\n")
	wantValue(c.answer(t), 2)
	wantValue(c.answer(t), 3)
	if r := c.answer(t); r.Status != 200 || string(r.Body) != "3" {
		t.Fatalf("GET after the writes: got %d %q, want 200 \"3\"", r.Status, r.Body)
	}
}
