package sqlitekv

import (
	"context"

	"github.com/ncruces/go-sqlite3"
)

// GetRequest reads Key. With Path only that JSON fragment is returned; with
// At (an inclusive bound in Unix ms) the value the key held then.
type GetRequest struct {
	Table, Key string
	Path       JSONPath
	At         *int64
}

// reader is one read-only connection with its per-table statements.
type reader struct {
	conn          *sqlite3.Conn
	ctl           stmtSet
	begin, commit *sqlite3.Stmt
	tables        map[string]*readStmts
}

func newReader(conn *sqlite3.Conn) (*reader, error) {
	r := &reader{conn: conn, ctl: stmtSet{conn: conn}, tables: map[string]*readStmts{}}
	r.begin = r.ctl.prepare(`BEGIN`)
	r.commit = r.ctl.prepare(`COMMIT`)
	if r.ctl.err != nil {
		r.ctl.close()
		return nil, dbError(r.ctl.err)
	}
	return r, nil
}

type readStmts struct {
	set                  stmtSet
	get, at, horizon     *sqlite3.Stmt
	listFrom, listPrefix *sqlite3.Stmt
}

func (r *reader) close() {
	for _, t := range r.tables {
		t.set.close()
	}
	r.ctl.close()
	r.conn.Close()
}

// table returns the statements of a KV table, or nil when the table does
// not exist (yet): reading it is reading a missing key.
func (r *reader) table(name string) (*readStmts, error) {
	if t, ok := r.tables[name]; ok {
		return t, nil
	}
	if err := ValidateTable(name); err != nil {
		return nil, err
	}
	exists, err := tableExists(r.conn, name)
	if err != nil {
		return nil, dbError(err)
	}
	if !exists {
		return nil, nil
	}
	n := namesFor(name)
	t := &readStmts{set: stmtSet{conn: r.conn}}
	t.get = t.set.prepare(selectEntry + n.values + ` WHERE key = ?1`)
	t.at = t.set.prepare(`SELECT op, recorded, value, content_type, coalesce(expire_at, 0), ts, op_number FROM ` + n.history + `
WHERE key = ?1 AND ts <= ?2 ORDER BY ts DESC, op_number DESC LIMIT 1`)
	t.horizon = t.set.prepare(`SELECT first_ts FROM ` + n.horizon + ` WHERE key = ?1`)
	// Two statements, so a prefix is always a closed index range.
	t.listFrom = t.set.prepare(`SELECT key FROM ` + n.values + `
WHERE key >= ?1 AND (expire_at IS NULL OR expire_at > ?2) ORDER BY key LIMIT ?3 OFFSET ?4`)
	t.listPrefix = t.set.prepare(`SELECT key FROM ` + n.values + `
WHERE key >= ?1 AND key < ?5 AND (expire_at IS NULL OR expire_at > ?2) ORDER BY key LIMIT ?3 OFFSET ?4`)
	if t.set.err != nil {
		t.set.close()
		return nil, dbError(t.set.err)
	}
	r.tables[name] = t
	return t, nil
}

// Get reads a key without waiting for writes. An expired key answers
// KEY_EXPIRED; removing it is the owner's job.
func (s *Store) Get(ctx context.Context, req GetRequest) (Entry, error) {
	var e Entry
	err := s.withReader(ctx, func(r *reader) error {
		t, err := r.table(req.Table)
		if err != nil {
			return err
		}
		if t == nil {
			return Errorf(CodeKeyNotFound, "Key not found")
		}
		if req.At != nil {
			e, err = t.valueAt(req.Key, *req.At)
			return err
		}
		found, err := queryRow(t.get, func(st *sqlite3.Stmt) { e = scanEntry(st) }, req.Key)
		switch {
		case err != nil:
			return dbError(err)
		case !found:
			return Errorf(CodeKeyNotFound, "Key not found")
		case e.expired(s.opts.Now().UnixMilli()):
			return Errorf(CodeKeyExpired, "Key expired")
		}
		return nil
	})
	if err != nil || len(req.Path) == 0 {
		return e, err
	}
	fragment, err := JSONGet(e.Value, req.Path)
	if err != nil {
		return Entry{}, err
	}
	e.Value, e.ContentType = fragment, contentTypeJSON
	return e, nil
}

// valueAt answers time travel from the last history row at or before at.
// Whatever history cannot vouch for — an unrecorded write, or a span that
// retention pruned — is TIME_TRAVEL_GAP, never a guessed value.
func (t *readStmts) valueAt(key string, at int64) (Entry, error) {
	var (
		op       string
		recorded bool
		e        Entry
	)
	found, err := queryRow(t.at, func(s *sqlite3.Stmt) {
		op, recorded = s.ColumnText(0), s.ColumnBool(1)
		e = Entry{Value: s.ColumnBlob(2, []byte{}), ContentType: s.ColumnText(3), ExpireAt: s.ColumnInt64(4), UpdatedAt: s.ColumnInt64(5), Version: s.ColumnInt64(6)}
	}, key, at)
	if err != nil {
		return Entry{}, dbError(err)
	}
	if !found {
		var firstTs int64
		pruned, err := queryRow(t.horizon, func(s *sqlite3.Stmt) { firstTs = s.ColumnInt64(0) }, key)
		if err != nil {
			return Entry{}, dbError(err)
		}
		if pruned && at >= firstTs {
			return Entry{}, Errorf(CodeTimeTravelGap, "Time-travel chain gap detected for the requested timestamp: that history was pruned")
		}
		return Entry{}, Errorf(CodeKeyNotFound, "Key not found at the requested timestamp")
	}
	switch {
	case !recorded:
		return Entry{}, Errorf(CodeTimeTravelGap, "Time-travel chain gap detected for the requested timestamp: the write in effect was made with history=false")
	case op == OpDelete || op == OpExpire || e.expired(at):
		return Entry{}, Errorf(CodeKeyNotFound, "Key not found at the requested timestamp")
	}
	return e, nil
}
