package httpapi_test

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

// A file-mode database that lies in a table's folder is never a key file
// directory mode may replace or remove, and once the folder is a
// directory-mode database, no file in its table folders opens as a
// database: each mode refuses to clobber the other's files.
func TestDirMode_AndFileModeKeepOutOfEachOthersFiles(t *testing.T) {
	ts, root, q := dirServer(t)
	bank := filepath.Join(root, "notes", "bank.db")
	if err := os.MkdirAll(filepath.Dir(bank), 0o750); err != nil {
		t.Fatal(err)
	}
	fileQ := "db=" + url.QueryEscape(bank)
	wantStatus(t, ts.do(t, "PUT", kv("acct", fileQ+"&create_db_if_missing=true"), "1000000"), 200)

	wantError(t, ts.do(t, "PUT", kv("bank.db", q), "overwritten"), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "DELETE", kv("bank.db", q), ""), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "DELETE", kv("bank.db-wal", q), ""), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/kv/batch/delete?"+q, `{"keys":["bank.db"]}`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("copy.db", q), "SQLite format 3\x00and more"), 400, "INVALID_PARAMETERS")
	if !sqlitekv.IsSQLiteFile(bank) {
		t.Fatal("bank.db is no longer a SQLite database")
	}
	if _, err := os.Stat(bank + "-wal"); err != nil {
		t.Fatalf("bank.db's WAL: %v", err)
	}

	if got := ts.do(t, "GET", kv("acct", fileQ), ""); got.Status != 200 || string(got.Body) != "1000000" {
		t.Fatalf("bank.db, still open: %d %s", got.Status, got.Body)
	}

	// The folder is a directory-mode database now: no other file in it
	// opens as a database.
	wantStatus(t, ts.do(t, "PUT", kv("empty", q), ""), 200)
	emptyQ := "db=" + url.QueryEscape(filepath.Join(root, "notes", "empty")) + "&create_db_if_missing=true"
	wantError(t, ts.do(t, "PUT", kv("k", emptyQ), "v"), 400, "INVALID_DB_PATH")
	if info, err := os.Stat(filepath.Join(root, "notes", "empty")); err != nil || info.Size() != 0 {
		t.Fatalf("key file empty: %v, %v", info, err)
	}
}

// A directory's cache that is a symlink could be any database, inside the
// roots or not: directory mode refuses to open it.
func TestDirMode_RefusesALinkedCache(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("important", "db=victim&create_db_if_missing=true"), "precious"), 200)
	root := filepath.Join(ts.DataDir, "linked")
	if err := os.MkdirAll(filepath.Join(root, "kv_store"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(ts.DataDir, "victim.db"), filepath.Join(root, ".kvd-cache.db")); err != nil {
		t.Fatal(err)
	}
	dirQ := "db=" + url.QueryEscape(root) + "&table=kv_store"
	wantError(t, ts.do(t, "GET", kv("important", dirQ), ""), 400, "INVALID_DB_PATH")
	wantError(t, ts.do(t, "PUT", kv("other", dirQ), "x"), 400, "INVALID_DB_PATH")
	if got := ts.do(t, "GET", kv("important", "db=victim"), ""); got.Status != 200 || string(got.Body) != "precious" {
		t.Fatalf("victim after the linked cache: %d %s", got.Status, got.Body)
	}
}

// Only table folders are off limits: a database in a folder no table can
// be named, or in the data dir under a directory-mode parent, opens; a
// directory-mode database inside another's table folder does not.
func TestDirMode_OnlyTableFoldersAreOffLimits(t *testing.T) {
	allow := t.TempDir()
	data := filepath.Join(allow, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		r, err := sqlitekv.NewResolver(data, []string{allow}, false)
		if err != nil {
			t.Fatal(err)
		}
		a.Resolver = r
	})
	dq := "db=" + url.QueryEscape(allow) + "&table=notes"
	wantStatus(t, ts.do(t, "PUT", kv("k", dq), "v"), 200) // <allow>/.kvd-cache.db
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)

	if err := os.MkdirAll(filepath.Join(allow, "my-notes"), 0o750); err != nil {
		t.Fatal(err)
	}
	noTable := "db=" + url.QueryEscape(filepath.Join(allow, "my-notes", "bank.db")) + "&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("acct", noTable), "1"), 200)

	inner := filepath.Join(allow, "notes", "sub")
	if err := os.MkdirAll(inner, 0o750); err != nil {
		t.Fatal(err)
	}
	wantError(t, ts.do(t, "PUT", kv("k", "db="+url.QueryEscape(inner)+"&table=t"), "v"), 400, "INVALID_DB_PATH")
	wantError(t, ts.do(t, "PUT", kv("k", "db="+url.QueryEscape(filepath.Join(allow, "notes"))+"&table=t"), "v"), 400, "INVALID_DB_PATH")
}

// Two kvds serving one directory-mode folder would each import files the
// other had committed to the cache but not yet put in place, losing
// acknowledged writes: while one serves it, the other answers 503, and
// serves it once the first has let go (a restart whose old kvd stops).
func TestDirMode_ASecondKvdOfOneFolderIsRefusedUntilTheFirstLetsGo(t *testing.T) {
	first, _, q := dirServer(t)
	wantStatus(t, first.do(t, "PUT", kv("k", q), "1"), 200)
	second := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		r, err := sqlitekv.NewResolver(first.DataDir, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		a.Resolver = r
	})
	r := second.do(t, "POST", kv("k/incr", q), "")
	wantError(t, r, 503, "OVERLOADED")
	if msg := r.JSON(t)["message"]; !contains(msg, "only writer") {
		t.Fatalf("message: %q, want one that says why", msg)
	}
	if err := first.Registry.Close(); err != nil {
		t.Fatal(err)
	}
	if m := second.do(t, "POST", kv("k/incr", q), "").JSON(t); m["value"] != 2.0 {
		t.Fatalf("incr once the first kvd let go: %v, want 2", m)
	}
}
