package sqlitekv

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// TestUpgrade_ChainsAFileTheKeyIndexSchemaWrote opens a database written
// before chains (httpapi's migration fixture, whose answers
// TestMigration_V1HistoryFile checks over HTTP): every table gets its
// chains and removed table, and loses the key index.
func TestUpgrade_ChainsAFileTheKeyIndexSchemaWrote(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("..", "httpapi", "testdata", "v1-history.db"))
	must(t, err)
	path := filepath.Join(t.TempDir(), "v1.db")
	must(t, os.WriteFile(path, old, 0o600))
	s, err := Open(path, false, Options{})
	must(t, err)
	must(t, s.Close())

	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	must(t, err)
	defer conn.Close()
	checkIntegrity(t, conn)
	checkAllChains(t, conn)
	for _, table := range []string{"kv_store", "orders"} {
		stmt, _, err := conn.Prepare(`SELECT
(SELECT count(*) FROM sqlite_schema WHERE name = ?1 || ':history_by_key'),
(SELECT count(*) FROM sqlite_schema WHERE name = ?1 || ':removed'),
(SELECT count(*) FROM "` + table + `:removed"),
(SELECT count(*) FROM pragma_table_info(?1 || ':horizon') WHERE name IN ('lost_op', 'lost_ts'))`)
		must(t, err)
		must(t, stmt.BindText(1, table))
		if !stmt.Step() {
			t.Fatal(stmt.Err())
		}
		if index, removed, gone := stmt.ColumnInt(0), stmt.ColumnInt(1), stmt.ColumnInt(2); index != 0 || removed != 1 || gone == 0 {
			t.Errorf("%s: key index %d, removed table %d with %d keys; want 0, 1, some", table, index, removed, gone)
		}
		if lost := stmt.ColumnInt(3); lost != 2 {
			t.Errorf("%s: the horizon has %d of lost_op and lost_ts, want both", table, lost)
		}
		stmt.Close()
	}
}

// TestUpgrade_HorizonLearnsWhatEachKeyLost opens a file whose horizon
// predates lost_op and lost_ts (as kvd made it until they came): it gets
// them, NULL. A key pruned before then is a gap to a watch from a time
// after its lost write (that write's time is not known: the safe answer),
// until retention prunes it again and notes what it lost.
func TestUpgrade_HorizonLearnsWhatEachKeyLost(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	opts := Options{HistoryKeep: 2, Now: func() time.Time { return now }} // retention at every write
	path := filepath.Join(t.TempDir(), "lost.db")
	s, err := Open(path, true, opts)
	must(t, err)
	put(t, s, "o", "v") // op 1: the newest op kept before the times watched from
	for range 4 {
		put(t, s, "k", "v") // ops 2 to 5
	}
	now = now.Add(time.Second)
	put(t, s, "k", "v") // ops 6, 7: k lost 2 to 5
	put(t, s, "k", "v")
	must(t, s.Close())

	conn, err := sqlite3.Open(path)
	must(t, err)
	must(t, conn.Exec(`CREATE TABLE old (key TEXT PRIMARY KEY, first_ts INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO old SELECT key, first_ts FROM "kv_store:horizon";
DROP TABLE "kv_store:horizon";
ALTER TABLE old RENAME TO "kv_store:horizon"`))
	must(t, conn.Close())

	// Read-only, the file cannot gain them: it is refused, not served
	// with reads that would fail on the missing columns.
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i: %v %s", err, out)
	}
	_, err = Open(path, false, opts)
	exec.Command("chattr", "-i", path).Run()
	if CodeOf(err) != CodeReadOnly || !strings.Contains(err.Error(), "older kvd") {
		t.Fatalf("open of the file read-only: got %v, want READ_ONLY naming an older kvd", err)
	}

	s, err = Open(path, false, opts)
	must(t, err)
	t.Cleanup(func() {
		must(t, s.Close())
		must(t, CheckIntegrity(path))
	})
	gap := func(since time.Time) int64 {
		t.Helper()
		p, err := s.ReadChanges(context.Background(), ChangesRequest{Table: DefaultTable, Key: "k", After: 1, CheckGap: true, Since: since.UnixMilli(), Limit: 10})
		must(t, err)
		return p.Gap
	}
	if g := gap(now.Add(-time.Second / 2)); g != 6 {
		t.Fatalf("since after the lost op 5, not noted: gap %d, want 6", g)
	}
	now = now.Add(time.Second)
	put(t, s, "k", "v") // ops 8, 9 prune 6 and 7, noted
	put(t, s, "k", "v")
	if g := gap(now.Add(-time.Second / 2)); g != 0 {
		t.Fatalf("since after the lost op 7, noted: gap %d, want none", g)
	}
	if g := gap(now.Add(-time.Second)); g != 8 {
		t.Fatalf("since op 7's time: gap %d, want 8", g)
	}
}

