package client_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
)

// A write answered with a redirect that net/http would follow as a GET
// (301, 302, 303: an http->https redirect in front of kvd) must not pass
// for done: the GET's 200 says nothing of the write, which never ran.
func TestRedirectedWriteIsNotASuccess(t *testing.T) {
	ctx := testContext(t)
	direct, db := ownDB(t)
	if _, err := direct.PutJSON(ctx, "doc", map[string]string{"key": "doc"}); err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther} {
		red := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, kvdURL+r.URL.RequestURI(), status)
		}))
		defer red.Close()
		for _, hc := range []*http.Client{nil, {}} { // the package's own client, and a caller's
			c, err := client.New(client.Config{URL: red.URL, DB: db, HTTPClient: hc})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, "doc"); err == nil {
				t.Errorf("%d: Delete answered nil; the key is still there", status)
			}
			if _, err := c.Put(ctx, "doc", client.Text("new")); err == nil {
				t.Errorf("%d: Put answered success; nothing was written", status)
			}
			var kerr *client.Error
			if _, err := c.Incr(ctx, "n", 1); !errors.As(err, &kerr) || kerr.StatusCode != status {
				t.Errorf("%d: Incr: %v, want an *Error with the redirect's status", status, err)
			}
		}
	}
	if e, err := direct.Get(ctx, "doc"); err != nil || string(e.Data) != `{"key":"doc"}` {
		t.Errorf("doc is now %v, %v", e, err)
	}
}

// ownDB is a client of the shared kvd on a new database, and its name.
func ownDB(t *testing.T) (*client.Client, string) {
	t.Helper()
	db := fmt.Sprintf("%s_%d", unsafeDBChars.ReplaceAllString(t.Name(), "_"), dbSerial.Add(1))
	c, err := client.New(client.Config{URL: kvdURL, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.CreateDB(testContext(t), db); err != nil {
		t.Fatal(err)
	}
	return c, db
}

// A watch stream that goes silent (a route that drops packets, a stuck
// proxy) is given up after WatchIdleTimeout and resumed: the writes
// made meanwhile are reported.
func TestWatchGivesUpAStalledStream(t *testing.T) {
	ctx := testContext(t)
	direct, db := ownDB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	upstream := kvdURL[len("http://"):]
	go func() {
		for i := 0; ; i++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				conn.Close()
				continue
			}
			defer conn.Close()
			defer up.Close()
			go io.Copy(up, conn)
			if i == 0 { // the first stream: kvd's bytes stop after a moment
				go func() {
					buf := make([]byte, 64<<10)
					until := time.Now().Add(300 * time.Millisecond)
					for {
						n, err := up.Read(buf)
						if err != nil {
							return
						}
						if time.Now().Before(until) {
							conn.Write(buf[:n])
						}
					}
				}()
				continue
			}
			go io.Copy(conn, up)
		}
	}()
	c, err := client.New(client.Config{URL: "http://" + ln.Addr().String(), DB: db, WatchIdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		time.Sleep(600 * time.Millisecond)
		for i := range 3 {
			direct.Put(ctx, fmt.Sprintf("k%d", i), client.Text("v"))
		}
	}()
	var ops []int64
	for ev, err := range c.Watch(ctx, "", client.FromOp(0)) {
		if err != nil {
			t.Fatal(err)
		}
		if ops = append(ops, ev.OpNumber); len(ops) == 3 {
			break
		}
	}
	if len(ops) != 3 || ops[0]+2 != ops[2] {
		t.Errorf("ops %v, want three in a row (ctx: %v)", ops, ctx.Err())
	}
}

// An event the client cannot read ends the watch with one error, even
// for a caller that goes on past errors: reconnecting would meet it again.
func TestWatchUnreadableEventEndsIt(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": watching after op 0\n\nid: 1\nevent: set\ndata: {\"key\":\"k\",\"op\":\"set\",\"op_number\":1,\"raw_value\":\"!!\"}\n\n")
	}))
	defer srv.Close()
	c, err := client.New(client.Config{URL: srv.URL, DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	errs := 0
	for _, err := range c.Watch(testContext(t), "k") {
		if err != nil {
			errs++
		}
	}
	if errs != 1 {
		t.Errorf("%d errors yielded, want 1", errs)
	}
}

// The error of a redirect not followed names where it pointed, without
// a password that URL carries.
func TestRedirectedWriteSaysWhereToWithoutItsPassword(t *testing.T) {
	red := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://user:secret@kvd.example/api", http.StatusFound)
	}))
	defer red.Close()
	c, err := client.New(client.Config{URL: red.URL, DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Delete(testContext(t), "k")
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "kvd.example") {
		t.Fatalf("Delete through a redirect: %v, want an error naming kvd.example without the password", err)
	}
}

// A proxy's 429 (a rate limit in front of kvd) is to retry, not the end
// of a watch: it reconnects, no sooner than the Retry-After asked, and
// misses nothing. Before, a 429 ended the watch with an error.
func TestWatchRetriesATooManyRequestsNoSoonerThanAsked(t *testing.T) {
	ctx := testContext(t)
	direct, db := ownDB(t)
	upstream, err := url.Parse(kvdURL)
	if err != nil {
		t.Fatal(err)
	}
	kvd := httputil.NewSingleHostReverseProxy(upstream)
	kvd.FlushInterval = -1 // a watch streams
	var mu sync.Mutex
	var asked []time.Time
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, time.Now())
		first := len(asked) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		kvd.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	c, err := client.New(client.Config{URL: proxy.URL, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := direct.Put(ctx, "k", client.Text("v")); err != nil {
		t.Fatal(err)
	}
	for ev, err := range c.Watch(ctx, "", client.FromOp(0)) {
		if err != nil {
			t.Fatalf("the watch ended on a 429: %v", err)
		}
		if ev.Key != "k" {
			t.Fatalf("first event %+v, want k's put", ev)
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) < 2 || asked[1].Sub(asked[0]) < time.Second {
		t.Errorf("asked at %v: want a second try no sooner than the 429's Retry-After of 1 s", asked)
	}
}

// Retry-After comes in seconds or as an HTTP date (as proxies send it).
func TestRetryAfterAsADate(t *testing.T) {
	ctx := testContext(t)
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	c, err := client.New(client.Config{URL: busy.URL, DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var kerr *client.Error
	if _, err := c.Get(ctx, "k"); !errors.As(err, &kerr) {
		t.Fatalf("got %v, want a 503", err)
	}
	if kerr.RetryAfter <= time.Second || kerr.RetryAfter > 3*time.Second {
		t.Errorf("RetryAfter %v, want 2-3 s", kerr.RetryAfter)
	}
}
