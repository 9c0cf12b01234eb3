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
// values row is writeVersion's) and returns its op number and time. With
// recorded false the row is a gap marker: the write happened, its value
// is not kept, and time travel across it answers "unknown". A nil e is a
// write that leaves the key absent.
func (w *Writer) appendHistory(t *writeTable, key, op string, e *Entry, recorded bool) (opNumber, ts int64, err error) {
	ts = w.writeTime()
	l, err := t.linkFor(key)
	if err != nil {
		return 0, 0, err
	}
	row := bind(t.record).text(key).text(op).int(ts).boolean(recorded).int(l.seq).
		intOrNull(l.prev.op, l.prev.op != 0).intOrNull(l.jump.op, l.jump.op != 0).intOrNull(l.jump.ts, l.jump.op != 0)
	lends := !recorded && e != nil && keptInHistory(*e)
	switch {
	case recorded && e != nil:
		value := e.Value
		if value == nil {
			value = []byte{}
		}
		row.blob(value).text(e.ContentType).intOrNull(e.ExpireAt, e.ExpireAt != 0)
	case lends: // a gap marker still, holding the value for the present alone
		row.blob(e.Value).null().null()
	default:
		row.null().null().null()
	}
	if err := row.exec(); err != nil {
		return 0, 0, dbError(err)
	}
	opNumber = w.conn.LastInsertRowID()
	if l.prevLends {
		if err := execBound(t.unlend, l.prev.op); err != nil {
			return 0, 0, dbError(err)
		}
	}
	switch {
	case e == nil:
		err = bind(t.markRemoved).text(key).int(opNumber).exec()
	case l.removed:
		err = bind(t.unmarkRemoved).text(key).exec()
	}
	if err != nil {
		return 0, 0, dbError(err)
	}
	t.recent.appended(key, chainRow{opNumber, ts}, l, e == nil, lends)
	t.laps.appended(key, l.seq, int64(w.opts.HistoryKeep))
	if err := w.retain(t, key, hop{op: opNumber, seq: l.seq, prev: l.prev.op, jump: l.jump.op, ts: ts, jumpTs: l.jump.ts}); err != nil {
		return 0, 0, err
	}
	w.collect(t, key, op, opNumber, ts, e, recorded)
	return opNumber, ts, nil
}

// link is where a key's next version joins its chain (chain.go).
type link struct {
	seq        int64
	prev, jump chainRow
	removed    bool // the chain starts in the removed table
	prevLends  bool // prev is a gap marker holding the key's value, which the new row takes over (largevalues.go)
}

// linkFor finds where key's chain continues: at its newest row, which
// is the one this writer appended last (recent), or its row held for the
// group's end, its values row's version, or its removed row; a key
// without one starts a chain.
func (t *writeTable) linkFor(key string) (link, error) {
	end := t.recent[key]
	if end != nil {
		if l, ok := end.next(); ok {
			return l, nil
		}
	}
	var l link
	var head int64
	if end != nil {
		head, l.removed = end.head().op, end.removed
	} else if row, ok := t.heldValues[key]; ok {
		head = row.entry.Version
	} else if op, removed, err := t.headOf(key); err != nil {
		return link{}, err
	} else {
		head, l.removed = op, removed
	}
	if head == 0 {
		return link{seq: 1}, nil
	}
	var parentSeq int64
	var jumpOfJump chainRow
	found, err := bind(t.parent).int(head).row(func(s *sqlite3.Stmt) {
		parentSeq, l.prev = s.ColumnInt64(0), chainRow{head, s.ColumnInt64(1)}
		jumpOfJump = chainRow{s.ColumnInt64(2), s.ColumnInt64(3)}
		l.prevLends = s.ColumnBool(4)
	})
	if err == nil && !found {
		err = errBrokenChain
	}
	if err != nil {
		return link{}, dbError(err)
	}
	l.seq, l.jump = parentSeq+1, l.prev
	if jumpSeq(l.seq) != parentSeq {
		l.jump = jumpOfJump // op 0 when retention deleted it: a search never needs it then
	}
	return l, nil
}

