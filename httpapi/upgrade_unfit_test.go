package httpapi_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// A table of an older kvd's file that cannot be upgraded (another
// program's table of a KV table's names, a values table dropped, a history
// row without its op) is left as it was and refused alone; the database's
// other tables are served. Before, its upgrade failed the open, and every
// request of the database answered 500.
func TestUpgrade_ATableUnfitForItIsRefusedAlone(t *testing.T) {
	for name, c := range map[string]struct {
		breakIt, table string
	}{
		"another program's table": {`CREATE TABLE foo(x); CREATE TABLE "foo:history"(x); CREATE INDEX "foo:history_by_key" ON "foo:history"(x)`, "foo"},
		"a values table dropped":  {`DROP TABLE orders`, "orders"},
		"a history row without op": {`CREATE TABLE h (op_number INTEGER PRIMARY KEY, key TEXT NOT NULL, op TEXT, ts INTEGER NOT NULL,
	recorded INTEGER NOT NULL, value BLOB, content_type TEXT, expire_at INTEGER);
INSERT INTO h SELECT * FROM "orders:history"; DROP TABLE "orders:history"; ALTER TABLE h RENAME TO "orders:history";
CREATE INDEX "orders:history_by_key" ON "orders:history" (key, ts);
UPDATE "orders:history" SET op = NULL WHERE op_number = (SELECT min(op_number) FROM "orders:history")`, "orders"}, // another program's doing
	} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t)
			path := filepath.Join(ts.DataDir, "old.db")
			data, err := os.ReadFile(fixturePath) // written by a kvd before chains
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			conn, err := sqlite3.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := conn.Exec(c.breakIt); err != nil {
				t.Fatal(err)
			}
			conn.Close()

			wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 200)
			wantStatus(t, ts.do(t, "PUT", kv("after", "db=old"), "v"), 200)
			if got := string(ts.do(t, "GET", kv("after", "db=old"), "").Body); got != "v" {
				t.Fatalf("the upgraded table: got %q", got)
			}
			wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old&table="+c.table, ""), 400, "INVALID_PARAMETERS")
			wantError(t, ts.do(t, "PUT", kv("k", "db=old&table="+c.table), "v"), 400, "INVALID_PARAMETERS")
			os.Remove(path) // the cleanup's integrity check is for databases kvd made whole
		})
	}
}
