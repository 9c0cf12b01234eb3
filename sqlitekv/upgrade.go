package sqlitekv

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"
)

// upgrade brings every table written before chains (chain.go) to them.
// Such a table has no removed table; its history has kvd's index on
// (key, ts) instead of chain columns. (A table of the database's own that
// only looks like a KV table by its name is left alone.) Then every
// horizon gets the columns of each key's newest lost write, if it lacks
// them (addLostColumns), and the one of its first write's op number. It
// runs at open, before any reader exists, a table's step per
// transaction: a crash leaves each either undone or done, and the next
// open does what is left.
func (w *Writer) upgrade() error {
	old, err := oldTables(w.conn)
	if err != nil {
		return err
	}
	// Each table's log is copied and emptied by the upgrade itself: the
	// background checkpointer, asked after a table's commit, held that
	// checkpoint off, and the next table's rewrite added to the log.
	w.upgrading = true
	defer func() { w.upgrading = false }()
	for _, name := range old {
		err := w.upgradeTable(namesFor(name))
		if LockedElsewhere(err) {
			return err // the checkpoint would wait out the lock a second time
		}
		// Copied into the file and emptied, the log starts over and holds
		// one table's rewrite at a time, not all of them. (On a full disk
		// this fails too, and a failed rewrite's frames stay in the log
		// until the database is opened with room.)
		_, _, cerr := w.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_TRUNCATE)
		checkpointed(w.path, w.opts, cerr)
		if CodeOf(err) == CodeStorageFull {
			return &Error{Code: CodeStorageFull, Cause: err, Message: fmt.Sprintf("Disk is full: table %q, written by an older kvd, "+
				"is upgraded before the database is served, which needs free space of two to three times its size%s; nothing was lost", name, w.sortsRoom())}
		}
		if errors.Is(err, sqlite3.IOERR) {
			return &Error{Code: CodeDatabaseError, Cause: err, Message: fmt.Sprintf("Disk I/O error: table %q, written by an older kvd, "+
				"is upgraded before the database is served, in its file and in the temporary folder %s, where its sorts spill; nothing was lost", name, tempFolder())}
		}
		if err != nil && !unfitForUpgrade(err) {
			return err
		}
	}
	lacking, err := horizonsWithout(w.conn, "lost_op")
	if err != nil {
		return err
	}
	for _, name := range lacking {
		if err := w.addLostColumns(namesFor(name)); err != nil {
			return err
		}
	}
	if lacking, err = horizonsWithout(w.conn, "first_op"); err != nil {
		return err
	}
	for _, name := range lacking {
		if err := w.conn.Exec(`ALTER TABLE ` + namesFor(name).horizon + ` ADD COLUMN first_op INTEGER`); err != nil {
			return dbError(err)
		}
	}
	return nil
}

// upgradeFailure is an open's failure in upgrade (UpgradeFailed).
type upgradeFailure struct{ error }

func (f upgradeFailure) Unwrap() error { return f.error }

// UpgradeFailed reports whether err is an open's failure to upgrade a
// table an older kvd wrote. Opened again at once, the database would
// most likely fail so again (a full disk), after rewriting the table
// again for as long as that takes, the disk full meanwhile for every
// other database on it.
func UpgradeFailed(err error) bool { return errors.As(err, new(upgradeFailure)) }

// RoomFor is the free space an upgrade of the database at path may use:
// its disk's, or the temporary folder's if that is another disk with
// less: the fuller of the two is the one that fails it, and space freed
// on the other (any program's) is no more room for it.
// (path, a file or directory mode's folder, is asked itself: its folder
// may be another disk than its parent's.)
func RoomFor(path string) uint64 {
	if _, err := os.Stat(path); err != nil {
		path = filepath.Dir(path)
	}
	room, _ := freeBytes(path) // not known: none
	if dir := tempFolder(); !onOneDisk(dir, path) {
		tempRoom, _ := freeBytes(dir)
		room = min(room, tempRoom)
	}
	return room
}

