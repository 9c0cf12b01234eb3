package sqlitekv

import (
	"context"
	"testing"
	"time"
)

// When an op's own row was kept, its time is exact: a key first written
// later was absent right after it, pruned history of that key or not.
func TestSnapshotAt_AKeptOpHasAnExactTime(t *testing.T) {
	s, now := mustOpenStore(t, Options{HistoryKeep: 2})
	put(t, s, "a", "1") // op 1 at T0
	*now = now.Add(time.Second)
	put(t, s, "k", "1") // op 2, pruned below
	put(t, s, "k", "2")
	put(t, s, "k", "3")
	if vs, _ := s.history(context.Background(), DefaultTable, "k", 10); len(vs) != 2 {
		t.Fatalf("setup: k has %d versions, want 2", len(vs))
	}
	if _, err := s.SnapshotAt(context.Background(), DefaultTable, "k", 1); CodeOf(err) != CodeKeyNotFound {
		t.Fatalf("k right after op 1: got %v, want KEY_NOT_FOUND", err)
	}
}

// A pruned op's time lies somewhere up to the next kept row: a value that
// expired within that span may or may not have been there.
func TestSnapshotAt_APrunedOpCannotTellAnExpiryWithinItsSpan(t *testing.T) {
	s, now := mustOpenStore(t, Options{HistoryKeep: 2})
	if _, err := s.Writer().Put(PutRequest{Table: DefaultTable, Key: "x", Value: []byte("v"), ContentType: "text/plain", TTL: time.Second}); err != nil {
		t.Fatal(err) // op 1 at T0, expires at T0+1s
	}
	*now = now.Add(2 * time.Second)
	put(t, s, "y", "1") // op 2 at T0+2s, pruned below
	put(t, s, "y", "2")
	put(t, s, "y", "3")
	if e, err := s.SnapshotAt(context.Background(), DefaultTable, "x", 2); CodeOf(err) != CodeTimeTravelGap {
		t.Fatalf("x right after op 2: got %q, %v; want TIME_TRAVEL_GAP", e.Value, err)
	}
	if e, err := s.SnapshotAt(context.Background(), DefaultTable, "x", 1); err != nil || string(e.Value) != "v" {
		t.Fatalf("x right after op 1: got %q, %v; want v", e.Value, err)
	}
}
