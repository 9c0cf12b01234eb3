package sqlitekv

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// A table rollback reads keys a page at a time and restores as it goes; a
// gap found on a later page still leaves every key as it was.
func TestRollbackTable_CrossesPagesAllOrNothing(t *testing.T) {
	page := keyPage
	keyPage = 2
	t.Cleanup(func() { keyPage = page })
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	keys := []string{"a", "b", "c", "d", "e"}
	setAll := func(v string) {
		t.Helper()
		for _, k := range keys {
			if _, err := w.Put(PutRequest{Table: DefaultTable, Key: k, Value: []byte(v), ContentType: "text/plain"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	values := func() string {
		t.Helper()
		var got []string
		for _, k := range keys {
			e, err := s.Get(t.Context(), GetRequest{Table: DefaultTable, Key: k})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(e.Value))
		}
		return fmt.Sprint(got)
	}

	setAll("1")
	// z's value then is unknown to history: rolling back to then is a gap.
	if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "z", Value: []byte("x"), ContentType: "text/plain", NoHistory: true}); err != nil {
		t.Fatal(err)
	}
	at := now.UnixMilli()
	*now = now.Add(10 * time.Second)
	setAll("2")

	actions, err := w.RollbackTable(RollbackTableRequest{Table: DefaultTable, At: at, Exclude: []string{"z"}})
	if err != nil || actions.Count != len(keys) || len(actions.Changes) != len(keys) {
		t.Fatalf("rollback over three pages: %v, %v; want %d restores", actions, err, len(keys))
	}
	if got := values(); got != "[1 1 1 1 1]" {
		t.Fatalf("after the rollback: %s", got)
	}

	setAll("3")
	_, err = w.RollbackTable(RollbackTableRequest{Table: DefaultTable, At: at})
	var e *Error
	if CodeOf(err) != CodeTimeTravelGap || !errors.As(err, &e) || !slices.Equal(e.Keys, []string{"z"}) {
		t.Fatalf("rollback across z's gap: got %v, want TIME_TRAVEL_GAP naming z", err)
	}
	if got := values(); got != "[3 3 3 3 3]" {
		t.Fatalf("after the refused rollback: %s, want every key untouched", got)
	}
}

// A key whose value back then has expired since is deleted by a rollback
// and reported so, not as restored; one that is gone now is left alone.
func TestRollback_AnExpiredTargetIsADelete(t *testing.T) {
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	for key, ttl := range map[string]time.Duration{"brief": 5 * time.Second, "gone": 5 * time.Second, "kept": 0, "one": 5 * time.Second} {
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: key, Value: []byte("1"), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
	}
	at := now.UnixMilli()
	*now = now.Add(time.Second)
	put(t, s, "one", "2") // before "1" expired: rolling back one step targets "1"
	*now = now.Add(9 * time.Second)
	for _, key := range []string{"brief", "kept"} {
		put(t, s, key, "2")
	}
	if err := w.Delete(DeleteRequest{Table: DefaultTable, Key: "gone"}); CodeOf(err) != CodeKeyExpired {
		t.Fatalf("delete gone: got %v, want KEY_EXPIRED", err)
	}
	restored, err := w.RollbackKey(RollbackKeyRequest{Table: DefaultTable, Key: "one", Steps: 1})
	if err != nil || restored != nil {
		t.Fatalf("key rollback to an expired value: got %v, %v; want the key deleted (nil)", restored, err)
	}
	actions, err := w.RollbackTable(RollbackTableRequest{Table: DefaultTable, At: at, Exclude: []string{"one"}})
	if err != nil || fmt.Sprint(actions.Changes) != "[{brief delete} {kept restore}]" || actions.Count != 2 {
		t.Fatalf("table rollback: got %v, %v; want brief deleted, kept restored, gone left alone", actions, err)
	}
	for _, key := range []string{"brief", "gone", "one"} {
		if _, err := s.Get(t.Context(), GetRequest{Table: DefaultTable, Key: key}); CodeOf(err) != CodeKeyNotFound {
			t.Errorf("%s after the rollbacks: got %v, want KEY_NOT_FOUND", key, err)
		}
	}
}

// TestRollbackKey_ReadsOnlyTheVersionItRestores: the walk back to the
// version a rollback restores reads each newer version's links, not its
// value (99 steps of a 10 MiB value held 1.2 GB).
func TestRollbackKey_ReadsOnlyTheVersionItRestores(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	const versions, size = 40, 1 << 20
	for i := range versions {
		value := bytes.Repeat([]byte{'a' + byte(i%26)}, size)
		_, err := w.Put(PutRequest{Table: DefaultTable, Key: "big", Value: value, ContentType: "text/plain"})
		must(t, err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	restored, err := w.RollbackKey(RollbackKeyRequest{Table: DefaultTable, Key: "big", Steps: versions - 1, NoHistory: true})
	runtime.ReadMemStats(&after)
	must(t, err)
	if restored == nil || len(restored.Value) != size || restored.Value[0] != 'a' {
		t.Fatalf("restored %v, want the first version", restored)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8*size {
		t.Errorf("a rollback of %d steps of %d MB values allocated %d MB", versions-1, size>>20, allocated>>20)
	}
}