// DatabaseFile is the SQLite file of the database at path: in directory
// mode, whose path is its folder, the folder's cache.
func DatabaseFile(path string) string {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return filepath.Join(path, dirCacheFile)
	}
	return path
}

// sortsRoom says where else than beside the database an upgrade needs
// room: its sorts spill to the temporary folder (SQLITE_TMPDIR, TMPDIR),
// which may be another disk (a tmpfs).
func (w *Writer) sortsRoom() string {
	if dir := tempFolder(); !onOneDisk(dir, filepath.Dir(w.path)) {
		return " beside the database, and room for its sorts in the temporary folder " + dir
	}
	return ""
}

// unfitForUpgrade tells a table whose rows or shape are not an older
// kvd's (another program's table of a KV table's names, a values table
// dropped, a history row without its op) from a failure of the disk or a
// lock. Such a table is left as it was, its upgrade undone: its requests
// are refused (400, shapeError) and the database's other tables served.
// Before, its upgrade failed the open, and every request of the database
// answered 500.
func unfitForUpgrade(err error) bool {
	return errors.Is(err, sqlite3.ERROR) || errors.Is(err, sqlite3.CONSTRAINT) || errors.Is(err, sqlite3.MISMATCH) || errors.Is(err, errGeneratedColumn)
}

// errGeneratedColumn: a generated column's expression is in its table's
// CREATE statement alone, which the upgrade does not take apart.
var errGeneratedColumn = errors.New("its history has a generated column of the database's own, which the upgrade cannot carry over: drop it (and what uses it) to have the table upgraded")

// addLostColumns gives a horizon made before them its lost_op and
// lost_ts (schema.go), NULL in every row: what the keys pruned so far
// lost is not known.
func (w *Writer) addLostColumns(n tableNames) error {
	// In one transaction: a crash leaves both columns or neither.
	if err := w.conn.Exec(`BEGIN IMMEDIATE`); err != nil {
		return dbError(err)
	}
	err := w.conn.Exec(`ALTER TABLE ` + n.horizon + ` ADD COLUMN lost_op INTEGER;
ALTER TABLE ` + n.horizon + ` ADD COLUMN lost_ts INTEGER;
COMMIT`)
	if err != nil {
		w.conn.Exec(`ROLLBACK`)
		return dbError(err)
	}
	return nil
}

// horizonsWithout lists the KV tables of conn's database whose horizon
// predates column (one of schema.go's). A horizon that is not kvd's (no
// first_ts) is left alone.
func horizonsWithout(conn *sqlite3.Conn, column string) ([]string, error) {
	return tablesWhere(conn, `SELECT count(*) FILTER (WHERE name = 'first_ts') > 0 AND count(*) FILTER (WHERE name = '`+column+`') = 0
FROM pragma_table_info(?1 || ':horizon')`)
}

// oldTables lists the KV tables of conn's database in an older kvd's
// format, which upgradeTable rewrites.
func oldTables(conn *sqlite3.Conn) ([]string, error) {
	return tablesWhere(conn, `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1 || ':history_by_key')
AND NOT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = ?1 || ':removed')`)
}

// tablesWhere lists the KV tables of conn's database for whose name (?1)
// query selects true.
func tablesWhere(conn *sqlite3.Conn, query string) ([]string, error) {
	tables, err := tablesWith(conn, ":history")
	if err != nil {
		return nil, err
	}
	stmt, _, err := conn.Prepare(query)
	if err != nil {
		return nil, dbError(err)
	}
	defer stmt.Close()
	var matching []string
	for _, name := range tables {
		var matches bool
		if _, err := queryRow(stmt, func(s *sqlite3.Stmt) { matches = s.ColumnBool(0) }, name); err != nil {
			return nil, dbError(err)
		}
		if matches {
			matching = append(matching, name)
		}
	}
	return matching, nil
}

// needsUpgrade reports whether conn's database has a table to upgrade.
func needsUpgrade(conn *sqlite3.Conn) (bool, error) {
	old, err := oldTables(conn)
	if err != nil || len(old) > 0 {
		return len(old) > 0, err
	}
	// A horizon without first_op is read without it (prepareHorizon).
	lacking, err := horizonsWithout(conn, "lost_op")
	return len(lacking) > 0, err
}

