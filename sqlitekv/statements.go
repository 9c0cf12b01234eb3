package sqlitekv

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// stmtSet prepares statements once per connection and closes them together.
type stmtSet struct {
	conn  *sqlite3.Conn
	stmts []*sqlite3.Stmt
	err   error
}

// prepare returns a prepared statement; the first failure sticks so a
// caller can prepare a whole set and check once.
func (p *stmtSet) prepare(sql string) *sqlite3.Stmt {
	if p.err != nil {
		return nil
	}
	stmt, _, err := p.conn.Prepare(sql)
	if err != nil {
		p.err = err
		return nil
	}
	p.stmts = append(p.stmts, stmt)
	return stmt
}

func (p *stmtSet) close() {
	for _, s := range p.stmts {
		s.Close()
	}
	p.stmts = nil
}

// tableExists asks the schema whether table is a KV table, so a read of
// a table nobody wrote yet is a miss rather than an error. SQLite's names
// are case-insensitive and shared with indexes and views: a name that is
// taken under another casing, or by something that is not a KV table (the
// database's own tables, say), is refused rather than half-used.
func tableExists(conn *sqlite3.Conn, table string) (bool, error) {
	stmt, _, err := conn.Prepare(`SELECT name, type FROM sqlite_schema
WHERE name COLLATE NOCASE IN (?1, ?1 || ':history', ?1 || ':horizon', ?1 || ':removed')`)
	if err != nil {
		return false, dbError(err)
	}
	defer stmt.Close()
	if err := stmt.BindText(1, table); err != nil {
		return false, dbError(err)
	}
	found := map[string]string{} // name → type
	for stmt.Step() {
		found[stmt.ColumnText(0)] = stmt.ColumnText(1)
	}
	if err := stmt.Err(); err != nil {
		return false, dbError(err)
	}
	for _, name := range slices.Sorted(maps.Keys(found)) { // sorted: the same answer every time
		if kvTable := trimTableSuffix(name); kvTable != table {
			return false, Errorf(CodeInvalidParameters, "Table names are case-insensitive: this database has a table %q", kvTable)
		}
	}
	switch {
	case len(found) == 0:
		return false, nil
	case found[table] != "table" || found[table+":history"] != "table":
		return false, Errorf(CodeInvalidParameters, "Table %q is taken in this database by something that is not a kvd table", table)
	}
	return true, nil
}

// shapeError is why a KV table's statements could not be prepared: a
// table of kvd's name without kvd's columns (another program's, made
// before kvd used the file) is the client's to sort out, a 400 naming the
// table, never a 500; anything else is a database error.
func shapeError(table string, err error) error {
	if errors.Is(err, sqlite3.ERROR) {
		return &Error{Code: CodeInvalidParameters, Cause: err,
			Message: fmt.Sprintf("Table %q is taken in this database by a table without a kvd table's columns, or is an older kvd's that could not be upgraded (kvd's log says why)", table)}
	}
	return dbError(err)
}

// trimTableSuffix is the KV table a table of kvd's names: "t" for
// "t:history", not the internal name a client never sent.
func trimTableSuffix(name string) string {
	for _, suffix := range []string{":history", ":horizon", ":removed"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base
		}
	}
	return name
}

// execBound binds args in order, runs stmt to completion and resets it.
func execBound(stmt *sqlite3.Stmt, args ...any) error { return bindBoxed(stmt, args...).exec() }

// queryRow binds args, steps once and hands the row to scan. It reports
// false when there is no row; the statement is always reset.
func queryRow(stmt *sqlite3.Stmt, scan func(*sqlite3.Stmt), args ...any) (bool, error) {
	return bindBoxed(stmt, args...).row(scan)
}

// bindAll binds args in order, each of a type params takes.
func bindAll(stmt *sqlite3.Stmt, args ...any) error { return bindBoxed(stmt, args...).err }

// bindBoxed binds args as params does, boxed: for the statements off the
// hot path, where a call reads shorter.
func bindBoxed(stmt *sqlite3.Stmt, args ...any) *params {
	p := bind(stmt)
	for _, arg := range args {
		switch v := arg.(type) {
		case string:
			p.text(v)
		case []byte:
			p.blob(v)
		case int64:
			p.int(v)
		case int:
			p.int(int64(v))
		case bool:
			p.boolean(v)
		case nil:
			p.null()
		default:
			if p.next() > 0 {
				p.err = errors.New("sqlitekv: unsupported bind type")
			}
		}
	}
	return p
}

// params binds a statement's parameters in order without boxing them: the
// statements every write runs use it, where bindAll's ...any allocated for
// each int64 and string it carried. The first error is kept.
type params struct {
	stmt *sqlite3.Stmt
	n    int
	err  error
}

func bind(stmt *sqlite3.Stmt) *params { return &params{stmt: stmt} }

// next is the index of the next parameter; 0 once a bind failed.
func (p *params) next() int {
	p.n++
	if p.err != nil {
		return 0
	}
	return p.n
}

func (p *params) text(v string) *params {
	if i := p.next(); i > 0 {
		p.err = p.stmt.BindText(i, v)
	}
	return p
}

func (p *params) int(v int64) *params {
	if i := p.next(); i > 0 {
		p.err = p.stmt.BindInt64(i, v)
	}
	return p
}

// intOrNull binds v, or NULL when it is not there.
func (p *params) intOrNull(v int64, there bool) *params {
	if !there {
		return p.null()
	}
	return p.int(v)
}

func (p *params) null() *params {
	if i := p.next(); i > 0 {
		p.err = p.stmt.BindNull(i)
	}
	return p
}

func (p *params) boolean(v bool) *params {
	if i := p.next(); i > 0 {
		p.err = p.stmt.BindBool(i, v)
	}
	return p
}

// blob binds v; nil is NULL.
func (p *params) blob(v []byte) *params {
	if v == nil {
		return p.null()
	}
	if i := p.next(); i > 0 {
		p.err = p.stmt.BindBlob(i, v)
		noteValue(p.stmt.Conn(), v)
	}
	return p
}

// exec runs the statement to completion and resets it.
func (p *params) exec() error {
	if p.err != nil {
		return p.err
	}
	return p.stmt.Exec()
}

// row steps the statement once and hands the row to scan. It reports
// false when there is no row; the statement is always reset.
func (p *params) row(scan func(*sqlite3.Stmt)) (bool, error) {
	defer p.stmt.Reset()
	if p.err != nil {
		return false, p.err
	}
	if !p.stmt.Step() {
		return false, p.stmt.Err()
	}
	scan(p.stmt)
	return true, nil
}
