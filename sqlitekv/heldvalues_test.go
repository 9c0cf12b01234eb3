package sqlitekv

import (
	"context"
	"testing"
	"time"
)

// inGroup runs fn between Begin and Commit, as the database actor does.
func inGroup(t *testing.T, w *Writer, fn func()) {
	t.Helper()
	mustBegin(t, w)
	fn()
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A key written many times in one group has its value row written once,
// at the group's end; every write in between sees the one before it, and
// what commits is the last write, with every version in history.
func TestGroup_AKeyWrittenManyTimesEndsAsItsLastWrite(t *testing.T) {
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	put(t, s, "old", "0") // created in an earlier group
	created := now.UnixMilli()
	*now = now.Add(time.Second)
	var last PutResult
	inGroup(t, w, func() {
		first, err := w.Put(PutRequest{Table: DefaultTable, Key: "k", Value: []byte("1"), ContentType: "text/plain"})
		must(t, err)
		if !first.Created {
			t.Errorf("first put: got created false, want true")
		}
		again, err := w.Put(PutRequest{Table: DefaultTable, Key: "k", Value: []byte("2"), ContentType: "text/plain"})
		must(t, err)
		if again.Created {
			t.Errorf("second put: got created true, want false: the first is held, not gone")
		}
		res, err := w.Incr(IncrRequest{Table: DefaultTable, Key: "k", Delta: 5})
		must(t, err)
		if res.Previous != 2 || res.Value != 7 {
			t.Errorf("incr: got %d → %d, want 2 → 7", res.Previous, res.Value)
		}
		// A version CAS sees the held row's version: the incr made the put's stale.
		stale := PutRequest{Table: DefaultTable, Key: "k", Value: []byte("x"), Versions: Versions{Match: []int64{again.Version}}}
		if _, err := w.Put(stale); CodeOf(err) != CodeCASMismatch {
			t.Errorf("put if-match the put's version: got %v, want CAS_MISMATCH", err)
		}
		if err := w.Delete(DeleteRequest{Table: DefaultTable, Key: "k"}); err != nil {
			t.Fatal(err)
		}
		recreated, err := w.Put(PutRequest{Table: DefaultTable, Key: "k", Value: []byte("9"), ContentType: "text/plain"})
		must(t, err)
		if !recreated.Created {
			t.Errorf("put after delete: got created false, want true")
		}
		if _, err := w.Incr(IncrRequest{Table: DefaultTable, Key: "old", Delta: 1}); err != nil {
			t.Fatal(err)
		}
		last, err = w.Put(PutRequest{Table: DefaultTable, Key: "old", Value: []byte("41"), ContentType: "text/plain", IfMatch: []byte("1")})
		must(t, err)
	})
	ctx := context.Background()
	k, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: "k"})
	must(t, err)
	if string(k.Value) != "9" {
		t.Errorf("k: got %q, want 9", k.Value)
	}
	old, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: "old"})
	must(t, err)
	if string(old.Value) != "41" || old.Version != last.Version || old.CreatedAt != created {
		t.Errorf("old: got %q version %d created %d, want 41 version %d created %d", old.Value, old.Version, old.CreatedAt, last.Version, created)
	}
	versions, err := s.history(ctx, DefaultTable, "k", 10)
	must(t, err)
	if len(versions) != 5 {
		t.Errorf("k: %d versions, want 5 (set, set, incr, delete, set)", len(versions))
	}
}

// Writes that run in a savepoint, the sweep and a failed group each meet
// rows an earlier write of the group holds: the first two see them, the
// last leaves none of them behind.
func TestGroup_HeldRowsMeetEveryOtherKindOfWrite(t *testing.T) {
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	inGroup(t, w, func() {
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "list", Value: []byte("[1]"), ContentType: "application/json"}); err != nil {
			t.Fatal(err)
		}
		pushed, err := w.Array(ArrayRequest{Table: DefaultTable, Key: "list", Op: OpPush, Value: []byte("2")})
		must(t, err)
		if pushed.Length != 2 {
			t.Errorf("push onto a held array: got length %d, want 2", pushed.Length)
		}
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "short", Value: []byte("s"), TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
		*now = now.Add(2 * time.Second)
		swept, err := w.Sweep()
		must(t, err)
		if swept.Expired != 1 {
			t.Errorf("sweep: got %d expired, want 1: the held key with a passed TTL", swept.Expired)
		}
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "back", Value: []byte("a")}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "back", Value: []byte("b")}); err != nil {
			t.Fatal(err)
		}
		restored, err := w.RollbackKey(RollbackKeyRequest{Table: DefaultTable, Key: "back", Steps: 1})
		must(t, err)
		if restored == nil || string(restored.Value) != "a" {
			t.Errorf("rollback of a held key: got %+v, want a", restored)
		}
	})
	ctx := context.Background()
	for key, want := range map[string]string{"list": "[1,2]", "back": "a"} {
		e, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: key})
		must(t, err)
		if string(e.Value) != want {
			t.Errorf("%s: got %q, want %q", key, e.Value, want)
		}
	}
	if _, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: "short"}); CodeOf(err) != CodeKeyNotFound {
		t.Errorf("short: got %v, want KEY_NOT_FOUND", err)
	}

	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "list", Value: []byte("[]")}); err != nil {
		t.Fatal(err)
	}
	w.abandon()
	inGroup(t, w, func() {
		res, err := w.Incr(IncrRequest{Table: DefaultTable, Key: "n", Delta: 1})
		must(t, err)
		if res.Value != 1 {
			t.Errorf("incr in the next group: got %d, want 1", res.Value)
		}
	})
	e, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: "list"})
	must(t, err)
	if string(e.Value) != "[1,2]" {
		t.Errorf("list after a rolled-back group: got %q, want [1,2]", e.Value)
	}
}

// SQLite rolls a transaction back by itself on some errors, also of
// statements no write wraps (here a ROLLBACK stands in for one): the
// group then fails whole, its held rows with it, and the next starts clean.
func TestGroup_WhoseTransactionSQLiteRolledBackFailsWhole(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	put(t, s, "seed", "0")
	mustBegin(t, w)
	if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "k", Value: []byte("held")}); err != nil {
		t.Fatal(err)
	}
	must(t, w.conn.Exec(`ROLLBACK`))
	if _, err := w.Incr(IncrRequest{Table: DefaultTable, Key: "n", Delta: 1}); CodeOf(err) != CodeDatabaseError {
		t.Errorf("a write after the rollback: got %v, want a database error", err)
	}
	if err := w.Commit(); CodeOf(err) != CodeDatabaseError {
		t.Errorf("commit: got %v, want a database error", err)
	}
	ctx := context.Background()
	for _, key := range []string{"k", "n"} {
		if e, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: key}); CodeOf(err) != CodeKeyNotFound {
			t.Errorf("%s: got %q, %v, want KEY_NOT_FOUND", key, e.Value, err)
		}
	}
	inGroup(t, w, func() {
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "k", Value: []byte("next")}); err != nil {
			t.Fatal(err)
		}
	})
	if e, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: "k"}); err != nil || string(e.Value) != "next" {
		t.Errorf("k after the next group: got %q, %v, want next", e.Value, err)
	}
}
