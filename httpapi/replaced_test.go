package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

// A database deleted under kvd (rm data/app.db*) must not swallow writes:
// the old file is gone, so a write committed to it is lost at the next
// open. It is refused instead, and the next request opens whatever the
// path names now.
func TestDatabaseFile_DeletedWhileOpenLosesNoAcknowledgedWrite(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("before", "db=app&create_db_if_missing=true"), "1"), 200)
	removeDatabaseFiles(t, ts.DataDir, "app.db")

	r := ts.do(t, "PUT", kv("lost", "db=app"), "2")
	wantError(t, r, 503, "OVERLOADED")
	if msg := r.JSON(t)["message"]; !contains(msg, "deleted or replaced") {
		t.Fatalf("message: got %q, want one that says the file was deleted or replaced", msg)
	}
	wantError(t, ts.do(t, "PUT", kv("lost", "db=app"), "2"), 404, "DATABASE_NOT_FOUND")
	wantStatus(t, ts.do(t, "PUT", kv("after", "db=app&create_db_if_missing=true"), "3"), 200)

	if err := ts.Registry.Close(); err != nil { // what a restart does to the file
		t.Fatal(err)
	}
	path := filepath.Join(ts.DataDir, "app.db")
	if got := valueOnDisk(t, path, "after"); got != "3" {
		t.Fatalf("acknowledged write after the delete, read from the file: got %q, want 3", got)
	}
	if got := valueOnDisk(t, path, "lost"); got != "" {
		t.Fatalf("refused write: got %q in the file, want none", got)
	}
}

// Only the log deleted under kvd (rm data/app.db-wal): the write that
// finds it gone is refused as not saved, and that must be true, since a
// client retries it. Before, it committed into the deleted log, which the
// writer's close then checkpointed into the database file: a retried incr
// counted twice. The writes acknowledged before the rm are kept.
func TestDatabaseFile_LogDeletedWhileOpen_ARefusedWriteIsNotSaved(t *testing.T) {
	ts := newTestServer(t)
	for range 5 {
		wantStatus(t, ts.do(t, "POST", kv("c/incr", "db=app&create_db_if_missing=true"), ""), 200)
	}
	if err := os.Remove(filepath.Join(ts.DataDir, "app.db-wal")); err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, "POST", kv("c/incr", "db=app"), "")
	wantError(t, r, 503, "OVERLOADED")
	if msg := r.JSON(t)["message"]; !contains(msg, "nothing was saved") {
		t.Fatalf("message: got %q", msg)
	}
	if got := string(ts.do(t, "GET", kv("c", "db=app"), "").Body); got != "5" {
		t.Fatalf("after the refused incr: got %q, want 5", got)
	}
	if m := ts.do(t, "POST", kv("c/incr", "db=app"), "").JSON(t); m["value"] != 6.0 {
		t.Fatalf("the retry: got %v, want value 6", m)
	}
	if err := ts.Registry.Close(); err != nil {
		t.Fatal(err)
	}
	if got := valueOnDisk(t, filepath.Join(ts.DataDir, "app.db"), "c"); got != "6" {
		t.Fatalf("in the file: got %q, want 6", got)
	}
}

// The log deleted and another made in its place (a program that opens the
// database meanwhile makes one): the writer's close checkpoints its own
// log, the deleted one, whole; the empty one the path names now is no cut
// log to hold back from, and the writes acknowledged before are kept.
func TestDatabaseFile_LogDeletedAndMadeAnewWhileOpen_KeepsTheAcknowledgedWrites(t *testing.T) {
	ts := newTestServer(t)
	for range 5 {
		wantStatus(t, ts.do(t, "POST", kv("c/incr", "db=app&create_db_if_missing=true"), ""), 200)
	}
	log := filepath.Join(ts.DataDir, "app.db-wal")
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wantError(t, ts.do(t, "POST", kv("c/incr", "db=app"), ""), 503, "OVERLOADED")
	if got := string(ts.do(t, "GET", kv("c", "db=app"), "").Body); got != "5" {
		t.Fatalf("after the refused incr: got %q, want 5", got)
	}
}

