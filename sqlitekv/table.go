package sqlitekv

import (
	"github.com/ncruces/go-sqlite3"
)

// Entry is a stored value with its metadata. Times are Unix milliseconds;
// 0 means unknown (CreatedAt in time travel) or none (ExpireAt).
type Entry struct {
	Value       []byte
	ContentType string
	CreatedAt   int64
	UpdatedAt   int64
	ExpireAt    int64
	Version     int64
	RefTarget   string // set when read through a reference: the key finally read
}

func (e Entry) expired(now int64) bool { return e.ExpireAt != 0 && e.ExpireAt <= now }

func scanEntry(s *sqlite3.Stmt) Entry {
	return Entry{
		Value:       valueColumn(s, 0),
		ContentType: s.ColumnText(1),
		CreatedAt:   s.ColumnInt64(2),
		UpdatedAt:   s.ColumnInt64(3),
		ExpireAt:    s.ColumnInt64(4),
		Version:     s.ColumnInt64(5),
	}
}

// writeTable holds one KV table's statements on the write connection.
type writeTable struct {
	name         tableNames
	set          stmtSet
	mirror       mirror             // nil in file mode
	heldValues   map[string]heldRow // value rows the open group has yet to write (heldvalues.go)
	recent       recentChains       // the chain ends this writer appended to (chain.go)
	recentValues recentValues       // the value rows it wrote lately (recentvalues.go)
	laps         pruneLaps          // retention's laps over history (prunelaps.go)

	get, insert, update, remove  *sqlite3.Stmt
	record, parent, maxTs        *sqlite3.Stmt
	unlend                       *sqlite3.Stmt
	markRemoved, unmarkRemoved   *sqlite3.Stmt
	noteHorizon, pruneDown       *sqlite3.Stmt
	pruneRange                   *sqlite3.Stmt
	lapRows, lapDelete, oldestOp *sqlite3.Stmt
	moveHorizon                  *sqlite3.Stmt
	oldRows, expiredKeys         *sqlite3.Stmt
	inlinePage, moveInline       *sqlite3.Stmt
	timeline
}

func prepareWriteTable(conn *sqlite3.Conn, n tableNames) (*writeTable, error) {
	t := &writeTable{name: n, set: stmtSet{conn: conn}, recent: recentChains{}}
	p := &t.set
	t.get = p.prepare(n.selectEntry())
	// The writer knows whether the key exists, so it picks insert or update
	// (each a simpler program than an upsert). An expired key still has
	// its row: the insert replaces it.
	t.insert = p.prepare(`INSERT OR REPLACE INTO ` + n.values + ` (key, value, content_type, created_at, updated_at, expire_at, version)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`)
	t.update = p.prepare(`UPDATE ` + n.values + ` SET value = ?2, content_type = ?3, created_at = ?4, updated_at = ?5, expire_at = ?6, version = ?7 WHERE key = ?1`)
	t.remove = p.prepare(`DELETE FROM ` + n.values + ` WHERE key = ?1`)
	t.record = p.prepare(`INSERT INTO ` + n.history + ` (key, op, ts, recorded, seq, prev, jump, jump_ts, value, content_type, expire_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)`)
	// A new version's jump is its parent's, or its parent's jump's (chain.go).
	// ... and whether the parent is a gap marker that lends its value.
	t.parent = p.prepare(`SELECT p.seq, p.ts, coalesce(j.jump, 0), coalesce(j.jump_ts, 0), NOT p.recorded AND typeof(p.value) != 'null' FROM ` + n.history + ` p
LEFT JOIN ` + n.history + ` j ON j.op_number = p.jump WHERE p.op_number = ?1`)
	t.unlend = p.prepare(`UPDATE ` + n.history + ` SET value = NULL WHERE op_number = ?1`)
	t.markRemoved = p.prepare(`INSERT OR REPLACE INTO ` + n.removed + ` (key, head) VALUES (?1, ?2)`)
	t.unmarkRemoved = p.prepare(`DELETE FROM ` + n.removed + ` WHERE key = ?1`)
	t.maxTs = p.prepare(`SELECT coalesce((SELECT ts FROM ` + n.history + ` ORDER BY op_number DESC LIMIT 1), 0)`)
	// first_ts and first_op are set once; the write lost moves up with every prune.
	t.noteHorizon = p.prepare(`INSERT INTO ` + n.horizon + ` (key, first_ts, lost_op, lost_ts, first_op) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (key) DO UPDATE SET lost_op = ?3, lost_ts = ?4`)
	// Row ?1 and the rows down its chain, in one statement: no round trip per row.
	t.pruneDown = p.prepare(`DELETE FROM ` + n.history + ` WHERE op_number IN (
	WITH RECURSIVE down(op) AS (
		SELECT ?1
		UNION ALL
		SELECT h.prev FROM down JOIN ` + n.history + ` h ON h.op_number = down.op WHERE h.prev IS NOT NULL)
	SELECT op FROM down)`)
	// The key's rows after op ?1, through ?2: no older one is left.
	t.pruneRange = p.prepare(`DELETE FROM ` + n.history + ` WHERE op_number > ?1 AND op_number <= ?2 AND key = ?3`)
	// A lap's chunk (prunelaps.go): its rows, and the ones it deletes.
	t.lapRows = p.prepare(`SELECT op_number, key, ts, seq FROM ` + n.history + ` WHERE op_number > ?1 AND op_number <= ?2 ORDER BY op_number LIMIT ?3`)
	t.lapDelete = p.prepare(`DELETE FROM ` + n.history + ` WHERE op_number BETWEEN ?1 AND ?2`)
	t.moveHorizon = p.prepare(`UPDATE ` + n.horizon + ` SET lost_op = ?2, lost_ts = ?3 WHERE key = ?1`)
	t.oldestOp = p.prepare(`SELECT coalesce(min(op_number), 0) FROM ` + n.history)
	// Rows older than a cutoff are a prefix in op_number order.
	t.oldRows = p.prepare(`SELECT key, ` + hopColumns + ` FROM ` + n.history + ` WHERE op_number > ?1 ORDER BY op_number LIMIT ?2`)
	t.expiredKeys = p.prepare(`SELECT key FROM ` + n.values + ` WHERE expire_at IS NOT NULL AND expire_at <= ?1 LIMIT ?2`)
	t.inlinePage, t.moveInline = prepareMoveInline(p, n)
	t.timeline = prepareTimeline(p, n)
	if p.err != nil {
		p.close()
		return nil, shapeError(n.name, p.err)
	}
	return t, nil
}

