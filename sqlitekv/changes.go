package sqlitekv

import (
	"bytes"
	"context"

	"github.com/ncruces/go-sqlite3"
)

// Watchers follow a table's writes in op_number order. The history table
// is their one source of truth: a watcher that starts in the past, or
// falls behind, reads it (ReadChanges); the writer also hands the changes
// of each committed group to its owner (TakeChanges), so that live
// watchers need no read at all. Both give the same Event for a write.

// Event is one committed write as watchers see it: its history row and
// the key it wrote.
type Event struct {
	Table, Key string
	Version
	// Large: the value was too large to carry in memory (MaxCarriedValue);
	// read it from history (ReadChanges) instead.
	Large bool
}

// MaxCarriedValue is the largest value a live change carries: a larger
// one would be held, per slow watcher, in memory.
const MaxCarriedValue = 8 << 10

// collect notes a history row for the group's changes, when someone
// watches: rows of a savepoint rolled back are dropped again (atomically),
// and a failed group drops them all (Begin, abandon).
func (w *Writer) collect(t *writeTable, key, op string, opNumber, ts int64, e *Entry, recorded bool) {
	if !w.watched {
		return
	}
	c := Event{Table: t.name.name, Key: key, Version: Version{OpNumber: opNumber, Op: op, Ts: ts, Recorded: recorded}}
	if recorded && e != nil {
		c.Entry.ContentType, c.Entry.ExpireAt = e.ContentType, e.ExpireAt
		if len(e.Value) > MaxCarriedValue {
			c.Large = true
		} else {
			c.Entry.Value = bytes.Clone(e.Value)
			if c.Entry.Value == nil {
				c.Entry.Value = []byte{}
			}
		}
	}
	w.changes = append(w.changes, c)
}

// WatchChanges says whether the groups begun from now on keep their
// changes for TakeChanges (the owner asks when a group begins: keeping
// them costs a copy of each small value).
func (w *Writer) WatchChanges(on bool) { w.watched = on }

// TakeChanges returns the changes of the group that just committed, in
// op_number order, and forgets them; nil when nobody watched it.
func (w *Writer) TakeChanges() []Event {
	c := w.changes
	w.changes = nil
	if !w.committed {
		return nil
	}
	return c
}

// ChangesRequest reads one table's writes after op After, in op_number
// order: those of Key, or when Key is empty of every key under Prefix.
type ChangesRequest struct {
	Table, Key, Prefix string
	After              int64
	Limit              int  // changes at most (at least one is read)
	CheckGap           bool // also tell whether history after After was pruned
}

// ChangesPage is what ReadChanges found.
type ChangesPage struct {
	Changes []Event
	// Complete: Changes holds every change after After up to Head; else
	// the limit or the byte budget cut the page and more follow.
	Complete bool
	Head     int64 // the table's newest op number when read
	// Gap, when not 0: writes of the watched keys after After were pruned
	// from history (CheckGap); the changes are complete from op Gap on.
	Gap int64
}

// changesPageBytes bounds the values one page holds.
const changesPageBytes = 1 << 20

// ReadChanges reads a page of changes from history, on a read-only
// connection. A table that does not exist yet has none.
func (s *Store) ReadChanges(ctx context.Context, req ChangesRequest) (ChangesPage, error) {
	var p ChangesPage
	err := s.readTx(ctx, req.Table, func(t *readStmts) error {
		if t == nil {
			p.Complete = true
			return nil
		}
		var err error
		p, err = t.changes(req)
		return err
	})
	return p, err
}

// OpBefore is the newest op number of table written before ms (Unix
// milliseconds), 0 if none: where a watch from a time starts.
func (s *Store) OpBefore(ctx context.Context, table string, ms int64) (int64, error) {
	var op int64
	err := s.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return nil
		}
		st := t.changeStmts()
		if t.set.err != nil {
			return dbError(t.set.err)
		}
		if _, err := queryRow(st.opBefore, func(s *sqlite3.Stmt) { op = s.ColumnInt64(0) }, ms); err != nil {
			return dbError(err)
		}
		return nil
	})
	return op, err
}

// changeStmts are the statements of ReadChanges on one read connection,
// prepared when first used (most connections never serve a watcher).
type changeStmts struct {
	head, opBefore      *sqlite3.Stmt
	ofKey, underPrefix  *sqlite3.Stmt
	prunedKey, prunedIn *sqlite3.Stmt
	present             *sqlite3.Stmt
}

