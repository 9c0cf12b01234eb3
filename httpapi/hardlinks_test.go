package httpapi_test

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// A file is served by one of its names (hard links) at a time: each name
// has a log and shared memory of its own, which exclude each other in
// nothing. Served under two names at once, half of the increments sent to
// them were lost; another name of a file open already is refused (400),
// and served once the first is closed. Two names opened at once: one wins,
// and every increment acknowledged is counted.
func TestHardLinks_AFileIsServedByOneNameAtATime(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("n", "db=a&create_db_if_missing=true"), "0"), 200)
	a, b := filepath.Join(ts.DataDir, "a.db"), filepath.Join(ts.DataDir, "b.db")
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, "POST", kv("n/incr", "db=b"), "")
	wantError(t, r, 400, "INVALID_DB_PATH")
	if msg := r.JSON(t)["message"]; !contains(msg, `open under another name, "a.db"`) {
		t.Fatalf("message: %q", msg)
	}
	wantStatus(t, ts.do(t, "POST", kv("n/incr", "db=a"), ""), 200)
	ts.Registry.CloseDB(a)
	wantStatus(t, ts.do(t, "POST", kv("n/incr", "db=b"), ""), 200)
	wantError(t, ts.do(t, "POST", kv("n/incr", "db=a"), ""), 400, "INVALID_DB_PATH")
	ts.Registry.CloseDB(b)

	var acked atomic.Int64
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				switch r := ts.timed("POST", kv("n/incr", "db="+[]string{"a", "b"}[(c+i)%2]), ""); {
				case r.err == nil && r.status == 200:
					acked.Add(1)
				case r.err != nil || r.status != 400:
					t.Errorf("an incr: %d %s %v", r.status, r.body, r.err)
				}
			}
		}()
	}
	wg.Wait()
	got := ""
	for _, db := range []string{"a", "b"} {
		if r := ts.do(t, "GET", kv("n", "db="+db), ""); r.Status == 200 {
			got = string(r.Body)
		}
	}
	if want := strconv.FormatInt(2+acked.Load(), 10); got != want {
		t.Fatalf("n: got %s, want %s (2, then %d acknowledged)", got, want, acked.Load())
	}
}
