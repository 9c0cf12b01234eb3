package httpapi_test

import (
	"encoding/base64"
	"fmt"
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
// stalled streams have given way, a watcher is served the whole history.
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
	for range stalled {
		c := dialSmallWindow(t, ts)
		if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: kvd\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	// A watcher that reads finds the answer memory spent while the
	// stalled ones hold it: its stream ends, saying why.
	refused := false
	for deadline := time.Now().Add(3 * time.Second); !refused && time.Now().Before(deadline); {
		if grown := liveHeap() - before; grown > bound {
			t.Fatalf("%d watchers that read nothing grew the heap by %d MiB, want at most %d", stalled, grown>>20, bound>>20)
		}
		s := ts.openWatch(t, path)
		refused = endsRefused(t, s)
		s.close() // a client that read its first event and no more would hold its page too
	}
	if !refused {
		t.Fatal("watchers still served while stalled ones held their pages")
	}
	// The stalled streams give way after a second; a watcher that
	// reconnects then gets every write, in order.
	for deadline := time.Now().Add(5 * time.Second); ; {
		time.Sleep(time.Second)
		s := ts.openWatch(t, path)
		if endsRefused(t, s) {
			s.close()
			if time.Now().After(deadline) {
				t.Fatal("watchers still refused 5 s after the first refusal")
			}
			continue
		}
		for i, e := range s.nextN(t, keys-1) { // endsRefused read the first
			raw, _ := e.Data["raw_value"].(string) // base64: the values are not text
			got, err := base64.StdEncoding.DecodeString(raw)
			if want := fmt.Sprintf("k%02d", i+1); err != nil || e.Data["key"] != want || string(got) != bigWatched(i+1) {
				t.Fatalf("event %d: key %v with %d bytes (%v), want %s with its value", i+1, e.Data["key"], len(got), err, want)
			}
		}
		return
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
