package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/client/clienttest"
)

func TestAuth_BearerToken(t *testing.T) {
	srv := clienttest.New(t, clienttest.Options{Tokens: []string{"s3cret", "other"}})
	ctx := testContext(t)
	c := newClientOf(t, srv.URL, "s3cret")
	if _, err := c.Put(ctx, "k", client.Text("v")); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	for _, token := range []string{"", "wrong"} {
		anon, err := client.New(client.Config{URL: srv.URL, DB: "x", Token: token})
		if err != nil {
			t.Fatal(err)
		}
		_, err = anon.Get(ctx, "k")
		var e *client.Error
		if !errors.Is(err, client.ErrUnauthorized) || !errors.As(err, &e) || e.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: got %v, want UNAUTHORIZED", token, err)
		}
		if err := anon.Health(ctx); err != nil {
			t.Errorf("health needs no token, got %v", err)
		}
		anon.Close()
	}
}

func TestErrors_PayloadTooLarge(t *testing.T) {
	srv := clienttest.New(t, clienttest.Options{MaxValueBytes: 16})
	c, ctx := newClientOf(t, srv.URL, ""), testContext(t)
	if _, err := c.Put(ctx, "k", client.Text(strings.Repeat("x", 17))); !errors.Is(err, client.ErrPayloadTooLarge) {
		t.Errorf("got %v, want PAYLOAD_TOO_LARGE", err)
	}
}

// fakeKVD answers every request with one canned response and records the
// escaped paths and queries it was asked for.
type fakeKVD struct {
	mu      sync.Mutex
	paths   []string
	queries []string
	status  int
	header  map[string]string
	body    string
}

