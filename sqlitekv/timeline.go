package sqlitekv

import (
	"math"

	"github.com/ncruces/go-sqlite3"
)

// Version is one row of a key's history. Entry holds the value the write
// left (Value nil for deletes and expiries); Recorded is false for a
// history=false write, whose value was not kept.
type Version struct {
	OpNumber int64
	Op       string
	Ts       int64
	Recorded bool
	Entry    Entry
}

// Removes reports whether the write left the key absent: a recorded write
// without a value (delete, expire, or a rollback to absence).
func (v Version) Removes() bool { return v.Recorded && v.Entry.Value == nil }

// point is a position in a table's history, read at now: every write
// with ts <= ts and op_number <= op. Time travel uses (t, max); snapshots
// by op number use (ts of that op, op). until is the latest time the
// point may be at: ts, unless retention pruned op's row, whose time is
// then known only to lie between the rows kept around it. TTLs are
// judged there, but no later than now: a TTL that runs out before a time
// still to come has not run out yet (a key read at a later time must not
// vanish before it expires).
type point struct{ ts, op, until, now int64 }

// atTime is the point at ms, read at now. A time not before now is the
// present, after every write so far: once the clock stepped back, the
// writer stamps its rows later than now (Writer.writeTime), and a read,
// diff or rollback at the present must still see them (a table rollback
// to the current second deleted them).
func atTime(ms, now int64) point {
	if ms >= now {
		ms = math.MaxInt64
	}
	return point{ts: ms, op: math.MaxInt64, until: ms, now: now}
}

// expired reports whether e's TTL had run out at time at of p (its ts,
// or until).
func (p point) expired(e Entry, at int64) bool { return e.expired(min(at, p.now)) }

// timeline holds the statements that read one table's history, on either
// kind of connection. A key's versions are found down its chain
// (chain.go), so a lookup costs O(log versions) row reads.
type timeline struct {
	chainStmts
	version, versionNoValue *sqlite3.Stmt
	valueAt                 *sqlite3.Stmt // a row's value, a gap marker's lent one too (largevalues.go)
	horizon                 *sqlite3.Stmt
	tsAtOp, tsAfterOp       *sqlite3.Stmt
	keyFrom, keyAfter       *sqlite3.Stmt
}

// versionColumns are a version's columns, then its key's previous row. A
// gap marker's value, lent to its values row (largevalues.go), is no
// version's: it reads as NULL, unread.
const versionColumns = `op_number, op, ts, recorded, CASE WHEN recorded THEN value END, content_type, coalesce(expire_at, 0), coalesce(prev, 0)`

// versionNoValueColumns read a version with an empty value in place of
// its bytes (NULL stays NULL, so Removes still tells): typeof reads only
// the row's header, not the pages of a large value.
const versionNoValueColumns = `op_number, op, ts, recorded, CASE WHEN NOT recorded OR typeof(value) = 'null' THEN NULL ELSE x'' END, content_type, coalesce(expire_at, 0), coalesce(prev, 0)`

// firstKeyOf is the first key with history from ?1 on (after it, with >):
// a key has history when it is live or the removed table holds it.
func firstKeyOf(n tableNames, cmp string) string {
	return `SELECT key FROM (SELECT key FROM ` + n.values + ` WHERE key ` + cmp + ` ?1 ORDER BY key LIMIT 1)
UNION ALL SELECT key FROM (SELECT key FROM ` + n.removed + ` WHERE key ` + cmp + ` ?1 ORDER BY key LIMIT 1)
ORDER BY key LIMIT 1`
}

func prepareTimeline(p *stmtSet, n tableNames) timeline {
	return timeline{
		chainStmts:     prepareChain(p, n),
		version:        p.prepare(`SELECT ` + versionColumns + ` FROM ` + n.history + ` WHERE op_number = ?1`),
		versionNoValue: p.prepare(`SELECT ` + versionNoValueColumns + ` FROM ` + n.history + ` WHERE op_number = ?1`),
		valueAt:        p.prepare(`SELECT value FROM ` + n.history + ` WHERE op_number = ?1`),
		horizon:        prepareHorizon(p, n),
		keyFrom:        p.prepare(firstKeyOf(n, ">=")),
		keyAfter:       p.prepare(firstKeyOf(n, ">")),
		tsAtOp:         p.prepare(`SELECT ts, op_number FROM ` + n.history + ` WHERE op_number <= ?1 ORDER BY op_number DESC LIMIT 1`),
		tsAfterOp:      p.prepare(`SELECT ts FROM ` + n.history + ` WHERE op_number > ?1 ORDER BY op_number LIMIT 1`),
	}
}