// TestUpgrade_HorizonLearnsEachKeysFirstOp opens a file whose horizon
// predates first_op. Read-only, it is served all the same, its answers
// those of the kvd that wrote it (a snapshot in the millisecond of a
// pruned first write is a gap); writable, it gains the column, and a key
// pruned from then on tells a snapshot before its first write (404).
func TestUpgrade_HorizonLearnsEachKeysFirstOp(t *testing.T) {
	opts := Options{HistoryKeep: 1, Now: func() time.Time { return time.Unix(1_700_000_000, 0) }} // one millisecond throughout
	path := filepath.Join(t.TempDir(), "first.db")
	s, err := Open(path, true, opts)
	must(t, err)
	put(t, s, "x", "v") // op 1
	for range 3 {
		put(t, s, "k", "v") // ops 2 to 4: k's first write, op 2, pruned
	}
	must(t, s.Close())
	conn, err := sqlite3.Open(path)
	must(t, err)
	must(t, conn.Exec(`ALTER TABLE "kv_store:horizon" DROP COLUMN first_op`))
	must(t, conn.Close())
	snapshot := func(s *Store, key string, op int64) Code {
		t.Helper()
		_, err := s.SnapshotAt(context.Background(), DefaultTable, key, op)
		return CodeOf(err)
	}

	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i: %v %s", err, out)
	}
	s, err = Open(path, false, opts)
	exec.Command("chattr", "-i", path).Run()
	must(t, err)
	if got := snapshot(s, "k", 1); got != CodeTimeTravelGap {
		t.Fatalf("read-only, k's snapshot at op 1: %q, want %s as the earlier kvd answered", got, CodeTimeTravelGap)
	}
	must(t, s.Close())

	s, err = Open(path, false, opts)
	must(t, err)
	t.Cleanup(func() {
		must(t, s.Close())
		must(t, CheckIntegrity(path))
	})
	for range 3 {
		put(t, s, "j", "v") // ops 5 to 7: j's first write, op 5, pruned
	}
	if got := snapshot(s, "j", 4); got != CodeKeyNotFound {
		t.Fatalf("j's snapshot at op 4, before its first write: %q, want %s", got, CodeKeyNotFound)
	}
	if got := snapshot(s, "k", 1); got != CodeTimeTravelGap {
		t.Fatalf("k's snapshot at op 1, k pruned without first_op: %q, want %s", got, CodeTimeTravelGap)
	}
}

// keyIndexDDL is a table as kvd made it before chains.
const keyIndexDDL = `
CREATE TABLE kv_store (key TEXT PRIMARY KEY, value BLOB NOT NULL, content_type TEXT NOT NULL,
	created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expire_at INTEGER, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX "kv_store:expiry" ON kv_store (expire_at) WHERE expire_at IS NOT NULL;
CREATE TABLE "kv_store:history" (op_number INTEGER PRIMARY KEY, key TEXT NOT NULL, op TEXT NOT NULL, ts INTEGER NOT NULL,
	recorded INTEGER NOT NULL, value BLOB, content_type TEXT, expire_at INTEGER);
CREATE INDEX "kv_store:history_by_key" ON "kv_store:history" (key, ts);
CREATE TABLE "kv_store:horizon" (key TEXT PRIMARY KEY, first_ts INTEGER NOT NULL) WITHOUT ROWID;`

// BenchmarkUpgrade times the upgrade of a table with 1,000,000 versions
// of 10,000 keys (100-byte values) written before chains.
func BenchmarkUpgrade(b *testing.B) {
	const versions = 1_000_000
	for range b.N {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "old.db")
		writeOldTables(b, path, []string{"kv_store"}, versions, 10_000, 100)
		b.StartTimer()
		s, err := Open(path, false, Options{})
		must(b, err)
		b.StopTimer()
		must(b, s.Close())
	}
	b.ReportMetric(float64(versions)*float64(b.N)/b.Elapsed().Seconds(), "versions/s")
}

