package httpapi_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/kvd/kvd/sqlitekv"
)

// Keys written among many others lose their old versions in laps over
// history in op order (sqlitekv/prunelaps.go), laps long enough here to run
// in chunks across groups: each key keeps at least its keep newest
// versions, reads before them are gaps, and (at the server's close) every
// chain and horizon checks out.
func TestRetention_ManyKeysLoseTheirOldVersionsInLaps(t *testing.T) {
	const keep, keys, rounds, writers = 20, 600, 60, 6
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = keep }))
	t0 := ts.Clock.Now().Unix()
	for round := 1; round <= rounds; round++ {
		var wg sync.WaitGroup
		for w := range writers { // concurrent, so that groups hold several batches
			wg.Add(1)
			go func() {
				defer wg.Done()
				var items []map[string]any
				for k := w; k < keys; k += writers {
					items = append(items, map[string]any{"key": fmt.Sprintf("k%03d", k), "value": fmt.Sprintf("v%d", round)})
				}
				body, _ := json.Marshal(map[string]any{"items": items})
				if r := ts.do(t, "POST", batchPath+"set?db=app&create_db_if_missing=true", string(body)); r.Status != 200 {
					t.Errorf("batch/set: %d %s", r.Status, r.Body)
				}
			}()
		}
		wg.Wait()
		ts.Clock.Advance(time.Second)
	}

	fewest, rows := versionsPerKey(t, ts.DataDir+"/app.db")
	if fewest < keep {
		t.Errorf("a key kept %d versions, want at least %d", fewest, keep)
	}
	if rows > 2*keys*keep { // keep each, keep/4 more on average, and what laps have yet to delete
		t.Errorf("history holds %d of the %d versions written with keep=%d: retention fell behind", rows, keys*rounds, keep)
	}
	for _, k := range []string{"k000", "k299", "k599"} {
		wantError(t, ts.do(t, "GET", at(k, t0, 1.5), ""), 409, "TIME_TRAVEL_GAP") // round 2
		for _, round := range []int{rounds - keep + 1, rounds} {
			if got := ts.do(t, "GET", at(k, t0, float64(round)-0.5), ""); string(got.Body) != fmt.Sprintf("v%d", round) {
				t.Errorf("%s as of round %d: got %d %q", k, round, got.Status, got.Body)
			}
		}
	}
}

// versionsPerKey reads the fewest history rows a key of kv_store has, and
// the rows of all keys.
func versionsPerKey(tb testing.TB, path string) (fewest, rows int) {
	tb.Helper()
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	stmt, _, err := conn.Prepare(`SELECT min(n), sum(n) FROM (SELECT count(*) AS n FROM "kv_store:history" GROUP BY key)`)
	if err != nil {
		tb.Fatal(err)
	}
	defer stmt.Close()
	stmt.Step()
	return stmt.ColumnInt(0), stmt.ColumnInt(1)
}
