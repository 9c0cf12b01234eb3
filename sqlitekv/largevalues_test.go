package sqlitekv

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// A values row that names a history row which does not hold its value (a
// file changed under kvd) is an error for a read and for the integrity
// check, not an empty value.
func TestLargeValue_AMissingHistoryRowIsAnError(t *testing.T) {
	s, path := fileStore(t)
	large := strings.Repeat("v", valueInHistoryBytes)
	put(t, s, "big", large)
	if e, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: "big"}); err != nil || string(e.Value) != large {
		t.Fatalf("Get big: %d bytes, %v", len(e.Value), err)
	}
	s = rewrite(t, s, path, `UPDATE "kv_store:history" SET value = NULL WHERE key = 'big'`)
	defer s.Close()
	if e, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: "big"}); CodeOf(err) != CodeDatabaseError {
		t.Fatalf("Get big with its history row emptied: %d bytes, %v; want DATABASE_ERROR", len(e.Value), err)
	}
	if err := CheckIntegrity(path); err == nil || !strings.Contains(err.Error(), `key "big": its value is said to be in history row`) {
		t.Fatalf("integrity check of the emptied history row: %v", err)
	}
}

// The sweep moves an older kvd's large values a round at a time: up to
// inlinePage keys, and past inlineBytes of values no further key.
func TestLargeValue_EachMoveRoundIsBoundedByKeysAndBytes(t *testing.T) {
	s, path := fileStore(t)
	w := s.Writer()
	must(t, w.Begin())
	for i := range inlinePage + 10 {
		put(t, s, fmt.Sprintf("a%04d", i), "small")
	}
	must(t, w.Commit())
	for _, key := range []string{"b1", "b2", "c"} { // b1 and b2 pass inlineBytes together
		put(t, s, key, strings.Repeat(key, inlineBytes/3))
	}
	// The layout an older kvd wrote.
	s = rewrite(t, s, path, `UPDATE kv_store AS v SET value = (SELECT value FROM "kv_store:history" WHERE op_number = v.value) WHERE typeof(value) = 'integer'`)
	t.Cleanup(func() {
		must(t, s.Close())
		must(t, CheckIntegrity(path))
	})
	w = s.Writer()
	inHistory := func() (keys []string) {
		stmt, _, err := w.conn.Prepare(`SELECT key FROM kv_store WHERE typeof(value) = 'integer' ORDER BY key`)
		must(t, err)
		defer stmt.Close()
		for stmt.Step() {
			keys = append(keys, stmt.ColumnText(0))
		}
		return keys
	}
	for round, want := range []struct {
		more  bool
		moved string
	}{
		{true, "[]"},         // inlinePage small keys
		{true, "[b1 b2]"},    // 10 keys, b1, and b2, which passes inlineBytes
		{false, "[b1 b2 c]"}, // c, the last
	} {
		must(t, w.Begin())
		res, err := w.Sweep()
		must(t, err)
		must(t, w.Commit())
		if got := fmt.Sprint(inHistory()); res.More != want.more || got != want.moved {
			t.Fatalf("round %d: more %v, values in history %s; want %v, %s", round, res.More, got, want.more, want.moved)
		}
	}
	for _, key := range []string{"b1", "b2", "c"} {
		if e, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: key}); err != nil || string(e.Value) != strings.Repeat(key, inlineBytes/3) {
			t.Fatalf("Get %s: %d bytes, %v", key, len(e.Value), err)
		}
	}
}

// A gap marker's lent value is no version's: history, time travel and a
// watch's page read the marker as a gap, without reading the value, and
// a page of changes spends none of its byte budget on it.
func TestLargeValue_AGapMarkersLentValueIsNoVersion(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	large := strings.Repeat("v", 600<<10) // three pass a page's 1 MiB budget
	for _, key := range []string{"a", "b", "c"} {
		if _, err := s.Writer().Put(PutRequest{Table: DefaultTable, Key: key, Value: []byte(large), NoHistory: true}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	p, err := s.ReadChanges(ctx, ChangesRequest{Table: DefaultTable, Limit: 100})
	if err != nil || !p.Complete || len(p.Changes) != 3 {
		t.Fatalf("changes: %d, complete %v, %v; want the 3 writes in one page", len(p.Changes), p.Complete, err)
	}
	for _, c := range p.Changes {
		if c.Recorded || c.Entry.Value != nil {
			t.Fatalf("change of %s: recorded %v, %d bytes of value; want a gap without one", c.Key, c.Recorded, len(c.Entry.Value))
		}
	}
	now := s.opts.Now().UnixMilli()
	if _, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: "a", At: &now}); CodeOf(err) != CodeTimeTravelGap {
		t.Fatalf("a as of now: %v, want TIME_TRAVEL_GAP", err)
	}
	if e, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: "a"}); err != nil || string(e.Value) != large {
		t.Fatalf("a: %d bytes, %v; want its value", len(e.Value), err)
	}
}
