package sqlitekv

import "github.com/ncruces/go-sqlite3"

// Retention in op order. A key written among many others has its rows one
// to a page of history, each page shared with the rows of dozens of other
// keys, so deleting one key's old rows dirtied a page per row; every
// dirtied page is written to the log at commit, and again by the
// checkpoint. Under kvbench's batch-set over 1000 keys that took kvd from
// 210,000 to 35,000 items/s once the keys reached --history-keep, and
// incr-spread from 21,000 to 12,000 incr/s.
//
// So retention deletes such a key's rows later, in laps over history in op
// order, a chunk of rows at the end of a group: a page is then dirtied
// once for all the keys whose rows it holds. Retention gives each key a
// bound, the newest row it found the key may lose; each later write of the
// key moves the bound's sequence number up with it, so that a lap takes
// every row that is keep versions old by the time it gets there, not only
// those that were when retention looked. (With the first bound alone, half
// the rows a lap read were rows it had to keep, to be read again by the
// next lap.) A lap goes from the oldest row up, deleting each row within
// its key's bound, until it is past every bound's op. Once a lap keeps a
// row of a key (past its bound, or of a key without one), it keeps the
// key's later rows too: a key only ever loses its oldest rows, as a prune
// down its chain did, so a lap cut short (a rollback, a closed database)
// leaves no key with a hole. A key whose rows lie dense in op order (a hot
// key) is still pruned at once, by an op range of its own (history.go).

// pruneLaps is a table's laps.
type pruneLaps struct {
	bounds  map[string]*lapBound // per key, what it may lose
	next    map[string]lapBound  // bounds found during a lap for keys it cannot take: the next lap's
	lapping bool
	cursor  int64 // the lap has decided every row up to this op
	end     int64 // and is done past this one
	owed    int   // history rows appended since the last chunk, or since no key waited: set its size

	// What a chunk deletes: its rows, as runs of neighbours in op order,
	// and the bounds of the keys that lose rows (each holds what its key
	// loses).
	runs   []opRun
	losers []*lapBound
}

// lapBound is the newest row a key may lose, by op (where its lap must go)
// and by sequence number (which its later writes move up), and whether the
// lap under way kept a row of the key. While a chunk is chosen it also
// holds what the chunk deletes of the key, so that a row read costs one
// look-up by key and no copy of it.
type lapBound struct {
	key     string
	op, seq int64
	kept    bool
	lost    lostRow
}

// raise moves b's op and seq up to to's where those are further.
func (b lapBound) raise(to lapBound) lapBound {
	b.op, b.seq = max(b.op, to.op), max(b.seq, to.seq)
	return b
}

// opRun is the rows first through last: neighbours in op order, so one
// range deletes them and nothing else.
type opRun struct{ first, last int64 }

// A chunk of a long lap runs once pruneChunk rows were appended since the
// last, and looks at half as many rows again as were (at least
// pruneChunk), so that laps keep up; a large chunk notes each key's horizon
// once for many of its rows. A lap over fewer ops runs at the end of every
// group. Rows a chunk looks at beyond those it deletes are rows to be read
// again: looking at twice as many as were appended cost a sustained
// batch-set about a tenth of its rate (bench/README.md).
const pruneChunk = 4096

// maxBounds bounds the keys laps hold bounds for, so that the writer's
// memory stays bounded whatever the number of keys: past it, a key is
// pruned at once, as before laps.
const maxBounds = 1 << 16

// pruneLater leaves key's rows through last to a lap: the one under way
// if it has kept none of them, else the next; false when laps hold bounds
// for too many keys already.
func (p *pruneLaps) pruneLater(key string, last hop) bool {
	if len(p.bounds)+len(p.next) >= maxBounds {
		return false
	}
	bound := lapBound{op: last.op, seq: last.seq}
	if b, in := p.bounds[key]; !p.lapping || in && !b.kept {
		if !in {
			if p.bounds == nil {
				p.bounds = map[string]*lapBound{}
			}
			b = &lapBound{key: key}
			p.bounds[key] = b
		}
		*b = b.raise(bound)
		p.end = max(p.end, last.op)
		return true
	}
	if p.next == nil {
		p.next = map[string]lapBound{}
	}
	p.next[key] = p.next[key].raise(bound)
	return true
}

// appended counts a row appended to key's chain, whose sequence number is
// seq: keep versions below it, a row of the key may go. The bound moves on
// every write: moved on one write in 8 to save the look-up, it left keys
// 38% past their keep instead of 12% in the laps' test, since a lap keeps
// the rest of a key once it meets a row past its bound. A seq of 1 begins
// a chain: a new key's, or, were a key's chain ever begun anew (no path of
// kvd's deletes a key's newest row), another chain than the one the key's
// bounds counted, so they are dropped rather than trusted.
func (p *pruneLaps) appended(key string, seq, keep int64) {
	p.owed++
	if seq == 1 {
		delete(p.bounds, key)
		delete(p.next, key)
	} else if b := p.bounds[key]; b != nil {
		b.seq = max(b.seq, seq-keep)
	}
}

// runLaps runs a chunk of each table's lap, at the end of a group.
func (w *Writer) runLaps() error {
	for _, t := range w.tables {
		if err := w.pruneChunk(t); err != nil {
			w.spoil(err, true)
			return err
		}
	}
	return nil
}

