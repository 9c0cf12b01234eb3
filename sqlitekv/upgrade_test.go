package sqlitekv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// TestUpgrade_ChainsAFileTheKeyIndexSchemaWrote opens a database written
// before chains (httpapi's migration fixture, whose answers
// TestMigration_V1HistoryFile checks over HTTP): every table gets its
// chains and removed table, and loses the key index.
func TestUpgrade_ChainsAFileTheKeyIndexSchemaWrote(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("..", "httpapi", "testdata", "v1-history.db"))
	must(t, err)
	path := filepath.Join(t.TempDir(), "v1.db")
	must(t, os.WriteFile(path, old, 0o600))
	s, err := Open(path, false, Options{})
	must(t, err)
	must(t, s.Close())

	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	must(t, err)
	defer conn.Close()
	checkIntegrity(t, conn)
	checkAllChains(t, conn)
	for _, table := range []string{"kv_store", "orders"} {
		stmt, _, err := conn.Prepare(`SELECT
(SELECT count(*) FROM sqlite_schema WHERE name = ?1 || ':history_by_key'),
(SELECT count(*) FROM sqlite_schema WHERE name = ?1 || ':removed'),
(SELECT count(*) FROM "` + table + `:removed")`)
		must(t, err)
		must(t, stmt.BindText(1, table))
		if !stmt.Step() {
			t.Fatal(stmt.Err())
		}
		if index, removed, gone := stmt.ColumnInt(0), stmt.ColumnInt(1), stmt.ColumnInt(2); index != 0 || removed != 1 || gone == 0 {
			t.Errorf("%s: key index %d, removed table %d with %d keys; want 0, 1, some", table, index, removed, gone)
		}
		stmt.Close()
	}
}