func (f *fakeKVD) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.paths = append(f.paths, r.URL.EscapedPath())
		f.queries = append(f.queries, r.URL.RawQuery)
		f.mu.Unlock()
		for k, v := range f.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(f.status)
		w.Write([]byte(f.body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestErrors_OverloadedCarriesRetryAfter(t *testing.T) {
	f := &fakeKVD{status: 503, header: map[string]string{"Content-Type": "application/json", "Retry-After": "2", "X-Request-Id": "req-7"},
		body: `{"statusCode":503,"error":"Service Unavailable","code":"OVERLOADED","message":"Too many writes queued"}`}
	c, err := client.New(client.Config{URL: f.start(t), DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Incr(testContext(t), "k", 1)
	var e *client.Error
	if !errors.As(err, &e) || !errors.Is(err, client.ErrOverloaded) {
		t.Fatalf("got %v, want OVERLOADED", err)
	}
	want := client.Error{StatusCode: 503, Code: "OVERLOADED", Message: "Too many writes queued", RequestID: "req-7", RetryAfter: 2 * time.Second}
	if e.StatusCode != want.StatusCode || e.Code != want.Code || e.Message != want.Message || e.RequestID != want.RequestID || e.RetryAfter != want.RetryAfter {
		t.Errorf("got %+v, want %+v", *e, want)
	}
	if got := e.Error(); got != "kvd: OVERLOADED (503): Too many writes queued" {
		t.Errorf("Error(): got %q", got)
	}
}

func TestErrors_AnswerThatIsNotKvdJSONKeepsItsStatus(t *testing.T) {
	f := &fakeKVD{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>Bad Gateway</html>"}
	c, err := client.New(client.Config{URL: f.start(t), DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(testContext(t), "k")
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 502 || e.Code != "" || !strings.Contains(e.Message, "Bad Gateway") {
		t.Errorf("got %#v, want status 502 with the body as message", err)
	}
	if errors.Is(err, client.ErrKeyNotFound) || client.IsNotFound(err) {
		t.Error("a 502 matched not-found")
	}
}

// Keys reach kvd escaped exactly as encodeURIComponent escapes them.
func TestKeys_EscapedLikeEncodeURIComponent(t *testing.T) {
	f := &fakeKVD{status: 200, header: map[string]string{"Content-Type": "text/plain"}}
	c, err := client.New(client.Config{URL: f.start(t) + "/proxy/", DB: "my app", Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"users/alice":        "users%2Falice",
		"a/incr":             "a%2Fincr",
		"A-z_0.9!~*'()":      "A-z_0.9!~*'()",
		"q?x=1&y=2#f":        "q%3Fx%3D1%26y%3D2%23f",
		"100% sure +:@;,$":   "100%25%20sure%20%2B%3A%40%3B%2C%24",
		"ключ":               "%D0%BA%D0%BB%D1%8E%D1%87",
		"snapshot":           "%73napshot", // reserved for the table endpoint as is
		"watch":              "%77atch",
		"diff/x":             "diff%2Fx",
		"[brackets]{braces}": "%5Bbrackets%5D%7Bbraces%7D",
	}
	for key, want := range cases {
		f.paths = nil
		if _, err := c.Get(testContext(t), key); err != nil {
			t.Fatal(err)
		}
		if got := f.paths[0]; got != "/proxy/api/v1/sqlite/kv/"+want {
			t.Errorf("%q: got path %s, want /proxy/api/v1/sqlite/kv/%s", key, got, want)
		}
		if got := f.queries[0]; got != "db=my+app&table=t" {
			t.Errorf("query: got %s", got)
		}
	}
}

func TestTransportErrors_AreNotKvdErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := client.New(client.Config{URL: url, DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(testContext(t), "k")
	if err == nil || errors.As(err, new(*client.Error)) || client.IsNotFound(err) {
		t.Errorf("got %v, want a connection error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newClient(t).Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v, want context.Canceled", err)
	}
	for _, bad := range []string{"ftp://x", "127.0.0.1:8080", "http://", "http://h/?q=1"} {
		if _, err := client.New(client.Config{URL: bad}); err == nil {
			t.Errorf("URL %q: want an error", bad)
		}
	}
}

// Every answer, error or not, is read to its end, so one connection
// serves a whole sequence of calls.
func TestConnections_AreReused(t *testing.T) {
	c := newClient(t)
	var fresh, reused int
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			reused++
		} else {
			fresh++
		}
	}}
	ctx := httptrace.WithClientTrace(testContext(t), trace)
	for range 10 {
		c.Put(ctx, "k", client.Text("v"))
		c.Get(ctx, "k")
		c.Get(ctx, "missing")
		c.Exists(ctx, "missing")
		c.Incr(ctx, "k", 1) // not a number: an error answer
	}
	// newClient's CreateDB may already have opened the one connection.
	if fresh > 1 || fresh+reused != 50 {
		t.Errorf("got %d new and %d reused connections, want at most 1 new of 50", fresh, reused)
	}
}

// kvd answers a failed HEAD with no body and its code in X-Error-Code.
func TestHead_ErrorsCarryKvdsCode(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	if _, err := c.Put(ctx, "present", client.Text("x")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		opts     []client.Option
		want     *client.Error
		notFound bool
	}{
		{"missing key", nil, client.ErrKeyNotFound, true},
		{"missing database", []client.Option{client.DB("no_such_db")}, client.ErrDatabaseNotFound, true},
		{"database outside the roots", []client.Option{client.DB("../etc/passwd")}, client.ErrInvalidDBPath, false},
		{"bad table", []client.Option{client.Table("no-dashes")}, client.ErrInvalidParameters, false},
	}
	for _, tc := range cases {
		_, err := c.Head(ctx, "absent", tc.opts...)
		var e *client.Error
		if !errors.As(err, &e) || !errors.Is(err, tc.want) || e.StatusCode != tc.want.StatusCode {
			t.Errorf("%s: got %v, want %s (%d)", tc.name, err, tc.want.Code, tc.want.StatusCode)
			continue
		}
		if client.IsNotFound(err) != tc.notFound {
			t.Errorf("%s: IsNotFound got %v, want %v", tc.name, !tc.notFound, tc.notFound)
		}
	}
}

func TestErrors_HeadCodeFromHeader(t *testing.T) {
	f := &fakeKVD{status: 400, header: map[string]string{"X-Error-Code": "INVALID_DB_PATH", "X-Request-Id": "req-9"}}
	c, err := client.New(client.Config{URL: f.start(t), DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Head(testContext(t), "k")
	var e *client.Error
	if !errors.As(err, &e) || !errors.Is(err, client.ErrInvalidDBPath) || e.RequestID != "req-9" || e.Message != "Bad Request" {
		t.Errorf("got %#v, want INVALID_DB_PATH from the header, message Bad Request", err)
	}
}

// Mistakes the client catches are *ArgumentError, told apart from kvd's
// answers (kvctl exits 2 on them), and nothing is sent.
func TestArgumentErrors_RefusedBeforeSending(t *testing.T) {
	f := &fakeKVD{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: "{}"}
	c, err := client.New(client.Config{URL: f.start(t), DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	calls := map[string]func() error{
		"option not taken": func() error { _, err := c.Get(ctx, "k", client.TTL(time.Minute)); return err },
		"zero option":      func() error { _, err := c.Put(ctx, "k", client.Text("v"), client.Option{}); return err },
		"version 0":        func() error { _, err := c.Put(ctx, "k", client.Text("v"), client.IfVersion(0)); return err },
		"ttl with fraction": func() error {
			_, err := c.Put(ctx, "k", client.Text("v"), client.TTL(1500*time.Millisecond))
			return err
		},
		"empty key":         func() error { return c.Delete(ctx, "") },
		"empty Keys":        func() error { _, err := c.RollbackTable(ctx, time.Now(), client.Keys()); return err },
		"comma key":         func() error { _, err := c.Diff(ctx, time.Now(), time.Now(), client.Keys("a,b")); return err },
		"batch item ttl":    func() error { _, err := c.BatchSet(ctx, []client.Item{{Key: "k", TTL: -time.Second}}); return err },
		"empty batch key":   func() error { _, err := c.BatchGet(ctx, []string{"a", ""}); return err },
		"newline in type":   func() error { _, err := c.Put(ctx, "k", client.Value{ContentType: "text/plain\nX: y"}); return err },
		"empty batch item":  func() error { _, err := c.BatchSet(ctx, []client.Item{{Key: ""}}); return err },
		"empty delete key":  func() error { _, err := c.BatchDelete(ctx, []string{""}); return err },
		"PutJSON of a func": func() error { _, err := c.PutJSON(ctx, "k", func() {}); return err },
		"Push of a channel": func() error { _, err := c.Push(ctx, "k", make(chan int)); return err },
	}
	for name, call := range calls {
		err := call()
		var arg *client.ArgumentError
		if !errors.As(err, &arg) || arg.Method == "" || !strings.HasPrefix(err.Error(), "client: "+arg.Method+": ") {
			t.Errorf("%s: got %v, want an *ArgumentError naming the method", name, err)
		}
	}
	if len(f.paths) != 0 {
		t.Errorf("sent %q, want nothing sent", f.paths)
	}
}
