package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/kvdtest"
	"github.com/kvd/kvd/sqlitekv"
)

const watchTable = "/api/v1/sqlite/kv/watch?"

func TestWatch_EveryWriteKindProducesItsEvent(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&table=ev&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("first", q), "1"), 200) // the database and table exist
	w := ts.openWatch(t, watchTable+"db=app&table=ev")
	t0 := ts.Clock.Now().Unix()
	ts.Clock.Advance(2 * time.Second)
	steps := []struct {
		method, path, body string
		events             []string
	}{
		{"PUT", kv("a", q), `{"n":1}`, []string{"set"}},
		{"PUT", kv("a", q), `{"n":2}`, []string{"set"}},
		{"POST", kv("a/rollback", q), "", []string{"rollback"}},
		{"POST", kv("c/incr", q), "", []string{"incr"}},
		{"POST", kv("c/decr", q+"&delta=3"), "", []string{"decr"}},
		{"DELETE", kv("c", q), "", []string{"delete"}},
		{"POST", "/api/v1/sqlite/kv/batch/set?" + q, `{"items":[{"key":"d","value":"1"},{"key":"e","value":"2"}]}`, []string{"set", "set"}},
		{"POST", "/api/v1/sqlite/kv/batch/delete?" + q, `{"keys":["d","nothing"]}`, []string{"delete"}},
		{"PUT", kv("l", q), `[1,2]`, []string{"set"}},
		{"POST", kv("l/push", q), `3`, []string{"push"}},
		{"POST", kv("l/pop", q), "", []string{"pop"}},
		{"POST", kv("l/remove", q+"&index=0"), "", []string{"remove"}},
		{"PUT", kv("h", q+"&history=false"), "secret", []string{"gap"}},
	}
	for _, s := range steps {
		// A refused write is no event: the next one is the step's.
		wantError(t, ts.do(t, "PUT", kv("first", q+"&if_match=nope"), "x"), 412, "CAS_MISMATCH")
		wantStatus(t, ts.do(t, s.method, s.path, s.body), 200)
		for _, name := range s.events {
			if e := w.next(t); e.Event != name {
				t.Fatalf("%s %s: event %q (%v), want %q", s.method, s.path, e.Event, e.Data, name)
			}
		}
	}
	// Expiry, found by a read and by the sweep.
	wantStatus(t, ts.do(t, "PUT", kv("r", q+"&ttl=5"), "x"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("s", q+"&ttl=5"), "x"), 200)
	w.nextN(t, 2)
	ts.Clock.Advance(6 * time.Second)
	wantError(t, ts.do(t, "GET", kv("r", "db=app&table=ev"), ""), 404, "KEY_EXPIRED")
	if e := w.next(t); e.Event != "expire" || e.Data["key"] != "r" {
		t.Fatalf("expiry by read: got %s %v", e.Event, e.Data)
	}
	sweepNow(t, ts, "app")
	if e := w.next(t); e.Event != "expire" || e.Data["key"] != "s" {
		t.Fatalf("expiry by sweep: got %s %v", e.Event, e.Data)
	}
	// A table rollback: a back to what it held at t0 (absent), e back to "2".
	r := ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&table=ev&confirm=yes&to_timestamp="+strconv.FormatInt(t0, 10), `{"keys":["a"]}`)
	wantStatus(t, r, 200)
	if e := w.next(t); e.Event != "rollback" || e.Data["key"] != "a" {
		t.Fatalf("table rollback: got %s %v", e.Event, e.Data)
	}
}