// The log truncated in place under kvd (: > data/app.db-wal) loses what
// it held since the last checkpoint; nothing kvd does can bring that back.
// What it must not do is go on writing frames after the hole, answering
// 200, and then checkpoint the hole's zeros over the database file when it
// closes: before, that wrote zeros over page 1, and every key of the
// database was gone. The request that finds the log cut (a write, or a
// read that needs a lost frame) is refused as not carried out, the next
// opens the database afresh, and the file stays whole.
// Cut in the middle of a commit's frames, what is left of the log keeps
// the commits before it; a checkpoint at close would have written the cut
// commit's first pages over the checkpointed ones, and the database would
// be corrupt.
func TestDatabaseFile_LogTruncatedWhileOpen_TheDatabaseFileSurvives(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cut        func(before, after int64) int64 // the log's new size, from its sizes around the last commit
		beforeKept bool
		first      string // the request that finds the cut: a write, a read, or none before kvd closes the file
	}{
		{"to nothing", func(int64, int64) int64 { return 0 }, false, "PUT"},
		{"inside the last commit", func(before, after int64) int64 { return (before + after) / 2 }, true, "PUT"},
		{"to nothing, then read", func(int64, int64) int64 { return 0 }, false, "GET"},
		{"inside the last commit, then read", func(before, after int64) int64 { return (before + after) / 2 }, true, "GET"},
		{"to nothing, then closed", func(int64, int64) int64 { return 0 }, false, ""},
		{"inside the last commit, then closed", func(before, after int64) int64 { return (before + after) / 2 }, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			checkpointed := "before" + strings.Repeat(".", 1000) // four to a page
			for i := range 20 {
				wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%d", i), "db=app&create_db_if_missing=true"), checkpointed), 200)
			}
			checkpoint(t, filepath.Join(ts.DataDir, "app.db")) // these pages are in the database file now
			wantStatus(t, ts.do(t, "PUT", kv("k19", "db=app"), "before"), 200)
			log := filepath.Join(ts.DataDir, "app.db-wal")
			before := sizeOf(t, log)
			var items []map[string]any
			for i := range 100 {
				items = append(items, map[string]any{"key": fmt.Sprintf("k%d", i), "value": strings.Repeat("b", 2000)})
			}
			body, _ := json.Marshal(map[string]any{"items": items})
			wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/kv/batch/set?db=app", string(body)), 200)
			if err := os.Truncate(log, tc.cut(before, sizeOf(t, log))); err != nil {
				t.Fatal(err)
			}

			if tc.first != "" {
				r := ts.do(t, tc.first, kv("refused", "db=app"), "x")
				wantError(t, r, 503, "OVERLOADED")
				if msg := r.JSON(t)["message"]; !contains(msg, "truncated") || !contains(msg, "not carried out") {
					t.Fatalf("message: got %q", msg)
				}
				if got := string(ts.do(t, "GET", kv("k0", "db=app"), "").Body); got != checkpointed {
					t.Fatalf("a read after the reopen: got %q", got)
				}
				wantStatus(t, ts.do(t, "PUT", kv("after", "db=app"), "kept"), 200)
				if got := string(ts.do(t, "GET", kv("after", "db=app"), "").Body); got != "kept" {
					t.Fatalf("read after the reopen: got %q, want kept", got)
				}
			}
			// What a restart does to the file; without a request since the
			// cut, the close alone must not checkpoint what is left of it.
			if err := ts.Registry.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(ts.DataDir, "app.db")
			if got := valueOnDisk(t, path, "after"); tc.first != "" && got != "kept" {
				t.Fatalf("acknowledged write after the truncation, read from the file: got %q, want kept", got)
			}
			if got := valueOnDisk(t, path, "refused"); got != "" {
				t.Fatalf("refused write: got %q in the file, want none", got)
			}
			if got := valueOnDisk(t, path, "k0"); got != checkpointed {
				t.Fatalf("a write checkpointed before the cut: got %q", got)
			}
			if got := valueOnDisk(t, path, "k19"); tc.beforeKept && got != "before" {
				t.Fatalf("a write committed before the cut commit: got %q, want before", got)
			}
			// newTestServer's cleanup runs PRAGMA integrity_check on app.db.
		})
	}
}

// checkpoint copies a database's log into its file, as any program that
// opens it may.
func checkpoint(tb testing.TB, path string) {
	tb.Helper()
	conn, err := sqlite3.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		tb.Fatal(err)
	}
}

