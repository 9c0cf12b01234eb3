package sqlitekv

import (
	"bytes"
	"context"
	"slices"
	"sync/atomic"

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
	// GapAsOf, with CheckGap, is the Prunes of the page on which the
	// caller last had the gap checked (0: none). While history has not
	// been pruned since, the keys that lost writes after After are among
	// those that lost them after that page's After, which that check
	// told: the check, a look at every pruned key, is skipped (a replay
	// of 80,000 events past 40,000 pruned keys took 44 s).
	GapAsOf uint64
	// Since, for a watch from a time (Unix ms; 0: none), is that time:
	// After is then the newest op kept before it, and writes pruned
	// from before it are no loss to the watch.
	Since int64
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
	// Prunes tells how far the database's history had been pruned when
	// the page was read, for GapAsOf; 0 while a prune was under way.
	Prunes uint64
}

// changesPageBytes bounds the values one page holds.
const changesPageBytes = 1 << 20

// ReadChanges reads a page of changes from history, on a read-only
// connection. A table that does not exist yet has none.
//
// Watchers' pages take at most all read connections but one: 3,000
// watches replaying a long history from its start queued every other
// read of the database behind their pages (GETs took 2 s each for 25 s).
func (s *Store) ReadChanges(ctx context.Context, req ChangesRequest) (ChangesPage, error) {
	select {
	case s.paging <- struct{}{}:
		defer func() { <-s.paging }()
	case <-s.closed:
		return ChangesPage{}, ErrClosing()
	case <-ctx.Done():
		return ChangesPage{}, Cancelled(ctx.Err())
	}
	prunes := s.wal.prunes.Load() // before the transaction begins: see walProgress.prunes
	var p ChangesPage
	err := s.readTx(ctx, req.Table, func(t *readStmts) error {
		if t == nil {
			p.Complete = true
			return nil
		}
		var err error
		p, err = t.changes(req, prunes, &s.wal.pruning)
		return err
	})
	return p, err
}

// OpBefore is the newest op number of table written before ms (Unix
// milliseconds), 0 if none: where a watch from a time starts.
//
// History has no index on ts, and needs none: ts never decreases with
// op_number, so a binary search over op numbers finds it in a few dozen
// row look-ups. A scan back from the newest row read the whole history
// for a time before it (0.2 s a request at a million rows, on a read
// connection other reads wait for).
func (s *Store) OpBefore(ctx context.Context, table string, ms int64) (int64, error) {
	var found int64
	err := s.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return nil
		}
		st := t.changeStmts()
		if t.set.err != nil {
			return dbError(t.set.err)
		}
		var hi int64 // the answer is found (0: none yet) or an op up to hi
		if _, err := queryRow(st.head, func(s *sqlite3.Stmt) { hi = s.ColumnInt64(0) }); err != nil {
			return dbError(err)
		}
		for found < hi {
			mid := found + (hi-found+1)/2
			var op, ts int64 // the first write from mid on: there is one, as mid ≤ the newest
			if _, err := queryRow(st.firstFrom, func(s *sqlite3.Stmt) { op, ts = s.ColumnInt64(0), s.ColumnInt64(1) }, mid); err != nil {
				return dbError(err)
			}
			if ts < ms {
				found = op
			} else {
				hi = mid - 1
			}
		}
		return nil
	})
	return found, err
}

// changeStmts are the statements of ReadChanges on one read connection,
// prepared when first used (most connections never serve a watcher).
type changeStmts struct {
	head, firstFrom     *sqlite3.Stmt
	underPrefix         *sqlite3.Stmt
	prunedKey, prunedIn *sqlite3.Stmt
	present             *sqlite3.Stmt
}

