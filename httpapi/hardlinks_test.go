package httpapi_test

import (
	"os"
	"path/filepath"
	"testing"
)

// A database file with other names (hard links) is not served: SQLite
// keeps a log per name, which exclude each other in nothing. Served under
// two names, half of the increments sent to them were lost; served under
// one at a time, a name's log outlived it and was replayed over the
// other's writes, and the file was corrupted. One opened before the link
// was made is served until it closes; no other name is. Once the other
// names are gone, it is served again.
func TestHardLinks_AFileWithOtherNamesIsNotServed(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("n", "db=a&create_db_if_missing=true"), "0"), 200)
	a, b := filepath.Join(ts.DataDir, "a.db"), filepath.Join(ts.DataDir, "b.db")
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, "POST", kv("n/incr", "db=b"), "")
	wantError(t, r, 400, "INVALID_DB_PATH")
	if msg := r.JSON(t)["message"]; !contains(msg, "Database file has other names (hard links)") {
		t.Fatalf("message: %q", msg)
	}
	wantStatus(t, ts.do(t, "POST", kv("n/incr", "db=a"), ""), 200) // open before the link
	ts.Registry.CloseDB(a)
	wantError(t, ts.do(t, "POST", kv("n/incr", "db=a"), ""), 400, "INVALID_DB_PATH")
	wantError(t, ts.do(t, "POST", kv("n/incr", "db=b"), ""), 400, "INVALID_DB_PATH")
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if got := string(ts.do(t, "GET", kv("n", "db=b"), "").Body); got != "1" {
		t.Fatalf("n through b, its only name now: got %q, want 1", got)
	}
}
