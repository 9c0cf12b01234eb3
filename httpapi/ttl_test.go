package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/ncruces/go-sqlite3"
)

func TestTTL_ExpiredKeyReadsAsExpiredThenGone(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("s", "db=app&create_db_if_missing=true&ttl=30"), "session")
	ts.Clock.Advance(29 * time.Second)
	wantStatus(t, ts.do(t, "GET", kv("s", "db=app"), ""), 200)
	ts.Clock.Advance(1 * time.Second)
	wantError(t, ts.do(t, "GET", kv("s", "db=app"), ""), 404, "KEY_EXPIRED")
	// The read handed the key to the actor for removal. The actor's mailbox
	// is FIFO, so once a later write is acknowledged the removal is done.
	ts.do(t, "PUT", kv("other", "db=app"), "x")
	if n := countRows(t, ts, "app.db", "kv_store"); n != 1 {
		t.Fatalf("rows after expiry: got %d, want 1 (only the other key)", n)
	}
	wantError(t, ts.do(t, "GET", kv("s", "db=app"), ""), 404, "KEY_NOT_FOUND")
}

func TestTTL_PutWithoutTTLClearsItAndIncrKeepsIt(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("a", q+"&ttl=10"), "1")
	ts.do(t, "PUT", kv("a", q), "2")
	if h := ts.do(t, "HEAD", kv("a", "db=app"), "").Header.Get("X-Expire-At"); h != "" {
		t.Fatalf("X-Expire-At after PUT without ttl: got %q, want none", h)
	}
	ts.do(t, "PUT", kv("c", q+"&ttl=10"), "5")
	ts.do(t, "POST", kv("c/incr", q), "")
	if h := ts.do(t, "HEAD", kv("c", "db=app"), "").Header.Get("X-Expire-At"); h == "" {
		t.Fatal("X-Expire-At after incr: got none, want the TTL kept")
	}
	ts.Clock.Advance(11 * time.Second)
	wantError(t, ts.do(t, "GET", kv("c", "db=app"), ""), 404, "KEY_EXPIRED")
	wantStatus(t, ts.do(t, "GET", kv("a", "db=app"), ""), 200)
	// A write after expiry starts over.
	put := ts.do(t, "PUT", kv("c", q), "fresh")
	if put.JSON(t)["created"] != true {
		t.Fatalf("PUT over an expired key: got %s, want created true", put.Body)
	}
}

// A write over a key whose TTL ran out (and that nobody read since) first
// records the expiry, so history never shows the dead value as replaced.
func TestTTL_WriteOverAnExpiredKeyRecordsTheExpiry(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("s", q+"&ttl=5"), "old")
	ts.do(t, "PUT", kv("n", q+"&ttl=5"), "41")
	ts.Clock.Advance(6 * time.Second)
	wantStatus(t, ts.do(t, "PUT", kv("s", q), "new"), 200)
	if m := ts.do(t, "POST", kv("n/incr", q), "").JSON(t); m["previous"] != 0.0 || m["value"] != 1.0 {
		t.Fatalf("incr over an expired counter: got %v, want previous 0, value 1", m)
	}
	for key, want := range map[string]string{"s": "set expire set", "n": "incr expire set"} {
		var ops []string
		for _, o := range ts.do(t, "GET", kv(key+"/history", "db=app"), "").JSON(t)["operations"].([]any) {
			ops = append(ops, o.(map[string]any)["operation"].(map[string]any)["op"].(string))
		}
		if got := strings.Join(ops, " "); got != want {
			t.Errorf("history of %s, newest first: got %q, want %q", key, got, want)
		}
	}
}

