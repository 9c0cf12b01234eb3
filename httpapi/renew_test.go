package httpapi_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// A connection that held a large value is opened afresh once idle, so
// the memory SQLite took for it goes back (sqlitekv/renew.go): the writer
// after the value's group, a reader after the value's read. What the
// database holds does not change, and small values renew nothing.
func TestLargeValue_ItsConnectionsAreRenewedAndLoseNothing(t *testing.T) {
	ts := newTestServer(t)
	renewed := func() float64 {
		return metricValue(t, string(ts.do(t, "GET", "/metrics", "").Body), "kvd_sqlite_connections_renewed_total")
	}
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), "first"), 200)
	wantStatus(t, ts.do(t, "POST", kv("n/incr", "db=app"), ""), 200)
	start := renewed()
	big := strings.Repeat("b", 2<<20)
	wantStatus(t, ts.do(t, "PUT", kv("big", "db=app"), big), 200)
	// The writer is renewed after its group's answers: wait for it.
	afterWrite := renewed()
	for deadline := time.Now().Add(5 * time.Second); afterWrite < start+1 && time.Now().Before(deadline); afterWrite = renewed() {
		time.Sleep(10 * time.Millisecond)
	}
	if afterWrite < start+1 {
		t.Fatalf("renewed connections went from %v to %v after a 2 MiB PUT, want the writer renewed", start, afterWrite)
	}
	if got := ts.do(t, "GET", kv("big", "db=app"), ""); got.Status != 200 || string(got.Body) != big {
		t.Fatalf("GET big after the writer's renewal: %d, %d bytes", got.Status, len(got.Body))
	}
	afterRead := renewed()
	if afterRead < afterWrite+1 {
		t.Fatalf("renewed connections went from %v to %v after a 2 MiB GET, want the reader renewed", afterWrite, afterRead)
	}
	// The renewed connections carry on where the old ones stopped.
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=app"), "second"), 200)
	if got := ts.do(t, "GET", kv("a", "db=app"), ""); string(got.Body) != "second" {
		t.Fatalf("GET a = %q, want second", got.Body)
	}
	wantStatus(t, ts.do(t, "POST", kv("n/incr", "db=app"), ""), 200)
	if got := ts.do(t, "GET", kv("n", "db=app"), ""); string(got.Body) != "2" {
		t.Fatalf("GET n = %q, want 2", got.Body)
	}
	history := ts.do(t, "GET", strings.Replace(kv("a", "db=app"), "?", "/history?", 1), "")
	if history.Status != 200 || !strings.Contains(string(history.Body), base64.StdEncoding.EncodeToString([]byte("first"))) ||
		!strings.Contains(string(history.Body), base64.StdEncoding.EncodeToString([]byte("second"))) {
		t.Fatalf("history of a after renewal: %d %s", history.Status, history.Body)
	}
	for range 20 {
		wantStatus(t, ts.do(t, "PUT", kv("small", "db=app"), "s"), 200)
		wantStatus(t, ts.do(t, "GET", kv("small", "db=app"), ""), 200)
	}
	if got := renewed(); got != afterRead {
		t.Fatalf("small writes and reads renewed connections: %v, want %v", got, afterRead)
	}
}