// Reads do not go on for long from a file that was deleted: within a
// bounded time they answer what the path names now.
func TestDatabaseFile_DeletedWhileOpenIsSoonNotRead(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	wantStatus(t, ts.do(t, "GET", kv("k", "db=app"), ""), 200) // a read connection is open
	removeDatabaseFiles(t, ts.DataDir, "app.db")

	r := readUntilRefused(t, ts, kv("k", "db=app"), "v")
	wantError(t, r, 503, "OVERLOADED")
	wantError(t, ts.do(t, "GET", kv("k", "db=app"), ""), 404, "DATABASE_NOT_FOUND")
}

// A read that must open a connection to a file deleted since it was
// opened answers as one on an open connection does: 503, never a 500.
func TestDatabaseFile_DeletedBeforeItsFirstReadAnswers503(t *testing.T) {
	for _, path := range []string{kv("k", "db=app"), "/api/v1/sqlite/kv?db=app", kv("k/history", "db=app"), "/api/v1/sqlite/db/backup?db=app"} {
		ts := newTestServer(t)
		wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200) // no read connection yet
		removeDatabaseFiles(t, ts.DataDir, "app.db")
		wantError(t, ts.do(t, "GET", path, ""), 503, "OVERLOADED")
		wantError(t, ts.do(t, "GET", path, ""), 404, "DATABASE_NOT_FOUND")
	}
}

// A symlink to a database outside every root, swapped in for an open
// database, must not become a way out: that file is neither read nor
// written, and the next open refuses the link as the resolver always did.
func TestDatabaseFile_SymlinkSwappedInIsNeitherReadNorWritten(t *testing.T) {
	for _, tc := range []struct {
		name      string
		readFirst bool // a read connection is open before the swap
		after     string
	}{
		{"read on a new connection", false, "GET"},
		{"read on a connection opened before", true, "GET"},
		{"write", true, "PUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			outside := filepath.Join(t.TempDir(), "outside.db")
			writeDatabase(t, outside, "k", "OUTSIDE")
			wantStatus(t, ts.do(t, "PUT", kv("k", "db=x&create_db_if_missing=true"), "inside"), 200)
			if tc.readFirst {
				wantStatus(t, ts.do(t, "GET", kv("k", "db=x"), ""), 200)
			}
			link := filepath.Join(ts.DataDir, "x.db")
			removeDatabaseFiles(t, ts.DataDir, "x.db")
			if err := os.Symlink(outside, link); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(link) })

			if tc.after == "GET" {
				readUntilRefused(t, ts, kv("k", "db=x"), "inside")
			} else if r := ts.do(t, "PUT", kv("k", "db=x"), "written"); r.Status == 200 {
				t.Fatalf("write after the swap: got 200 %s, want it refused", r.Body)
			}
			wantError(t, ts.do(t, "GET", kv("k", "db=x"), ""), 400, "INVALID_DB_PATH")
			wantError(t, ts.do(t, "PUT", kv("k", "db=x"), "written"), 400, "INVALID_DB_PATH")
			if got := valueOnDisk(t, outside, "k"); got != "OUTSIDE" {
				t.Fatalf("outside database: got %q, want it untouched", got)
			}
		})
	}
}

// A database name that fits the filesystem while its side file
// (name-journal) does not is refused up front, and leaves no file: before,
// SQLite created the file, failed on the log, and the empty file left
// made the name answer 500 for good.
func TestDatabase_NameWhoseSideFilesDoNotFitIsRefusedAndLeavesNoFile(t *testing.T) {
	ts := newTestServer(t)
	// name.db of n bytes: name.db-journal over 255; past 255, no file
	// can even be so named. Each says why.
	for _, n := range []int{248, 251, 252, 255, 256, 300} {
		name := strings.Repeat("n", n-len(".db"))
		for range 2 {
			r := ts.do(t, "PUT", kv("k", "create_db_if_missing=true&db="+name), "x")
			wantError(t, r, 400, "INVALID_DB_PATH")
		}
		r := ts.do(t, "GET", kv("k", "db="+name+".db"), "")
		wantError(t, r, 400, "INVALID_DB_PATH")
		if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, fmt.Sprintf("name is too long: %d bytes, at most 247", n)) {
			t.Fatalf("name of %d bytes: message %q, want it to say the name is too long", n, msg)
		}
	}
	if left, _ := os.ReadDir(ts.DataDir); len(left) != 0 {
		t.Fatalf("files left by refused databases: %d, first %q", len(left), left[0].Name())
	}
	longest := strings.Repeat("n", 247-len(".db")) // name.db-journal is 255 bytes
	wantStatus(t, ts.do(t, "PUT", kv("k", "create_db_if_missing=true&db="+longest), "x"), 200)
	if got := ts.do(t, "GET", kv("k", "db="+longest), ""); string(got.Body) != "x" {
		t.Fatalf("longest name: got %d %q, want x", got.Status, got.Body)
	}
}

