package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// kvd runs as nobody beside a database file nobody may read (chmod 000):
// that is kvd's failure, not the client's, so reads and writes of it
// answer 500 DATABASE_ERROR saying "permission denied" (not 400
// INVALID_DB_PATH), without the file's path; other databases are served.
func TestKvd_DatabaseFileKvdMayNotReadAnswers500(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run kvd as nobody")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is needed to run kvd as nobody")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "kvd-nobody-") // t.TempDir's parent is closed to nobody
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	for _, err := range []error{os.Chmod(dir, 0o755), os.Mkdir(data, 0o755), os.Chown(data, nobody, nobody)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ro := filepath.Join(data, "ro.db")
	store, err := sqlitekv.Open(ro, true, sqlitekv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ro, 0); err != nil {
		t.Fatal(err)
	}
	d := startDaemonUnder(t, []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}, data)
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, target string) (int, map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest(method, d.url+"/api/v1/sqlite/kv/"+target, strings.NewReader("v"))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var fields map[string]any
		json.Unmarshal(body, &fields)
		return res.StatusCode, fields, string(body)
	}

	for _, method := range []string{"GET", "PUT"} {
		status, fields, body := do(method, "a?db=ro")
		if status != 500 || fields["code"] != "DATABASE_ERROR" || !strings.Contains(body, "permission denied") {
			t.Fatalf("%s of a database file kvd may not read: got %d %s, want 500 DATABASE_ERROR saying permission denied\n%s", method, status, body, d.logs)
		}
		if strings.Contains(body, dir) {
			t.Fatalf("%s: the answer names the file's path: %s", method, body)
		}
	}
	if status, _, body := do("PUT", "a?db=ok&create_db_if_missing=true"); status != 200 {
		t.Fatalf("PUT to another database: got %d %s, want 200", status, body)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
}
