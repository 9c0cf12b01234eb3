package sqlitekv

import (
	"fmt"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"
)

// CheckIntegrity runs PRAGMA integrity_check on the database file at path,
// opened read-only: nil when SQLite answers "ok". Tests run it on every
// database they leave behind.
func CheckIntegrity(path string) error {
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer conn.Close()
	if err := integrityOf(conn); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

func integrityOf(conn *sqlite3.Conn) error {
	stmt, _, err := conn.Prepare(`PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("integrity_check: %w", err)
	}
	defer stmt.Close()
	if !stmt.Step() {
		return fmt.Errorf("integrity_check: %v", stmt.Err())
	}
	if got := stmt.ColumnText(0); got != "ok" {
		return fmt.Errorf("integrity_check: got %q, want ok", got)
	}
	return nil
}