func TestWatch_EventsCarryKeyOpNumberTimeAndValueAsHistoryShowsThem(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), `{"a":[1, 2]}`), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "bytes", "Content-Type", "application/octet-stream"), 200)
	wantStatus(t, ts.do(t, "DELETE", kv("k", q), ""), 200)
	w := ts.openWatch(t, kv("k/watch", "db=app&after_op=0"))
	evs := w.nextN(t, 3)
	if d := evs[0].Data; evs[0].ID != "1" || d["key"] != "k" || d["op"] != "set" || d["op_number"] != 1.0 ||
		fmt.Sprint(d["value"]) != "map[a:[1 2]]" || d["content_type"] != "application/json" || d["timestamp"] != 1_700_000_000.0 {
		t.Fatalf("JSON set: got id %s %v", evs[0].ID, d)
	}
	if d := evs[1].Data; d["raw_value"] != "Ynl0ZXM=" || d["value"] != nil || d["content_type"] != "application/octet-stream" {
		t.Fatalf("binary set: got %v, want the value in base64 as raw_value", d)
	}
	if d := evs[2].Data; evs[2].Event != "delete" || evs[2].ID != "3" || d["value"] != nil || d["raw_value"] != nil {
		t.Fatalf("delete: got %s %v", evs[2].Event, d)
	}
}

// Writes race the watch's start: every one is sent once, in order,
// whether it came from history or live.
func TestWatch_ReplayThenLiveMissesAndDoublesNothing(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "POST", kv("n/incr", q), ""), 200)
	const writes = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range writes - 1 {
			ts.do(t, "POST", kv("n/incr", q), "")
		}
	}()
	// Start at several points while the writes go on: each must see
	// every value from 1 to writes.
	for range 3 {
		w := ts.openWatch(t, kv("n/watch", "db=app&after_op=0"))
		for want := 1; want <= writes; want++ {
			e := w.next(t)
			if e.Event != "incr" || e.Data["raw_value"] == nil || e.op() != int64(want) {
				t.Fatalf("event %d: got %s %v", want, e.Event, e.Data)
			}
		}
		w.close()
	}
	<-done
}

func TestWatch_FromNowSendsOnlyLaterWrites(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "old"), 200)
	w := ts.openWatch(t, kv("k/watch", "db=app"))
	if m := string(ts.do(t, "GET", "/metrics", "").Body); !strings.Contains(m, "kvd_watches 1\n") {
		t.Errorf("metrics do not count the open watch:\n%s", m)
	}
	wantStatus(t, ts.do(t, "PUT", kv("other", q), "x"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "new"), 200)
	if e := w.next(t); e.ID != "3" || e.Data["key"] != "k" {
		t.Fatalf("got %s %v, want op 3 of k", e.ID, e.Data)
	}
}

func TestWatch_SinceStartsAtThatTime(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "1"), 200)
	ts.Clock.Advance(10 * time.Second)
	since := ts.Clock.Now().Unix()
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "2"), 200)
	w := ts.openWatch(t, kv("k/watch", "db=app&since="+strconv.FormatInt(since, 10)))
	if e := w.next(t); e.ID != "2" {
		t.Fatalf("got op %s, want 2 (the write at since)", e.ID)
	}
}

func TestWatch_ReconnectWithLastEventIDResumesAfterIt(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for i := range 5 {
		wantStatus(t, ts.do(t, "PUT", kv("p%2F"+strconv.Itoa(i), q), "v"), 200)
	}
	path := watchTable + "db=app&prefix=p%2F&after_op=0"
	w := ts.openWatch(t, path)
	last := w.nextN(t, 3)[2].ID
	w.close()
	wantStatus(t, ts.do(t, "PUT", kv("p%2F9", q), "v"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("q", q), "not watched"), 200)
	w = ts.openWatch(t, path, "Last-Event-ID", last)
	for _, want := range []string{"4", "5", "6"} {
		if e := w.next(t); e.ID != want {
			t.Fatalf("after reconnecting at %s: got op %s, want %s", last, e.ID, want)
		}
	}
}

