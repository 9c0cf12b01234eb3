package client_test

import (
	"testing"
	"time"

	"github.com/kvd/kvd/client"
)

// What a caller needs to show kvd's answers as kvd does (kvctl --json):
// which history values kvd showed inline as JSON, and the time a table
// rollback went back to as kvd read it (a whole second is its end).
func TestHistoryAndRollback_KeepWhatKvdShowed(t *testing.T) {
	c, t0 := writeTimeline(t) // doc: JSON, then text, then unrecorded, then deleted
	ops, err := c.History(testContext(t), "doc")
	if err != nil {
		t.Fatal(err)
	}
	// newest first: delete, set (unrecorded), set text, set JSON
	if len(ops) != 4 || ops[2].NewJSON || !ops[2].OldJSON || !ops[3].NewJSON || ops[3].OldJSON {
		t.Errorf("JSON flags: got %+v; want the text write's old value and the first write's new value as JSON, nothing else", ops)
	}
	plan, err := c.RollbackTable(testContext(t), t0.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(5*time.Second + 999*time.Millisecond); !plan.To.Equal(want) || !plan.DryRun {
		t.Errorf("rollback plan: to %v, dry run %v; want %v, a dry run", plan.To, plan.DryRun, want)
	}
}

func TestTableSnapshot_CutTellsKvdsByteBound(t *testing.T) {
	c, _ := smallAnswersServer(t)
	ctx := testContext(t)
	for i := range 8 {
		if _, err := c.Put(ctx, string(rune('a'+i)), client.Value{Data: value4K(i), ContentType: "application/octet-stream"}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := c.TableSnapshot(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Cut || !snap.Truncated || snap.NextAfter == "" {
		t.Errorf("8 values of 4 KiB under a 16 KiB bound: cut %v, truncated %v, next %q; want cut, truncated, a next key", snap.Cut, snap.Truncated, snap.NextAfter)
	}
	d, err := c.Diff(ctx, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Cut || !d.Truncated {
		t.Errorf("diff of 8 values of 4 KiB under a 16 KiB bound: cut %v, truncated %v; want both", d.Cut, d.Truncated)
	}
}
