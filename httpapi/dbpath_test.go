package httpapi_test

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
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

// A refused database path says which rule it broke (a newcomer's
// directory-mode PUT outside the roots learned only "Invalid database
// path"), and names nothing of the filesystem outside the roots.
func TestDatabase_ARefusedPathSaysWhy(t *testing.T) {
	ts := newTestServer(t)
	outside := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "nothing"), filepath.Join(outside, "dangling")); err != nil {
		t.Fatal(err)
	}
	for db, says := range map[string]string{
		filepath.Join(outside, "dangling"): "--allow-dir", // not "a symlink that leads to nothing": that would tell what is outside
		"a/b":                              "must be a bare file name",
		":memory:":                         ":memory:",
		filepath.Join(outside, "x.db"):     "--allow-dir",
		filepath.Join(outside, "no", "x"):  "--allow-dir",
		outside + "/../x":                  "'..'",
	} {
		r := ts.do(t, "PUT", kv("k", "create_db_if_missing=true&db="+url.QueryEscape(db)), "x")
		wantError(t, r, 400, "INVALID_DB_PATH")
		if msg, _ := r.JSON(t)["message"].(string); !strings.Contains(msg, says) || strings.Contains(msg, outside) {
			t.Errorf("db=%s: message %q, want one saying %q and naming no path", db, msg, says)
		}
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

// No database is opened through a folder another user owns, or every
// user may write (unless sticky, where the next folder down is kvd's): a
// link swapped in there, between kvd's checks and SQLite's open by name,
// led outside the roots (a local user read and created databases
// elsewhere within seconds). kvd's group is trusted. A folder served in
// directory mode may itself be shared: its files are reached through an
// os.Root.
func TestDatabase_NotThroughAFolderOthersMayChange(t *testing.T) {
	ts := newTestServer(t)
	team := filepath.Join(ts.DataDir, "team")
	for _, dir := range []string{team, filepath.Join(team, "notes")} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	db := "db=" + url.QueryEscape(filepath.Join(team, "x.db")) + "&create_db_if_missing=true"
	notes := "db=" + url.QueryEscape(filepath.Join(team, "notes")) + "&table=t"
	refused := map[string]func(){
		"writable by every user":         func() { os.Chmod(team, 0o757) },
		"sticky, the file not yet kvd's": func() { os.Chmod(team, 0o1777) },
	}
	if os.Geteuid() == 0 {
		refused["owned by another user"] = func() { os.Chmod(team, 0o755); os.Chown(team, 65534, 65534) }
	}
	for name, share := range refused {
		share()
		r := ts.do(t, "PUT", kv("k", db), "v")
		wantError(t, r, 400, "INVALID_DB_PATH")
		if msg := r.JSON(t)["message"]; !contains(msg, "the folder team can be changed by other users") {
			t.Fatalf("%s: message %q", name, msg)
		}
		wantError(t, ts.do(t, "PUT", kv("k", notes), "v"), 400, "INVALID_DB_PATH") // its folder's folder
		os.Chown(team, os.Geteuid(), os.Getegid())
	}
	os.Chmod(team, 0o770) // kvd's group may write it: trusted
	wantStatus(t, ts.do(t, "PUT", kv("k", db), "v"), 200)
	os.Chmod(filepath.Join(team, "notes"), 0o777) // shared by the people who edit its files
	wantStatus(t, ts.do(t, "PUT", kv("k", notes), "v"), 200)
	if _, err := os.Stat(filepath.Join(team, "notes", "t", "k")); err != nil {
		t.Fatalf("the key's file in the shared folder: %v", err)
	}
}

// An --allow-dir may itself be such a shared folder, served in directory
// mode; a database file in it is refused.
func TestDatabase_ASharedAllowDirServesDirectoryModeOnly(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(shared, 0o700)
	os.Chmod(shared, 0o777)
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		r, err := sqlitekv.NewResolver(t.TempDir(), []string{shared}, false)
		if err != nil {
			t.Fatal(err)
		}
		a.Resolver = r
	})
	wantStatus(t, ts.do(t, "PUT", kv("k", "db="+url.QueryEscape(shared)+"&table=t"), "v"), 200)
	wantError(t, ts.do(t, "PUT", kv("k", "db="+url.QueryEscape(filepath.Join(shared, "x.db"))+"&create_db_if_missing=true"), "v"), 400, "INVALID_DB_PATH")
}
