package httpapi_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

func TestDatabase_MissingFileAndCreation(t *testing.T) {
	ts := newTestServer(t)
	wantError(t, ts.do(t, "GET", kv("a", "db=app"), ""), 404, "DATABASE_NOT_FOUND")
	wantStatus(t, ts.do(t, "HEAD", kv("a", "db=app"), ""), 404)
	wantError(t, ts.do(t, "PUT", kv("a", "db=app"), "x"), 404, "DATABASE_NOT_FOUND")
	wantError(t, ts.do(t, "POST", kv("a/incr", "db=app"), ""), 404, "DATABASE_NOT_FOUND")
	wantError(t, ts.do(t, "DELETE", kv("a", "db=app"), ""), 404, "DATABASE_NOT_FOUND")
	if _, err := os.Stat(filepath.Join(ts.DataDir, "app.db")); !os.IsNotExist(err) {
		t.Fatalf("app.db exists after refused writes: %v", err)
	}
	wantStatus(t, ts.do(t, "POST", kv("a/incr", "db=app&auto_create=true"), ""), 200)
	wantStatus(t, ts.do(t, "PUT", kv("b", "db=other.db&create_db_if_missing=true"), "x"), 200)
	for _, f := range []string{"app.db", "other.db"} {
		if _, err := os.Stat(filepath.Join(ts.DataDir, f)); err != nil {
			t.Fatalf("%s after create: %v", f, err)
		}
	}
}

// dbFiles lists the files of database name.db in the data dir: the
// database and its side files.
func dbFiles(t *testing.T, ts *testServer, name string) []string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(ts.DataDir, name+".db*"))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range found {
		found[i] = filepath.Base(f)
	}
	return found
}

// A write refused (4xx) under create_db_if_missing leaves no trace: no
// empty database where there was none. A database another request made,
// wrote to or created explicitly stays, also when requests race on a new
// one; every acknowledged write is there.
func TestDatabase_ARefusedWriteCreatesNoDatabase(t *testing.T) {
	ts := newTestServer(t)
	const create = "&create_db_if_missing=true"
	for i, c := range []struct {
		method, path, body string
		header             []string
		status             int
		code               string
	}{
		{"PUT", "k", "v", []string{"If-Match", `"3"`}, 412, "CAS_KEY_MISSING"},
		{"PUT", "k", "v", nil, 412, "CAS_KEY_MISSING"}, // if_match below
		{"POST", "k/pop", "", nil, 404, "KEY_NOT_FOUND"},
		{"POST", "k/rollback", "", nil, 404, "KEY_NOT_FOUND"},
		{"DELETE", "k", "", nil, 404, "KEY_NOT_FOUND"},
		{"POST", "k/push", "1", []string{"If-Match", `"1"`}, 412, "CAS_KEY_MISSING"},
	} {
		db := fmt.Sprintf("new%d", i)
		q := "db=" + db + create
		if i == 1 {
			q += "&if_match=old"
		}
		wantError(t, ts.do(t, c.method, kv(c.path, q), c.body, c.header...), c.status, c.code)
		if files := dbFiles(t, ts, db); len(files) != 0 {
			t.Fatalf("%s %s refused: files %v left, want none", c.method, c.path, files)
		}
		wantError(t, ts.do(t, "GET", kv("k", "db="+db), ""), 404, "DATABASE_NOT_FOUND")
	}
	// A database that holds a key, or that db/create made, stays.
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=kept"+create), "v"), 200)
	wantError(t, ts.do(t, "PUT", kv("k", "db=kept"+create+"&if_match=old"), "v"), 412, "CAS_MISMATCH")
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/db/create?path=made", ""), 200)
	wantError(t, ts.do(t, "PUT", kv("k", "db=made"+create), "v", "If-Match", `"3"`), 412, "CAS_KEY_MISSING")
	for _, db := range []string{"kept", "made"} {
		if files := dbFiles(t, ts, db); !slices.Contains(files, db+".db") {
			t.Fatalf("%s after a refused write: files %v, want %s.db kept", db, files, db)
		}
	}
	wantStatus(t, ts.do(t, "GET", kv("k", "db=kept"), ""), 200)
	// Refused and accepted writes, and reads, racing on new databases:
	// every accepted write is there, and a read finds a database or none.
	for round := range 20 {
		db := fmt.Sprintf("race%d", round)
		var wg sync.WaitGroup
		statuses := make([]int, 9)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i % 3 {
				case 0:
					statuses[i] = ts.do(t, "PUT", kv(fmt.Sprint("k", i), "db="+db+create), "v").Status
				case 1:
					statuses[i] = ts.do(t, "PUT", kv("x", "db="+db+create+"&if_match=old"), "v").Status
				case 2:
					statuses[i] = ts.do(t, "GET", kv("x", "db="+db), "").Status
				}
			}()
		}
		wg.Wait()
		for i, status := range statuses {
			if want := []int{200, 412, 404}[i%3]; status != want {
				t.Fatalf("round %d, request %d: got %d, want %d", round, i, status, want)
			}
			if i%3 == 0 {
				wantStatus(t, ts.do(t, "GET", kv(fmt.Sprint("k", i), "db="+db), ""), 200)
			}
		}
	}
}

