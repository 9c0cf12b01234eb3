package httpapi_test

import (
	"os"
	"testing"
)

// TestMigration_V1HistoryFile opens testdata/v1-history.db, the database
// phase 1 of the history golden left under the first history schema, and
// checks it answers phase 1's reads exactly as the golden says, then that
// phase 2 (writes to pruned and re-created keys included) goes on as it did
// on that schema. On the schema that wrote it this is the golden's own
// restart; under a new schema it is the check of the migration on open.
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
	compareGolden(t, "phase 1 reads of "+fixturePath, reads1, golden["phase1 reads"].text, golden["phase1 reads"].line)
	compareGolden(t, "phase 2 writes", writes2, golden["phase2 writes"].text, golden["phase2 writes"].line)
	compareGolden(t, "phase 2 reads", reads2, golden["phase2 reads"].text, golden["phase2 reads"].line)
}