// A watcher that resumes past the table's newest op counted writes of
// another lineage of the database (here it was deleted and made again;
// in a cluster, restored from a replica without its last second). The
// writes it has not seen must not be skipped for their numbers: a gap
// says so, and the stream goes on from the next write.
func TestWatch_ResumingPastTheNewestOpIsAGap(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for range 5 {
		wantStatus(t, ts.do(t, "POST", kv("k/incr", q), ""), 200)
	}
	removeDatabaseFiles(t, ts.DataDir, "app.db")
	wantError(t, ts.do(t, "PUT", kv("k", "db=app"), "x"), 503, "OVERLOADED") // kvd notices the file is gone
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "new 1"), 200)

	m := ts.do(t, "GET", kv("k/watch", "db=app&after_op=5&wait=1s"), "").JSON(t)
	evs, _ := m["events"].([]any)
	if len(evs) == 0 || m["next_op"] != 1.0 {
		t.Fatalf("long poll after op 5 of a table at op 1: got %v, want a gap and next_op 1", m)
	}
	if gap := evs[0].(map[string]any); gap["code"] != "TIME_TRAVEL_GAP" || gap["resume_op"] != 2.0 {
		t.Fatalf("got %v, want a gap with resume_op 2", gap)
	}
	w := ts.openWatch(t, kv("k/watch", "db=app"), "Last-Event-ID", "5")
	if e := w.next(t); e.Event != "gap" || e.Data["resume_op"] != 2.0 || e.ID != "" {
		t.Fatalf("stream resumed at 5: got %s id %q %v, want a gap to resume at 2", e.Event, e.ID, e.Data)
	}
	for i := 2; i <= 6; i++ {
		wantStatus(t, ts.do(t, "PUT", kv("k", q), "new "+strconv.Itoa(i)), 200)
	}
	for op := int64(2); op <= 6; op++ {
		if e := w.next(t); e.op() != op {
			t.Fatalf("after the gap: got op %d (%s), want %d", e.op(), e.Event, op)
		}
	}
}

func TestWatch_PrunedHistoryIsAGapThenTheStreamGoesOn(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 3 }))
	q := "db=app&create_db_if_missing=true"
	for range 40 {
		wantStatus(t, ts.do(t, "POST", kv("k/incr", q), ""), 200)
	}
	w := ts.openWatch(t, kv("k/watch", "db=app&after_op=0"))
	gap := w.next(t)
	resume, _ := gap.Data["resume_op"].(float64)
	if gap.Event != "gap" || gap.Data["code"] != "TIME_TRAVEL_GAP" || resume <= 1 || gap.ID != "" {
		t.Fatalf("got %s id %q %v, want a gap without id", gap.Event, gap.ID, gap.Data)
	}
	for op := int64(resume); op <= 40; op++ {
		if e := w.next(t); e.op() != op {
			t.Fatalf("after the gap: got op %d, want %d", e.op(), op)
		}
	}
	wantStatus(t, ts.do(t, "POST", kv("k/incr", q), ""), 200)
	if e := w.next(t); e.op() != 41 {
		t.Fatalf("live after the gap: got op %d, want 41", e.op())
	}
	// Resuming where history is whole is no gap.
	w = ts.openWatch(t, kv("k/watch", "db=app&after_op=40"))
	if e := w.next(t); e.Event != "incr" || e.op() != 41 {
		t.Fatalf("resume at 40: got %s %v", e.Event, e.Data)
	}
	// Nor is history pruned from keys outside the prefix watched.
	wantStatus(t, ts.do(t, "PUT", kv("p%2Fa", q), "x"), 200)
	w = ts.openWatch(t, watchTable+"db=app&prefix=p%2F&after_op=0")
	if e := w.next(t); e.Event != "set" || e.Data["key"] != "p/a" || e.op() != 42 {
		t.Fatalf("prefix p/ from 0: got %s %v, want the set of p/a and no gap", e.Event, e.Data)
	}
}

