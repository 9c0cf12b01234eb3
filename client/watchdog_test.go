package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
)

// An event whose one line takes longer than WatchIdleTimeout to arrive
// (a large value over a slow link) is a stream that is alive, not
// silent: it must not be cut, and then met again after every
// reconnection, forever.
func TestWatchSlowLongLineIsNotSilence(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		io.WriteString(w, ": watching after op 0\n\nid: 1\nevent: set\ndata: {\"key\":\"k\",\"op\":\"set\",\"op_number\":1,\"value\":\"")
		rc.Flush()
		for range 10 { // the line takes a second; a chunk comes every 100 ms
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			io.WriteString(w, strings.Repeat("x", 1000))
			rc.Flush()
		}
		io.WriteString(w, "\"}\n\n")
		rc.Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, ctx := quickWatch(t, srv.URL)
	var got []int64
	for ev, err := range c.Watch(ctx, "k") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.OpNumber)
		break
	}
	if len(got) != 1 || got[0] != 1 {
		t.Errorf("events %v after %d connections, want op 1 (a line still arriving was taken for silence)", got, conns.Load())
	}
}

// An answer kvd gave in time (a 503, to retry) whose body is still
// arriving when the watchdog runs out is an answer: it must not become
// "no answer in", which ends the watch on its first connection.
func TestWatchAnAnswerIsNotNoAnswer(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if conns.Add(1) == 1 {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusServiceUnavailable)
			rc.Flush()
			select { // the body comes after the watchdog's time
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
			io.WriteString(w, "busy, retry")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": watching after op 0\n\nid: 1\nevent: set\ndata: {\"key\":\"k\",\"op\":\"set\",\"op_number\":1,\"value\":1}\n\n")
		rc.Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, ctx := quickWatch(t, srv.URL)
	for ev, err := range c.Watch(ctx, "k") {
		if err != nil {
			t.Fatalf("the watch ended with %v; a 503 is to retry", err)
		}
		if ev.OpNumber != 1 {
			t.Errorf("op %d, want 1", ev.OpNumber)
		}
		return
	}
	t.Errorf("no event (ctx: %v)", ctx.Err())
}

// quickWatch is a client of url whose watches give a stream up after
// 300 ms of silence, and a context that ends in 5 s.
func quickWatch(t *testing.T, url string) (*client.Client, context.Context) {
	t.Helper()
	c, err := client.New(client.Config{URL: url, DB: "app", WatchIdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(testContext(t), 5*time.Second)
	t.Cleanup(cancel)
	return c, ctx
}
