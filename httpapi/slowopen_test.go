package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// A database another program holds locked takes its busy timeout (5 s) to
// fail to open. Meanwhile every other database answers as usual: the open
// runs outside the registry's lock. Before, the registry held its lock
// across the open, so a read of an unrelated, already open database waited
// behind it (11 s for three clients of the locked one).
func TestOpen_ADatabaseLockedElsewhereHoldsUpNoOther(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's 5 s busy timeout")
	}
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=other&create_db_if_missing=true"), "v"), 200)
	holdLockedElsewhere(t, filepath.Join(ts.DataDir, "locked.db"))

	const lockedClients = 3
	var wg sync.WaitGroup
	lockedAnswers := make([]timedAnswer, lockedClients)
	for i := range lockedAnswers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lockedAnswers[i] = ts.timed("GET", kv("k", "db=locked"), "")
		}()
	}
	allLockedAnswered := make(chan struct{})
	go func() { wg.Wait(); close(allLockedAnswered) }()

	// Read the other database until the locked one's clients have their
	// answers, each read at once, while another client writes it. The
	// writes are checked for their answer only: a write's time is the
	// disk's (its fsync, and every few thousand writes the writer's
	// checkpoint took 1 to 4 s on a busy machine, failing one run in
	// four). A registry that held its lock across the open would hold the
	// reads up as well, for a busy timeout (5 s) each time.
	wrote := make(chan error, 1)
	go func() {
		for {
			select {
			case <-allLockedAnswered:
				wrote <- nil
				return
			default:
			}
			if a := ts.timed("PUT", kv("k", "db=other"), "v2"); a.err != nil || a.status != 200 {
				wrote <- fmt.Errorf("got %d %v, want 200", a.status, a.err)
				return
			}
		}
	}()
	var slowest time.Duration
	reads := 0
	for waiting := true; waiting; reads++ {
		select {
		case <-allLockedAnswered:
			waiting = false
		default:
		}
		a := ts.timed("GET", kv("k", "db=other"), "")
		if a.err != nil || a.status != 200 {
			t.Fatalf("read of the other database while locked.db is opening: got %d %v, want 200", a.status, a.err)
		}
		slowest = max(slowest, a.took)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write of the other database while locked.db is opening: %v", err)
	}
	t.Logf("other database while locked.db was opening: %d reads, slowest %v", reads, slowest)
	if slowest > time.Second {
		t.Fatalf("slowest read of the other database while locked.db was opening: %v in %d reads, want under 1s", slowest, reads)
	}
	for _, a := range lockedAnswers {
		if a.err != nil || a.status != 500 || !strings.Contains(a.body, "locked by another process") {
			t.Fatalf("client of locked.db: got %d %q %v, want 500 saying it is locked by another process", a.status, a.body, a.err)
		}
	}
}

// holdLockedElsewhere takes an exclusive lock on a new SQLite file at path,
// as another program would, until the test ends.
func holdLockedElsewhere(tb testing.TB, path string) {
	tb.Helper()
	conn, err := sqlite3.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() }) // before the server's close checks the file
	if err := conn.Exec(`PRAGMA locking_mode = EXCLUSIVE; CREATE TABLE t(x); INSERT INTO t VALUES (1)`); err != nil {
		tb.Fatal(err)
	}
}

type timedAnswer struct {
	status int
	body   string
	took   time.Duration
	err    error
}

// timed sends one request and times it; safe off the test's goroutine.
func (ts *testServer) timed(method, path, body string) timedAnswer {
	start := time.Now()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		return timedAnswer{err: err}
	}
	res, err := ts.client.Do(req)
	if err != nil {
		return timedAnswer{err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return timedAnswer{status: res.StatusCode, body: string(data), took: time.Since(start), err: err}
}

// Writes queued while the database's actor waited out another program's
// write lock share that wait's answer: eight clients got their 500 after
// 5, 10, ... 40 s when each write waited out a busy timeout of its own.
func TestWrite_QueuedBehindALockHeldElsewhereShareOneWait(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's 5 s busy timeout")
	}
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	other, err := sqlite3.Open(filepath.Join(ts.DataDir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Exec(`BEGIN IMMEDIATE`); err != nil { // the write lock, as another program takes it
		t.Fatal(err)
	}

	const clients = 4
	answers := make([]timedAnswer, clients)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = ts.timed("PUT", kv("k", "db=app"), "refused")
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if a.err != nil || a.status != 500 || !strings.Contains(a.body, "locked by another process") {
			t.Fatalf("a write while another program holds the lock: %d %q %v", a.status, a.body, a.err)
		}
		if a.took > 9*time.Second { // one busy timeout, and room for a slow machine; two would be 10 s
			t.Fatalf("a write while another program holds the lock was answered after %v: it waited out more than one busy timeout", a.took)
		}
	}

	if err := other.Exec(`ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "after"), 200)
}