// removeDatabaseFiles deletes a database and its side files, as rm
// data/app.db* does.
func removeDatabaseFiles(tb testing.TB, dir, name string) {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, name+"*"))
	if len(files) == 0 {
		tb.Fatalf("no %s files in %s", name, dir)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			tb.Fatal(err)
		}
	}
}

// readUntilRefused reads path until it is no longer served, for at most
// two seconds, failing if any answer in between is not the value old. It
// returns the first refusal.
func readUntilRefused(tb testing.TB, ts *testServer, path, old string) response {
	tb.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		r := ts.do(tb, "GET", path, "")
		if r.Status != 200 {
			return r
		}
		if string(r.Body) != old {
			tb.Fatalf("read after the file was replaced: got %q, want %q or a refusal", r.Body, old)
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("reads still served %q two seconds after its file was replaced", old)
	return response{}
}

// writeDatabase makes a database at path holding key = value.
func writeDatabase(tb testing.TB, path, key, value string) {
	tb.Helper()
	s, err := sqlitekv.Open(path, true, sqlitekv.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Writer().Put(sqlitekv.PutRequest{Table: sqlitekv.DefaultTable, Key: key, Value: []byte(value), ContentType: "text/plain"}); err != nil {
		tb.Fatal(err)
	}
}

// valueOnDisk opens the database at path afresh and reads key ("" when
// missing).
func valueOnDisk(tb testing.TB, path, key string) string {
	tb.Helper()
	s, err := sqlitekv.Open(path, false, sqlitekv.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	e, err := s.Get(context.Background(), sqlitekv.GetRequest{Table: sqlitekv.DefaultTable, Key: key})
	switch sqlitekv.CodeOf(err) {
	case "":
		return string(e.Value)
	case sqlitekv.CodeKeyNotFound:
		return ""
	}
	tb.Fatal(err)
	return ""
}

// A copy renamed over an open database (a restore) is what the path
// names from then on: the next open serves the copy, not the copy mixed
// with the log kvd kept for the file it replaced.
func TestDatabaseFile_ReplacedWhileOpenServesTheNewFile(t *testing.T) {
	ts := newTestServer(t)
	for _, k := range []string{"k", "only-old"} {
		wantStatus(t, ts.do(t, "PUT", kv(k, "db=app&create_db_if_missing=true"), "old"), 200)
	}
	restored := filepath.Join(t.TempDir(), "restored.db")
	writeDatabase(t, restored, "k", "restored")
	if err := os.Rename(restored, filepath.Join(ts.DataDir, "app.db")); err != nil {
		t.Fatal(err)
	}

	wantError(t, ts.do(t, "PUT", kv("lost", "db=app"), "x"), 503, "OVERLOADED")
	if got := ts.do(t, "GET", kv("k", "db=app"), ""); got.Status != 200 || string(got.Body) != "restored" {
		t.Fatalf("k after the restore: got %d %q, want restored", got.Status, got.Body)
	}
	wantError(t, ts.do(t, "GET", kv("only-old", "db=app"), ""), 404, "KEY_NOT_FOUND")
	wantError(t, ts.do(t, "GET", kv("lost", "db=app"), ""), 404, "KEY_NOT_FOUND")
}

// A copy renamed over a database that takes no request until kvd closes
// it (idle, or kvd stopping): the close must not leave the log of the file
// it replaced at the path, where the next open replayed it into the copy.
// That served the old keys, lost the copy's, and failed integrity_check.
func TestDatabaseFile_ReplacedWhileIdle_ItsLogIsNotReplayedIntoTheCopy(t *testing.T) {
	ts := newTestServer(t)
	for i := range 200 {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("old%d", i), "db=app&create_db_if_missing=true"), strings.Repeat("o", 500)), 200)
	}
	restored := filepath.Join(t.TempDir(), "restored.db")
	writeDatabase(t, restored, "k", "restored")
	path := filepath.Join(ts.DataDir, "app.db")
	if err := os.Rename(restored, path); err != nil {
		t.Fatal(err)
	}
	if err := ts.Registry.Close(); err != nil { // an idle close, or kvd stopping
		t.Fatal(err)
	}
	if err := sqlitekv.CheckIntegrity(path); err != nil {
		t.Fatalf("the copy after kvd closed the file it replaced: %v", err)
	}
	if got, old := valueOnDisk(t, path, "k"), valueOnDisk(t, path, "old1"); got != "restored" || old != "" {
		t.Fatalf("the copy after kvd closed: k = %q, old1 = %q; want restored and nothing", got, old)
	}
}