func TestDatabase_EverySpellingReachesTheSameFile(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "shared")
	abs := url.QueryEscape(filepath.Join(ts.DataDir, "app.db"))
	for _, db := range []string{"app", "app.db", "./app", abs} {
		if got := ts.do(t, "GET", kv("k", "db="+db), ""); string(got.Body) != "shared" {
			t.Fatalf("db=%s: got %d %q, want shared", db, got.Status, got.Body)
		}
	}
}

func TestDatabase_NotSQLiteOrADirectory(t *testing.T) {
	ts := newTestServer(t)
	os.WriteFile(filepath.Join(ts.DataDir, "text.db"), []byte("this is not a database, just text"), 0o600)
	os.WriteFile(filepath.Join(ts.DataDir, "empty.db"), nil, 0o600)
	os.Mkdir(filepath.Join(ts.DataDir, "folder.db"), 0o700)
	wantError(t, ts.do(t, "GET", kv("a", "db=text"), ""), 400, "INVALID_SQLITE_HEADER")
	wantError(t, ts.do(t, "PUT", kv("a", "db=text&create_db_if_missing=true"), "x"), 400, "INVALID_SQLITE_HEADER")
	wantError(t, ts.do(t, "GET", kv("a", "db=folder"), ""), 400, "PATH_IS_DIRECTORY")
	// A zero-length file is a valid, empty database.
	wantError(t, ts.do(t, "GET", kv("a", "db=empty"), ""), 404, "KEY_NOT_FOUND")
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=empty"), "x"), 200)
	if got := ts.do(t, "GET", kv("a", "db=empty"), ""); string(got.Body) != "x" {
		t.Fatalf("empty.db after write: got %q, want x", got.Body)
	}
}

func TestDatabase_ConfinementAttacksCreateNothing(t *testing.T) {
	ts := newTestServer(t)
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(ts.DataDir, "escape"))
	os.Symlink(filepath.Join(outside, "victim.db"), filepath.Join(ts.DataDir, "link.db"))
	before := listTree(t, ts.DataDir, outside)
	attacks := []string{
		"../x", "..", "a/b", `a\b`, "/etc/passwd", "/tmp/kvd-attack.db",
		filepath.Join(outside, "x.db"), "escape/x", filepath.Join(ts.DataDir, "escape", "x.db"),
		"link", "link.db", filepath.Join(ts.DataDir, "link.db"),
		"%2e%2e/x", ":memory:", "", "a\x00b", "file:app.db", "./../x", ts.DataDir + "/../x.db",
	}
	for _, db := range attacks {
		for _, method := range []string{"GET", "PUT"} {
			query := "db=" + url.QueryEscape(db)
			if method == "PUT" {
				query += "&create_db_if_missing=true"
			}
			r := ts.do(t, method, kv("k", query), "x")
			wantError(t, r, 400, "INVALID_DB_PATH")
		}
	}
	// The raw query form of NUL and of encoded dots reach the resolver too.
	wantError(t, ts.do(t, "PUT", kv("k", "create_db_if_missing=true&db=a%00b"), "x"), 400, "INVALID_DB_PATH")
	wantError(t, ts.do(t, "PUT", kv("k", "create_db_if_missing=true&db=%2e%2e%2fx"), "x"), 400, "INVALID_DB_PATH")
	wantError(t, ts.do(t, "GET", kv("k", ""), ""), 400, "INVALID_DB_PATH")
	if after := listTree(t, ts.DataDir, outside); !slices.Equal(before, after) {
		t.Fatalf("files changed by refused requests:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := os.Stat("/tmp/kvd-attack.db"); err == nil {
		t.Fatal("/tmp/kvd-attack.db was created")
	}
}

func listTree(tb testing.TB, roots ...string) []string {
	tb.Helper()
	var names []string
	for _, root := range roots {
		filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			names = append(names, p)
			return nil
		})
	}
	return names
}

// A database's -wal, -shm and -journal files belong to SQLite: opened as a
// database of their own they would be overwritten or deleted under it.
func TestDatabase_SQLiteSideFilesAreNotDatabases(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "kept"), 200)
	for _, db := range []string{"app.db-wal", "app.db-shm", "app.db-journal", url.QueryEscape(filepath.Join(ts.DataDir, "app.db-wal"))} {
		wantError(t, ts.do(t, "PUT", kv("k", "create_db_if_missing=true&db="+db), "x"), 400, "INVALID_DB_PATH")
		wantError(t, ts.do(t, "GET", kv("k", "db="+db), ""), 400, "INVALID_DB_PATH")
	}
	if got := ts.do(t, "GET", kv("k", "db=app"), ""); string(got.Body) != "kept" {
		t.Fatalf("app after refused side-file writes: got %d %q, want kept", got.Status, got.Body)
	}
}
