package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

// Watchers that read nothing hold at most the answer memory between
// them, as clients of large answers do: a page of history waits for its
// client holding its size of it. Past that, a stream ends with a comment
// saying why, its client to reconnect with Last-Event-ID; once the
// stalled streams are gone, a watcher is served the whole history.
// (Such watchers of values over 8 KiB, which watchers read from history,
// held a mebibyte or more each, without bound.)
func TestAnswerMemory_WatchersThatReadNothingHoldABoundedAmount(t *testing.T) {
	const (
		keys   = 16      // 4 MiB of history: four pages
		budget = 4 << 20 // answer memory: three pages and some
		// What the stalled watchers may add to the heap: the answer memory,
		// and the pages being read and rendered meanwhile, a few at a time
		// (as many as the store has read connections and Go has threads).
		// Each would hold a page, over a mebibyte, without the bound.
		bound   = 64 << 20
		stalled = 80
	)
	ts := newTestServer(t, withMaxValue(1<<20), func(_ *actors.Config, h *httpapi.Config) { h.MaxBodyMemory = budget })
	for i := range keys {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%02d", i), "db=app&create_db_if_missing=true"), bigWatched(i)), 200)
	}
	const path = "/api/v1/sqlite/kv/watch?db=app&after_op=0"

	before := liveHeap()
	var conns []net.Conn
	for range stalled {
		c := dialSmallWindow(t, ts)
		if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: kvd\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for range 10 {
		if grown := liveHeap() - before; grown > bound {
			t.Fatalf("%d watchers that read nothing grew the heap by %d MiB, want at most %d", stalled, grown>>20, bound>>20)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Of so many, most found the answer memory spent: their streams
	// ended, saying why (a held page would have filled the first bytes).
	refused := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		head, _ := io.ReadAll(io.LimitReader(c, 1<<10))
		if strings.Contains(string(head), "the watch ended: too many large answers") {
			refused++
		}
		c.Close()
	}
	if refused == 0 {
		t.Fatalf("none of %d watchers that read nothing was refused, with room for about %d pages", stalled, budget>>20)
	}
	// With the stalled streams gone (each gives its page back as its
	// connection closes), a watcher gets every write, in order.
	s := ts.openWatch(t, path)
	for deadline := time.Now().Add(5 * time.Second); endsRefused(t, s); s = ts.openWatch(t, path) {
		s.close()
		if time.Now().After(deadline) {
			t.Fatal("watchers still refused 5 s after the stalled ones left")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, e := range s.nextN(t, keys-1) { // endsRefused read into the first
		raw, _ := e.Data["raw_value"].(string) // base64: the values are not text
		got, err := base64.StdEncoding.DecodeString(raw)
		if want := fmt.Sprintf("k%02d", i+1); err != nil || e.Data["key"] != want || string(got) != bigWatched(i+1) {
			t.Fatalf("event %d: key %v with %d bytes (%v), want %s with its value", i+1, e.Data["key"], len(got), err, want)
		}
	}
}

// bigWatched is the value of key i of the test above.
func bigWatched(i int) string { return strings.Repeat(string(rune('a'+i)), 256<<10) }

// endsRefused reads s up to its first event's name (false) or to the
// comment that ends a stream for want of answer memory (true).
func endsRefused(t *testing.T, s *watchStream) bool {
	t.Helper()
	for s.lines.Scan() {
		switch line := s.lines.Text(); {
		case strings.Contains(line, "the watch ended: too many large answers"):
			return true
		case strings.HasPrefix(line, "event: "):
			return false
		}
	}
	t.Fatalf("stream ended (%v) with neither an event nor the refusal", s.lines.Err())
	return false
}

// liveHeap is the heap's live bytes after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
