package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/client/clienttest"
)

// countingServer answers with h and counts the connections it accepted.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func newTestClient(t *testing.T, url, token string, timeout time.Duration) *Client {
	t.Helper()
	c, err := NewClient(url, "app", "", token, 1, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClient_SendsTheRequestNetHTTPWouldAndReadsTheAnswer(t *testing.T) {
	type seen struct {
		method, uri, host, auth, ifMatch string
		length                           int64
		body                             string
	}
	got := make(chan seen, 2)
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		got <- seen{r.Method, r.RequestURI, r.Host, r.Header.Get("Authorization"), r.Header.Get("If-Match"), r.ContentLength, body.String()}
		w.Header().Set("ETag", `"7"`)
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("answer"))
	})
	c := newTestClient(t, srv.URL, "s3cret", time.Second)
	host := strings.TrimPrefix(srv.URL, "http://")

	var buf bytes.Buffer
	a, err := c.do(t.Context(), "POST", "/kv/a%2Fb/incr?db=app", nil, "", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if a.status != http.StatusCreated || a.etag != `"7"` || buf.String() != "answer" {
		t.Errorf("answer: %+v, body %q", a, buf.String())
	}
	want := seen{"POST", "/kv/a%2Fb/incr?db=app", host, "Bearer s3cret", "", 0, ""}
	if s := <-got; s != want {
		t.Errorf("server saw %+v, want %+v", s, want)
	}

	if _, err := c.do(t.Context(), "PUT", "/kv/k", []byte("12"), "If-Match: \"7\"\r\n", nil); err != nil {
		t.Fatal(err)
	}
	want = seen{"PUT", "/kv/k", host, "Bearer s3cret", `"7"`, 2, "12"}
	if s := <-got; s != want {
		t.Errorf("server saw %+v, want %+v", s, want)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for two requests; the first should have been kept alive", n)
	}
}

// net/http answers in chunks once a body outgrows its buffer or the
// handler flushes; the connection must stay usable after the last chunk.
func TestClient_ReadsAChunkedAnswerAndKeepsTheConnection(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Write([]byte("first,"))
		w.(http.Flusher).Flush()
		w.Write([]byte("second"))
		w.Header().Set("X-Sum", "2")
	})
	c := newTestClient(t, srv.URL, "", time.Second)
	for range 3 {
		var buf bytes.Buffer
		a, err := c.do(t.Context(), "GET", "/", nil, "", &buf)
		if err != nil {
			t.Fatal(err)
		}
		if a.status != 200 || buf.String() != "first,second" {
			t.Fatalf("got %d %q", a.status, buf.String())
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for three requests", n)
	}
}

