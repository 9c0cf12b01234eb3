package sqlitekv

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
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

// TestDiff_ReadsNoValueOfAKeyNotWrittenInBetween: a key whose version is
// the same at both times is unchanged without its value being read (a
// diff over 1,000 unchanged keys of 400 KB read 800 MB for no change);
// one rewritten with the same value is still unchanged.
func TestDiff_ReadsNoValueOfAKeyNotWrittenInBetween(t *testing.T) {
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	const keys, size = 20, 1 << 20
	for i := range keys {
		_, err := w.Put(PutRequest{Table: DefaultTable, Key: fmt.Sprintf("k%02d", i), Value: bytes.Repeat([]byte{'v'}, size), ContentType: "text/plain"})
		must(t, err)
	}
	*now = now.Add(time.Second)
	from := now.UnixMilli()
	*now = now.Add(time.Second)
	_, err := w.Put(PutRequest{Table: DefaultTable, Key: "k00", Value: bytes.Repeat([]byte{'v'}, size), ContentType: "text/plain"})
	must(t, err)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	diff, err := s.Diff(context.Background(), DefaultTable, from, now.UnixMilli(), nil, Candidates{Limit: 1000})
	runtime.ReadMemStats(&after)
	must(t, err)
	if len(diff.Changes) != 0 || len(diff.GapKeys) != 0 {
		t.Fatalf("diff: %d changes, gap keys %v; want none", len(diff.Changes), diff.GapKeys)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 4*size {
		t.Errorf("a diff of %d unchanged keys of %d MB (one rewritten as it was) allocated %d MB", keys, size>>20, allocated>>20)
	}
}

// TestDiff_ValuesRewrittenAsTheyWereCountTowardsThePage: a key rewritten
// between the two times with the same value is read, both values, to be
// compared, and shows no change. Such reads end the page once they pass
// the budget, as an answer's values would, and the next page goes on
// from there: a page of them read every value for an answer of none.
func TestDiff_ValuesRewrittenAsTheyWereCountTowardsThePage(t *testing.T) {
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	const keys, size = 20, 1 << 20
	value := bytes.Repeat([]byte{'v'}, size)
	putAll := func() {
		for i := range keys {
			_, err := w.Put(PutRequest{Table: DefaultTable, Key: fmt.Sprintf("k%02d", i), Value: value, ContentType: "text/plain"})
			must(t, err)
		}
	}
	putAll()
	*now = now.Add(time.Second)
	from := now.UnixMilli()
	*now = now.Add(time.Second)
	putAll()
	page := Candidates{Limit: 1000, Budget: Budget{Max: 4 * size}}
	var looked []string
	for pages := 1; ; pages++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		diff, err := s.Diff(context.Background(), DefaultTable, from, now.UnixMilli(), nil, page)
		runtime.ReadMemStats(&after)
		must(t, err)
		if len(diff.Changes) != 0 || len(diff.GapKeys) != 0 {
			t.Fatalf("page %d: %d changes, gap keys %v; want none", pages, len(diff.Changes), diff.GapKeys)
		}
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 2*uint64(page.Budget.Max) {
			t.Fatalf("page %d of a diff of %d keys of %d MiB rewritten as they were, within %d MiB: %d MiB allocated", pages, keys, size>>20, page.Budget.Max>>20, allocated>>20)
		}
		if !diff.Truncated {
			break
		}
		if !diff.Cut || diff.Next <= page.After || pages > keys {
			t.Fatalf("page %d after %q: cut %v, next %q", pages, page.After, diff.Cut, diff.Next)
		}
		looked = append(looked, diff.Next)
		page.After = diff.Next
	}
	if len(looked) == 0 {
		t.Error("no page was cut")
	}
}