// upgradeTable rewrites n's history with each key's chain, and starts
// the chains of keys that are not live in the removed table. The links
// are worked out key by key along the old index into a table of their
// own, then the rows are copied in op_number order, each once,
// appending. The old history and its index go; indexes and triggers of
// the database's own on it are made again on the new one.
func (w *Writer) upgradeTable(n tableNames) (err error) {
	heard := func(error) {}
	if w.opts.Upgrading != nil {
		heard = w.opts.Upgrading(w.path, n.name)
	}
	// Sorts spill to files, not memory: the index of the database's own
	// on a history of 7.5 million versions, made again (rewriteHistory),
	// ran the connection out of its 256 MiB.
	if err := w.conn.Exec(`PRAGMA temp_store = FILE; BEGIN IMMEDIATE`); err != nil {
		w.conn.Exec(`PRAGMA temp_store = MEMORY`)
		heard(err)
		return dbError(err)
	}
	committed := false
	defer func() {
		if !committed {
			// An error, or a panic on its way up (the driver panics when
			// SQLite runs out of memory): none of the rewrite may stay.
			w.conn.Exec(`ROLLBACK`)
			err = dbError(cmp.Or(err, errUpgradeInterrupted))
		}
		w.conn.Exec(`PRAGMA legacy_alter_table = OFF; PRAGMA temp_store = MEMORY`)
		heard(err)
	}()
	if err := w.rewriteHistory(n); err != nil {
		return err
	}
	if err := w.conn.Exec(`COMMIT`); err != nil {
		return err
	}
	committed = true
	return nil
}

// errUpgradeInterrupted is what a table's upgrade that a panic stopped
// is logged with.
var errUpgradeInterrupted = errors.New("interrupted")

// rewriteHistory is upgradeTable's work, inside its transaction.
func (w *Writer) rewriteHistory(n tableNames) error {
	own, err := schemaOfItsOwnOn(w.conn, n)
	if err != nil {
		return err
	}
	extra, err := extraColumnsOf(w.conn, n)
	if err != nil {
		return err
	}
	// The links are kept in the database's own file: in memory, those of
	// a table of 7 million versions ran the connection out of its 256 MiB
	// (the table could never be served), and a temporary file would take
	// its room from the temporary folder, not the data's disk.
	chained, links := `"`+n.name+`:history:chained"`, `"`+n.name+`:history:links"`
	if err := w.conn.Exec(n.historyDDL(chained) + n.removedDDL() + `
CREATE TABLE ` + links + ` (op INTEGER PRIMARY KEY, seq INTEGER NOT NULL, prev INTEGER, jump INTEGER, jump_ts INTEGER);`); err != nil {
		return err
	}
	var columns, values string
	for _, c := range extra {
		if err := w.conn.Exec(`ALTER TABLE ` + chained + ` ADD COLUMN ` + c.definition); err != nil {
			return err
		}
		columns, values = columns+", "+c.name, values+", h."+c.name
	}
	if err := w.linkAlongKeyIndex(n, links); err != nil {
		return err
	}
	// legacy_alter_table: the rename leaves alone the views and triggers
	// that name the history. Checked as it renames, they would name a
	// table that is not there, which failed the upgrade.
	return w.conn.Exec(`INSERT INTO ` + chained + ` (op_number, key, op, ts, recorded, seq, prev, jump, jump_ts, value, content_type, expire_at` + columns + `)
SELECT h.op_number, h.key, h.op, h.ts, h.recorded, l.seq, l.prev, l.jump, l.jump_ts, h.value, h.content_type, h.expire_at` + values + `
FROM ` + n.history + ` h JOIN ` + links + ` l ON l.op = h.op_number ORDER BY h.op_number;
DROP TABLE ` + links + `;
DROP TABLE ` + n.history + `;
PRAGMA legacy_alter_table = ON;
ALTER TABLE ` + chained + ` RENAME TO ` + n.history + `;
` + own)
}

// extraColumn is a column another program added to a history: the
// upgrade carries it over, with its values.
type extraColumn struct{ name, definition string }

