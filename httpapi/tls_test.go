package httpapi_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/kvdtest"
)

// newTLSServer is a test server speaking HTTPS with a certificate of a CA
// made for the test; its client trusts that CA.
func newTLSServer(t *testing.T, maxConns int) (*testServer, *kvdtest.CA) {
	t.Helper()
	ca := kvdtest.NewCA(t)
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) {
		h.TLS, h.MaxConnections = ca.ServerTLS(t, 1), maxConns
	})
	if !strings.HasPrefix(ts.URL, "https://") {
		t.Fatalf("URL of a TLS server: got %s, want https://", ts.URL)
	}
	ts.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	return ts, ca
}

func addrOf(ts *testServer) string {
	return strings.TrimPrefix(strings.TrimPrefix(ts.URL, "https://"), "http://")
}

// dialTLS opens a TLS connection that writes bytes as given; the
// handshake is done when it returns.
func dialTLS(tb testing.TB, ts *testServer, ca *kvdtest.CA, dialer *net.Dialer) *rawConn {
	tb.Helper()
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	dialer.Timeout = 5 * time.Second
	c, err := tls.DialWithDialer(dialer, "tcp", addrOf(ts), &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// The framing guard reads the decrypted stream: a request framed two ways
// over TLS is refused and its connection closed, as over plain HTTP.
func TestTLS_FramingClashIsRefusedOverTLS(t *testing.T) {
	ts, ca := newTLSServer(t, 0)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "before"), 200)
	c := dialTLS(t, ts, ca, nil)
	c.send(t, "PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhidden\r\n0\r\n\r\n"+
		"PUT /api/v1/sqlite/kv/k?db=app HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nsmuggled")
	first := c.answer(t)
	wantError(t, first, 400, "INVALID_PARAMETERS")
	if got := first.Header.Get("Connection"); got != "close" {
		t.Errorf("Connection: got %q, want close", got)
	}
	c.wantClosed(t)
	if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "before" {
		t.Fatalf("value after the refused request: got %q, want before", got)
	}
}

// Plain HTTP sent to the TLS port is answered, in plain text, with a 400
// that says to use https, rather than a bare close.
func TestTLS_PlainHTTPToTheTLSPortIsToldToUseHTTPS(t *testing.T) {
	ts, _ := newTLSServer(t, 0)
	res, err := http.Get("http://" + addrOf(ts) + kv("k", "db=app"))
	if err != nil {
		t.Fatalf("plain GET to the TLS port: %v, want a 400", err)
	}
	defer res.Body.Close()
	r := response{Status: res.StatusCode, Header: res.Header}
	r.Body = readAll(t, res)
	wantError(t, r, 400, "INVALID_PARAMETERS")
	if !strings.Contains(string(r.Body), "https://") {
		t.Errorf("body: got %s, want it to name https://", r.Body)
	}
	if id := res.Header.Get("X-Request-Id"); id == "" { // as every answer has
		t.Errorf("no X-Request-Id: %v", res.Header)
	}
}

// The connection cap counts TLS connections: sockets stalled before their
// handshake, and handshaken ones that never send a request, give their
// slots to clients that talk.
func TestTLS_StalledConnectionsGiveWayAtTheCap(t *testing.T) {
	const maxConns = 4
	ts, ca := newTLSServer(t, maxConns)
	for i := range 2 * maxConns {
		if i%2 == 0 {
			dialTLS(t, ts, ca, nil)
			continue
		}
		c, err := net.Dial("tcp", addrOf(ts))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	for range 3 {
		wantStatus(t, ts.do(t, "GET", "/healthz", ""), 200)
	}
	body := string(ts.do(t, "GET", "/metrics", "").Body)
	if n := metricValue(t, body, "kvd_connections"); n > maxConns {
		t.Errorf("kvd_connections: got %v, want at most %d", n, maxConns)
	}
	if n := metricValue(t, body, `kvd_connections_shed_total{reason="evicted"}`); n < maxConns {
		t.Errorf("evicted: got %v, want at least %d", n, maxConns)
	}
}

// When every slot is in service, a newcomer is refused with a 503 it can
// read: written through a TLS handshake, not as plain bytes a TLS client
// would take for a broken handshake.
func TestTLS_RefusalAtTheCapIsAnsweredOverTLS(t *testing.T) {
	ts, ca := newTLSServer(t, 1)
	big := strings.Repeat("v", 9<<20) // more than loopback's socket buffers hold
	wantStatus(t, ts.do(t, "PUT", kv("big", "db=app&create_db_if_missing=true"), big), 200)
	ts.client.CloseIdleConnections()

	// A client with a small receive window asks for the value and stops
	// reading: its answer is being written, so its slot cannot be taken.
	small := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	// Until the PUT's connection is gone on the server's side too, this
	// one may be the newcomer refused: then it tries again.
	for try := 0; ; try++ {
		busy := dialTLS(t, ts, ca, small)
		busy.send(t, "GET "+kv("big", "db=app")+" HTTP/1.1\r\nHost: x\r\n\r\n")
		busy.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := busy.r.ReadString('\n')
		if err == nil && strings.HasPrefix(line, "HTTP/1.1 200") {
			break
		}
		if try == 100 || !strings.HasPrefix(line, "HTTP/1.1 503") {
			t.Fatalf("the big value's status line: %q, %v", line, err)
		}
		busy.Close()
		time.Sleep(10 * time.Millisecond)
	}

	newcomer := dialTLS(t, ts, ca, nil)
	newcomer.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	r := newcomer.answer(t)
	wantError(t, r, 503, "OVERLOADED")
	if got := r.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After: got %q, want 1", got)
	}
}

// The body's deadlines work on the decrypted stream too: an early answer
// goes out and closes the connection at once, and a trickling body is cut
// with a 408.
func TestTLS_BodyDeadlinesHoldOverTLS(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ca := kvdtest.NewCA(t)
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.TLS, h.ReadTimeout = ca.ServerTLS(t, 1), timeout })

	early := dialTLS(t, ts, ca, nil)
	start := time.Now()
	early.send(t, "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
	wantError(t, early.answer(t), 404, "NOT_FOUND")
	early.wantClosed(t)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("early answer and close took %v, want well under the read timeout", took)
	}

	slow := dialTLS(t, ts, ca, nil)
	start = time.Now()
	slow.send(t, "PUT /api/v1/sqlite/kv/k?db=app&create_db_if_missing=true HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	defer trickle(slow, 100)()
	wantError(t, slow.answer(t), 408, "REQUEST_TIMEOUT")
	if took := time.Since(start); took < timeout || took > timeout+2*time.Second {
		t.Errorf("cut after %v, want about %v", took, timeout)
	}
	slow.wantClosed(t)
}

func readAll(tb testing.TB, res *http.Response) []byte {
	tb.Helper()
	var b strings.Builder
	if _, err := bufio.NewReader(res.Body).WriteTo(&b); err != nil {
		tb.Fatal(err)
	}
	return []byte(b.String())
}