// prepareHorizon reads a key's first write from its horizon: its time,
// and its op number, 0 where not known. A file an earlier kvd wrote, one
// this kvd may not write and so has not given first_op (upgrade.go), is
// read without it: its answers are those of the earlier kvd.
func prepareHorizon(p *stmtSet, n tableNames) *sqlite3.Stmt {
	firstOp := "0"
	has, err := hasColumn(p.conn, n.name+":horizon", "first_op")
	switch {
	case err != nil && p.err == nil:
		p.err = err
	case has:
		firstOp = "coalesce(first_op, 0)"
	}
	return p.prepare(`SELECT first_ts, ` + firstOp + ` FROM ` + n.horizon + ` WHERE key = ?1`)
}

// hasColumn reports whether conn's table has column.
func hasColumn(conn *sqlite3.Conn, table, column string) (bool, error) {
	stmt, _, err := conn.Prepare(`SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2`)
	if err != nil {
		return false, err
	}
	defer stmt.Close()
	var has bool
	_, err = queryRow(stmt, func(s *sqlite3.Stmt) { has = s.ColumnBool(0) }, table, column)
	return has, err
}

func scanVersion(s *sqlite3.Stmt) Version {
	v := Version{OpNumber: s.ColumnInt64(0), Op: s.ColumnText(1), Ts: s.ColumnInt64(2), Recorded: s.ColumnBool(3)}
	if s.ColumnType(4) != sqlite3.NULL {
		v.Entry.Value = valueColumn(s, 4)
	}
	v.Entry.ContentType, v.Entry.ExpireAt = s.ColumnText(5), s.ColumnInt64(6)
	v.Entry.UpdatedAt, v.Entry.Version = v.Ts, v.OpNumber
	return v
}

// readVersion reads row op with stmt (version or versionNoValue), and
// the op number of its key's previous row; false when there is no row op
// (retention deleted it).
func readVersion(stmt *sqlite3.Stmt, op int64) (v Version, prev int64, found bool, err error) {
	found, err = queryRow(stmt, func(s *sqlite3.Stmt) { v, prev = scanVersion(s), s.ColumnInt64(7) }, op)
	if err != nil {
		return Version{}, 0, false, dbError(err)
	}
	return v, prev, found, nil
}

// stateAt answers what key held at p. Whatever history cannot vouch for —
// an unrecorded write, or a span retention pruned — is TIME_TRAVEL_GAP,
// never a guessed value.
func (tl *timeline) stateAt(key string, p point) (Entry, error) {
	return tl.stateFrom(tl.version, key, p)
}

// presenceAt is stateAt without the value's bytes: for answers that only
// name the keys present.
func (tl *timeline) presenceAt(key string, p point) (Entry, error) {
	return tl.stateFrom(tl.versionNoValue, key, p)
}

// reached is whether a row is at or before p: true of a row and of every
// older one, since ts never decreases with op_number.
func (p point) reached(h hop) bool { return h.ts <= p.ts && h.op <= p.op }

func (tl *timeline) stateFrom(stmt *sqlite3.Stmt, key string, p point) (Entry, error) {
	head, found, err := tl.newest(key)
	var at hop
	if err == nil && found {
		at, found, _, err = tl.seek(head, p.reached)
	}
	if err != nil {
		return Entry{}, err
	}
	if !found {
		var firstTs, firstOp int64
		pruned, err := queryRow(tl.horizon, func(s *sqlite3.Stmt) { firstTs, firstOp = s.ColumnInt64(0), s.ColumnInt64(1) }, key)
		if err != nil {
			return Entry{}, dbError(err)
		}
		if pruned && p.until >= firstTs && p.op >= firstOp { // at or after the first write (by op, where known): a pruned span
			return Entry{}, Errorf(CodeTimeTravelGap, "Time-travel chain gap detected for the requested timestamp: that history was pruned")
		}
		return Entry{}, Errorf(CodeKeyNotFound, "Key not found at the requested time")
	}
	v, _, found, err := readVersion(stmt, at.op)
	if err == nil && !found {
		err = dbError(errBrokenChain)
	}
	if err != nil {
		return Entry{}, err
	}
	switch {
	case !v.Recorded:
		return Entry{}, Errorf(CodeTimeTravelGap, "Time-travel chain gap detected for the requested timestamp: the write in effect was made with history=false")
	case v.Removes() || p.expired(v.Entry, p.ts):
		return Entry{}, Errorf(CodeKeyNotFound, "Key not found at the requested time")
	case p.expired(v.Entry, p.until):
		return Entry{}, Errorf(CodeTimeTravelGap, "Time-travel chain gap detected for the requested timestamp: that op was pruned, so whether the value had expired by then is unknown")
	}
	return v.Entry, nil
}