// retain enforces HistoryKeep for key, whose newest row is head. The
// check runs on one write in keep/4, picked at random: each key then
// holds at least keep versions and on average keep/4 more (and what a
// lap has yet to delete, prunelaps.go), and the writer keeps no state per
// key beyond a lap's bounds, so its memory does not grow with the number
// of keys written. (A check every keep/16 writes cost 20% more CPU per
// write in BenchmarkIncr.)
func (w *Writer) retain(t *writeTable, key string, head hop) error {
	keep := int64(w.opts.HistoryKeep)
	if keep < 0 || w.pruneDice.IntN(max(1, int(keep/4))) != 0 || head.seq <= keep {
		return nil
	}
	last, found, err := t.atSeq(head, head.seq-keep) // the newest row to drop
	if err != nil || !found {
		return err // not found: dropped already
	}
	// A write alone has no group end to run a lap's chunk at; a dense key
	// (below) is cheaper pruned now.
	if !w.inGroup || t.recent[key].denseTo(last) || !t.laps.pruneLater(key, last) {
		w.notePrune()
		_, err := t.pruneThrough(key, last)
		return err
	}
	return nil
}

// pruneThrough drops row last and every older row of key, down its
// chain, first remembering when the key's history began, so that reads
// of the pruned span answer TIME_TRAVEL_GAP and reads before it
// KEY_NOT_FOUND. That is the time of the key's first row, seq 1, unless
// an earlier prune remembered it already. It remembers last too, the
// newest write the key lost, with its time: a watch from a time asks
// whether that write came before it (changes.go). It returns how many
// rows it dropped.
func (t *writeTable) pruneThrough(key string, last hop) (dropped int, err error) {
	noted, err := queryRow(t.horizon, func(*sqlite3.Stmt) {}, key)
	if err != nil {
		return 0, dbError(err)
	}
	// A key not noted yet is noted with the time and op of its seq 1
	// (not at all if that row is not found); a noted one keeps them.
	var first hop
	if !noted {
		var err error
		if first, noted, err = t.atSeq(last, 1); err != nil {
			return 0, err
		}
	}
	if noted {
		if err := execBound(t.noteHorizon, key, first.ts, last.op, last.ts, first.op); err != nil {
			return 0, dbError(err)
		}
	}
	// The rows go in one statement. Down the chain it reads each row
	// twice; when they lie dense in op order (a hot key), deleting the op
	// range after the last prune, skipping the rows of other keys in it,
	// costs a third as much (BenchmarkWriter_Incr/hot).
	end := t.recent[key]
	if end.denseTo(last) {
		err = bind(t.pruneRange).int(end.pruned.op).int(last.op).text(key).exec()
	} else {
		err = bind(t.pruneDown).int(last.op).exec()
	}
	if err != nil {
		return 0, dbError(err)
	}
	if end != nil {
		end.pruned = last
	}
	return int(t.set.conn.Changes()), nil
}

// denseRange is how many rows of all keys per row of the one pruned an
// op range may hold for pruneThrough to delete the range rather than walk
// the chain: reading a row another key's costs a fraction of deleting
// one down the chain.
const denseRange = 4

// denseTo reports whether the key's rows after its last prune through
// last lie dense in op order (nil e: not known).
func (e *chainEnd) denseTo(last hop) bool {
	return e != nil && e.pruned.op != 0 && last.op-e.pruned.op <= denseRange*(last.seq-e.pruned.seq)
}

// pruneByAge drops the history rows older than cutoff among the next
// limit rows, resuming where the previous call stopped, with every older
// row of their keys, and says how many it dropped and whether older rows
// may remain. A key's newest row is always kept, so the present state of
// every key stays answerable.
func (w *Writer) pruneByAge(t *writeTable, cutoff int64, limit int) (pruned int, more bool, err error) {
	type row struct {
		hop
		key string
	}
	var rows []row
	stmt := t.oldRows
	if err := bindAll(stmt, w.ageCursor[t.name.name], limit); err != nil {
		return 0, false, dbError(err)
	}
	scanned, done := 0, false
	for stmt.Step() {
		scanned++
		r := row{key: stmt.ColumnText(0), hop: scanHop(stmt, 1)}
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
		newest, _, err := t.headOf(r.key)
		if err != nil {
			return pruned, more, err
		}
		if r.op == newest {
			continue
		}
		w.notePrune()
		n, err := t.pruneThrough(r.key, r.hop)
		pruned += n
		if err != nil {
			return pruned, more, err
		}
	}
	return pruned, more, nil
}