func TestTTL_SweepRemovesExpiredKeysNobodyReads(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for _, k := range []string{"a", "b", "c"} {
		ts.do(t, "PUT", kv(k, q+"&ttl=5"), "x")
	}
	ts.do(t, "PUT", kv("keep", q), "x")
	ts.Clock.Advance(6 * time.Second)
	db, err := ts.Registry.Open(context.Background(), "app", false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	res, err := db.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 3 {
		t.Fatalf("swept: got %d, want 3", res.Expired)
	}
	if n := countRows(t, ts, "app.db", "kv_store"); n != 1 {
		t.Fatalf("rows after sweep: got %d, want 1", n)
	}
}

// A sweep that finds more expired keys than one round removes queues
// another round behind the waiting writes, so expired keys cannot pile up
// faster than the sweep interval clears them.
func TestTTL_SweepKeepsGoingWhileThereIsMore(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for b := range 12 {
		items := make([]string, 100)
		for i := range items {
			items[i] = fmt.Sprintf(`{"key":"s%d","value":"x","ttl":5}`, b*100+i)
		}
		wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/kv/batch/set?"+q, `{"items":[`+strings.Join(items, ",")+`]}`), 200)
	}
	ts.Clock.Advance(6 * time.Second)
	db, err := ts.Registry.Open(context.Background(), "app", false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	if res, err := db.Sweep(context.Background()); err != nil || res.Expired != 500 || !res.More {
		t.Fatalf("first round: got %+v, %v; want 500 expired and more", res, err)
	}
	// Each write is answered after the round queued before it.
	ts.do(t, "PUT", kv("keep", q), "x")
	ts.do(t, "PUT", kv("keep", q), "x")
	if n := countRows(t, ts, "app.db", "kv_store"); n != 1 {
		t.Fatalf("rows after the follow-up rounds: got %d, want 1 (keep)", n)
	}
}

// A database evicted sooner than a sweep interval after each open is
// swept all the same: the interval counts across its closes.
func TestTTL_SweepReachesADatabaseEvictedBeforeEachInterval(t *testing.T) {
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		a.MaxOpen, a.SweepInterval = 1, 300*time.Millisecond
	})
	q := "db=app&create_db_if_missing=true"
	for i := range 50 {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("s%d", i), q+"&ttl=1"), "x"), 200)
	}
	ts.do(t, "PUT", kv("keep", q), "x")
	ts.do(t, "PUT", kv("k", "db=other&create_db_if_missing=true"), "x")
	ts.Clock.Advance(2 * time.Second)
	// Each read opens its database and evicts the other, which was open
	// for a third of the interval.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		wantStatus(t, ts.do(t, "GET", kv("keep", "db=app"), ""), 200)
		wantStatus(t, ts.do(t, "GET", kv("k", "db=other"), ""), 200)
		n := countRows(t, ts, "app.db", "kv_store")
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows of app.db after 5 s of evictions: %d, want 1 (keep): the expired keys were never swept", n)
		}
	}
}

func TestDelete_ExpiredKeyAnswersExpired(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true&ttl=1"), "x")
	ts.Clock.Advance(time.Second)
	wantError(t, ts.do(t, "DELETE", kv("a", "db=app"), ""), 404, "KEY_EXPIRED")
	wantError(t, ts.do(t, "DELETE", kv("a", "db=app"), ""), 404, "KEY_NOT_FOUND")
}

// countRows counts a table's rows straight from the file, outside kvd.
func countRows(tb testing.TB, ts *testServer, file, table string) int {
	tb.Helper()
	conn, err := sqlite3.OpenFlags(ts.DataDir+"/"+file, sqlite3.OPEN_READONLY)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.BusyTimeout(5 * time.Second) // past a close's checkpoint in kvd
	stmt, _, err := conn.Prepare(`SELECT count(*) FROM "` + table + `"`)
	if err != nil {
		tb.Fatal(err)
	}
	defer stmt.Close()
	stmt.Step()
	return stmt.ColumnInt(0)
}

// After the clock stepped back, history's time is ahead of it, but
// writes judge TTLs by the clock as reads do, and start new ones from it.
// (A first fix judged them at history's time: a key a GET served was
// expired to an incr and a DELETE, a key rollback deleted the live value
// instead of restoring one with seconds left, and a TTL of 1 s lasted the
// step back longer.)
func TestTTL_AfterTheClockSteppedBackWritesJudgeAsReads(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for _, k := range []string{"counter", "doomed", "rolled"} {
		wantStatus(t, ts.do(t, "PUT", kv(k, q+"&ttl=10"), "5"), 200)
	}
	ts.Clock.Advance(2 * time.Second)
	wantStatus(t, ts.do(t, "PUT", kv("rolled", q+"&ttl=10"), "6"), 200)
	ts.Clock.Advance(10 * time.Second)
	wantStatus(t, ts.do(t, "PUT", kv("x", q), "x"), 200) // history's time: t0+12 s
	ts.Clock.Advance(-5 * time.Second)                   // the clock: t0+7 s, the 5s with 3 s left

	if r := ts.do(t, "POST", kv("counter/incr", "db=app"), ""); r.JSON(t)["value"] != 6.0 {
		t.Errorf("incr of a live 5: got %d %s, want 6", r.Status, r.Body)
	}
	wantStatus(t, ts.do(t, "DELETE", kv("doomed", "db=app"), ""), 200)
	wantStatus(t, ts.do(t, "POST", kv("rolled/rollback", "db=app"), ""), 200)
	if r := ts.do(t, "GET", kv("rolled", "db=app"), ""); string(r.Body) != "5" {
		t.Errorf("after a key rollback to a 5 with 3 s left: got %d %s, want 5", r.Status, r.Body)
	}
	wantStatus(t, ts.do(t, "PUT", kv("brief", q+"&ttl=1"), "v"), 200)
	ts.Clock.Advance(2 * time.Second)
	wantError(t, ts.do(t, "GET", kv("brief", "db=app"), ""), 404, "KEY_EXPIRED")
}
