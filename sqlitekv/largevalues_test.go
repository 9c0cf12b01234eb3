package sqlitekv

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// A values row that names a history row which does not hold its value (a
// file changed under kvd) is an error for a read and for the integrity
// check, not an empty value.
func TestLargeValue_AMissingHistoryRowIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	now := time.Unix(1_700_000_000, 0)
	opts := Options{Now: func() time.Time { return now }}
	s, err := Open(path, true, opts)
	must(t, err)
	large := strings.Repeat("v", valueInHistoryBytes)
	put(t, s, "big", large)
	if e, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: "big"}); err != nil || string(e.Value) != large {
		t.Fatalf("Get big: %d bytes, %v", len(e.Value), err)
	}
	must(t, s.Close())
	must(t, CheckIntegrity(path))

	conn, err := sqlite3.Open(path)
	must(t, err)
	must(t, conn.Exec(`UPDATE "kv_store:history" SET value = NULL WHERE key = 'big'`))
	must(t, conn.Close())
	s, err = Open(path, true, opts)
	must(t, err)
	defer s.Close()
	if e, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: "big"}); CodeOf(err) != CodeDatabaseError {
		t.Fatalf("Get big with its history row emptied: %d bytes, %v; want DATABASE_ERROR", len(e.Value), err)
	}
	if err := CheckIntegrity(path); err == nil || !strings.Contains(err.Error(), `key "big": its value is said to be in history row`) {
		t.Fatalf("integrity check of the emptied history row: %v", err)
	}
}