func (t *readStmts) changeStmts() *changeStmts {
	if t.watch != nil {
		return t.watch
	}
	n, p := t.names, &t.set
	first := `(SELECT op_number FROM ` + n.history + ` WHERE key = h.key ORDER BY ts, op_number LIMIT 1)`
	t.watch = &changeStmts{
		head:     p.prepare(`SELECT coalesce(max(op_number), 0) FROM ` + n.history),
		opBefore: p.prepare(`SELECT op_number FROM ` + n.history + ` WHERE ts < ?1 ORDER BY op_number DESC LIMIT 1`),
		// ts never decreases with op_number: an index seek on (key, ts).
		ofKey: p.prepare(`SELECT key, ` + versionColumns + ` FROM ` + n.history + `
WHERE key = ?1 AND ts >= ?2 AND op_number > ?3 ORDER BY ts, op_number LIMIT ?4`),
		// In op_number order: a walk of the rowids (+key keeps the key
		// index out of it), skipping other keys.
		underPrefix: p.prepare(`SELECT key, ` + versionColumns + ` FROM ` + n.history + `
WHERE op_number > ?1 AND +key >= ?2 AND (?3 = '' OR +key < ?3) ORDER BY op_number LIMIT ?4`),
		// The oldest op kept of each watched key that retention pruned.
		prunedKey: p.prepare(`SELECT h.key, ` + first + ` FROM ` + n.horizon + ` h WHERE h.key = ?1`),
		prunedIn:  p.prepare(`SELECT h.key, ` + first + ` FROM ` + n.horizon + ` h WHERE h.key >= ?1 AND (?2 = '' OR h.key < ?2)`),
		present:   p.prepare(`SELECT count(*) FROM ` + n.history + ` WHERE op_number > ?1 AND op_number < ?2`),
	}
	return t.watch
}

func (t *readStmts) changes(req ChangesRequest) (ChangesPage, error) {
	st := t.changeStmts()
	if t.set.err != nil {
		return ChangesPage{}, dbError(t.set.err)
	}
	var p ChangesPage
	if _, err := queryRow(st.head, func(s *sqlite3.Stmt) { p.Head = s.ColumnInt64(0) }); err != nil {
		return p, dbError(err)
	}
	if req.CheckGap {
		gap, err := t.prunedAfter(st, req)
		if err != nil {
			return p, err
		}
		p.Gap = gap
	}
	limit := max(req.Limit, 1)
	stmt := st.underPrefix // one row past the limit tells that more follow
	args := []any{req.After, req.Prefix, prefixEnd(req.Prefix), limit + 1}
	if req.Key != "" {
		var from int64 // rows after op After are no older than it
		if _, err := queryRow(t.tsAtOp, func(s *sqlite3.Stmt) { from = s.ColumnInt64(0) }, req.After); err != nil {
			return p, dbError(err)
		}
		stmt, args = st.ofKey, []any{req.Key, from, req.After, limit + 1}
	}
	defer stmt.Reset()
	if err := bindAll(stmt, args...); err != nil {
		return p, dbError(err)
	}
	size, cut := 0, false
	for stmt.Step() {
		if size >= changesPageBytes || len(p.Changes) >= limit {
			cut = true
			break
		}
		c := Event{Table: t.names.name, Key: stmt.ColumnText(0)}
		c.Version = scanVersionAt(stmt, 1)
		size += len(c.Entry.Value) + len(c.Key)
		p.Changes = append(p.Changes, c)
	}
	if err := stmt.Err(); err != nil {
		return ChangesPage{}, dbError(err)
	}
	p.Complete = !cut
	return p, nil
}

// prunedAfter returns, when retention pruned writes of the watched keys
// after op after, the op from which their history is whole again; else 0.
// A key's history is pruned oldest first, so its writes after after are
// all kept when its oldest kept write is at or before after+1, or when no
// op number between after and that write is missing (op numbers are
// dense: every one was a write). Only the key whose oldest kept write is
// the newest needs that count: if nothing is missing before it, nothing
// is missing before the others either; if something is, the stream is
// whole again from it on.
func (t *readStmts) prunedAfter(st *changeStmts, req ChangesRequest) (int64, error) {
	stmt, args := st.prunedIn, []any{req.Prefix, prefixEnd(req.Prefix)}
	if req.Key != "" {
		stmt, args = st.prunedKey, []any{req.Key}
	}
	var first int64 // the newest oldest-kept write of a pruned key
	if err := bindAll(stmt, args...); err != nil {
		return 0, dbError(err)
	}
	for stmt.Step() {
		first = max(first, stmt.ColumnInt64(1))
	}
	err := stmt.Err()
	stmt.Reset()
	if err != nil {
		return 0, dbError(err)
	}
	if first <= req.After+1 {
		return 0, nil
	}
	var present int64
	if _, err := queryRow(st.present, func(s *sqlite3.Stmt) { present = s.ColumnInt64(0) }, req.After, first); err != nil {
		return 0, dbError(err)
	}
	if present < first-req.After-1 {
		return first, nil
	}
	return 0, nil
}

// scanVersionAt is scanVersion of the version columns from column i on.
func scanVersionAt(s *sqlite3.Stmt, i int) Version {
	v := Version{OpNumber: s.ColumnInt64(i), Op: s.ColumnText(i + 1), Ts: s.ColumnInt64(i + 2), Recorded: s.ColumnBool(i + 3)}
	if s.ColumnType(i+4) != sqlite3.NULL {
		v.Entry.Value = s.ColumnBlob(i+4, []byte{})
	}
	v.Entry.ContentType, v.Entry.ExpireAt = s.ColumnText(i+5), s.ColumnInt64(i+6)
	v.Entry.UpdatedAt, v.Entry.Version = v.Ts, v.OpNumber
	return v
}