// A database moved away while open (mv data/app.db elsewhere/, its -wal
// after it or not, as separate renames do) keeps every write kvd
// acknowledged: the close copies the log into the file kvd had open,
// wherever it is now. Before, SQLite's close skipped that for a file no
// longer at its path, and kvd then deleted the log left there, with the
// writes not yet copied (36 of 40 keys lost their newest write in a
// helper's run).
func TestDatabaseFile_MovedAwayWhileOpen_KeepsItsAcknowledgedWrites(t *testing.T) {
	for name, logMovedToo := range map[string]bool{"log left behind": false, "log moved after it": true} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t)
			for i := range 50 {
				wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%d", i), "db=app&create_db_if_missing=true"), fmt.Sprint("v", i)), 200)
			}
			path, moved := filepath.Join(ts.DataDir, "app.db"), filepath.Join(t.TempDir(), "app.db")
			if err := os.Rename(path, moved); err != nil {
				t.Fatal(err)
			}
			if logMovedToo {
				if err := os.Rename(path+"-wal", moved+"-wal"); err != nil {
					t.Fatal(err)
				}
			}
			wantError(t, ts.do(t, "PUT", kv("refused", "db=app"), "x"), 503, "OVERLOADED")
			wantError(t, ts.do(t, "GET", kv("k1", "db=app"), ""), 404, "DATABASE_NOT_FOUND")
			if err := ts.Registry.Close(); err != nil { // the close, which the next request began, done
				t.Fatal(err)
			}
			if err := sqlitekv.CheckIntegrity(moved); err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				if got, want := valueOnDisk(t, moved, fmt.Sprintf("k%d", i)), fmt.Sprint("v", i); got != want {
					t.Fatalf("k%d in the moved file: got %q, want %q", i, got, want)
				}
			}
			if got := valueOnDisk(t, moved, "refused"); got != "" {
				t.Fatalf("the refused write is in the moved file: %q", got)
			}
			if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
				t.Fatalf("a log is left at the database's old path: %v", err)
			}
		})
	}
}

// A database file truncated in place (same inode) while open, shorter
// than the pages its header counts (here, no header at all): reads took
// its missing pages for an empty database, answering every key 404 and
// the listing empty until a write came. The request that finds it, a read within
// identityCheckInterval or the next write, is refused as not carried out,
// and the next opens the database afresh: what the log holds (here every
// write, none checkpointed yet) is read again.
func TestDatabaseFile_TruncatedInPlaceWhileOpen_IsNotTakenForEmpty(t *testing.T) {
	for _, first := range []string{"GET", "PUT"} {
		t.Run(first, func(t *testing.T) {
			ts := newTestServer(t)
			for i := range 50 {
				wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%d", i), "db=app&create_db_if_missing=true"), fmt.Sprintf("v%d", i)), 200)
			}
			if err := os.Truncate(filepath.Join(ts.DataDir, "app.db"), 0); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond) // past the reads' look at the file
			r := ts.do(t, first, kv("k5", "db=app"), "refused")
			wantError(t, r, 503, "OVERLOADED")
			if msg := r.JSON(t)["message"]; !contains(msg, "truncated") || !contains(msg, "not carried out") {
				t.Fatalf("message: got %q", msg)
			}
			if r := ts.do(t, "GET", kv("k5", "db=app"), ""); r.Status != 200 || string(r.Body) != "v5" {
				t.Fatalf("a read after the reopen: got %d %s, want v5", r.Status, r.Body)
			}
			if n := ts.do(t, "GET", "/api/v1/sqlite/kv?db=app", "").JSON(t)["count"]; n != 50.0 {
				t.Fatalf("listing after the reopen: count %v, want 50", n)
			}
			wantStatus(t, ts.do(t, "PUT", kv("after", "db=app"), "kept"), 200)
			if got := string(ts.do(t, "GET", kv("after", "db=app"), "").Body); got != "kept" {
				t.Fatalf("read after the reopen: got %q, want kept", got)
			}
		})
	}
}