// A key's writes interleaved with another's: when the other key's old
// writes are pruned, a watcher of the first that resumes after its own
// pruned write gets the writes kept, and no gap: none of its was lost.
func TestWatch_AnotherKeysPrunedWritesAreNoGap(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 10 }))
	q := "db=app&create_db_if_missing=true"
	for range 60 {
		wantStatus(t, ts.do(t, "PUT", kv("a", q), "x"), 200) // odd op numbers
		wantStatus(t, ts.do(t, "PUT", kv("b", q), "y"), 200) // even ones
	}
	oldestOfA := int64(0)
	for _, op := range ts.do(t, "GET", kv("a/history", "db=app&limit=1000"), "").JSON(t)["operations"].([]any) {
		oldestOfA = int64(op.(map[string]any)["op_number"].(float64))
	}
	if oldestOfA <= 1 {
		t.Fatalf("a's oldest kept write is op %d: nothing was pruned", oldestOfA)
	}
	for _, path := range []string{kv("a/watch", "db=app&wait=1s"), watchTable + "db=app&prefix=a&wait=1s"} {
		// Resuming right after a's write before its oldest kept one: whole.
		m := ts.do(t, "GET", path+"&after_op="+strconv.FormatInt(oldestOfA-2, 10), "").JSON(t)
		first := m["events"].([]any)[0].(map[string]any)
		if first["code"] != nil || int64(first["op_number"].(float64)) != oldestOfA {
			t.Fatalf("%s after op %d: first event %v, want a's write %d and no gap", path, oldestOfA-2, first, oldestOfA)
		}
		// One write of a earlier is lost: a gap.
		m = ts.do(t, "GET", path+"&after_op="+strconv.FormatInt(oldestOfA-4, 10), "").JSON(t)
		if first := m["events"].([]any)[0].(map[string]any); first["code"] != "TIME_TRAVEL_GAP" {
			t.Fatalf("%s after op %d: first event %v, want a gap", path, oldestOfA-4, first)
		}
	}
}

func TestWatch_LongPollAnswersJSON(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), `"v1"`), 200)
	// Events there already: answered at once.
	m := ts.do(t, "GET", kv("k/watch", "db=app&after_op=0&wait=30s"), "").JSON(t)
	evs, _ := m["events"].([]any)
	if len(evs) != 1 || m["next_op"] != 1.0 || evs[0].(map[string]any)["value"] != "v1" {
		t.Fatalf("got %v", m)
	}
	// None: empty at the end of the wait, next_op where to go on.
	m = ts.do(t, "GET", kv("k/watch", "db=app&after_op=1&wait=50ms"), "").JSON(t)
	if evs, _ := m["events"].([]any); len(evs) != 0 || m["next_op"] != 1.0 {
		t.Fatalf("got %v, want no events and next_op 1", m)
	}
	// One that comes during the wait is answered as it commits.
	got := make(chan map[string]any, 1)
	go func() { got <- ts.do(t, "GET", kv("k/watch", "db=app&after_op=1&wait=30s"), "").JSON(t) }()
	for {
		wantStatus(t, ts.do(t, "PUT", kv("k", q), `"v2"`), 200)
		select {
		case m = <-got:
		case <-time.After(20 * time.Millisecond):
			continue // the poll may have started after the write: it then sees it in history
		}
		break
	}
	if evs, _ := m["events"].([]any); len(evs) == 0 || m["next_op"].(float64) < 2 {
		t.Fatalf("got %v", m)
	}
	for _, bad := range []string{"wait=61s", "wait=0", "wait=999us", "wait=1ns", "wait=soon", "wait=61", "wait=18446744074", "wait=-1", "after_op=-1", "after_op=1&since=5", "since=x"} {
		wantError(t, ts.do(t, "GET", kv("k/watch", "db=app&"+bad), ""), 400, "INVALID_PARAMETERS")
	}
	wantError(t, ts.do(t, "GET", kv("k/watch", "db=app"), "", "Last-Event-ID", "x"), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "GET", kv("k/watch", "db=missing"), ""), 404, "DATABASE_NOT_FOUND")
	wantError(t, ts.do(t, "PUT", kv("watch", q), "x"), 405, "METHOD_NOT_ALLOWED") // a reserved word: the table's watch
}

