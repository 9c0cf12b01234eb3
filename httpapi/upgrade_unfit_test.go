package httpapi_test

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// oldDatabaseIn puts a copy of the file a kvd before chains wrote in dir
// as old.db, and opens it.
func oldDatabaseIn(t *testing.T, dir string) (string, *sqlite3.Conn) {
	t.Helper()
	path := filepath.Join(dir, "old.db")
	data, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, conn
}

// A table of an older kvd's file that cannot be upgraded (another
// program's table of a KV table's names, a values table dropped, a history
// row without its op) is left as it was and refused alone; the database's
// other tables are served. Before, its upgrade failed the open, and every
// request of the database answered 500.
func TestUpgrade_ATableUnfitForItIsRefusedAlone(t *testing.T) {
	for name, c := range map[string]struct {
		breakIt, table string
	}{
		"another program's table": {`CREATE TABLE foo(x); CREATE TABLE "foo:history"(x); CREATE INDEX "foo:history_by_key" ON "foo:history"(x)`, "foo"},
		"a values table dropped":  {`DROP TABLE orders`, "orders"},
		"a history row without op": {`CREATE TABLE h (op_number INTEGER PRIMARY KEY, key TEXT NOT NULL, op TEXT, ts INTEGER NOT NULL,
	recorded INTEGER NOT NULL, value BLOB, content_type TEXT, expire_at INTEGER);
INSERT INTO h SELECT * FROM "orders:history"; DROP TABLE "orders:history"; ALTER TABLE h RENAME TO "orders:history";
CREATE INDEX "orders:history_by_key" ON "orders:history" (key, ts);
UPDATE "orders:history" SET op = NULL WHERE op_number = (SELECT min(op_number) FROM "orders:history")`, "orders"}, // another program's doing
	} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t)
			path, conn := oldDatabaseIn(t, ts.DataDir)
			if err := conn.Exec(c.breakIt); err != nil {
				t.Fatal(err)
			}
			conn.Close()

			wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 200)
			wantStatus(t, ts.do(t, "PUT", kv("after", "db=old"), "v"), 200)
			if got := string(ts.do(t, "GET", kv("after", "db=old"), "").Body); got != "v" {
				t.Fatalf("the upgraded table: got %q", got)
			}
			wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old&table="+c.table, ""), 400, "INVALID_PARAMETERS")
			wantError(t, ts.do(t, "PUT", kv("k", "db=old&table="+c.table), "v"), 400, "INVALID_PARAMETERS")
			os.Remove(path) // the cleanup's integrity check is for databases kvd made whole
		})
	}
}

