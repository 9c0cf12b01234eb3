package httpapi_test

import (
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

// wantReadOnly checks that r refuses its request because the database
// cannot be written: 403 READ_ONLY naming what is read-only, no 500.
func wantReadOnly(t *testing.T, r response, says string) {
	t.Helper()
	wantError(t, r, 403, "READ_ONLY")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, says) {
		t.Fatalf("message: got %q, want it to say %q", msg, says)
	}
}

// readsServed checks that the database db, holding k = "v", serves
// every kind of read, and refuses every kind of write as read-only
// (saying why).
func readsServed(t *testing.T, ts *testServer, db, why string) {
	t.Helper()
	q := "db=" + db
	if r := ts.do(t, "GET", kv("k", q), ""); r.Status != 200 || string(r.Body) != "v" || r.Header.Get("ETag") == "" {
		t.Fatalf("GET: got %d %s (ETag %q), want 200 v with an ETag", r.Status, r.Body, r.Header.Get("ETag"))
	}
	wantStatus(t, ts.do(t, "HEAD", kv("k", q), ""), 200)
	wantError(t, ts.do(t, "GET", kv("none", q), ""), 404, "KEY_NOT_FOUND")
	if got := strs(ts.do(t, "GET", "/api/v1/sqlite/kv?"+q, "").JSON(t)["keys"]); len(got) != 1 || got[0] != "k" {
		t.Fatalf("listing: got %v, want [k]", got)
	}
	wantStatus(t, ts.do(t, "GET", kv("k/history", q), ""), 200)
	wantStatus(t, ts.do(t, "POST", batchPath+"get?"+q, `{"keys":["k"]}`), 200)
	// A table rollback's dry run only reads; the rollback itself writes.
	rollback := "/api/v1/sqlite/kv/rollback?to_timestamp=1&" + q
	if m := ts.do(t, "POST", rollback, `{}`).JSON(t); m["dry_run"] != true || m["count"] != 1.0 {
		t.Fatalf("dry-run rollback: got %v, want k's delete planned", m)
	}
	wantReadOnly(t, ts.do(t, "POST", rollback+"&confirm=yes", `{}`), why)
	// A create of the table that is there writes nothing; another is a write.
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/db/create?path="+db, ""), 200)
	wantReadOnly(t, ts.do(t, "POST", "/api/v1/sqlite/db/create?path="+db+"&table=other", ""), why)
	for _, w := range []struct{ method, path, body string }{
		{"PUT", kv("k", q), "w"},
		{"PUT", kv("k", q+"&create_db_if_missing=true"), "w"},
		{"DELETE", kv("k", q), ""},
		{"POST", kv("n/incr", q), ""},
		{"POST", batchPath + "set?" + q, `{"items":[{"key":"a","value":"1"}]}`},
	} {
		wantReadOnly(t, ts.do(t, w.method, w.path, w.body), why)
	}
}

// A database kvd cannot write serves its reads, and answers its writes
// 403 READ_ONLY saying why, never 500: a file on a read-only mount (read
// as immutable: SQLite cannot make its shared memory there), and a file
// with the immutable attribute in a writable folder (read as usual). A
// new database cannot be made on the read-only mount, nor a backup's
// copy beside a database there (403 too). A -wal that holds writes not
// yet in the file is read with the -shm beside it (copy); with none
// (bare), reading the file alone would serve older values: that is
// refused, READ_ONLY, saying so. Directory mode on a read-only mount
// serves its files, and refuses writes and rescans (they write the
// cache). (kvd answered 500 "Database file cannot be written or opened"
// to every request before.)
func TestReadOnly_ADatabaseKvdCannotWriteServesReads(t *testing.T) {
	t.Run("read-only mount", func(t *testing.T) {
		dir := smallDisk(t, "size=4m")
		ts := newTestServer(t, dataIn(t, dir))
		wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
		wantStatus(t, ts.do(t, "PUT", kv("k", "db=walled&create_db_if_missing=true"), "v"), 200)
		// A copy of walled's files as they are while it is open: its
		// write is in the -wal, not yet in the file.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			copyFile(t, filepath.Join(dir, "walled.db"+suffix), filepath.Join(dir, "copy.db"+suffix))
		}
		for _, suffix := range []string{"", "-wal"} {
			copyFile(t, filepath.Join(dir, "walled.db"+suffix), filepath.Join(dir, "bare.db"+suffix))
		}
		ts.Registry.CloseDB(filepath.Join(dir, "app.db")) // checkpointed: all in the file, no -wal
		ts.Registry.CloseDB(filepath.Join(dir, "walled.db"))
		if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot remount read-only (%v: %s)", err, out)
		}
		// Writable again before the server's close checks its databases.
		t.Cleanup(func() { exec.Command("mount", "-o", "remount,rw", dir).Run() })
		readsServed(t, ts, "app", "read-only file system")
		wantReadOnly(t, ts.do(t, "PUT", kv("k", "db=fresh&create_db_if_missing=true"), "v"), "read-only file system")
		wantReadOnly(t, ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=app", ""), "read-only")
		readsServed(t, ts, "copy", "read-only file system")
		wantReadOnly(t, ts.do(t, "GET", kv("k", "db=bare"), ""), "-wal")
	})
	t.Run("directory mode on a read-only mount", func(t *testing.T) {
		dir := smallDisk(t, "size=4m")
		ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
			r, err := sqlitekv.NewResolver(t.TempDir(), []string{dir}, false)
			if err != nil {
				t.Fatal(err)
			}
			a.Resolver = r
		})
		q := "db=" + url.QueryEscape(dir) + "&table=notes"
		wantStatus(t, ts.do(t, "PUT", kv("k", q), "v"), 200)
		ts.Registry.CloseDB(dir)
		if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot remount read-only (%v: %s)", err, out)
		}
		t.Cleanup(func() { exec.Command("mount", "-o", "remount,rw", dir).Run() })
		if r := ts.do(t, "GET", kv("k", q), ""); r.Status != 200 || string(r.Body) != "v" {
			t.Fatalf("GET: got %d %s, want 200 v", r.Status, r.Body)
		}
		wantReadOnly(t, ts.do(t, "PUT", kv("k", q), "w"), "read-only file system")
		wantReadOnly(t, ts.do(t, "GET", kv("k", q+"&rebuild=true"), ""), "read-only file system")
	})
	t.Run("immutable file", func(t *testing.T) {
		ts, path := immutableApp(t)
		readsServed(t, ts, "app", "operation not permitted")
		// It stayed 403 for as long as requests kept the database open.
		writableAgain(t, ts, path)
	})
	t.Run("immutable file in an immutable folder", func(t *testing.T) {
		ts, path := immutableApp(t)
		dir := filepath.Dir(path)
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i on the folder: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
		readsServed(t, ts, "app", "operation not permitted") // read as immutable: no -shm can be made
	})
	t.Run("file writable again, a side file not", func(t *testing.T) {
		ts, path := immutableApp(t)
		t.Cleanup(func() { exec.Command("chattr", "-i", path+"-shm").Run() })
		wantStatus(t, ts.do(t, "GET", kv("k", "db=app"), ""), 200) // opens it read-only, making its -shm
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			t.Fatalf("chattr -i: %v %s", err, out)
		}
		if out, err := exec.Command("chattr", "+i", path+"-shm").CombinedOutput(); err != nil {
			t.Fatalf("chattr +i on the -shm: %v %s", err, out)
		}
		// Not writable yet: a refusal, not a retry that would open it
		// read-only again.
		wantReadOnly(t, ts.do(t, "PUT", kv("k", "db=app"), "w"), "read-only")
	})
}