func TestClient_DialsAgainAfterConnectionClose(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	c := newTestClient(t, srv.URL, "", time.Second)
	for range 2 {
		if a, err := c.do(t.Context(), "GET", "/", nil, "", nil); err != nil || a.status != 200 {
			t.Fatalf("got %+v, %v", a, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the server closed the first", n)
	}
}

// rawServer answers each connection with script, which reads requests
// from r and writes to c as it likes.
func rawServer(t *testing.T, script func(i int, c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			script(i, c, bufio.NewReader(c))
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readRequest consumes one request head (the tests send no bodies).
func readRequest(r *bufio.Reader) string {
	var head strings.Builder
	for {
		line, err := r.ReadString('\n')
		head.WriteString(line)
		if err != nil || line == "\r\n" {
			return head.String()
		}
	}
}

// A server may close an idle keep-alive connection just as the next
// request goes out. A GET is then sent again on a new connection; a write
// is not, since it may have been applied (an incr counted twice would fail
// -verify).
func TestClient_RetriesOnlyAGetOnAConnectionTheServerClosed(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	url := rawServer(t, func(i int, c net.Conn, r *bufio.Reader) {
		readRequest(r)
		c.Write([]byte(ok))
		if i%2 == 0 {
			readRequest(r) // the second request on it is read, never answered
			return
		}
	})
	c := newTestClient(t, url, "", time.Second)
	ctx := t.Context()
	for _, method := range []string{"GET", "POST"} {
		if _, err := c.do(ctx, method, "/", nil, "", nil); err != nil {
			t.Fatalf("%s on a new connection: %v", method, err)
		}
		a, err := c.do(ctx, method, "/", nil, "", nil)
		switch {
		case method == "GET" && (err != nil || a.status != 200):
			t.Errorf("GET after the server closed: %+v, %v; want it sent again and answered", a, err)
		case method == "POST" && err == nil:
			t.Errorf("POST after the server closed: %+v; want an error, not a second send", a)
		}
		c.Close()
	}
}

func TestClient_GivesUpAtTheTimeoutAndOnCancel(t *testing.T) {
	url := rawServer(t, func(_ int, c net.Conn, r *bufio.Reader) {
		readRequest(r)
		c.Read(make([]byte, 1)) // never answers; returns when the client hangs up
	})
	c := newTestClient(t, url, "", 100*time.Millisecond)
	_, err := c.do(context.Background(), "POST", "/", nil, "", nil)
	if !isTimeout(err) || errorKind(err) != "timeout" {
		t.Errorf("err = %v, want a timeout", err)
	}

	c = newTestClient(t, url, "", time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.do(ctx, "POST", "/", nil, "", nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Errorf("err = %v after %v, want canceled at once", err, time.Since(start))
	}
}

func TestClient_RefusesWhatIsNotHTTP(t *testing.T) {
	answers := []string{
		"SSH-2.0-OpenSSH_9.6\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	}
	url := rawServer(t, func(i int, c net.Conn, r *bufio.Reader) {
		readRequest(r)
		c.Write([]byte(answers[i]))
	})
	c := newTestClient(t, url, "", time.Second)
	for _, want := range answers {
		if a, err := c.do(t.Context(), "POST", "/", nil, "", nil); !errors.Is(err, errMalformed) {
			t.Errorf("answer %q: got %+v, %v; want %v", want, a, err, errMalformed)
		}
	}
}

func TestClient_SpeaksHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("secure"))
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, "", time.Second)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c.tlsConfig.RootCAs = roots
	var buf bytes.Buffer
	if a, err := c.do(t.Context(), "GET", "/", nil, "", &buf); err != nil || a.status != 200 || buf.String() != "secure" {
		t.Fatalf("got %+v %q, %v", a, buf.String(), err)
	}
}

func TestNewClient_RefusesATokenThatWouldSplitTheHeader(t *testing.T) {
	if _, err := NewClient("http://127.0.0.1:1", "app", "", "a\r\nX-Evil: 1", 1, time.Second); err == nil {
		t.Error("a token with a line break was accepted")
	}
}

// FuzzConn_ReadAnswer feeds any bytes to the answer reader: it ends in an
// answer with a real status or in an error, never in a panic.
func FuzzConn_ReadAnswer(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: \"3\"\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 2\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nto the end",
		"HTTP/1.1 000 Zero\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k := &conn{br: bufio.NewReader(bytes.NewReader(data))}
		var buf bytes.Buffer
		a, err := k.readAnswer(false, &buf)
		if err == nil && (a.status < 100 || a.status > 999) {
			t.Fatalf("answer %+v from %q", a, data)
		}
	})
}

// Against a real kvd, a worker's requests share one connection: kvd keeps
// it alive and the client reuses it, so load is not spent on handshakes.
func TestClient_KeepsOneConnectionAliveWithKvd(t *testing.T) {
	kvd := clienttest.New(t, clienttest.Options{})
	c := newTestClient(t, kvd.URL, "", time.Second)
	local := func() string {
		t.Helper()
		if n := len(c.idle); n != 1 {
			t.Fatalf("%d idle connections after sequential requests, want 1", n)
		}
		k := <-c.idle
		defer func() { c.idle <- k }()
		return k.nc.LocalAddr().String()
	}
	put := c.keyURL("k", "", c.query(true))
	if err := c.expectOK(t.Context(), "PUT", put, []byte("v")); err != nil {
		t.Fatal(err)
	}
	first := local()
	for range 20 {
		for _, req := range []struct{ method, target string }{{"GET", "/healthz"}, {"GET", c.keyURL("k", "", c.query(false))}, {"POST", c.keyURL("n", "incr", c.query(true))}} {
			if a, err := c.do(t.Context(), req.method, req.target, nil, "", nil); err != nil || a.status != 200 {
				t.Fatalf("%s %s: %+v, %v", req.method, req.target, a, err)
			}
		}
	}
	if got := local(); got != first {
		t.Errorf("requests moved from connection %s to %s: not kept alive", first, got)
	}
}