// A watcher whose client reads nothing falls behind; writes go on at
// full speed, another watcher sees everything, and once the slow one
// reads, it gets every write too, in order (from history).
func TestWatch_SlowWatcherHoldsUpNeitherWritesNorOtherWatchers(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.Sync = sqlitekv.SyncNormal }))
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("s%2F0", q), "x"), 200)
	addr := ts.URL[len("http://"):]
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET %sdb=app&prefix=s%%2F&after_op=0 HTTP/1.1\r\nHost: x\r\n\r\n", watchTable)
	fast := ts.openWatch(t, watchTable+"db=app&prefix=s%2F&after_op=0")
	value := strings.Repeat("v", 6000) // 1500 of them fill any socket buffer
	const writes = 1500
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= writes; i++ {
			ts.do(t, "PUT", kv("s%2F"+strconv.Itoa(i), q), value)
		}
	}()
	for op := int64(1); op <= writes+1; op++ {
		if e := fast.next(t); e.op() != op {
			t.Fatalf("fast watcher: got op %d, want %d", e.op(), op)
		}
	}
	wg.Wait() // every write was answered although the slow watcher read nothing
	// Now the slow one reads: everything, in order.
	slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := readRawWatch(slow, writes+1)
	if err != nil {
		t.Fatalf("slow watcher: %v after %d events", err, len(res))
	}
	for i, op := range res {
		if op != int64(i+1) {
			t.Fatalf("slow watcher: event %d is op %d, want %d", i, op, i+1)
		}
	}
}

func TestWatch_ShutdownEndsStreams(t *testing.T) {
	srv, err := kvdtest.Start(t.TempDir(), func(a *actors.Config, h *httpapi.Config) { h.WatchHeartbeat = time.Hour })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := &testServer{URL: srv.URL, client: &http.Client{}}
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "x"), 200)
	w := ts.openWatch(t, kv("k/watch", "db=app"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Shutdown waits for every request; a stream that did not end would
	// make it time out.
	if err := srv.HTTP.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a watch open: %v", err)
	}
	if !w.ended() {
		t.Fatal("the stream went on after shutdown")
	}
}

// Heartbeats keep an idle stream going, and no server deadline (the
// body's read timeout here, far shorter than the stream) cuts it.
func TestWatch_HeartbeatKeepsIdleStreamsAlive(t *testing.T) {
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) {
		h.WatchHeartbeat, h.ReadTimeout = 10*time.Millisecond, 20*time.Millisecond
	})
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "x"), 200)
	w := ts.openWatch(t, kv("k/watch", "db=app"))
	for range 10 {
		w.lines.Scan() // the blank line that ends the comment before
		if !w.lines.Scan() || w.lines.Text() != ": keep-alive" {
			t.Fatalf("got %q, want a keep-alive comment", w.lines.Text())
		}
	}
}

func TestWatch_DirectoryModeImportIsAnEvent(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("a", q), "one"), 200)
	w := ts.openWatch(t, watchTable+q)
	if err := os.WriteFile(filepath.Join(root, "notes", "a"), []byte("edited"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.do(t, "GET", kv("a", q+"&rebuild=true"), "")
	if e := w.next(t); e.Event != "import" || e.Data["key"] != "a" || e.Data["raw_value"] != "ZWRpdGVk" {
		t.Fatalf("got %s %v, want the import of a", e.Event, e.Data)
	}
}

func sweepNow(t *testing.T, ts *testServer, name string) {
	t.Helper()
	db, err := ts.Registry.Open(context.Background(), name, false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	if _, err := db.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// readRawWatch reads n events' ids from a watch answer on c.
func readRawWatch(c net.Conn, n int) ([]int64, error) {
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	// Not closed: that would read the endless stream to its end. The
	// caller closes c.
	lines := bufio.NewScanner(res.Body)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	var ops []int64
	for len(ops) < n && lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "id: "); ok {
			op, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return ops, err
			}
			ops = append(ops, op)
		}
	}
	return ops, lines.Err()
}

