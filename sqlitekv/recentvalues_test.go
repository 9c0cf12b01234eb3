package sqlitekv

import (
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// The writer remembers the rows it wrote lately (recentvalues.go), so a
// group that builds on one needs no SELECT; what another process commits
// to the file meanwhile, and what a rollback takes back, it forgets.
func TestRecentValues_ForgottenWhenTheFileChangesOrARollbackTakesThemBack(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	incr := func(want int64) {
		t.Helper()
		must(t, w.Begin())
		res, err := w.Incr(IncrRequest{Table: DefaultTable, Key: "n", Delta: 1})
		if err != nil {
			t.Fatal(err)
		}
		must(t, w.Commit())
		if res.Value != want {
			t.Fatalf("incr: got %d, want %d", res.Value, want)
		}
	}
	incr(1)
	incr(2)
	if _, ok := w.tables[DefaultTable].recentValues["n"]; !ok {
		t.Fatal("the writer does not remember the row it wrote")
	}

	// A sqlite3 shell sets the counter behind kvd's back.
	other, err := sqlite3.Open(s.path)
	if err != nil {
		t.Fatal(err)
	}
	must(t, other.Exec(`PRAGMA busy_timeout = 5000; UPDATE kv_store SET value = '40' WHERE key = 'n'`))
	must(t, other.Close())
	incr(41)

	// A write whose savepoint rolls back takes its row back.
	must(t, w.Begin())
	err = w.atomically(func() error {
		cur, _, _, err := w.tables[DefaultTable].current("n", w.now())
		if err != nil {
			return err
		}
		cur.Value = []byte("500")
		if err := w.tables[DefaultTable].storeValue("n", cur, true, false); err != nil {
			return err
		}
		return Errorf(CodeCASMismatch, "refused after the change")
	})
	if CodeOf(err) != CodeCASMismatch {
		t.Fatalf("the refused write: got %v", err)
	}
	must(t, w.Commit())
	incr(42)
}
