package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
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
	dir, data, asNobody := nobodysDataDir(t)
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
	d := startDaemonUnder(t, asNobody, data)
	do := func(method, target string) (int, map[string]any, string) { return ask(t, d, method, target, "v") }

	for _, method := range []string{"GET", "PUT"} {
		status, fields, body := do(method, "/a?db=ro")
		if status != 500 || fields["code"] != "DATABASE_ERROR" || !strings.Contains(body, "permission denied") {
			t.Fatalf("%s of a database file kvd may not read: got %d %s, want 500 DATABASE_ERROR saying permission denied\n%s", method, status, body, d.logs)
		}
		if strings.Contains(body, dir) {
			t.Fatalf("%s: the answer names the file's path: %s", method, body)
		}
	}
	if status, _, body := do("PUT", "/a?db=ok&create_db_if_missing=true"); status != 200 {
		t.Fatalf("PUT to another database: got %d %s, want 200", status, body)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
}

// In directory mode, a key's file kvd may not read is not served: a read
// of it answers FILE_SYSTEM_ERROR naming the key. A rescan goes on past
// it (it failed whole before, so no file dropped in since was listed),
// keeping what the cache knew of a key it holds (a chmod says nothing of
// the bytes) and leaving out one it never knew, whose incr is refused
// rather than started from 0, and whose PUT replaces it.
func TestKvd_DirectoryModeFileKvdMayNotReadIsNotServed(t *testing.T) {
	dir, data, asNobody := nobodysDataDir(t)
	folder := filepath.Join(dir, "notes")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(folder, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	d := startDaemonUnder(t, asNobody, data, "--allow-dir", dir)
	q := "?db=" + url.QueryEscape(folder) + "&table=t"
	key := func(k string) string { return "/" + k + q }
	want := func(method, target, body string, status int, says string) {
		t.Helper()
		if got, _, answer := ask(t, d, method, target, body); got != status || !strings.Contains(answer, says) {
			t.Fatalf("%s %s: %d %s, want %d saying %q\n%s", method, target, got, answer, status, says, d.logs)
		}
	}
	want("PUT", key("k1"), "k1", 200, `"created":true`)
	want("PUT", key("k2")+"&ttl=3600", "# k2", 200, `"created":true`)
	k2 := filepath.Join(folder, "t", "k2")
	for name, mode := range map[string]os.FileMode{"k8": 0, "k9": 0o644} { // dropped in by hand
		p := filepath.Join(folder, "t", name)
		if err := os.WriteFile(p, []byte("by hand"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(k2, 0); err != nil {
		t.Fatal(err)
	}
	want("GET", key("k2"), "", 500, `Key \"k2\"'s file cannot be read (permission denied)`)
	want("GET", q+"&rebuild=true", "", 200, `"keys":["k1","k2","k9"]`)
	want("POST", key("k8/incr"), "", 500, `Key \"k8\"'s file cannot be read`)
	want("PUT", key("k8"), "new", 200, `"created":true`)
	want("GET", key("k8"), "", 200, "new")

	if err := os.Chmod(k2, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(d.url + "/api/v1/sqlite/kv" + key("k2"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Expire-At") == "" {
		t.Fatalf("k2 readable again: %d, X-Expire-At %q; want 200 with its TTL", res.StatusCode, res.Header.Get("X-Expire-At"))
	}
	want("GET", key("k2/history"), "", 200, `"op":"set"`)
	if _, _, history := ask(t, d, "GET", key("k2/history"), ""); strings.Contains(history, "unrecorded") {
		t.Fatalf("k2's history after its file was unreadable for a rescan: %s, want no unrecorded write", history)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
}

const nobody = 65534

// nobodysDataDir skips the test unless it can run kvd as nobody (as root,
// with setpriv), and makes a data dir nobody owns, in a directory dir that
// nobody may enter (t.TempDir's parent is closed to nobody); asNobody is
// the wrapper that runs kvd so.
func nobodysDataDir(t *testing.T) (dir, data string, asNobody []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run kvd as nobody")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is needed to run kvd as nobody")
	}
	dir, err = os.MkdirTemp("", "kvd-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data = filepath.Join(dir, "data")
	for _, err := range []error{os.Chmod(dir, 0o755), os.Mkdir(data, 0o755), os.Chown(data, nobody, nobody)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir, data, []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}
}

// ask sends one request to d's KV API (target: "/key?query", or "?query"
// for the listing) and
// returns the answer's status, its JSON fields and its body.
func ask(t *testing.T, d *kvdProcess, method, target, body string) (int, map[string]any, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest(method, d.url+"/api/v1/sqlite/kv"+target, strings.NewReader(body))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(res.Body)
	var fields map[string]any
	json.Unmarshal(answer, &fields)
	return res.StatusCode, fields, string(answer)
}