// A database of an older kvd's whose history tables other things of its
// own name (a view over the history, a trigger of another table that
// writes into it, an index and a trigger on it, a column of its own) is
// upgraded, and keeps them. Before, the upgrade's rename checked the view
// and the trigger while the history they name was gone, failed, and the
// table was refused as "taken … by a table without a kvd table's
// columns"; an upgrade that did pass dropped the index and trigger on the
// history, and the column with its values.
func TestUpgrade_KeepsTheDatabasesOwnViewsTriggersAndIndexes(t *testing.T) {
	ts := newTestServer(t)
	path, conn := oldDatabaseIn(t, ts.DataDir)
	own := map[string]string{
		"recent_changes": `CREATE VIEW recent_changes AS SELECT key, op, ts FROM "kv_store:history" ORDER BY op_number DESC LIMIT 10`,
		"audit":          `CREATE TABLE audit (key TEXT)`,
		"audit_orders":   `CREATE TRIGGER audit_orders AFTER UPDATE ON orders BEGIN INSERT INTO audit SELECT key FROM "orders:history" LIMIT 1; END`,
		"by_op":          `CREATE INDEX by_op ON "kv_store:history" (op, ts)`,
		"audit_history":  `CREATE TRIGGER audit_history AFTER INSERT ON "KV_STORE:History" BEGIN INSERT INTO audit VALUES (new.key); END`,
		"by_note":        `CREATE INDEX by_note ON "orders:history" (note)`,
	}
	// A column of its own on a history, with values.
	if err := conn.Exec(`ALTER TABLE "orders:history" ADD COLUMN note TEXT DEFAULT 'none'; UPDATE "orders:history" SET note = 'old ' || op_number`); err != nil {
		t.Fatal(err)
	}
	for _, sql := range own {
		if err := conn.Exec(sql); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()

	for _, table := range []string{"kv_store", "orders"} {
		wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old&table="+table, ""), 200)
		wantStatus(t, ts.do(t, "PUT", kv("after", "db=old&table="+table), "v"), 200)
		if got := string(ts.do(t, "GET", kv("after", "db=old&table="+table), "").Body); got != "v" {
			t.Fatalf("%s, upgraded: got %q", table, got)
		}
	}
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for name := range own {
		var there bool
		stmt, _, err := conn.Prepare(`SELECT count(*) FROM sqlite_schema WHERE name = ?`)
		if err != nil {
			t.Fatal(err)
		}
		stmt.BindText(1, name)
		there = stmt.Step() && stmt.ColumnInt(0) == 1
		stmt.Close()
		if !there {
			t.Errorf("%s is gone after the upgrade", name)
		}
	}
	stmt, _, err := conn.Prepare(`SELECT (SELECT count(*) FROM recent_changes), (SELECT count(*) FROM audit WHERE key = 'after'),
	(SELECT count(*) FROM "orders:history" WHERE note = 'old ' || op_number), (SELECT count(*) FROM "orders:history" WHERE key = 'after' AND note = 'none')`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if !stmt.Step() || stmt.ColumnInt(0) != 10 || stmt.ColumnInt(1) == 0 || stmt.ColumnInt(2) == 0 || stmt.ColumnInt(3) != 1 {
		t.Errorf("the view lists %d changes (want 10), the history's trigger recorded %d writes of after (want some), the history's own column kept %d old notes (want all) and gave the new write %d defaults (want 1)",
			stmt.ColumnInt(0), stmt.ColumnInt(1), stmt.ColumnInt(2), stmt.ColumnInt(3))
	}
}

// A disk without room for the upgrade of an older kvd's database answers
// 507 saying so, loses nothing, leaves the disk as it found it (the
// rewrite's log rolled back and gone), and the upgrade goes through once
// there is room. Before, the message said only that a write (a GET's!)
// was not saved.
func TestUpgrade_OnAFullDiskSaysWhatItNeeds(t *testing.T) {
	dir := smallDisk(t, "size=64m")
	ts := newTestServer(t, dataIn(t, dir))
	_, conn := oldDatabaseIn(t, dir)
	// 6,000 more versions of 1 KB, of 60 keys no longer live: a file of
	// 8 MB, on a disk then shrunk to leave 4 MB.
	if err := conn.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
INSERT INTO "kv_store:history" (op_number, key, op, ts, recorded, value, content_type)
SELECT (SELECT max(op_number) FROM "kv_store:history") + i, 'big/' || (i % 60), 'set',
	(SELECT max(ts) FROM "kv_store:history") + i, 1, randomblob(1000), 'application/octet-stream' FROM n;
PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	remount(t, dir, "size=12m")
	found := filesIn(t, dir)

	r := ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", "")
	wantError(t, r, 507, "STORAGE_FULL")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, `table "kv_store", written by an older kvd`) || !strings.Contains(msg, "nothing was lost") {
		t.Fatalf("message: got %q, want it to say which table's upgrade needs room", msg)
	}
	if left := filesIn(t, dir); left != found {
		t.Fatalf("the failed upgrade left %s, want the disk as it found it: %s", left, found)
	}
	// Asked again at once, kvd answers the same without another rewrite,
	// which would only fill the disk again for every database on it.
	r = ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", "")
	wantError(t, r, 507, "STORAGE_FULL")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "nothing was lost (kvd tries again in ") {
		t.Fatalf("asked again: got %q, want the failure again and when the upgrade is tried again", msg)
	}
	// Room made, it is tried at once.
	remount(t, dir, "size=64m")
	wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 200)
	if ops := ts.do(t, "GET", kv("big%2F7/history", "db=old&limit=1000"), "").JSON(t)["operations"].([]any); len(ops) != 100 {
		t.Fatalf("big/7 has %d versions after the upgrade, want 100", len(ops))
	}
}

func remount(t *testing.T, dir, options string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+options, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
}

// filesIn lists dir's files with their sizes, and its disk's free space.
func filesIn(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s (%d bytes), ", e.Name(), info.Size())
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d bytes free", st.Bavail*uint64(st.Bsize))
	return b.String()
}

// The upgrade's sorts (an index of the database's own on a history, made
// again) spill to the temporary folder: that folder full, of bytes or of
// inodes, answers 507 naming it, like a full disk beside the database;
// room made there, the upgrade goes through at once. Before: 500 "Disk
// I/O error".
func TestUpgrade_ATemporaryFolderFullAnswers507(t *testing.T) {
	for name, c := range map[string]struct{ mount, room string }{
		"of bytes":  {"size=2m", "size=256m"},
		"of inodes": {"size=256m,nr_inodes=1", "nr_inodes=1000"},
	} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t)
			_, conn := oldDatabaseIn(t, ts.DataDir)
			// 30,000 more versions of 1 KB: a sort larger than the
			// writer's memory for it, so it spills.
			if err := conn.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
INSERT INTO "kv_store:history" (op_number, key, op, ts, recorded, value, content_type)
SELECT (SELECT max(op_number) FROM "kv_store:history") + i, 'big/' || (i % 60), 'set',
	(SELECT max(ts) FROM "kv_store:history") + i, 1, randomblob(1000), 'application/octet-stream' FROM n;
