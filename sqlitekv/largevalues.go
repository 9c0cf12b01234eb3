package sqlitekv

import (
	"fmt"

	"github.com/ncruces/go-sqlite3"
)

// A large value is kept once, in the history row of the write that
// stored it, and its values row holds that row's op_number (an integer)
// where the value would be.
//
// Why: the values table is WITHOUT ROWID, so its B-tree holds whole rows,
// and SQLite compares a key with a row whose record overflows its page by
// reading that whole record. A lookup that met a 10 MiB row on its way
// down read 10 MiB: a GET of a small key between ten such values took
// 2.5 ms instead of about 0.1 (BenchmarkHTTPLargeValues). History is a
// rowid table, whose searches compare integers and read a row's value
// only when asked for it. A large write also goes to disk once, not twice.
//
// Only a recorded write's value can live in history (a history=false
// write leaves a gap marker there); such values, and those of files
// written before this scheme, stay in their values row. Retention never
// prunes a key's newest history row, which is the row a values row names.
const valueInHistoryBytes = 4 << 10

// keptInHistory reports whether the values row of a write whose history
// row recorded e's value holds the op number of that row instead.
func keptInHistory(e Entry, recorded bool) bool {
	return recorded && len(e.Value) >= valueInHistoryBytes
}

// selectEntry reads key ?1's values row, with its value from history when
// the row holds an op number (scanEntry's columns).
func (n tableNames) selectEntry() string {
	return `SELECT CASE WHEN typeof(v.value) = 'integer'
	THEN (SELECT h.value FROM ` + n.history + ` h WHERE h.op_number = v.value) ELSE v.value END,
	v.content_type, v.created_at, v.updated_at, coalesce(v.expire_at, 0), v.version
FROM ` + n.values + ` v WHERE v.key = ?1`
}

// readEntry runs a selectEntry statement for key. A value its row says
// history holds but history does not is an error: the file was changed
// under kvd.
func readEntry(get *sqlite3.Stmt, key string) (e Entry, found bool, err error) {
	var lost bool
	found, err = bind(get).text(key).row(func(s *sqlite3.Stmt) {
		lost = s.ColumnType(0) == sqlite3.NULL
		e = scanEntry(s)
	})
	if err == nil && lost {
		err = fmt.Errorf("the value of key %q is not in the history row its values row names", key)
	}
	return e, found, err
}
