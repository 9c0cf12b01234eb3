package httpapi_test

import (
	"os"
	"strings"
	"testing"
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
// first (404). Each such line is counted and logged; any other difference
// fails.
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
	reads1, legacy1 := asLegacySnapshots(reads1, golden["phase1 reads"].text)
	reads2, legacy2 := asLegacySnapshots(reads2, golden["phase2 reads"].text)
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
// to a snapshot by op number, where want has this kvd's, replaced by
// want's, and how many it replaced.
func asLegacySnapshots(got, want string) (string, int) {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(g) != len(w) {
		return got, 0 // compareGolden shows where they part
	}
	n := 0
	for i := 1; i < len(g); i++ {
		request := w[i-1]
		if g[i] == snapshotOfPrunedSpan && w[i] == snapshotBeforeFirstWrite && g[i-1] == request &&
			strings.HasPrefix(request, "GET /kv/") && strings.Contains(request, "/snapshot?") && strings.Contains(request, "op_number=") {
			g[i] = w[i]
			n++
		}
	}
	return strings.Join(g, "\n"), n
}