func (t *readStmts) changeStmts() *changeStmts {
	if t.watch != nil {
		return t.watch
	}
	n, p := t.names, &t.set
	t.watch = &changeStmts{
		head:      p.prepare(`SELECT coalesce(max(op_number), 0) FROM ` + n.history),
		firstFrom: p.prepare(`SELECT op_number, ts FROM ` + n.history + ` WHERE op_number >= ?1 ORDER BY op_number LIMIT 1`),
		// In op_number order: a walk of the rowids, skipping other keys.
		underPrefix: p.prepare(`SELECT key, ` + versionColumns + ` FROM ` + n.history + `
WHERE op_number > ?1 AND key >= ?2 AND (?3 = '' OR key < ?3) ORDER BY op_number LIMIT ?4`),
		// The watched keys retention pruned, and the newest write each lost,
		// but for those whose horizon says that write was not after op ?1.
		prunedKey: p.prepare(`SELECT ` + lostColumns + ` FROM ` + n.horizon + ` WHERE key = ?2` + lostAfter),
		prunedIn:  p.prepare(`SELECT ` + lostColumns + ` FROM ` + n.horizon + ` WHERE key >= ?2 AND (?3 = '' OR key < ?3)` + lostAfter),
		present:   p.prepare(`SELECT count(*) FROM ` + n.history + ` WHERE op_number > ?1 AND op_number < ?2`),
	}
	return t.watch
}

// lostAfter keeps, of a horizon's keys, those that may have lost a write
// after op ?1: the newest write a key lost is the one its oldest kept row
// links to (the horizon notes it in the transaction that prunes, and
// CheckIntegrity holds them equal), so a key whose horizon knows that
// write, at or before ?1, lost nothing after it, and its chain need not
// be read. On a database that retention prunes as it is written, every
// page of a watch checks: past 20,000 pruned keys, reading each one's
// chain cost a page 64 ms, the look at its horizon row alone 1.7 ms.
const lostAfter = ` AND (lost_op IS NULL OR lost_op > ?1)`

func (t *readStmts) changes(req ChangesRequest, prunes uint64, pruning *atomic.Uint64) (ChangesPage, error) {
	st := t.changeStmts()
	if t.set.err != nil {
		return ChangesPage{}, dbError(t.set.err)
	}
	var p ChangesPage
	if _, err := queryRow(st.head, func(s *sqlite3.Stmt) { p.Head = s.ColumnInt64(0) }); err != nil {
		return p, dbError(err)
	}
	p.Prunes = prunes + 1
	if pruning.Load() != prunes { // loaded once the snapshot holds a row: see walProgress.prunes
		p.Prunes = 0 // it vouches for nothing: this page and the next check
	}
	if req.CheckGap && (p.Prunes == 0 || req.GapAsOf != p.Prunes) {
		gap, err := t.prunedAfter(st, req)
		if err != nil {
			return p, err
		}
		p.Gap = gap
	}
	limit := max(req.Limit, 1)
	size, cut := 0, false
	take := func(key string, v Version) bool { // one row past the limit tells that more follow
		if size >= changesPageBytes || len(p.Changes) >= limit {
			cut = true
			return false
		}
		size += len(v.Entry.Value) + len(key)
		p.Changes = append(p.Changes, Event{Table: t.names.name, Key: key, Version: v})
		return true
	}
	var err error
	if req.Key != "" {
		err = t.keyChangesAfter(req.Key, req.After, limit+1, func(v Version) bool { return take(req.Key, v) })
	} else {
		err = t.prefixChangesAfter(st, req, limit+1, take)
	}
	if err != nil {
		return ChangesPage{}, err
	}
	p.Complete = !cut
	return p, nil
}

// prefixChangesAfter calls fn with at most n writes under req.Prefix after
// op req.After, in op_number order, until fn returns false.
func (t *readStmts) prefixChangesAfter(st *changeStmts, req ChangesRequest, n int, fn func(string, Version) bool) error {
	stmt := st.underPrefix
	defer stmt.Reset()
	if err := bindAll(stmt, req.After, req.Prefix, prefixEnd(req.Prefix), n); err != nil {
		return dbError(err)
	}
	for stmt.Step() && fn(stmt.ColumnText(0), scanVersionAt(stmt, 1)) {
	}
	if err := stmt.Err(); err != nil {
		return dbError(err)
	}
	return nil
}