// writeOldTables writes a database as kvd did before chains: each table
// with versions writes over keys keys, of values of size bytes, each
// key's newest write live.
func writeOldTables(t testing.TB, path string, tables []string, versions, keys, size int) {
	t.Helper()
	conn, err := sqlite3.Open(path)
	must(t, err)
	defer conn.Close()
	must(t, conn.Exec(`PRAGMA journal_mode = WAL; PRAGMA cache_size = -65536`))
	for _, table := range tables {
		must(t, conn.Exec(`BEGIN;`+strings.ReplaceAll(keyIndexDDL, "kv_store", table)+`
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < `+strconv.Itoa(versions)+`)
INSERT INTO "`+table+`:history" (op_number, key, op, ts, recorded, value, content_type)
SELECT i, printf('key/%05d', i % `+strconv.Itoa(keys)+`), 'set', 1700000000000 + i, 1, randomblob(`+strconv.Itoa(size)+`), 'application/octet-stream' FROM n;
INSERT INTO `+table+` SELECT key, value, content_type, ts, ts, NULL, op_number FROM "`+table+`:history" WHERE op_number > `+strconv.Itoa(versions-keys)+`;
COMMIT;`))
	}
}

// TestUpgrade_ALogOfOneTableAtATime: the log is copied into the file
// after each table's upgrade, so it starts over and holds one table's
// rewrite at a time. Before, it held every table's (the disk the upgrade
// needed grew with the whole file, not with its largest table).
func TestUpgrade_ALogOfOneTableAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	writeOldTables(t, path, []string{"a", "b", "c", "d"}, 50_000, 1_000, 200)
	s, err := Open(path, false, Options{})
	must(t, err)
	defer s.Close()
	db, err := os.Stat(path)
	must(t, err)
	wal, err := os.Stat(path + "-wal")
	must(t, err)
	if wal.Size() > db.Size()/2 {
		t.Errorf("after upgrading four tables of one size, the log is %d bytes, the file %d: want the log under half the file", wal.Size(), db.Size())
	}
}

var largeUpgradeFlag = flag.Int("large-upgrade", 0, "versions of the table TestUpgrade_ATableOfMillionsOfVersions upgrades (0: skip it; 7500000 outgrew the links' memory before)")

// TestUpgrade_ATableOfMillionsOfVersions: the links the upgrade works out
// are kept in the file, not in the connection's memory, and the sort of
// an index of the database's own on the history, made again, spills to
// a file: in memory, either outgrew the connection's 256 MiB for a table
// of about 7 million versions, and every request of its database
// answered 500 ("out of memory"), for good. A minute or two: run by
// .ci/run with -large-upgrade.
func TestUpgrade_ATableOfMillionsOfVersions(t *testing.T) {
	versions := *largeUpgradeFlag
	if versions == 0 {
		t.Skip("run with -large-upgrade N")
	}
	path := filepath.Join(t.TempDir(), "old.db")
	writeOldTables(t, path, []string{"kv_store"}, versions, 100_000, 1)
	conn, err := sqlite3.Open(path)
	must(t, err)
	must(t, conn.Exec(`CREATE INDEX by_key_and_type ON "kv_store:history" (key, op, content_type, recorded)`))
	must(t, conn.Close())
	began := time.Now()
	s, err := Open(path, false, Options{})
	must(t, err)
	t.Logf("upgraded %d versions in %v", versions, time.Since(began).Round(time.Millisecond))
	must(t, s.Close())

	conn, err = sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	must(t, err)
	defer conn.Close()
	stmt, _, err := conn.Prepare(`SELECT (SELECT count(*) FROM sqlite_schema WHERE name = 'by_key_and_type'), (SELECT count(*) FROM "kv_store:removed")`)
	must(t, err)
	defer stmt.Close()
	if !stmt.Step() || stmt.ColumnInt(0) != 1 {
		t.Fatalf("upgraded: the database's own index is gone (%v)", stmt.Err())
	}
}