func (t *writeTable) close() { t.set.close() }

// current reads the live entry of key. An entry past its expiry counts as
// absent; expired tells the caller it was there.
func (t *writeTable) current(key string, now int64) (e Entry, exists, expired bool, err error) {
	e, found, err := t.stored(key)
	if err != nil {
		return Entry{}, false, false, err
	}
	e, exists, expired = asCurrent(e, found, now)
	return e, exists, expired, nil
}

// asCurrent is a row read (e, if found) as a write finds it: existing, or
// expired (then not existing).
func asCurrent(e Entry, found bool, now int64) (Entry, bool, bool) {
	if found && e.expired(now) {
		return Entry{}, false, true
	}
	return e, found, false
}

// stored reads key's row as the writer sees it, past its expiry or not.
func (t *writeTable) stored(key string) (e Entry, found bool, err error) {
	if e, found = t.heldValue(key); !found {
		if e, found = t.recentValue(key); !found {
			e, found, err = readEntry(t.get, t.valueAt, key)
		}
	}
	if err != nil {
		return Entry{}, false, dbError(err)
	}
	return e, found, nil
}

// fileLeftOut, in directory mode, is the error of a key current finds
// absent whose file is there but too large to import (PAYLOAD_TOO_LARGE)
// or unreadable: a delete removes it, a write that would build on its
// value must not start from nothing and throw the file away.
func (t *writeTable) fileLeftOut(key string) error {
	if t.mirror == nil {
		return nil
	}
	return t.mirror.leftOut(t.name.name, key)
}

// storeValue writes key's values row now: an UPDATE when the table holds
// one for it, else an INSERT (and in directory mode the file too). With
// inHistory the row holds the op number of the history row that recorded
// the value instead of the value (largevalues.go).
func (t *writeTable) storeValue(key string, e Entry, exists, inHistory bool) error {
	if t.mirror != nil {
		if err := t.mirror.stageFile(t.name.name, key, e.Value); err != nil {
			return err
		}
	}
	stmt := t.insert
	if exists {
		stmt = t.update
	}
	row := bind(stmt).text(key)
	if inHistory {
		row.int(e.Version)
	} else {
		row.blob(e.Value)
	}
	row.text(e.ContentType).int(e.CreatedAt).int(e.UpdatedAt).intOrNull(e.ExpireAt, e.ExpireAt != 0).int(e.Version)
	if err := row.exec(); err != nil {
		return dbError(err)
	}
	t.wroteValue(key, e)
	return nil
}

func (t *writeTable) delete(key string) error {
	delete(t.heldValues, key)
	delete(t.recentValues, key)
	if t.mirror != nil {
		if err := t.mirror.stageRemoval(t.name.name, key); err != nil {
			return err
		}
	}
	if err := execBound(t.remove, key); err != nil {
		return dbError(err)
	}
	return nil
}