func TestWatch_StreamsOverTLS(t *testing.T) {
	ts, _ := newTLSServer(t, 0)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "1"), 200)
	w := ts.openWatch(t, kv("k/watch", "db=app&after_op=0"))
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "2"), 200)
	if evs := w.nextN(t, 2); evs[0].ID != "1" || evs[1].ID != "2" {
		t.Fatalf("got %v", evs)
	}
}

// A watch holds a connection, which is never closed for a newcomer (it
// is in service): so watches may hold all but an eighth of the
// connections (at least one), and a request that is no watch still gets
// through when they hold all they may. Before, 10,050 idle watches of
// one client had every other request, /healthz too, refused.
func TestWatch_LeaveRoomForOtherRequests(t *testing.T) {
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxConnections = 4 })
	openQuietly(t, ts, "app")
	watches := []*watchStream{ts.openWatch(t, kv("k/watch", "db=app")), ts.openWatch(t, kv("k/watch", "db=app")), ts.openWatch(t, kv("k/watch", "db=app"))}
	r := ts.do(t, "GET", kv("k/watch", "db=app&wait=1s"), "")
	wantError(t, r, 503, "OVERLOADED")
	if msg := r.JSON(t)["message"]; !contains(msg, "Too many watches are open (3)") || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a fourth watch: %q, Retry-After %q", msg, r.Header.Get("Retry-After"))
	}
	// The newcomer takes the place of the connection of the request
	// above, once net/http has marked it idle: for a moment after its
	// answer it counts as in service (a newcomer then was refused, one run
	// in a hundred on a busy machine).
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := rawGet(t, ts, "/healthz")
		if got.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz on a new connection while watches hold all they may: got %d for 2 s, want 200", got.StatusCode)
		}
	}
	watches[0].close()
	waitForWatches(t, ts, 2)
	wantStatus(t, ts.do(t, "GET", kv("k/watch", "db=app&wait=10ms"), ""), 200)
}

// At the cap, with every connection in service (a watch, a request
// waiting for a database another program holds locked), a newcomer is
// refused with 503, Retry-After and a request id.
func TestWatch_CountsAgainstTheConnectionCap(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's 5 s busy timeout")
	}
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxConnections = 2 })
	openQuietly(t, ts, "app")
	w := ts.openWatch(t, kv("k/watch", "db=app"))
	holdLockedElsewhere(t, filepath.Join(ts.DataDir, "locked.db"))
	go func() { // in service for 5 s
		if res, err := http.Get(ts.URL + kv("k", "db=locked")); err == nil {
			res.Body.Close()
		}
	}()
	time.Sleep(time.Second) // for the GET to be read: in service from then on, for 5 s
	res := rawGet(t, ts, "/healthz")
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || res.Header.Get("X-Request-Id") == "" {
		t.Fatalf("a third connection: got %v, want 503 with Retry-After and a request id", res)
	}
	_ = w // open until the test ends
}

// openQuietly opens a database without a request: a connection that just
// answered may still count for a moment.
func openQuietly(t *testing.T, ts *testServer, name string) {
	t.Helper()
	db, err := ts.Registry.Open(context.Background(), name, true, false)
	if err != nil {
		t.Fatal(err)
	}
	db.Release()
}