// TestUpgrade_ColumnsOfTheDatabasesOwn: a column another program added to
// a history is carried over with its default, an expression's too (the
// upgrade wrote it without its parentheses: a syntax error, the table
// refused); a generated column, whose expression the upgrade cannot carry,
// leaves its table as it was, and says why.
func TestUpgrade_ColumnsOfTheDatabasesOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	writeOldTables(t, path, []string{"plain", "generated"}, 200, 10, 10)
	conn, err := sqlite3.Open(path)
	must(t, err)
	for table, columns := range map[string]string{
		"plain":     `made INTEGER DEFAULT (strftime('%s', 'now')), "it's" TEXT DEFAULT 'it''s'`,
		"generated": `g INTEGER AS (op_number * 2)`,
	} {
		must(t, conn.Exec(`CREATE TABLE h (op_number INTEGER PRIMARY KEY, key TEXT NOT NULL, op TEXT NOT NULL, ts INTEGER NOT NULL,
	recorded INTEGER NOT NULL, value BLOB, content_type TEXT, expire_at INTEGER, `+columns+`);
INSERT INTO h (op_number, key, op, ts, recorded, value, content_type, expire_at) SELECT * FROM "`+table+`:history";
DROP TABLE "`+table+`:history";
ALTER TABLE h RENAME TO "`+table+`:history";
CREATE INDEX "`+table+`:history_by_key" ON "`+table+`:history" (key, ts)`))
	}
	must(t, conn.Close())
	heard := map[string]error{}
	s, err := Open(path, false, Options{Upgrading: func(_, table string) func(error) {
		return func(err error) { heard[table] = err }
	}})
	must(t, err)
	defer s.Close()
	if err := heard["plain"]; err != nil {
		t.Errorf("plain, with columns of its own: %v", err)
	}
	if err := heard["generated"]; !errors.Is(err, errGeneratedColumn) {
		t.Errorf("generated: got %v, want %v", err, errGeneratedColumn)
	}
	conn, err = sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	must(t, err)
	defer conn.Close()
	stmt, _, err := conn.Prepare(`SELECT (SELECT count(*) FROM "plain:history" WHERE made > 0 AND "it's" = 'it''s'),
	(SELECT count(*) FROM sqlite_schema WHERE name IN ('plain:removed', 'generated:history_by_key'))`)
	must(t, err)
	defer stmt.Close()
	if !stmt.Step() || stmt.ColumnInt(0) != 200 || stmt.ColumnInt(1) != 2 {
		t.Errorf("plain's history rows with their columns: %d (want 200); plain upgraded and generated left: %d of 2", stmt.ColumnInt(0), stmt.ColumnInt(1))
	}
}

// TestUpgrade_APanicClosesTheFiles: a panic during the upgrade (the
// driver's, out of memory) closes the writer's files before it goes on.
// Before, each try left six descriptors of the database open.
func TestUpgrade_APanicClosesTheFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	writeOldTables(t, path, []string{"kv_store"}, 100, 10, 10)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the upgrade's panic did not reach Open's caller")
			}
		}()
		Open(path, false, Options{Upgrading: func(string, string) func(error) { panic("out of memory") }})
	}()
	fds, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	for _, fd := range fds {
		if target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); strings.HasPrefix(target, path) {
			t.Errorf("%s is still open after the upgrade's panic", target)
		}
	}
}

// TestUpgrade_ATemporaryFolderFullSaysWhere: the sort of an index of the
// database's own, made again, spills to the temporary folder; that
// folder full fails the upgrade as a full disk (507), naming the table
// and the folder. Before: "Disk I/O error" (500).
func TestUpgrade_ATemporaryFolderFullSaysWhere(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	path := filepath.Join(t.TempDir(), "old.db")
	writeOldTables(t, path, []string{"kv_store"}, 100_000, 1000, 200)
	conn, err := sqlite3.Open(path)
	must(t, err)
	must(t, conn.Exec(`CREATE INDEX by_value ON "kv_store:history" (value, key)`))
	must(t, conn.Close())
	tmp := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", tmp).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", tmp).Run() })
	t.Setenv("SQLITE_TMPDIR", tmp)
	s, err := Open(path, false, Options{})
	if err == nil {
		s.Close()
		t.Fatal("the upgrade went through with 2 MB for its sorts")
	}
	if msg := err.Error(); CodeOf(err) != CodeStorageFull || !strings.Contains(msg, `table "kv_store", written by an older kvd`) ||
		!strings.Contains(msg, "temporary folder "+tmp) {
		t.Errorf("got %v, want a full disk, the table named and the temporary folder", err)
	}
	t.Setenv("SQLITE_TMPDIR", t.TempDir())
	s, err = Open(path, false, Options{})
	must(t, err)
	must(t, s.Close())
}