// extraColumnsOf lists the columns of n's history that an older kvd did
// not make, each with its quoted name and its declaration for ALTER
// TABLE ADD COLUMN: its type and default. Its constraints stay behind (a
// NOT NULL without a default could not be added); a generated column
// fails the upgrade (errGeneratedColumn), since what uses it would break.
func extraColumnsOf(conn *sqlite3.Conn, n tableNames) ([]extraColumn, error) {
	stmt, _, err := conn.Prepare(`SELECT '"' || replace(name, '"', '""') || '"', type, dflt_value, hidden FROM pragma_table_xinfo(?1 || ':history')
WHERE name COLLATE NOCASE NOT IN ('op_number', 'key', 'op', 'ts', 'recorded', 'value', 'content_type', 'expire_at')`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	if err := stmt.BindText(1, n.name); err != nil {
		return nil, err
	}
	var extra []extraColumn
	for stmt.Step() {
		if stmt.ColumnInt(3) != 0 {
			return nil, errGeneratedColumn
		}
		c := extraColumn{name: stmt.ColumnText(0)}
		c.definition = c.name + " " + stmt.ColumnText(1)
		if stmt.ColumnType(2) != sqlite3.NULL {
			c.definition += " DEFAULT (" + stmt.ColumnText(2) + ")" // an expression comes without its parentheses
		}
		extra = append(extra, c)
	}
	return extra, stmt.Err()
}

// schemaOfItsOwnOn returns the statements that made the indexes and
// triggers the database has on n's history beside kvd's old index: they
// go with the old history, and are made again on the new one.
func schemaOfItsOwnOn(conn *sqlite3.Conn, n tableNames) (string, error) {
	stmt, _, err := conn.Prepare(`SELECT group_concat(sql, ';' || char(10)) || ';' FROM sqlite_schema
WHERE tbl_name COLLATE NOCASE = ?1 || ':history' AND type IN ('index', 'trigger') AND sql IS NOT NULL
	AND name COLLATE NOCASE != ?1 || ':history_by_key'`)
	if err != nil {
		return "", err
	}
	defer stmt.Close()
	var own string
	_, err = queryRow(stmt, func(s *sqlite3.Stmt) { own = s.ColumnText(0) }, n.name)
	return own, err
}

// linkAlongKeyIndex works out every row's links, one key's rows at a
// time, oldest first, into links, and puts the newest row of each
// key that is not live in the removed table.
func (w *Writer) linkAlongKeyIndex(n tableNames, links string) error {
	set := stmtSet{conn: w.conn}
	defer set.close()
	byKey := set.prepare(`SELECT op_number, key, ts FROM ` + n.history + ` ORDER BY key, ts, op_number`)
	link := set.prepare(`INSERT INTO ` + links + ` (op, seq, prev, jump, jump_ts) VALUES (?1, ?2, ?3, ?4, ?5)`)
	markRemoved := set.prepare(`INSERT INTO ` + n.removed + ` (key, head)
SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM ` + n.values + ` WHERE key = ?1)`)
	if set.err != nil {
		return set.err
	}
	var key string
	var rows []chainRow // the current key's rows so far, oldest first
	endKey := func() error {
		if len(rows) == 0 {
			return nil
		}
		return execBound(markRemoved, key, rows[len(rows)-1].op)
	}
	for byKey.Step() {
		row, k := chainRow{byKey.ColumnInt64(0), byKey.ColumnInt64(2)}, byKey.ColumnText(1)
		if k != key {
			if err := endKey(); err != nil {
				return err
			}
			key, rows = k, rows[:0]
		}
		seq := int64(len(rows)) + 1
		var prev, jump, jumpTs any
		if seq > 1 {
			j := rows[jumpSeq(seq)-1]
			prev, jump, jumpTs = rows[seq-2].op, j.op, j.ts
		}
		if err := execBound(link, row.op, seq, prev, jump, jumpTs); err != nil {
			return err
		}
		rows = append(rows, row)
	}
	if err := byKey.Err(); err != nil {
		return err
	}
	return endKey()
}
