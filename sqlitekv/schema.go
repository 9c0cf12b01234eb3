package sqlitekv

import (
	"regexp"
	"strings"
)

// DefaultTable is the table used when a request names none.
const DefaultTable = "kv_store"

var tableNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidateTable enforces the table-name contract. Only validated names are
// ever spliced into SQL, and then always quoted.
func ValidateTable(name string) error {
	if !tableNamePattern.MatchString(name) {
		return Errorf(CodeInvalidParameters, "Invalid table name: must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$")
	}
	if strings.HasPrefix(strings.ToLower(name), "sqlite_") {
		return Errorf(CodeInvalidParameters, "Invalid table name: the sqlite_ prefix is reserved")
	}
	return nil
}

// tableNames holds the quoted identifiers of one KV table and its companions.
// The companions use a ':' that no valid user table name can contain, so a
// user table can never collide with another table's history.
type tableNames struct {
	name    string // unquoted user-facing name
	values  string // "t"
	history string // "t:history"
	horizon string // "t:horizon"
	removed string // "t:removed"
}

func namesFor(table string) tableNames {
	return tableNames{
		name:    table,
		values:  `"` + table + `"`,
		history: `"` + table + `:history"`,
		horizon: `"` + table + `:horizon"`,
		removed: `"` + table + `:removed"`,
	}
}

// ddl creates a table and its companions.
//
//   - values: the live keys. Times are Unix milliseconds; version is the
//     op_number of the key's last write, so it is unique and only grows
//     (it is the ETag), and it is where the key's chain of versions
//     starts (chain.go).
//   - history: one row per write, in op_number order; ts never decreases
//     with op_number, so op_number order is time order and needs no index.
//     recorded=0 marks a history=false write: a gap. op_number needs no
//     AUTOINCREMENT (an extra page write per write): retention never
//     removes a key's newest row, so the largest op_number is never reused.
//     seq, prev, jump and jump_ts (the time of the row jump points at)
//     thread the key's chain; they come before the value so that a walk
//     down a chain never reads a value's pages.
//   - removed: where the chain of each key that is not live starts: the
//     write that deleted or expired it.
//   - horizon: per key, what retention pruned away, so reads before the
//     retained history answer "unknown" instead of a wrong value: first_ts,
//     when the key's history began, and lost_op and lost_ts, the newest
//     write pruned (the one the key's oldest kept row links back to), so a
//     watch from a time can tell whether that write came before it (NULL
//     where a kvd without these columns pruned last: not known); and
//     first_op, the op number of the key's first write (NULL where a kvd
//     without it pruned first), so that a snapshot by an op number in the
//     millisecond of that write tells before it (404) from after (409).
func (n tableNames) ddl() string {
	return `
CREATE TABLE IF NOT EXISTS ` + n.values + ` (
	key          TEXT PRIMARY KEY,
	value        BLOB NOT NULL,
	content_type TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	expire_at    INTEGER,
	version      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "` + n.name + `:expiry" ON ` + n.values + ` (expire_at) WHERE expire_at IS NOT NULL;
` + n.historyDDL(n.history) + n.removedDDL() + `
CREATE TABLE IF NOT EXISTS ` + n.horizon + ` (
	key      TEXT PRIMARY KEY,
	first_ts INTEGER NOT NULL,
	lost_op  INTEGER,
	lost_ts  INTEGER,
	first_op INTEGER
) WITHOUT ROWID;
`
}

// lostColumns read a horizon row's key and the newest write it lost (0:
// not known).
const lostColumns = `key, coalesce(lost_op, 0), coalesce(lost_ts, 0)`

func (n tableNames) removedDDL() string {
	return `
CREATE TABLE IF NOT EXISTS ` + n.removed + ` (
	key  TEXT PRIMARY KEY,
	head INTEGER NOT NULL
) WITHOUT ROWID;`
}

func (n tableNames) historyDDL(name string) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
	op_number    INTEGER PRIMARY KEY,
	key          TEXT NOT NULL,
	op           TEXT NOT NULL,
	ts           INTEGER NOT NULL,
	recorded     INTEGER NOT NULL,
	seq          INTEGER NOT NULL,
	prev         INTEGER,
	jump         INTEGER,
	jump_ts      INTEGER,
	value        BLOB,
	content_type TEXT,
	expire_at    INTEGER
);`
}
