package httpapi_test

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// TestMigration_V1HistoryFile opens testdata/v1-history.db, the database
// phase 1 of the history golden left under the first history schema, and
// checks it answers phase 1's reads exactly as the golden says, then that
// phase 2 (writes to pruned and re-created keys included) goes on as it did
// on that schema. On the schema that wrote it this is the golden's own
// restart; under a new schema it is the check of the migration on open.
//
// One answer may differ, and only as the earlier kvd gave it: a key whose
// first write was pruned before the migration has no record of that
// write's op number, so a snapshot by an op kvd cannot place before it in
// time is a gap (409) where a file written by this kvd knows it comes
// first (404). That difference is allowed only for the keys the fixture
// had pruned (its horizons' keys); each such line is counted and logged,
// and any other difference fails.
func TestMigration_V1HistoryFile(t *testing.T) {
	if *updateGolden {
		t.Skip("the golden is being rewritten (TestHistoryGolden_Transcript writes both)")
	}
	_, p2, m1, m2 := goldenPlan()
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	golden := goldenSections(string(want))
	reads1, writes2, reads2 := goldenPhase2(t, fixturePath, p2, m1, m2)
	pruned := prunedIn(t, fixturePath)
	reads1, legacy1 := asLegacySnapshots(reads1, golden["phase1 reads"].text, pruned)
	reads2, legacy2 := asLegacySnapshots(reads2, golden["phase2 reads"].text, pruned)
	t.Logf("snapshots answered as the earlier kvd did, a gap before a first write pruned before the migration: %d in phase 1, %d in phase 2", legacy1, legacy2)
	if legacy1 == 0 {
		t.Errorf("no snapshot before a first write pruned before the migration: the fixture no longer covers that case")
	}
	compareGolden(t, "phase 1 reads of "+fixturePath, reads1, golden["phase1 reads"].text, golden["phase1 reads"].line)
	compareGolden(t, "phase 2 writes", writes2, golden["phase2 writes"].text, golden["phase2 writes"].line)
	compareGolden(t, "phase 2 reads", reads2, golden["phase2 reads"].text, golden["phase2 reads"].line)
}

// Answers of a snapshot by op number before a key's first write: on a
// file that knows that write's op, and on one migrated after it was pruned.
const (
	snapshotBeforeFirstWrite = `  404 {"statusCode":404,"error":"Not Found","code":"KEY_NOT_FOUND","message":"Key not found at the requested time"}`
	snapshotOfPrunedSpan     = `  409 {"statusCode":409,"error":"Conflict","code":"TIME_TRAVEL_GAP","message":"Time-travel chain gap detected for the requested timestamp: that history was pruned"}`
)

// asLegacySnapshots returns got with each answer that is the earlier kvd's
// to a snapshot by op number of a key in pruned, where want has this
// kvd's, replaced by want's, and how many it replaced.
func asLegacySnapshots(got, want string, pruned map[string]bool) (string, int) {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(g) != len(w) {
		return got, 0 // compareGolden shows where they part
	}
	n := 0
	for i := 1; i < len(g); i++ {
		if g[i] == snapshotOfPrunedSpan && w[i] == snapshotBeforeFirstWrite && g[i-1] == w[i-1] && pruned[snapshotByOpOf(w[i-1])] {
			g[i] = w[i]
			n++
		}
	}
	return strings.Join(g, "\n"), n
}

// snapshotByOpOf names the table and key ("table key") a golden request
// line asks a snapshot by op number of, "" for any other request.
func snapshotByOpOf(request string) string {
	target, ok := strings.CutPrefix(request, "GET /kv/")
	escaped, query, ok2 := strings.Cut(target, "/snapshot?")
	key, err := url.PathUnescape(escaped)
	q, qerr := url.ParseQuery(query)
	if !ok || !ok2 || err != nil || qerr != nil || !q.Has("op_number") {
		return ""
	}
	table := q.Get("table")
	if table == "" {
		table = "kv_store"
	}
	return table + " " + key
}

// prunedIn lists the keys ("table key") whose history the database at
// path had pruned: those its horizons hold.
func prunedIn(t *testing.T, path string) map[string]bool {
	t.Helper()
	conn, err := sqlite3.OpenFlags("file:"+path+"?immutable=1", sqlite3.OPEN_READONLY|sqlite3.OPEN_URI)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pruned := map[string]bool{}
	for _, table := range []string{"kv_store", "orders"} {
		stmt, _, err := conn.Prepare(`SELECT key FROM "` + table + `:horizon"`)
		if err != nil {
			t.Fatal(err)
		}
		for stmt.Step() {
			pruned[table+" "+stmt.ColumnText(0)] = true
		}
		if err := stmt.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return pruned
}
