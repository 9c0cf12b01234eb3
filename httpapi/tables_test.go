package httpapi_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

// SQLite's table names are case-insensitive: a table is one table under
// every casing, so a second casing is refused instead of splitting reads
// from writes.
func TestTable_NamesDifferingOnlyInCaseAreRefused(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true&table=Tab"), "1"), 200)
	for _, other := range []string{"tab", "TAB"} {
		for range 5 { // each time the table the client knows, never one of its internal ones
			for _, r := range []response{
				ts.do(t, "PUT", kv("k", "db=app&table="+other), "2"),
				ts.do(t, "GET", kv("k", "db=app&table="+other), ""),
				ts.do(t, "DELETE", kv("k", "db=app&table="+other), ""),
			} {
				wantError(t, r, 400, "INVALID_PARAMETERS")
				if msg := r.JSON(t)["message"]; msg != `Table names are case-insensitive: this database has a table "Tab"` {
					t.Fatalf("table %s: message %q", other, msg)
				}
			}
		}
	}
	if got := ts.do(t, "GET", kv("k", "db=app&table=Tab"), ""); string(got.Body) != "1" {
		t.Fatalf("Tab/k: got %d %q, want 1", got.Status, got.Body)
	}
}

// A database may hold tables and views of its own; naming one answers 400,
// never a 500 from SQL run against a table of another shape.
func TestTable_ForeignTablesAreNotKVTables(t *testing.T) {
	ts := newTestServer(t)
	conn, err := sqlite3.Open(filepath.Join(ts.DataDir, "foreign.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); CREATE VIEW v AS SELECT 1 AS one; CREATE TABLE "kv:history" (x);
CREATE TABLE shaped (key TEXT PRIMARY KEY, value BLOB); CREATE TABLE "shaped:history" (x)`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// kv's history table is taken too; shaped has both tables of kvd's
	// names, without their columns.
	for _, table := range []string{"users", "v", "USERS", "kv", "shaped"} {
		for _, r := range []response{
			ts.do(t, "GET", kv("k", "db=foreign&table="+table), ""),
			ts.do(t, "PUT", kv("k", "db=foreign&table="+table), "x"),
			ts.do(t, "POST", kv("k/incr", "db=foreign&table="+table), ""),
			ts.do(t, "GET", "/api/v1/sqlite/kv?db=foreign&table="+table, ""),
			ts.do(t, "GET", kv("k/history", "db=foreign&table="+table), ""),
		} {
			wantError(t, r, 400, "INVALID_PARAMETERS")
		}
	}
	// Its own tables untouched, the database still takes KV tables.
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=foreign&table=data"), "x"), 200)
	if got := ts.do(t, "GET", kv("k", "db=foreign&table=data"), ""); string(got.Body) != "x" {
		t.Fatalf("data/k: got %d %q, want x", got.Status, got.Body)
	}
}

// A kvd table dropped by another program reads as missing, as a table
// never written does: before, the read connections kept statements that
// named it, and every read of it answered 500 until a write made it again.
func TestTable_DroppedByAnotherProgramReadsAsMissing(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=app&table=t&create_db_if_missing=true"), "1"), 200)
	for range 3 {
		wantStatus(t, ts.do(t, "GET", kv("a", "db=app&table=t"), ""), 200) // the readers prepare t's statements
	}
	conn, err := sqlite3.Open(filepath.Join(ts.DataDir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Exec(`DROP TABLE "t"; DROP TABLE "t:history"; DROP TABLE "t:removed"; DROP TABLE "t:horizon"`)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}

	ts.Clock.Advance(2 * time.Second) // past the age up to which a reader may go on from its snapshot
	for range 3 {
		wantError(t, ts.do(t, "GET", kv("a", "db=app&table=t"), ""), 404, "KEY_NOT_FOUND")
	}
	for _, path := range []string{"/api/v1/sqlite/kv?db=app&table=t", "/api/v1/sqlite/kv/snapshot?db=app&table=t&timestamp=1700000000"} {
		wantStatus(t, ts.do(t, "GET", path, ""), 200)
	}
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=app&table=t"), "2"), 200)
	if got := string(ts.do(t, "GET", kv("a", "db=app&table=t"), "").Body); got != "2" {
		t.Fatalf("after a write made the table again: got %q", got)
	}
}

// A database takes at most --max-tables tables: a write that would create
// one more answers 400 and creates nothing, while the tables it holds
// take writes as before, and a read of the refused table is a missing key.
func TestTable_ADatabaseTakesAtMostMaxTables(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.MaxTables = 3 }))
	q := "db=app&create_db_if_missing=true&table="
	for _, table := range []string{"kv_store", "t1", "t2"} {
		wantStatus(t, ts.do(t, "PUT", kv("k", q+table), "v"), 200)
	}
	for _, r := range []response{
		ts.do(t, "PUT", kv("k", q+"t3"), "v"),
		ts.do(t, "POST", kv("k/incr", q+"t3"), ""),
		ts.do(t, "POST", kv("k/push", q+"t3"), `1`),
		ts.do(t, "POST", "/api/v1/sqlite/kv/batch/set?"+q+"t3", `{"items":[{"key":"a","value":"1"}]}`),
	} {
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"]; msg != `Database already holds 3 tables, the most --max-tables allows: table "t3" was not created (use a key prefix or another database)` {
			t.Fatalf("message %q", msg)
		}
	}
	wantError(t, ts.do(t, "GET", kv("k", "db=app&table=t3"), ""), 404, "KEY_NOT_FOUND")
	wantStatus(t, ts.do(t, "PUT", kv("k2", q+"t1"), "v"), 200)
	conn, err := sqlite3.OpenFlags(filepath.Join(ts.DataDir, "app.db"), sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stmt, _, err := conn.Prepare(`SELECT count(*) FROM sqlite_schema WHERE name LIKE 't3%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if stmt.Step(); stmt.ColumnInt(0) != 0 {
		t.Fatalf("schema objects of the refused table: %d, want 0", stmt.ColumnInt(0))
	}
}
