package httpapi_test

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/client/clienttest"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/kvdtest"
)

// The history golden pins every history-related answer of kvd (history
// pages, time travel, snapshots, diffs, keys-at, watch replays) for a fixed
// workload, so that a change of how history is stored can prove it answers
// exactly as before; v1-history.db is the database that workload leaves,
// for the migration check (history_migration_test.go).
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/history_golden.txt and testdata/v1-history.db")

const (
	goldenPath  = "testdata/history_golden.txt"
	fixturePath = "testdata/v1-history.db"
	goldenDB    = "hist"
	goldenOther = "orders"      // the second table, named with the table parameter
	goldenKeep  = 8             // small, so per-key pruning happens often
	goldenAge   = 3 * time.Hour // prunes phase 1's first hours at the sweeps
)

// goldenStart is where phase 1's clock starts (newTestServer's too).
var goldenStart = time.Unix(1_700_000_000, 0)

// goldenServer serves dir (bare names live there) on a fake clock at start,
// with the golden's retention; stop closes it, merging the WAL.
func goldenServer(t *testing.T, dir string, start time.Time) (ts *testServer, stop func()) {
	t.Helper()
	clock := clienttest.NewClock(start)
	srv, err := kvdtest.Start(dir, func(a *actors.Config, _ *httpapi.Config) {
		a.Store.Now, a.Now = clock.Now, clock.Now
		a.Store.HistoryKeep, a.Store.HistoryMaxAge = goldenKeep, goldenAge
		// No wall-clock timers: sweeps run where the plan says, and the
		// database stays open (a reopen would restart the retention dice).
		a.SweepInterval, a.IdleTimeout = 0, 0
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	stop = func() {
		if !closed {
			closed = true
			if err := srv.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(stop)
	return &testServer{URL: srv.URL, DataDir: srv.DataDir, Clock: clock, Registry: srv.Registry,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}, stop
}

// goldenPhase1 runs phase 1 on a fresh database in dir and returns its
// transcript (writes, then reads); the server is closed after.
func goldenPhase1(t *testing.T, dir string, steps []goldenStep, m *goldenModel) (writes, reads string) {
	ts, closeSrv := goldenServer(t, dir, goldenStart)
	tr := &goldenTranscript{t: t, ts: ts}
	tr.run(steps)
	if got := ts.Clock.Now().UnixMilli(); got != m.end {
		t.Fatalf("phase 1 ended at %d, the plan at %d", got, m.end)
	}
	writes = tr.out.String()
	tr.out.Reset()
	tr.readAll(m)
	closeSrv()
	return writes, tr.out.String()
}

// goldenPhase2 opens the database file at dbFile on a fresh server (so the
// writer's retention dice start over, as after any restart), reads it as
// phase 1 left it, writes phase 2 and reads again.
func goldenPhase2(t *testing.T, dbFile string, steps []goldenStep, m1, m2 *goldenModel) (reads1, writes, reads2 string) {
	dir := t.TempDir()
	data, err := os.ReadFile(dbFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, goldenDB+".db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	ts, closeSrv := goldenServer(t, dir, time.UnixMilli(m1.end))
	defer closeSrv()
	tr := &goldenTranscript{t: t, ts: ts}
	tr.readAll(m1)
	reads1 = tr.out.String()
	tr.out.Reset()
	tr.run(steps)
	if got := ts.Clock.Now().UnixMilli(); got != m2.end {
		t.Fatalf("phase 2 ended at %d, the plan at %d", got, m2.end)
	}
	writes = tr.out.String()
	tr.out.Reset()
	tr.readAll(m2)
	return reads1, writes, tr.out.String()
}

func assembleGolden(w1, r1, w2, r2 string) string {
	return "# kvd history golden: go test ./httpapi -run 'Golden|Migration' -update-golden rewrites it (and " + fixturePath + ")\n" +
		"=== phase1 writes\n" + w1 + "=== phase1 reads\n" + r1 + "=== phase2 writes\n" + w2 + "=== phase2 reads\n" + r2
}

// TestHistoryGolden_Transcript runs the workload on a fresh database and
// compares every answer to the golden; reopening the file it left must
// answer phase 1's reads the same before phase 2 goes on.
func TestHistoryGolden_Transcript(t *testing.T) {
	p1, p2, m1, m2 := goldenPlan()
	dir := t.TempDir()
	w1, r1 := goldenPhase1(t, dir, p1, m1)
	dbFile := filepath.Join(dir, goldenDB+".db")
	reread, w2, r2 := goldenPhase2(t, dbFile, p2, m1, m2)
	compareGolden(t, "phase 1 reads after a restart", reread, r1, goldenSections(assembleGolden(w1, r1, "", ""))["phase1 reads"].line)
	got := assembleGolden(w1, r1, w2, r2)
	if *updateGolden {
		data, err := os.ReadFile(dbFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixturePath, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes) and %s (%d bytes)", goldenPath, len(got), fixturePath, len(data))
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "transcript", got, string(want), 1)
}
