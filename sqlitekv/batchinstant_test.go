package sqlitekv

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// A write of many keys is one write: its history rows share one time, so
// that reading the table at any instant, or rolling it back to one, shows
// all of it or none. With a clock that ticks between two rows of one
// batch, a rollback to the tick restored half a batch (found by the power
// cut test's table rollbacks, powercut_extra_test.go).
func TestBatch_AllItsRowsShareOneTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	tick := func() time.Time { now = now.Add(time.Millisecond); return now } // every look at the clock is a millisecond later
	s, err := Open(filepath.Join(t.TempDir(), "test.db"), true, Options{Now: tick})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := s.Writer()
	items := func(v string) []BatchItem {
		var its []BatchItem
		for i := range 4 {
			its = append(its, BatchItem{Key: fmt.Sprint("k", i), Value: []byte(v), ContentType: "text/plain"})
		}
		return its
	}
	if _, err := w.BatchSet(BatchSetRequest{Table: DefaultTable, Items: items("old")}); err != nil {
		t.Fatal(err)
	}
	start := now.UnixMilli()
	if _, err := w.BatchSet(BatchSetRequest{Table: DefaultTable, Items: items("new")}); err != nil {
		t.Fatal(err)
	}
	wholeFrom(t, s, start, now.UnixMilli(), "the batch") // reads look at the clock too
	// And a table rollback's rows, likewise.
	if _, err := w.RollbackTable(RollbackTableRequest{Table: DefaultTable, At: start}); err != nil {
		t.Fatal(err)
	}
	wholeFrom(t, s, now.UnixMilli()-10, now.UnixMilli(), "the table's rollback")
}

// wholeFrom fails unless the four keys k0..k3 hold one value at each
// millisecond from from to to: what wrote them shows whole or not at all.
func wholeFrom(t *testing.T, s *Store, from, to int64, what string) {
	t.Helper()
	for at := from; at <= to; at++ {
		seen := map[string]bool{}
		for i := range 4 {
			e, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: fmt.Sprint("k", i), At: &at})
			if err != nil {
				t.Fatalf("k%d at %d: %v", i, at, err)
			}
			seen[string(e.Value)] = true
		}
		if len(seen) != 1 {
			t.Fatalf("at %d the keys %s wrote hold %v: half of it", at, what, seen)
		}
	}
}

// A write judges its keys' expiry at its own time, the time its history
// rows take. With a clock that ticks at each look, an incr made as its
// key's TTL ran out was checked a millisecond before its row's time, and
// wrote a value expired from its start (never readable at any time); a
// batch expired a key at a time before its TTL ran out, and counted it
// created (a helper saw both over HTTP, under load, by 25 ms).
func TestWrite_JudgesExpiryAtItsOwnTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	tick := func() time.Time { now = now.Add(time.Millisecond); return now }
	s, err := Open(filepath.Join(t.TempDir(), "test.db"), true, Options{Now: tick})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := s.Writer()
	expiresAt := func(key string) int64 { // puts key with a TTL of a second
		t.Helper()
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: key, Value: []byte("5"), ContentType: "text/plain", TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
		e, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return e.ExpireAt
	}

	now = time.UnixMilli(expiresAt("counter") - 2) // the incr's first look is a millisecond before the expiry
	res, err := w.Incr(IncrRequest{Table: DefaultTable, Key: "counter", Delta: 1})
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.HistoryPage(context.Background(), HistoryRequest{Table: DefaultTable, Key: "counter", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	at := page.Versions[0].Ts
	if e, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: "counter", At: &at}); err != nil || string(e.Value) != fmt.Sprint(res.Value) {
		t.Errorf("the incr's value (%d) at its own time: got %q, %v", res.Value, e.Value, err)
	}

	now = time.UnixMilli(expiresAt("session") - 4) // the batch's first look is 3 ms before the expiry
	created, err := w.BatchSet(BatchSetRequest{Table: DefaultTable, Items: []BatchItem{
		{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("1")}, {Key: "session", Value: []byte("6")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(created) != "[a b]" {
		t.Errorf("created: got %v, want [a b]: session had not expired at the batch's time", created)
	}
	page, err = s.HistoryPage(context.Background(), HistoryRequest{Table: DefaultTable, Key: "session", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range page.Versions {
		if v.Op == OpExpire {
			t.Errorf("session's history holds an expiry at %d, before its TTL ran out", v.Ts)
		}
	}
}