// Cut after a checkpoint, the file loses pages only it held: the request
// that finds the cut is refused, and after the reopen a key the log still
// holds reads back, while one whose pages went with the cut is a 500 that
// says so, never a wrong value or a 404.
func TestDatabaseFile_TruncatedAfterACheckpoint_LosesOnlyWhatTheLogDoesNotHold(t *testing.T) {
	ts := newTestServer(t)
	big := strings.Repeat("c", 20000)
	for i := range 30 {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%d", i), "db=app&create_db_if_missing=true"), big), 200)
	}
	path := filepath.Join(ts.DataDir, "app.db")
	checkpoint(t, path)
	wantStatus(t, ts.do(t, "PUT", kv("late", "db=app"), "in the log"), 200)
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	wantError(t, ts.do(t, "PUT", kv("refused", "db=app"), "x"), 503, "OVERLOADED")
	if r := ts.do(t, "GET", kv("late", "db=app"), ""); r.Status != 200 || string(r.Body) != "in the log" {
		t.Fatalf("a write the log holds, after the reopen: got %d %s", r.Status, r.Body)
	}
	r := ts.do(t, "GET", kv("k1", "db=app"), "")
	wantError(t, r, 500, "DATABASE_ERROR")
	if msg := r.JSON(t)["message"]; !contains(msg, "corrupt") {
		t.Fatalf("a key whose pages were cut: got %q, want it called corrupt", msg)
	}
	ts.Registry.Close()
	if err := os.Remove(path); err != nil { // for newTestServer's integrity check, which it would fail
		t.Fatal(err)
	}
	os.Remove(path + "-wal")
}

// SQLite itself shortens a database file whose page count fell: with
// auto_vacuum (a file another program made), a checkpoint after deletes
// trims it. That is no cut: every write and read is served. (Taken for
// one, a delete in each round answered 503.)
func TestDatabaseFile_ShortenedBySQLiteIsNotACut(t *testing.T) {
	ts := newTestServer(t)
	path := filepath.Join(ts.DataDir, "app.db")
	conn, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(`PRAGMA auto_vacuum = FULL; CREATE TABLE made_elsewhere (x); PRAGMA journal_mode = WAL`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	big := strings.Repeat("v", 80000)
	for range 3 {
		for i := range 40 {
			wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%d", i), "db=app&history=false"), big), 200)
		}
		for i := range 40 {
			wantStatus(t, ts.do(t, "DELETE", kv(fmt.Sprintf("k%d", i), "db=app&history=false"), ""), 200)
			if i%10 == 0 {
				time.Sleep(110 * time.Millisecond) // reads look at the file too
				wantStatus(t, ts.do(t, "GET", kv(fmt.Sprintf("k%d", i), "db=app"), ""), 404)
			}
		}
	}
}

// A file left with a hot rollback journal (a program died inside a
// transaction) is rolled back when kvd first reads it, which shortens it
// to its size before that transaction: no cut, and no write is refused
// for it. (Taken for one, the first write answered 503.)
func TestDatabaseFile_AHotJournalRolledBackAtOpenIsNotACut(t *testing.T) {
	ts := newTestServer(t)
	made := filepath.Join(t.TempDir(), "made.db")
	conn, err := sqlite3.Open(made)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(`PRAGMA journal_mode = DELETE; PRAGMA cache_size = 5; CREATE TABLE made_elsewhere (x);
BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO made_elsewhere SELECT randomblob(500) FROM n`); err != nil {
		t.Fatal(err)
	}
	// Copied mid-transaction, the file holds spilled pages and the journal
	// is hot: no process holds a lock on the copy.
	path := filepath.Join(ts.DataDir, "app.db")
	copyFile(t, made, path)
	copyFile(t, made+"-journal", path+"-journal")
	if err := conn.Exec(`ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	before := sizeOf(t, path)
	for i := range 3 {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("a%d", i), "db=app"), "v"), 200)
	}
	if after := sizeOf(t, path); after >= before {
		t.Fatalf("the file was %d bytes with the spilled pages and is %d: no rollback shortened it, the test did not reach its case", before, after)
	}
}
