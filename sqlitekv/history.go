package sqlitekv

import "github.com/ncruces/go-sqlite3"

// Operation names recorded in history.
const (
	OpSet      = "set"
	OpDelete   = "delete"
	OpIncr     = "incr"
	OpDecr     = "decr"
	OpExpire   = "expire"
	OpRollback = "rollback"
	OpPush     = "push"
	OpPop      = "pop"
	OpRemove   = "remove"
)

// appendHistory appends the history row of one write (only that: the
// values row is writeVersion's) and returns its op number and time. With recorded false the row is a gap marker: the write happened,
// its value is not kept, and time travel across it answers "unknown".
func (w *Writer) appendHistory(t *writeTable, key, op string, e *Entry, recorded bool) (opNumber, ts int64, err error) {
	ts = w.stamp()
	var value []byte
	var contentType, expireAt any
	if recorded && e != nil {
		value, contentType, expireAt = e.Value, e.ContentType, nullableInt(e.ExpireAt)
		if value == nil {
			value = []byte{}
		}
	}
	if err := execBound(t.record, key, op, ts, recorded, value, contentType, expireAt); err != nil {
		return 0, 0, dbError(err)
	}
	opNumber = w.conn.LastInsertRowID()
	if err := w.retain(t, key); err != nil {
		return 0, 0, err
	}
	w.collect(t, key, op, opNumber, ts, e, recorded)
	return opNumber, ts, nil
}

// retain enforces HistoryKeep for key. The check walks the keep window,
// so it runs on one write in keep/4, picked at random: each key then holds
// at least keep versions and on average keep/4 more, and the writer keeps
// no state per key, so its memory does not grow with the number of keys
// written. (A check every keep/16 writes cost 20% more CPU per write in
// BenchmarkIncr.)
func (w *Writer) retain(t *writeTable, key string) error {
	keep := w.opts.HistoryKeep
	if keep < 0 || w.pruneDice.IntN(max(1, keep/4)) != 0 {
		return nil
	}
	var ts, op int64
	found, err := queryRow(t.nthNewest, func(s *sqlite3.Stmt) { ts, op = s.ColumnInt64(0), s.ColumnInt64(1) }, key, keep)
	if err != nil {
		return dbError(err)
	}
	if !found {
		return nil
	}
	return t.pruneThrough(key, ts, op)
}

// pruneThrough drops key's history up to and including (ts, op), first
// remembering when the key's history began, so that reads of the pruned
// span answer TIME_TRAVEL_GAP and reads before it KEY_NOT_FOUND.
func (t *writeTable) pruneThrough(key string, ts, op int64) error {
	if err := execBound(t.noteHorizon, key, ts, op); err != nil {
		return dbError(err)
	}
	if err := execBound(t.pruneT, key, ts, op); err != nil {
		return dbError(err)
	}
	return nil
}

// pruneByAge drops up to limit history rows older than cutoff, resuming
// where the previous call stopped, and says whether older rows may remain.
// A key's newest row is always kept, so the present state of every key
// stays answerable.
func (w *Writer) pruneByAge(t *writeTable, cutoff int64, limit int) (pruned int, more bool, err error) {
	type row struct {
		op, ts int64
		key    string
	}
	var rows []row
	stmt := t.oldRows
	if err := bindAll(stmt, w.ageCursor[t.name.name], limit); err != nil {
		return 0, false, dbError(err)
	}
	scanned, done := 0, false
	for stmt.Step() {
		scanned++
		r := row{op: stmt.ColumnInt64(0), key: stmt.ColumnText(1), ts: stmt.ColumnInt64(2)}
		if r.ts >= cutoff {
			done = true // the rest is younger still
			break
		}
		rows = append(rows, r)
	}
	if err := stmt.Reset(); err != nil {
		return 0, false, dbError(err)
	}
	more = !done && scanned == limit
	if more {
		w.ageCursor[t.name.name] = rows[len(rows)-1].op
	} else {
		delete(w.ageCursor, t.name.name) // reached the end: start over next time
	}
	for _, r := range rows {
		var newest int64
		if _, err := queryRow(t.newestOp, func(s *sqlite3.Stmt) { newest = s.ColumnInt64(0) }, r.key); err != nil {
			return pruned, more, dbError(err)
		}
		if r.op == newest {
			continue
		}
		if err := t.pruneThrough(r.key, r.ts, r.op); err != nil {
			return pruned, more, err
		}
		pruned++
	}
	return pruned, more, nil
}