// pointOfOp is the history position right after op number op, read at
// now. TTLs are judged at op's own time, so that the point stays put
// whatever the clock does; an op past the newest write is the present.
func (tl *timeline) pointOfOp(op, now int64) (point, error) {
	p := point{ts: math.MinInt64, op: op, now: math.MaxInt64}
	last := int64(0) // the newest op kept up to op
	if _, err := queryRow(tl.tsAtOp, func(s *sqlite3.Stmt) { p.ts, last = s.ColumnInt64(0), s.ColumnInt64(1) }, op); err != nil {
		return point{}, dbError(err)
	}
	p.until = p.ts
	if last == op {
		return p, nil
	}
	// op's row was pruned (every op number up to the newest was a write
	// once): it came before the next row kept; or op is still to come.
	later, err := queryRow(tl.tsAfterOp, func(s *sqlite3.Stmt) { p.until = s.ColumnInt64(0) }, op)
	if err != nil {
		return point{}, dbError(err)
	}
	if !later {
		p.ts, p.until, p.now = math.MaxInt64, math.MaxInt64, now
	}
	return p, nil
}

// olderThan walks key's versions newest first from the newest before
// cursor (all of them from a zero cursor), calling fn with each until fn
// returns false or the versions retention kept run out.
func (tl *timeline) olderThan(key string, cursor HistoryCursor, fn func(Version) bool) error {
	head, found, err := tl.newest(key)
	if err != nil || !found {
		return err
	}
	if cursor != (HistoryCursor{}) {
		before := func(h hop) bool { return h.ts <= cursor.Ts && h.op < cursor.Op }
		if head, found, _, err = tl.seek(head, before); err != nil || !found {
			return err
		}
	}
	for op := head.op; op != 0; {
		v, prev, kept, err := readVersion(tl.version, op)
		if err != nil || !kept || !fn(v) {
			return err
		}
		op = prev
	}
	return nil
}

// back is key's version steps writes before its newest (0: the newest),
// and how many versions it found on the way, that one included: steps+1
// when it is there, fewer when the versions retention kept ran out, 0
// when the key has no history. The walk down reads each row's links
// alone: reading every version whole held a rollback of 99 steps of a
// 10 MiB value at 1.2 GB.
func (tl *timeline) back(key string, steps int) (v Version, seen int, err error) {
	h, found, err := tl.newest(key)
	for ; err == nil && found; seen++ {
		if seen == steps {
			var kept bool
			if v, _, kept, err = readVersion(tl.version, h.op); err != nil || !kept {
				return Version{}, seen, err
			}
			return v, seen + 1, nil
		}
		h, found, err = tl.read(h.prev)
	}
	return Version{}, seen, err
}

// Candidates pages through the keys with history, in byte order: those
// starting with Prefix and sorting after After (none when empty), at most
// Limit of them. A look into the past over them stops early, after fewer
// keys, when its answer would exceed Budget.
type Candidates struct {
	Prefix, After string
	Limit         int
	Budget        Budget
}

// keyPage is how many keys eachKey reads at a time; a variable so tests
// can cross pages with few keys.
var keyPage = 1000

// eachKey calls fn for every key with history, in byte order: every key
// that exists or ever existed (as far as history remembers). It reads
// them a page at a time, so memory does not grow with the table.
func (tl *timeline) eachKey(fn func(string) error) error {
	for c := (Candidates{Limit: keyPage}); ; {
		page, truncated, err := tl.candidates(c)
		if err != nil {
			return err
		}
		for _, key := range page {
			if err := fn(key); err != nil {
				return err
			}
		}
		if c.After = next(page, truncated); c.After == "" {
			return nil
		}
	}
}

// candidates lists one page of keys with history. It seeks key by key, so
// a key with many versions costs one seek, not a scan.
func (tl *timeline) candidates(c Candidates) (keys []string, truncated bool, err error) {
	end := prefixEnd(c.Prefix)
	stmt, from := tl.keyFrom, c.Prefix // the first seek includes prefix itself
	if c.After >= c.Prefix && c.After != "" {
		stmt, from = tl.keyAfter, c.After
	}
	for {
		var key string
		found, err := queryRow(stmt, func(s *sqlite3.Stmt) { key = s.ColumnText(0) }, from)
		if err != nil {
			return nil, false, dbError(err)
		}
		if !found || (end != "" && key >= end) {
			return keys, false, nil
		}
		if len(keys) == c.Limit {
			return keys, true, nil
		}
		keys = append(keys, key)
		stmt, from = tl.keyAfter, key
	}
}

// next is the After of the page that follows keys, or "" after the last.
func next(keys []string, truncated bool) string {
	if !truncated || len(keys) == 0 {
		return ""
	}
	return keys[len(keys)-1]
}
