package sqlitekv

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"
)

// CheckIntegrity runs PRAGMA integrity_check on the database file at path,
// opened read-only, then checks every key's chain of versions (chain.go):
// nil when both hold. Tests run it on every database they leave behind.
func CheckIntegrity(path string) error {
	conn, err := openConn(path, sqlite3.OPEN_READONLY)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer conn.Close()
	if err := integrityOf(conn); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if err := chainsOf(conn); err != nil {
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

// chainsOf checks the chains of every KV table (each has its removed
// table): walked from its head, each key's rows have seqs one apart and
// jumps where jumpSeq says, and are every row of the key that history
// holds; a value kept in history is in its key's newest row, and a gap
// marker holds one only then; the newest write the key lost, where its horizon notes one, is
// the one its oldest row links to, and not newer.
func chainsOf(conn *sqlite3.Conn) error {
	tables, err := tablesWith(conn, ":removed")
	if err != nil {
		return err
	}
	for _, table := range tables {
		if err := chainsOfTable(conn, namesFor(table)); err != nil {
			return fmt.Errorf("table %s: %w", table, err)
		}
	}
	return nil
}

func chainsOfTable(conn *sqlite3.Conn, n tableNames) error {
	set := stmtSet{conn: conn}
	defer set.close()
	c := prepareChain(&set, n)
	rows := set.prepare(`SELECT key, count(*) FROM ` + n.history + ` GROUP BY key`)
	lost := set.prepare(`SELECT ` + lostColumns + ` FROM ` + n.horizon + ` WHERE key = ?1`)
	// A values row that names its value's history row names its own
	// newest version, which recorded a value (largevalues.go).
	misplaced := set.prepare(`SELECT v.key, v.value FROM ` + n.values + ` v
LEFT JOIN ` + n.history + ` h ON h.op_number = v.value
WHERE typeof(v.value) = 'integer' AND (v.value != v.version OR h.key IS NOT v.key OR h.value IS NULL) LIMIT 1`)
	// A gap marker holds a value only while its values row names it.
	lending := set.prepare(`SELECT h.key, h.op_number FROM ` + n.history + ` h
WHERE NOT h.recorded AND h.value IS NOT NULL AND NOT EXISTS (
	SELECT 1 FROM ` + n.values + ` v WHERE v.key = h.key AND typeof(v.value) = 'integer' AND v.value = h.op_number) LIMIT 1`)
	if set.err != nil {
		return set.err
	}
	if misplaced.Step() {
		return fmt.Errorf("key %q: its value is said to be in history row %d, which does not hold it", misplaced.ColumnText(0), misplaced.ColumnInt64(1))
	}
	if lending.Step() {
		return fmt.Errorf("key %q: gap marker %d holds a value its values row does not name", lending.ColumnText(0), lending.ColumnInt64(1))
	}
	if err := errors.Join(misplaced.Err(), lending.Err()); err != nil {
		return err
	}
	for rows.Step() {
		key, count := rows.ColumnText(0), rows.ColumnInt64(1)
		h, found, err := c.newest(key)
		if err != nil || !found {
			return fmt.Errorf("key %q: no head (%v)", key, err)
		}
		for walked := int64(1); ; walked++ {
			if js := jumpSeq(h.seq); js > 0 {
				if j, ok, err := c.read(h.jump); err != nil || ok && (j.seq != js || j.ts != h.jumpTs) {
					return fmt.Errorf("key %q: row %d (seq %d) jumps to seq %d at %d, want %d at %d (%v)", key, h.op, h.seq, j.seq, h.jumpTs, js, j.ts, err)
				}
			}
			p, ok, err := c.read(h.prev)
			if err != nil {
				return err
			}
			if !ok {
				if walked != count {
					return fmt.Errorf("key %q: its chain holds %d of its %d rows", key, walked, count)
				}
				if err := checkLost(lost, key, h); err != nil {
					return err
				}
				break
			}
			if p.seq != h.seq-1 {
				return fmt.Errorf("key %q: row %d (seq %d) follows seq %d", key, h.op, h.seq, p.seq)
			}
			h = p
		}
	}
	return rows.Err()
}

// checkLost checks what key's horizon (read by stmt) says it lost
// against oldest, its oldest row kept.
func checkLost(stmt *sqlite3.Stmt, key string, oldest hop) error {
	var op, ts int64
	if _, err := queryRow(stmt, func(s *sqlite3.Stmt) { op, ts = s.ColumnInt64(1), s.ColumnInt64(2) }, key); err != nil {
		return err
	}
	if op != 0 && (op != oldest.prev || ts > oldest.ts) {
		return fmt.Errorf("key %q: its horizon lost op %d at %d, but its oldest row %d at %d links to %d", key, op, ts, oldest.op, oldest.ts, oldest.prev)
	}
	return nil
}
