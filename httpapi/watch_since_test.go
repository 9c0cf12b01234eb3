package httpapi_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// A watch from a time starts after the newest write kept before it. Where
// retention pruned the watched key's writes made just before that time,
// nothing the watch asks for is lost: no gap. A pruned write made at or
// after it is lost: a gap. Both forms of a watch, the stream and the long
// poll, say the same, and so does a watch from the op the time denotes.

// watchEvents shows the first n events of a watch (path, without wait),
// read from its long poll and from its stream, which must agree: a write
// as its op number, a gap as "gap→N", N the op it resumes at. The poll,
// read first, answers every event there is, so the stream is not waited
// on for more.
func watchEvents(t *testing.T, ts *testServer, path string, n int) []string {
	t.Helper()
	show := func(d map[string]any) string {
		if d["code"] != nil {
			return fmt.Sprintf("gap→%v", d["resume_op"])
		}
		return fmt.Sprint(d["op_number"])
	}
	var poll, stream []string
	evs, _ := ts.do(t, "GET", path+"&wait=1s", "").JSON(t)["events"].([]any)
	for _, ev := range evs[:min(n, len(evs))] {
		poll = append(poll, show(ev.(map[string]any)))
	}
	w := ts.openWatch(t, path)
	for _, e := range w.nextN(t, len(poll)) {
		stream = append(stream, show(e.Data))
	}
	w.close()
	if !slices.Equal(stream, poll) {
		t.Fatalf("%s: the stream sent %v, the long poll %v", path, stream, poll)
	}
	return stream
}

func wantEvents(t *testing.T, ts *testServer, path string, want ...string) {
	t.Helper()
	if got := watchEvents(t, ts, path, len(want)); !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", path, got, want)
	}
}

func sinceParam(at time.Time) string { return "since=" + strconv.FormatInt(at.Unix(), 10) }

// writesBeforeSince makes ops 1 to 5 of a server whose HistoryKeep is 3
// (retention at every write: each write prunes the key's version four
// back), then lets 10 s pass: o's write, kept, the newest op before
// since; and k's, written, written with history=false, and deleted. It
// returns since, and the query that makes k again.
func writesBeforeSince(t *testing.T, ts *testServer) (since time.Time, q string) {
	t.Helper()
	q = "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("o", q), "other"), 200)                   // 1
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "before"), 200)                  // 2
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "before"), 200)                  // 3
	wantStatus(t, ts.do(t, "PUT", kv("k", q+"&history=false"), "secret"), 200) // 4
	wantStatus(t, ts.do(t, "DELETE", kv("k", q), ""), 200)                     // 5
	ts.Clock.Advance(10 * time.Second)
	return ts.Clock.Now(), q
}

func TestWatch_SinceAfterWritesPrunedBeforeItIsNoGap(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 3 }))
	since, q := writesBeforeSince(t, ts)
	for i := 6; i <= 8; i++ {
		wantStatus(t, ts.do(t, "PUT", kv("k", q), "after"), 200) // each prunes one of 2 to 5
	}
	// k's writes from since on are 6, 7, 8, all kept; 5, its last
	// before since, was pruned.
	for _, path := range []string{kv("k/watch", "db=app&"), watchTable + "db=app&prefix=k&", watchTable + "db=app&"} {
		wantEvents(t, ts, path+sinceParam(since), "6", "7", "8")
		wantEvents(t, ts, path+"after_op=5", "6", "7", "8") // the op since denotes
	}
}

func TestWatch_SinceBeforeAPrunedWriteIsAGap(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 3 }))
	since, q := writesBeforeSince(t, ts)
	for i := 6; i <= 9; i++ {
		wantStatus(t, ts.do(t, "PUT", kv("k", q), "after"), 200)
	}
	// Op 9 pruned op 6, made at since itself: lost.
	for _, path := range []string{kv("k/watch", "db=app&"), watchTable + "db=app&prefix=k&", watchTable + "db=app&"} {
		wantEvents(t, ts, path+sinceParam(since), "gap→7", "7", "8", "9")
		wantEvents(t, ts, path+"after_op=5", "gap→7", "7", "8", "9")
	}
	// A second before since, the writes pruned are lost too.
	wantEvents(t, ts, kv("k/watch", "db=app&")+sinceParam(since.Add(-time.Second)), "gap→7", "7", "8", "9")
}

// --history-max-age prunes every key's old writes at the sweep.
func TestWatch_SinceAcrossHistoryPrunedByAge(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryMaxAge = time.Hour }))
	q := "db=app&create_db_if_missing=true"
	t0 := ts.Clock.Now()
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "1"), 200) // op 1 at t0
	ts.Clock.Advance(time.Minute)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "2"), 200) // op 2 at t0+1m
	ts.Clock.Advance(2 * time.Minute)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "3"), 200) // op 3 at t0+3m
	ts.Clock.Advance(2 * time.Hour)
	sweepNow(t, ts, "app") // prunes ops 1 and 2
	for _, path := range []string{kv("k/watch", "db=app&"), watchTable + "db=app&"} {
		wantEvents(t, ts, path+sinceParam(t0.Add(2*time.Minute)), "3")
		wantEvents(t, ts, path+"after_op=2", "3")
		wantEvents(t, ts, path+sinceParam(t0.Add(time.Minute)), "gap→3", "3") // op 2 was at since
		wantEvents(t, ts, path+sinceParam(t0.Add(30*time.Second)), "gap→3", "3")
	}
}

// A whole second as since starts at that second's beginning: a write made
// during it is sent, as at_timestamp of that second shows it; a fraction
// names its instant.
func TestWatch_SinceAWholeSecondStartsAtItsBeginning(t *testing.T) {
	ts := newTestServer(t)
	second := ts.Clock.Now().Truncate(time.Second).Add(time.Second)
	ts.Clock.Advance(second.Add(42 * time.Millisecond).Sub(ts.Clock.Now()))
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	ts.Clock.Advance(time.Second)
	s := strconv.FormatInt(second.Unix(), 10)
	wantEvents(t, ts, kv("k/watch", "db=app&since="+s), "1")
	wantEvents(t, ts, kv("k/watch", "db=app&since="+s+".5"))
	if r := ts.do(t, "GET", kv("k", "db=app&at_timestamp="+s), ""); string(r.Body) != "v" {
		t.Fatalf("at_timestamp=%s: got %d %s, want v", s, r.Status, r.Body)
	}
}