// rawGet asks for path on a connection of its own.
func rawGet(t *testing.T, ts *testServer, path string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// waitForWatches waits until kvd counts n watches open.
func waitForWatches(t *testing.T, ts *testServer, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(string(ts.do(t, "GET", "/metrics", "").Body), fmt.Sprintf("kvd_watches %d\n", n)); {
		if time.Now().After(deadline) {
			t.Fatalf("kvd does not count %d watches open", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that leaves gives its watch (lease, hub place, connection)
// back at once, not at the next heartbeat.
func TestWatch_ALeavingClientEndsItsWatch(t *testing.T) {
	const heartbeat = time.Second
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.WatchHeartbeat = heartbeat })
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "x"), 200)
	w := ts.openWatch(t, kv("k/watch", "db=app"))
	start := time.Now()
	w.close()
	for !strings.Contains(string(ts.do(t, "GET", "/metrics", "").Body), "kvd_watches 0\n") {
		if time.Since(start) > heartbeat/2 {
			t.Fatalf("the watch is still open %v after its client left (heartbeat %v)", time.Since(start), heartbeat)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A watch keeps its database open as long as it lasts, and an open
// database holds file descriptors: so watches may keep at most half of
// --max-open-dbs databases open. A watch of one more database answers
// 503 OVERLOADED (long polls too), while watches of a watched database
// and ordinary requests to any other go on; once a watch ends, its room
// is free again. Under a low
// RLIMIT_NOFILE, watches of six databases took every descriptor, and
// other databases answered 500.
func TestWatch_DatabasesKeptOpenByWatchesAreBounded(t *testing.T) {
	ts := newTestServer(t, func(a *actors.Config, h *httpapi.Config) {
		a.MaxOpen = 4
		h.WatchHeartbeat = 20 * time.Millisecond // a stream sees its client gone at its next heartbeat
	})
	for _, db := range []string{"a", "b", "c"} {
		wantStatus(t, ts.do(t, "PUT", kv("k", "db="+db+"&create_db_if_missing=true"), "v"), 200)
	}
	watchOf := func(db string) string { return "/api/v1/sqlite/kv/watch?db=" + db }
	ts.openWatch(t, watchOf("a"))
	ts.openWatch(t, watchOf("a")) // a watched database costs no more files
	b := ts.openWatch(t, watchOf("b"))
	for _, path := range []string{watchOf("c"), watchOf("c") + "&wait=1s", "/api/v1/sqlite/kv/k/watch?db=c"} {
		r := ts.do(t, "GET", path, "")
		wantError(t, r, 503, "OVERLOADED")
		if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "watched") || r.Header.Get("Retry-After") == "" {
			t.Fatalf("watch of a third database: message %q, Retry-After %q", msg, r.Header.Get("Retry-After"))
		}
	}
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=c"), "w"), 200)
	if r := ts.do(t, "GET", kv("k", "db=c"), ""); string(r.Body) != "w" {
		t.Fatalf("read of c beside the watches: got %d %s", r.Status, r.Body)
	}
	b.close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		r := ts.do(t, "GET", watchOf("c")+"&wait=10ms", "")
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch of c once b's ended: got %d %s, want 200", r.Status, r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Retention may prune a write while a stream is between two pages of
// history (its client reading slowly): the stream then says so with a
// gap, instead of going on as if the write had never been.
func TestWatch_AWritePrunedWhileAStreamCatchesUpIsAGap(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep, o.Sync = 1, sqlitekv.SyncNormal }))
	q := "db=app&create_db_if_missing=true"
	value := strings.Repeat("v", 40<<10) // 600 of them fill any socket buffer twice over
	for i := range 600 {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("a%03d", i), q), value), 200)
	}
	wantStatus(t, ts.do(t, "PUT", kv("z", q), "v1"), 200) // op 601
	slow, err := net.Dial("tcp", ts.URL[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET %sdb=app&after_op=0 HTTP/1.1\r\nHost: x\r\n\r\n", watchTable)
	slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(res.Body)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "id: ") {
		// until the first page of history was read; the stream then
		// stops at its socket's buffer, long before op 601
	}
	wantStatus(t, ts.do(t, "PUT", kv("z", q), "v2"), 200) // op 602 prunes op 601
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ops := ts.do(t, "GET", kv("z/history", "db=app"), "").JSON(t)["operations"].([]any)
		if len(ops) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("z keeps %d versions, want 1", len(ops))
		}
	}

	ops := []string{"1"}
	var gaps []string
	for lines.Scan() && !slices.Contains(ops, "602") {
		line := lines.Text()
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ops = append(ops, id)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(data, "TIME_TRAVEL_GAP") {
			gaps = append(gaps, data)
		}
	}
	if len(ops) != 601 || slices.Contains(ops, "601") || len(gaps) != 1 || !strings.Contains(gaps[0], `"resume_op":602`) {
		t.Fatalf("the stream sent %d writes (op 601 among them: %v), gaps %q; want the 600 writes kept, op 602, and one gap resuming at 602 (%v)",
			len(ops), slices.Contains(ops, "601"), gaps, lines.Err())
	}
}

