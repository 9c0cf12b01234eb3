package httpapi_test

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

// Clients that ask for large answers and read nothing hold at most the
// answer memory (--max-body-memory) between them: past it, a large answer
// is a 503 to retry, and the answers that waited longest for their
// clients give way, so the retry is served. Small answers go on.
func TestAnswerMemory_ClientsThatReadNothingHoldABoundedAmount(t *testing.T) {
	const value = 8 << 20
	ts := newTestServer(t, withMaxValue(value), func(_ *actors.Config, h *httpapi.Config) {
		h.MaxBodyMemory = 4 * value // answers of 8 MiB: four fit
	})
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("big", q), strings.Repeat("v", value)), 200)
	wantStatus(t, ts.do(t, "PUT", kv("small", q), "s"), 200)
	popped := `"` + strings.Repeat("p", 100<<10) + `"`
	wantStatus(t, ts.do(t, "PUT", kv("arr", q), `["x",`+popped+`]`), 200)

	refused := refusedWhileStalled(t, ts)
	wantError(t, refused, 503, "OVERLOADED")
	if msg := refused.JSON(t)["message"]; !contains(msg, "waiting for their clients") || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("refusal: %q, Retry-After %q", msg, refused.Header.Get("Retry-After"))
	}
	if got := ts.do(t, "GET", kv("small", "db=app"), ""); string(got.Body) != "s" {
		t.Fatalf("a small answer meanwhile: got %d %q", got.Status, got.Body)
	}
	// A write's answer is never refused: the write is done, and a 503
	// would have its client pop again.
	if got := ts.do(t, "POST", kv("arr/pop", q), ""); got.Status != 200 || len(got.Body) < 100<<10 {
		t.Fatalf("a pop of a large element meanwhile: got %d (%d bytes)", got.Status, len(got.Body))
	}
	// Retried as Retry-After says, a large answer is served in full: the
	// stalled ones have given way.
	for deadline := time.Now().Add(5 * time.Second); ; {
		time.Sleep(time.Second)
		got := ts.do(t, "GET", kv("big", "db=app"), "")
		if got.Status == 200 && len(got.Body) == value {
			break
		}
		wantError(t, got, 503, "OVERLOADED")
		if time.Now().After(deadline) {
			t.Fatal("large answers still refused 5 s after the first refusal")
		}
	}
}

// refusedWhileStalled is the 503 a large answer gets while six clients
// that read nothing hold the answer memory. Stalled answers give way after
// a second, so on a machine slow enough to miss that second, six more stall.
func refusedWhileStalled(tb testing.TB, ts *testServer) response {
	tb.Helper()
	for range 5 {
		stallReaders(tb, ts, 6)
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			r := ts.do(tb, "GET", kv("big", "db=app"), "")
			if r.Status == 503 {
				return r
			}
			wantStatus(tb, r, 200)
		}
	}
	tb.Fatal("large answers still served while five times six clients read none of theirs")
	return response{}
}

// stallReaders starts n clients that ask for the value "big" and read
// nothing, behind receive windows made small before they connect, so that
// no answer of theirs fits in the sockets' buffers.
func stallReaders(tb testing.TB, ts *testServer, n int) {
	for range n {
		c := dialSmallWindow(tb, ts)
		if _, err := c.Write([]byte("GET " + kv("big", "db=app") + " HTTP/1.1\r\nHost: kvd\r\n\r\n")); err != nil {
			tb.Fatal(err)
		}
	}
}

func dialSmallWindow(tb testing.TB, ts *testServer) net.Conn {
	dialer := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
		return raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := dialer.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
