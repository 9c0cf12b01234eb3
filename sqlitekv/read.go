package sqlitekv

import (
	"context"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// GetRequest reads Key. With Path only that JSON fragment is returned; with
// At (an inclusive bound in Unix ms) the value the key held then.
type GetRequest struct {
	Table, Key string
	Path       JSONPath
	At         *int64
}

// reader is one read-only connection with its per-table statements, and
// the read transaction it keeps open between reads (snapshots.go).
type reader struct {
	conn          *sqlite3.Conn
	ctl           stmtSet
	begin, commit *sqlite3.Stmt
	tables        map[string]*readStmts
	commits       uint64    // the writer's commits when its transaction began
	began         time.Time // when it began
	retired       bool      // by a fault: nothing calls into it (faults.go)
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
	names                tableNames
	set                  stmtSet
	watch                *changeStmts // changes.go
	get                  *sqlite3.Stmt
	listFrom, listPrefix *sqlite3.Stmt
	timeline
}

func (r *reader) close() {
	if r.retired {
		return
	}
	guardedClose(r.conn, func() error {
		r.forgetTables()
		r.ctl.close()
		forgetLarge(r.conn)
		return r.conn.Close()
	})
}

// forgetTables closes the statements of every table, to be prepared again
// at their next use.
func (r *reader) forgetTables() {
	for _, t := range r.tables {
		t.set.close()
	}
	clear(r.tables)
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
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	n := namesFor(name)
	t := &readStmts{names: n, set: stmtSet{conn: r.conn}}
	t.get = t.set.prepare(n.selectEntry())
	t.timeline = prepareTimeline(&t.set, n)
	// Two statements, so a prefix is always a closed index range.
	t.listFrom = t.set.prepare(`SELECT key FROM ` + n.values + `
WHERE key >= ?1 AND (expire_at IS NULL OR expire_at > ?2) ORDER BY key LIMIT ?3 OFFSET ?4`)
	t.listPrefix = t.set.prepare(`SELECT key FROM ` + n.values + `
WHERE key >= ?1 AND key < ?5 AND (expire_at IS NULL OR expire_at > ?2) ORDER BY key LIMIT ?3 OFFSET ?4`)
	if t.set.err != nil {
		t.set.close()
		return nil, shapeError(name, t.set.err)
	}
	r.tables[name] = t
	return t, nil
}

// Get reads a key without waiting for writes, following references. An
// expired key answers KEY_EXPIRED; removing it is the owner's job.
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
		now := s.Now()
		load := func(key string) (Entry, error) {
			if req.At != nil {
				return t.stateAt(key, s.asOf(*req.At))
			}
			return t.live(key, now)
		}
		if e, err = load(req.Key); err != nil || e.ContentType != RefContentType {
			return err
		}
		// withReader's snapshot holds the whole chain.
		e, err = followRefs(req.Key, e, load)
		return err
	})
	if err != nil || !req.Path.Given() {
		return e, err
	}
	fragment, err := jsonGet(e.Value, req.Path)
	if err != nil {
		return Entry{}, err
	}
	e.Value, e.ContentType = fragment, contentTypeJSON
	return e, nil
}

// live reads the current entry of key.
func (t *readStmts) live(key string, now int64) (Entry, error) {
	e, err := t.stored(key)
	if err == nil && e.expired(now) {
		return Entry{}, Errorf(CodeKeyExpired, "Key expired")
	}
	return e, err
}

// current reads key's row as a write would find it (the writer's
// writeTable.current): found, or found expired (then not exists).
func (t *readStmts) current(key string, now int64) (e Entry, exists, expired bool, err error) {
	e, found, err := readEntry(t.get, t.valueAt, key)
	if err != nil {
		return Entry{}, false, false, dbError(err)
	}
	e, exists, expired = asCurrent(e, found, now)
	return e, exists, expired, nil
}

// stored reads key's row as it is, past its expiry or not: directory
// mode compares an expired row with the file before it answers KEY_EXPIRED.
func (t *readStmts) stored(key string) (Entry, error) {
	e, found, err := readEntry(t.get, t.valueAt, key)
	switch {
	case err != nil:
		return Entry{}, dbError(err)
	case !found:
		return Entry{}, Errorf(CodeKeyNotFound, "Key not found")
	}
	return e, nil
}