CREATE INDEX by_value ON "kv_store:history" (value, key)`); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			tmp := smallDisk(t, c.mount)
			t.Setenv("SQLITE_TMPDIR", tmp)

			r := ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", "")
			wantError(t, r, 507, "STORAGE_FULL")
			if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, `table "kv_store", written by an older kvd`) || !strings.Contains(msg, "temporary folder "+tmp) {
				t.Fatalf("message: got %q, want the table and the temporary folder named", msg)
			}
			remount(t, tmp, c.room)
			wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 200)
		})
	}
}

// An upgrade that met another program's write lock is no failure to wait
// out: the next request, the lock gone, is served. (A first version of
// the wait after failed upgrades refused it for 2 s.) And the lock is
// waited out once, not again by the checkpoint after the table (10 s).
func TestUpgrade_ALockHeldElsewhereIsTriedAgainAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's 5 s busy timeout")
	}
	ts := newTestServer(t)
	_, other := oldDatabaseIn(t, ts.DataDir)
	defer other.Close()
	if err := other.Exec(`PRAGMA journal_mode = WAL; BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 500, "DATABASE_ERROR")
	took := time.Since(began)
	if err := other.Exec(`ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 200)
	if took > 9*time.Second { // one busy timeout, and room for a slow machine
		t.Fatalf("the open waited out the lock more than once: answered after %v", took)
	}
}

// A database put in place of one whose upgrade failed (restored, made
// anew) is served at once, though the disk has no more room: the wait is
// the failed file's. (A first version refused it for 2 s.)
func TestUpgrade_AFileInPlaceOfAFailedOneIsTriedAtOnce(t *testing.T) {
	dir := smallDisk(t, "size=4m")
	ts := newTestServer(t, dataIn(t, dir))
	path, conn := oldDatabaseIn(t, dir)
	conn.Close()
	fillLeaving(t, dir, 80<<10) // too little for the upgrade

	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 507, "STORAGE_FULL")
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(f)
	}
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=old&create_db_if_missing=true"), "v"), 200)
}

// fillLeaving fills dir's file system until free bytes are left.
func fillLeaving(t *testing.T, dir string, free uint64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, st.Bavail*uint64(st.Bsize)-free), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Space freed on the temporary folder's disk, when the database's own is
// the full one, is no more room for the upgrade: it is not tried again
// before its wait is over. (A first version added the two disks' room,
// and any program's file deleted in /tmp started another rewrite.)
func TestUpgrade_RoomMadeOnAnotherDiskDoesNotEndTheWait(t *testing.T) {
	dir, tmp := smallDisk(t, "size=4m"), smallDisk(t, "size=64m")
	t.Setenv("SQLITE_TMPDIR", tmp)
	ts := newTestServer(t, dataIn(t, dir))
	_, conn := oldDatabaseIn(t, dir)
	conn.Close()
	fillLeaving(t, dir, 80<<10)
	other := filepath.Join(tmp, "another-programs")
	if err := os.WriteFile(other, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 507, "STORAGE_FULL")
	os.Remove(other)
	r := ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", "")
	wantError(t, r, 507, "STORAGE_FULL")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "(kvd tries again in ") {
		t.Fatalf("got %q: the upgrade was tried again for room made on another disk", msg)
	}
	os.Remove(filepath.Join(dir, "filler")) // room on its own disk: tried at once
	wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=old", ""), 200)
}

// In directory mode the database's file is the folder's cache: a cache
// copied over the one that failed is tried at once, as a file put in
// place of a failed database is.
func TestUpgrade_DirModeCacheCopiedOverTheFailedOneIsTriedAtOnce(t *testing.T) {
	dir := smallDisk(t, "size=4m")
	ts := newTestServer(t, dataIn(t, dir))
	root := filepath.Join(dir, "tree")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	cache, conn := oldDatabaseIn(t, dir)
	conn.Close()
	if err := os.Rename(cache, filepath.Join(root, ".kvd-cache.db")); err != nil {
		t.Fatal(err)
	}
	cache = filepath.Join(root, ".kvd-cache.db")
	fillLeaving(t, dir, 80<<10)
	q := "/api/v1/sqlite/kv?db=" + url.QueryEscape(root) + "&table=kv_store"

	wantError(t, ts.do(t, "GET", q, ""), 507, "STORAGE_FULL")
	r := ts.do(t, "GET", q, "")
	if msg := r.JSON(t)["message"].(string); r.Status != 507 || !strings.Contains(msg, "(kvd tries again in ") {
		t.Fatalf("asked again at once: %d %q, want the failure again and when it is tried", r.Status, msg)
	}
	data, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cache, data, 0o600); err != nil { // over it, in place: the folder is as it was
		t.Fatal(err)
	}
	if r := ts.do(t, "GET", q, ""); strings.Contains(string(r.Body), "(kvd tries again in ") {
		t.Fatalf("another cache in place of the failed one: %s, want it tried", r.Body)
	}
}
