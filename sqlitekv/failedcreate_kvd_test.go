package sqlitekv_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kvd/kvd/sqlitekv"
)

// A create that fails after SQLite wrote the database's first page (here
// the folder's fsync, once kvd ran out of file descriptors) removes the
// file it made: left behind, the refused create would have happened after
// all, and the name would answer KEY_NOT_FOUND instead of
// DATABASE_NOT_FOUND, also after a restart.
func TestKvd_FailedCreateLeavesNoDatabase(t *testing.T) {
	dir := t.TempDir()
	srv := startKvd(t, dir)
	do := func(method, target string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/sqlite/kv/"+target, strings.NewReader("v"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}

	restore := sqlitekv.SetSyncDir(func(folder string) error {
		return &os.PathError{Op: "open", Path: folder, Err: syscall.EMFILE}
	})
	status, body := do("PUT", "a?db=m9&create_db_if_missing=true")
	restore()
	if status != 503 || !strings.Contains(body, "too many open files") {
		t.Fatalf("create whose folder cannot be synced: got %d %s, want 503 saying too many open files", status, body)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "m9.db*")); len(left) > 0 {
		t.Fatalf("files left by the failed create: %q", left)
	}
	if status, body := do("GET", "a?db=m9"); status != 404 || !strings.Contains(body, "DATABASE_NOT_FOUND") {
		t.Fatalf("read after the failed create: got %d %s, want 404 DATABASE_NOT_FOUND", status, body)
	}
	if status, body := do("PUT", "a?db=m9&create_db_if_missing=true"); status != 200 {
		t.Fatalf("create once the folder syncs: got %d %s, want 200", status, body)
	}
}