// A database made read-only while kvd has it open (chattr +i here; a
// mode that forbids kvd's user to write it would do the same) stops
// taking writes at once, as if it had been read-only when opened: the
// next write finds it before its commit, saves nothing and asks for a
// retry (503), which opens the file afresh, read-only (403). What was
// written before stays readable, and the file writable again takes
// writes again. So for its -wal made read-only, which kvd then reads
// read-only. (kvd went on writing the -wal of a read-only file until it
// closed it; a -wal made read-only failed writes with a 500, and the
// database could not even be read once closed; an immutable -shm killed
// kvd at the next write, SIGBUS: SQLite writes it through a shared map.)
func TestReadOnly_AFileMadeReadOnlyWhileOpenStopsTakingWrites(t *testing.T) {
	for _, side := range []string{"", "-wal", "-shm"} {
		t.Run("app.db"+side, func(t *testing.T) {
			ts := newTestServer(t)
			wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
			path := filepath.Join(ts.DataDir, "app.db"+side)
			if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
				t.Skipf("cannot make the file immutable (%v: %s)", err, out)
			}
			t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
			r := ts.do(t, "PUT", kv("k", "db=app"), "w")
			wantError(t, r, 503, "OVERLOADED")
			if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "read-only") || !strings.Contains(msg, "nothing was saved") {
				t.Fatalf("message: got %q, want it to say the file became read-only and nothing was saved", msg)
			}
			readsServed(t, ts, "app", map[string]string{"": "read-only (operation not permitted)", "-wal": "read-only (its -wal: operation not permitted)", "-shm": "read-only (operation not permitted)"}[side])
			writableAgain(t, ts, path)
		})
	}
}

// Changes that leave kvd able to write a database's file and -wal stop
// no write: a mode that still lets kvd write the file, and its folder
// made immutable, which leaves the open files writable, and a reopen
// read-write (its -wal and -shm already there): refusing them would have
// every write reopen the file read-write, to be refused again.
func TestReadOnly_ChangesThatLeaveTheFilesWritableStopNoWrite(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	path := filepath.Join(ts.DataDir, "app.db")
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "w"), 200)
	if out, err := exec.Command("chattr", "+i", ts.DataDir).CombinedOutput(); err != nil {
		t.Skipf("cannot make the folder immutable (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", ts.DataDir).Run() })
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "x"), 200)
	ts.Registry.CloseDB(path) // its -wal and -shm stay: the folder keeps them
	for _, v := range []string{"y", "z"} {
		wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), v), 200)
	}
	if r := ts.do(t, "GET", kv("k", "db=app"), ""); string(r.Body) != "z" {
		t.Fatalf("GET: got %d %s, want z", r.Status, r.Body)
	}
}

// writableAgain makes path, of database app, writable again (chattr -i)
// while kvd has the database open read-only: the next write is asked to
// retry, and the retry is served.
func writableAgain(t *testing.T, ts *testServer, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	wantError(t, ts.do(t, "PUT", kv("k", "db=app"), "w"), 503, "OVERLOADED")
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "w"), 200)
	if r := ts.do(t, "GET", kv("k", "db=app"), ""); string(r.Body) != "w" {
		t.Fatalf("GET after the write: got %d %s, want w", r.Status, r.Body)
	}
}

// immutableApp serves database app, holding k = v, closed and made
// immutable (chattr +i) until the test ends; it skips where chattr
// cannot.
func immutableApp(t *testing.T) (*testServer, string) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	path := filepath.Join(ts.DataDir, "app.db")
	ts.Registry.CloseDB(path)
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("cannot make the file immutable (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
	return ts, path
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
}