// A watch from a time that reconnects (an EventSource sends its first URL
// again, since included, with Last-Event-ID) still takes the writes
// pruned from before that time for no gap: it never asked for them.
func TestWatch_AResumedWatchFromATimeTellsNoGapForWritesBeforeIt(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 2 }))
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("x", q), "1"), 200) // op 1, kept: x's only write
	wantStatus(t, ts.do(t, "PUT", kv("y", q), "1"), 200) // op 2, before the time, pruned below
	ts.Clock.Advance(10 * time.Second)
	since := strconv.FormatInt(ts.Clock.Now().Unix(), 10)
	for i := range 2 { // ops 3 and 4, after the time: y keeps these two
		wantStatus(t, ts.do(t, "PUT", kv("y", q), strconv.Itoa(i+2)), 200)
	}
	waitPrunedTo(t, ts, "y", 2)
	first := ts.do(t, "GET", watchTable+"db=app&wait=1s&since="+since, "").JSON(t)
	resumed := ts.do(t, "GET", watchTable+"db=app&wait=1s&since="+since, "", "Last-Event-ID", "1").JSON(t)
	for name, m := range map[string]map[string]any{"from the time": first, "resumed after op 1": resumed} {
		evs := m["events"].([]any)
		if len(evs) == 0 || evs[0].(map[string]any)["code"] != nil {
			t.Errorf("%s: %v, want y's kept writes and no gap", name, m)
		}
	}
}

// A time still to come is now, for a resumed watch too: every write
// after the last event it got was asked for, and one pruned is a gap.
// (Kept as the time, it excused every write pruned before it: an
// EventSource on a clock ahead of kvd's, reconnecting with Last-Event-ID,
// lost them without a gap.)
func TestWatch_AResumedWatchFromATimeStillToComeTellsTheGap(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 2 }))
	q := "db=app&create_db_if_missing=true"
	since := strconv.FormatInt(ts.Clock.Now().Unix()+5, 10)
	for i := range 5 { // ops 1 to 5; the watch got 2; 3 is pruned below
		wantStatus(t, ts.do(t, "PUT", kv("y", q), strconv.Itoa(i+1)), 200)
	}
	waitPrunedTo(t, ts, "y", 2)
	m := ts.do(t, "GET", watchTable+"db=app&wait=1s&since="+since, "", "Last-Event-ID", "2").JSON(t)
	if evs := m["events"].([]any); len(evs) == 0 || evs[0].(map[string]any)["code"] != "TIME_TRAVEL_GAP" {
		t.Errorf("resumed after op 2 from a time still to come: %v, want a gap first (op 3 was pruned)", m)
	}
}

// waitPrunedTo waits until retention has left key (of db app) n versions.
func waitPrunedTo(t *testing.T, ts *testServer, key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ops := ts.do(t, "GET", kv(key+"/history", "db=app"), "").JSON(t)["operations"].([]any); len(ops) <= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's history was not pruned to %d", key, n)
		}
	}
}