// pruneChunk runs one chunk of t's lap, starting one if a key has a bound.
func (w *Writer) pruneChunk(t *writeTable) error {
	p := &t.laps
	if !p.lapping {
		if len(p.bounds) == 0 {
			p.owed = 0 // what was appended while no key waited is no lap's debt
			return nil
		}
		if _, err := bind(t.oldestOp).row(func(s *sqlite3.Stmt) { p.cursor = s.ColumnInt64(0) - 1 }); err != nil {
			return dbError(err)
		}
		p.lapping = true
	}
	if p.owed < pruneChunk && p.end-p.cursor > pruneChunk {
		return nil // a long lap waits to run in large chunks
	}
	limit := max(p.owed*3/2, pruneChunk)
	p.owed = 0
	through, err := p.choose(t.lapRows, limit)
	if err != nil {
		return err
	}
	if err := w.deleteChosen(t); err != nil {
		return err
	}
	p.cursor = through
	if p.cursor >= p.end {
		p.endLap()
	}
	return nil
}

// choose picks, in op order, which of the next rows (up to limit) of the
// lap go, and returns the op it got to.
//
// It starts from no runs and no losers: deleteChosen leaves none, and an
// error in a chunk fails its group, whose abandon drops the table's laps.
func (p *pruneLaps) choose(rows *sqlite3.Stmt, limit int) (through int64, err error) {
	if err := bindAll(rows, p.cursor, p.end, limit); err != nil {
		return 0, dbError(err)
	}
	through, n, inRun := p.end, 0, false
	for rows.Step() {
		op, seq := rows.ColumnInt64(0), rows.ColumnInt64(3)
		// Past its bound, a key keeps its later rows too: neither
		// pruneLater nor a later write takes back a row the lap kept. A
		// key without a bound waits for the next lap.
		b := p.bounds[string(rows.ColumnRawText(1))]
		chosen := b != nil && !b.kept && seq <= b.seq
		switch {
		case chosen && inRun:
			p.runs[len(p.runs)-1].last = op
		case chosen:
			p.runs = append(p.runs, opRun{op, op})
		case b != nil:
			b.kept = true
		}
		inRun = chosen
		if chosen {
			if b.lost.op == 0 {
				p.losers = append(p.losers, b)
			}
			b.lost = b.lost.with(lostRow{op: op, ts: rows.ColumnInt64(2), seq: seq})
		}
		if n++; n == limit {
			through = op
		}
	}
	if err := rows.Reset(); err != nil {
		return 0, dbError(err)
	}
	return through, nil
}

// endLap forgets the keys the lap took all it could of and gives the next
// lap the rest.
func (p *pruneLaps) endLap() {
	for key, b := range p.bounds {
		if !b.kept {
			delete(p.bounds, key)
		}
		b.kept = false
	}
	for key, bound := range p.next {
		if b := p.bounds[key]; b != nil {
			*b = b.raise(bound)
		} else {
			bound.key = key
			p.bounds[key] = &bound
		}
	}
	p.end = 0
	for _, bound := range p.bounds {
		p.end = max(p.end, bound.op)
	}
	p.next, p.lapping = nil, false
}

// deleteChosen deletes the chosen rows and notes in the horizon what each
// key lost. A run's range DELETE steps through the rows it deletes and no
// other; a DELETE over the whole chunk that asked a Go function about
// each row and returned what it deleted (SQLite gathers RETURNING rows
// in a temporary table first) cost a fifth more of a sustained
// batch-set's time (BenchmarkWriter_BatchSetPastKeep), though a run there
// holds five rows on average.
func (w *Writer) deleteChosen(t *writeTable) error {
	for _, run := range t.laps.runs {
		w.notePrune()
		if err := execBound(t.lapDelete, run.first, run.last); err != nil {
			return dbError(err)
		}
	}
	for _, b := range t.laps.losers {
		if err := t.noteLost(b.key, b.lost); err != nil {
			return err
		}
		b.lost = lostRow{}
	}
	t.laps.runs, t.laps.losers = nil, nil // a large chunk's are not kept for the writer's life
	return nil
}

// lostRow is what a chunk deleted of one key: its newest row, and the
// time and op of its first (seq 1) when that went too.
type lostRow struct {
	op, ts, seq      int64
	firstTs, firstOp int64
	first            bool
}

// with adds a deleted row to what its key lost.
func (was lostRow) with(r lostRow) lostRow {
	if r.seq == 1 {
		was.firstTs, was.firstOp, was.first = r.ts, r.op, true
	}
	if r.op > was.op {
		was.op, was.ts, was.seq = r.op, r.ts, r.seq
	}
	return was
}

// noteLost records in the horizon what key lost, as pruneThrough does: the
// newest row, and when and where the key's history began if its first
// row went.
func (t *writeTable) noteLost(key string, r lostRow) error {
	var err error
	if r.first {
		err = execBound(t.noteHorizon, key, r.firstTs, r.op, r.ts, r.firstOp)
	} else {
		err = execBound(t.moveHorizon, key, r.op, r.ts) // a key no prune noted stays so
	}
	if err != nil {
		return dbError(err)
	}
	if end := t.recent[key]; end != nil {
		end.pruned = hop{op: r.op, seq: r.seq, ts: r.ts}
	}
	return nil
}
