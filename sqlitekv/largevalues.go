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
// 2.5 ms instead of 0.05 (BenchmarkHTTPLargeValues). History is a
// rowid table, whose searches compare integers and read a row's value
// only when asked for it. A large write also goes to disk once, not twice.
//
// A history=false write leaves a gap marker in history; a large value of
// such a write is lent to its marker, which keeps it while it is the
// key's newest row: the key's next write takes it out again (unlend in
// appendHistory), so history keeps no value it was told not to keep, and
// readers of history see a gap without a value (versionColumns). Retention
// never prunes a key's newest history row, which is the row a values row
// names. The large values a kvd before this scheme kept in their values
// rows move to history as the sweep passes over them (moveInlineValues).
const valueInHistoryBytes = 4 << 10

// keptInHistory reports whether e's values row holds the op number of
// its write's history row, which holds the value, instead of the value.
func keptInHistory(e Entry) bool { return len(e.Value) >= valueInHistoryBytes }

// selectEntry reads key ?1's values row (scanEntry's columns): the
// statement of every read of a live key, unchanged for small values.
func (n tableNames) selectEntry() string {
	return `SELECT value, content_type, created_at, updated_at, coalesce(expire_at, 0), version FROM ` + n.values + ` WHERE key = ?1`
}

// readEntry reads key's values row with get (selectEntry) and, when the
// row holds the op number of its value's history row, the value from that
// row with valueAt (the timeline's statement). A history row that does not
// hold the value is an error: the file was changed under kvd.
func readEntry(get, valueAt *sqlite3.Stmt, key string) (e Entry, found bool, err error) {
	var inHistory int64
	found, err = bind(get).text(key).row(func(s *sqlite3.Stmt) {
		if s.ColumnType(0) == sqlite3.INTEGER { // before scanEntry reads it as a blob
			inHistory = s.ColumnInt64(0)
		}
		e = scanEntry(s)
	})
	if err != nil || inHistory == 0 {
		return e, found, err
	}
	e.Value = nil
	if _, err := bind(valueAt).int(inHistory).row(func(s *sqlite3.Stmt) {
		if s.ColumnType(0) != sqlite3.NULL {
			e.Value = valueColumn(s, 0)
		}
	}); err != nil {
		return Entry{}, false, err
	}
	if e.Value == nil {
		return Entry{}, false, fmt.Errorf("the value of key %q is not in history row %d, where its values row says it is", key, inHistory)
	}
	return e, true, nil
}

// A sweep round looks at up to inlinePage keys, and moves values of up
// to inlineBytes in all (at least one): the move compares each value with
// its history row's, reading both, while the writer waits.
const (
	inlinePage  = 1000
	inlineBytes = 16 << 20
)

// inlinePass is how far the sweep has gone through a table's keys, once
// per open of the database, moving large values out of their values rows.
type inlinePass struct {
	after string // the last key looked at
	done  bool
}

// prepareMoveInline prepares the statements of moveInlineValues: the keys
// after ?1 (at most ?2), each with the size of a value it may hold
// inline, and the move of the values of the keys in (?1, ?2] whose newest
// history row recorded the same value.
func prepareMoveInline(p *stmtSet, n tableNames) (page, move *sqlite3.Stmt) {
	large := `typeof(value) = 'blob' AND length(value) >= ` + fmt.Sprint(valueInHistoryBytes)
	page = p.prepare(`SELECT key, CASE WHEN ` + large + ` THEN length(value) ELSE 0 END FROM ` + n.values + `
WHERE key > ?1 ORDER BY key LIMIT ?2`)
	move = p.prepare(`UPDATE ` + n.values + ` AS v SET value = version WHERE key > ?1 AND key <= ?2 AND ` + large + `
AND value = (SELECT h.value FROM ` + n.history + ` h WHERE h.op_number = v.version AND h.key = v.key AND h.recorded)`)
	return page, move
}

// moveInlineValues moves the large values of the next page of t's keys to
// their history rows, and reports whether keys remain.
func (w *Writer) moveInlineValues(t *writeTable) (more bool, err error) {
	pass := w.inline[t.name.name]
	if pass.done {
		return false, nil
	}
	stmt := t.inlinePage
	if err := bindAll(stmt, pass.after, inlinePage); err != nil {
		return false, dbError(err)
	}
	end, keys, bytes, largest := pass.after, 0, int64(0), int64(0)
	for bytes < inlineBytes && stmt.Step() {
		end, keys = stmt.ColumnText(0), keys+1
		size := stmt.ColumnInt64(1)
		bytes, largest = bytes+size, max(largest, size)
	}
	if err := stmt.Reset(); err != nil {
		return false, dbError(err)
	}
	more = bytes >= inlineBytes || keys == inlinePage
	if bytes > 0 {
		if err := bind(t.moveInline).text(pass.after).text(end).exec(); err != nil {
			return false, dbError(err)
		}
		noteSize(w.conn, largest) // the comparison read it on the writer's connection
	}
	w.inline[t.name.name] = inlinePass{after: end, done: !more}
	return more, nil
}
