package httpapi_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
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
	keys := unreadHistoryKeys()
	const (
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
	// ended, saying why. Not in their first bytes: the kernel grows a
	// stream's send buffer to net.ipv4.tcp_wmem's largest (4 MiB here),
	// however small its client's window, and takes its first two pages
	// whole, so a stream holds a page, or is refused one, only past them
	// (reading the first KiB of each found no refusal in one run of ten
	// to twenty). So they are read, each up to its refusal, its whole
	// history or its end, until one is: a 4 KiB window reads slowly.
	refused := false
	for _, c := range conns {
		refused = refused || refusedWithin(c, keys)
		c.Close()
	}
	if !refused {
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

// unreadHistoryKeys is how many values of bigWatched's size the test
// above writes: four pages (a page is a mebibyte of values), and as many
// more as the kernel may take into a stream's send buffer without its
// client reading (net.ipv4.tcp_wmem's largest; 4 MiB here): a stream
// holds a page of answer memory only past what the kernel takes.
func unreadHistoryKeys() int {
	sendBuffer := 4 << 20
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			if n, err := strconv.Atoi(f[2]); err == nil {
				sendBuffer = n
			}
		}
	}
	return 16 + sendBuffer/(256<<10)
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

// refusedWithin reads c, a watch of a history of n events, up to the
// comment that ends a stream for want of answer memory (true), or to its
// n-th event or its end (false).
func refusedWithin(c net.Conn, n int) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	lines := bufio.NewScanner(c)
	lines.Buffer(make([]byte, 64<<10), 1<<20) // a data line: a value of 256 KiB in base64
	for events := 0; events < n && lines.Scan(); {
		switch line := lines.Text(); {
		case strings.Contains(line, "the watch ended: too many large answers"):
			return true
		case strings.HasPrefix(line, "event: "):
			events++
		}
	}
	return false
}

// liveHeap is the heap's live bytes after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