// keyChangesAfter calls fn with at most n of key's writes after op after,
// oldest first, until fn returns false. The chain runs newest to oldest:
// it finds the n-th write after after, walks down to the first, then
// reads their versions in order.
func (tl *timeline) keyChangesAfter(key string, after int64, n int, fn func(Version) bool) error {
	head, found, err := tl.newest(key)
	if err != nil || !found || head.op <= after {
		return err
	}
	base, found, oldest, err := tl.seek(head, func(h hop) bool { return h.op <= after })
	if err != nil {
		return err
	}
	from := oldest.seq - 1 // every write kept is after after
	if found {
		from = base.seq
	}
	top := head
	if from+int64(n) < head.seq {
		if top, _, err = tl.atSeq(head, from+int64(n)); err != nil {
			return err
		}
	}
	ops := make([]int64, 0, top.seq-from)
	for h := top; ; {
		ops = append(ops, h.op)
		if h.seq <= from+1 {
			break
		}
		var kept bool
		if h, kept, err = tl.read(h.prev); err == nil && !kept {
			err = dbError(errBrokenChain)
		}
		if err != nil {
			return err
		}
	}
	for _, op := range slices.Backward(ops) {
		v, _, kept, err := readVersion(tl.version, op)
		if err == nil && !kept {
			err = dbError(errBrokenChain)
		}
		if err != nil || !fn(v) {
			return err
		}
	}
	return nil
}

// prunedAfter returns, when retention pruned writes of the watched keys
// after op after, the op from which their history is whole again; else 0.
// A key's history is pruned oldest first, and its oldest kept write still
// links to the write before it (prev): the key lost a write after after
// exactly when that link points past after. Other keys' pruned writes in
// between are no loss to this watch.
//
// A watch from a time (req.Since) starts after the newest op kept
// before it, and a write pruned after that op may still have been made
// before the time: the key lost nothing the watch asks for when the write
// it lost last (the horizon's lost_op, the link's end) was before the
// time. Where the horizon does not know that write (pruned by a kvd
// before it noted them), it counts as lost: a gap said in doubt, never
// writes missed.
//
// A history pruned before kvd linked it (upgrade.go) starts its chains at
// the oldest kept write, with no link back. For such a key only the op
// numbers tell: they are dense (every one was a write), so its writes
// after after are whole when none is missing between after and its oldest
// kept write (of any key: which key a missing one was is not known).
func (t *readStmts) prunedAfter(st *changeStmts, req ChangesRequest) (int64, error) {
	stmt, args := st.prunedIn, []any{req.After, req.Prefix, prefixEnd(req.Prefix)}
	if req.Key != "" {
		stmt, args = st.prunedKey, []any{req.After, req.Key}
	}
	if err := bindAll(stmt, args...); err != nil {
		return 0, dbError(err)
	}
	// One key at a time, read as the statement steps (the chain reads
	// use other statements): a slice of them grew with every key pruned
	// since after, for each page of a watch from long ago.
	defer stmt.Reset()
	var first, unlinked int64 // the newest oldest-kept write of a key that lost one, of one that may have
	for stmt.Step() {
		key, lostOp, lostTs := stmt.ColumnText(0), stmt.ColumnInt64(1), stmt.ColumnInt64(2) // the newest write pruned (0: not known)
		head, found, err := t.newest(key)
		if err != nil {
			return 0, err
		}
		if !found {
			continue
		}
		oldest, err := t.oldestKept(head)
		if err != nil {
			return 0, err
		}
		lostBeforeSince := lostOp != 0 && lostOp == oldest.prev && lostTs < req.Since
		switch {
		case oldest.prev > req.After && !lostBeforeSince:
			first = max(first, oldest.op)
		case oldest.prev == 0 && oldest.op > req.After+1:
			unlinked = max(unlinked, oldest.op)
		}
	}
	if err := stmt.Err(); err != nil {
		return 0, dbError(err)
	}
	if unlinked > first {
		var present int64
		if _, err := queryRow(st.present, func(s *sqlite3.Stmt) { present = s.ColumnInt64(0) }, req.After, unlinked); err != nil {
			return 0, dbError(err)
		}
		if present < unlinked-req.After-1 {
			first = unlinked
		}
	}
	return first, nil
}

// scanVersionAt is scanVersion of the version columns from column i on.
func scanVersionAt(s *sqlite3.Stmt, i int) Version {
	v := Version{OpNumber: s.ColumnInt64(i), Op: s.ColumnText(i + 1), Ts: s.ColumnInt64(i + 2), Recorded: s.ColumnBool(i + 3)}
	if s.ColumnType(i+4) != sqlite3.NULL {
		v.Entry.Value = valueColumn(s, i+4)
	}
	v.Entry.ContentType, v.Entry.ExpireAt = s.ColumnText(i+5), s.ColumnInt64(i+6)
	v.Entry.UpdatedAt, v.Entry.Version = v.Ts, v.OpNumber
	return v
}
