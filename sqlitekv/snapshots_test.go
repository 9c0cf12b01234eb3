package sqlitekv

import (
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// A reader keeps its read transaction while nothing commits, and starts a
// new one after any commit, whether of a group or of a lone write.
func TestSnapshots_ReadsSeeEveryCommitYetKeepTheirTransactionBetween(t *testing.T) {
	s, _ := mustOpenStore(t, Options{Readers: 1})
	w := s.Writer()
	put := func(v string) {
		t.Helper()
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "k", Value: []byte(v), ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(want string) {
		t.Helper()
		e, err := s.Get(t.Context(), GetRequest{Table: DefaultTable, Key: "k"})
		if err != nil || string(e.Value) != want {
			t.Fatalf("get: %q, %v; want %q", e.Value, err, want)
		}
	}
	idleReaderOpen := func() bool {
		r := <-s.readers
		defer func() { s.readers <- r }()
		return r.inTransaction()
	}

	put("1")
	get("1")
	if !idleReaderOpen() {
		t.Fatal("no commit since the read, yet the reader ended its transaction")
	}
	get("1")
	put("2") // a lone write: its own commit
	get("2")
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	put("3")
	get("2") // not committed yet
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	get("3")
	if !idleReaderOpen() {
		t.Fatal("the reader ended its transaction with no commit since")
	}
	put("4") // overtakes the idle reader's transaction, which stays open until...
	if !idleReaderOpen() {
		t.Fatal("the idle reader's transaction ended by itself")
	}
	s.endIdleSnapshots() // ...the next background checkpoint
	if idleReaderOpen() {
		t.Fatal("endIdleSnapshots left an idle transaction open")
	}
	get("4")
}

// A change written by another program, which kvd's writer never sees,
// shows in reads within snapshotMaxAge.
func TestSnapshots_AChangeFromOutsideShowsWithinTheirMaximumAge(t *testing.T) {
	s, now := mustOpenStore(t, Options{Readers: 1})
	if _, err := s.Writer().Put(PutRequest{Table: DefaultTable, Key: "k", Value: []byte("kvd"), ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), GetRequest{Table: DefaultTable, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	other, err := sqlite3.Open(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Exec(`UPDATE kv_store SET value = 'outside' WHERE key = 'k'`); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(snapshotMaxAge)
	e, err := s.Get(t.Context(), GetRequest{Table: DefaultTable, Key: "k"})
	if err != nil || string(e.Value) != "outside" {
		t.Fatalf("read after the outside change: %q, %v", e.Value, err)
	}
}
