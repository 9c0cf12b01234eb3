package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// watchEvent is one Server-Sent Event of a watch stream.
type watchEvent struct {
	ID, Event string
	Data      map[string]any
}

func (e watchEvent) op() int64 {
	n, _ := e.Data["op_number"].(float64)
	return int64(n)
}

// watchStream reads a watch answer as it comes.
type watchStream struct {
	res    *http.Response
	lines  *bufio.Scanner
	cancel context.CancelFunc
}

// openWatch starts a watch (path after the host) and reads its first
// line, which kvd sends once the watch is in place. The stream is cut
// after 30 s at most, so a test that waits for an event that never
// comes fails instead of hanging.
func (ts *testServer) openWatch(tb testing.TB, path string, header ...string) *watchStream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := ts.client.Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	s := &watchStream{res: res, lines: bufio.NewScanner(res.Body), cancel: cancel}
	s.lines.Buffer(make([]byte, 64<<10), 16<<20)
	tb.Cleanup(s.close)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("X-Request-Id") == "" {
		tb.Fatalf("watch %s: status %d, headers %v", path, res.StatusCode, res.Header)
	}
	if !s.lines.Scan() || !strings.HasPrefix(s.lines.Text(), ": watching") {
		tb.Fatalf("watch %s: first line %q, want the ': watching' comment", path, s.lines.Text())
	}
	return s
}

func (s *watchStream) close() {
	s.cancel()
	s.res.Body.Close()
}

// next reads the next event, skipping comments (heartbeats).
func (s *watchStream) next(tb testing.TB) watchEvent {
	tb.Helper()
	var e watchEvent
	for s.lines.Scan() {
		line := s.lines.Text()
		switch {
		case line == "" && e.Event != "":
			return e
		case strings.HasPrefix(line, ":"), line == "":
		case strings.HasPrefix(line, "id: "):
			e.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			e.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e.Data); err != nil {
				tb.Fatalf("data line %q: %v", line, err)
			}
		default:
			tb.Fatalf("unexpected line %q", line)
		}
	}
	tb.Fatalf("stream ended (%v) waiting for an event", s.lines.Err())
	return e
}

// nextN reads n events.
func (s *watchStream) nextN(tb testing.TB, n int) []watchEvent {
	tb.Helper()
	out := make([]watchEvent, n)
	for i := range out {
		out[i] = s.next(tb)
	}
	return out
}

// ended reports whether the stream ends (EOF or error) before another
// event comes.
func (s *watchStream) ended() bool {
	for s.lines.Scan() {
		if strings.HasPrefix(s.lines.Text(), "event: ") {
			return false
		}
	}
	return true
}
