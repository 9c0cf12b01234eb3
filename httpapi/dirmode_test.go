package httpapi_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dirServer serves directory mode on <data>/tree, table "notes".
func dirServer(t *testing.T, opts ...serverOption) (*testServer, string, string) {
	t.Helper()
	ts := newTestServer(t, opts...)
	root := filepath.Join(ts.DataDir, "tree")
	if err := os.MkdirAll(root, 0o750); err != nil {
		t.Fatal(err)
	}
	return ts, root, "db=" + url.QueryEscape(root) + "&table=notes"
}

func fileOf(t *testing.T, root, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "notes", filepath.FromSlash(key)))
	if err != nil {
		return "<missing>"
	}
	return string(data)
}

func TestDirMode_EveryOperationKeepsFilesAndCacheInStep(t *testing.T) {
	ts, root, q := dirServer(t)
	// PUT, GET, HEAD: the value is the file.
	put := ts.do(t, "PUT", kv("docs%2Freadme.md", q), "# hello\n", "Content-Type", "text/markdown")
	wantStatus(t, put, 200)
	if put.JSON(t)["created"] != true || fileOf(t, root, "docs/readme.md") != "# hello\n" {
		t.Fatalf("put: %s, file %q", put.Body, fileOf(t, root, "docs/readme.md"))
	}
	get := ts.do(t, "GET", kv("docs%2Freadme.md", q), "")
	if string(get.Body) != "# hello\n" || get.Header.Get("Content-Type") != "text/markdown" || get.Header.Get("ETag") != put.Header.Get("ETag") {
		t.Fatalf("get: %q %v", get.Body, get.Header)
	}
	wantStatus(t, ts.do(t, "HEAD", kv("docs%2Freadme.md", q), ""), 200)
	// CAS, path, TTL, history=false.
	ts.do(t, "PUT", kv("cfg.json", q), `{"theme":"dark"}`)
	wantError(t, ts.do(t, "PUT", kv("cfg.json", q+"&if_match=nope"), `{}`), 412, "CAS_MISMATCH")
	wantStatus(t, ts.do(t, "PUT", kv("cfg.json", q+"&path=theme"), `"light"`), 200)
	if fileOf(t, root, "cfg.json") != `{"theme":"light"}` {
		t.Fatalf("file after path put: %q", fileOf(t, root, "cfg.json"))
	}
	if got := string(ts.do(t, "GET", kv("cfg.json", q+"&path=theme"), "").Body); got != `"light"` {
		t.Fatalf("path get: %s", got)
	}
	ts.do(t, "PUT", kv("session", q+"&ttl=5"), "s")
	ts.Clock.Advance(6 * time.Second)
	wantError(t, ts.do(t, "GET", kv("session", q), ""), 404, "KEY_EXPIRED")
	ts.do(t, "PUT", kv("later", q), "x") // FIFO: the expiry is done once this is acknowledged
	if fileOf(t, root, "session") != "<missing>" {
		t.Fatal("expired key's file is still there")
	}
	// incr/decr.
	ts.do(t, "POST", kv("counters%2Fhits/incr", q+"&delta=5"), "")
	ts.do(t, "POST", kv("counters%2Fhits/decr", q), "")
	if fileOf(t, root, "counters/hits") != "4" {
		t.Fatalf("counter file: %q", fileOf(t, root, "counters/hits"))
	}
	// batch and listing.
	wantStatus(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"b/1","value":"one"},{"key":"b/2","value":"two"}]}`), 200)
	if fileOf(t, root, "b/2") != "two" {
		t.Fatal("batch file missing")
	}
	bg := ts.do(t, "POST", batchPath+"get?"+q, `{"keys":["b/1","b/2","none"]}`)
	if !strings.Contains(string(bg.Body), `"b/1":{"value":"one"`) || !strings.Contains(string(bg.Body), `"none":null`) {
		t.Fatalf("batch get: %s", bg.Body)
	}
	if got := strs(ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&prefix=b%2F", "").JSON(t)["keys"]); fmt.Sprint(got) != "[b/1 b/2]" {
		t.Fatalf("list: %v", got)
	}
	wantStatus(t, ts.do(t, "POST", batchPath+"delete?"+q, `{"keys":["b/1"]}`), 200)
	// DELETE and history.
	wantStatus(t, ts.do(t, "DELETE", kv("docs%2Freadme.md", q), ""), 200)
	if fileOf(t, root, "docs/readme.md") != "<missing>" || fileOf(t, root, "b/1") != "<missing>" {
		t.Fatal("deleted keys' files remain")
	}
	wantError(t, ts.do(t, "GET", kv("docs%2Freadme.md", q), ""), 404, "KEY_NOT_FOUND")
	if ops := ts.do(t, "GET", kv("cfg.json/history", q), "").JSON(t)["operations"].([]any); len(ops) != 2 {
		t.Fatalf("history of cfg.json: %d entries, want 2", len(ops))
	}
	// The directory's cache is not a database of its own: one owner only.
	wantError(t, ts.do(t, "GET", kv("k", "db="+url.QueryEscape(filepath.Join(root, ".kvd-cache.db"))), ""), 400, "INVALID_DB_PATH")
	// A directory without table is not directory mode.
	wantError(t, ts.do(t, "GET", kv("x", "db="+url.QueryEscape(root)), ""), 400, "PATH_IS_DIRECTORY")
}

// A symlink in a table's folder, to a file or to a folder, inside the
// folder or out of it, is no key and no second name for another key's
// file: reads find no key (404 naming the link), writes are refused, a
// key whose file a person replaced by a link reads as removed by hand
// (and drops out of the listing), and the link and what it points to
// stay as they are.
func TestDirMode_ASymlinkIsNoKeyNorASecondNameForAFile(t *testing.T) {
	ts, root, q := dirServer(t)
	notes := filepath.Join(root, "notes")
	for key, value := range map[string]string{"a": "A", "shared%2Fx": "X", "c": "C"} {
		wantStatus(t, ts.do(t, "PUT", kv(key, q), value), 200)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(notes, "c"))
	for link, target := range map[string]string{"b": "a", "alias": "shared", "out": outside, "c": "a", "loop": "loop"} {
		if err := os.Symlink(target, filepath.Join(notes, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"b", "alias%2Fx", "out", "c", "loop", "loop%2Fx"} {
		r := ts.do(t, "GET", kv(key, q), "")
		wantError(t, r, 404, "KEY_NOT_FOUND")
		if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "symlink") {
			t.Fatalf("GET %s: message %q, want it to name a symlink", key, msg)
		}
		wantStatus(t, ts.do(t, "HEAD", kv(key, q), ""), 404)
	}
	bg := ts.do(t, "POST", batchPath+"get?"+q, `{"keys":["a","b","alias/x","c"]}`)
	wantStatus(t, bg, 200)
	if values := bg.JSON(t)["values"].(map[string]any); values["a"] == nil || values["b"] != nil || values["alias/x"] != nil || values["c"] != nil {
		t.Fatalf("batch get: %s, want a's value and null for the links", bg.Body)
	}
	for _, key := range []string{"b", "alias%2Fy", "loop%2Fy"} {
		r := ts.do(t, "PUT", kv(key, q), "through")
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "symlink") {
			t.Fatalf("PUT %s: message %q, want it to name a symlink", key, msg)
		}
	}
	// A batch refused whole says which key went through a link.
	r := ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"a","value":"1"},{"key":"alias/y","value":"2"}]}`)
	wantError(t, r, 400, "INVALID_PARAMETERS")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, `Key "alias/y" goes through a symlink`) {
		t.Fatalf("batch set through a link: message %q, want it to name the key", msg)
	}
	wantError(t, ts.do(t, "DELETE", kv("b", q), ""), 404, "KEY_NOT_FOUND")
	if got, want := fmt.Sprint(historyOps(t, ts, "c", q)), "[import <nil> set C]"; got != want {
		t.Fatalf("history of c: got %s, want %s (its file gone, as when removed by hand)", got, want)
	}
	r = ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", "")
	if got := fmt.Sprint(strs(r.JSON(t)["keys"])); got != "[a shared/x]" {
		t.Fatalf("listing after a rebuild: got %s, want [a shared/x]", got)
	}
	for link, target := range map[string]string{"b": "a", "alias": "shared", "c": "a"} {
		if got, err := os.Readlink(filepath.Join(notes, link)); err != nil || got != target {
			t.Fatalf("link %s: %q, %v, want it left pointing to %s", link, got, err, target)
		}
	}
	if fileOf(t, root, "a") != "A" || fileOf(t, root, "shared/x") != "X" || fileOf(t, root, "shared/y") != "<missing>" {
		t.Fatalf("files: a %q, shared/x %q, shared/y %q", fileOf(t, root, "a"), fileOf(t, root, "shared/x"), fileOf(t, root, "shared/y"))
	}
}

// A directory-mode database inside the table folder of another keeps its
// files. Making the outer folder one, while the inner one is there, is
// refused: the inner one would be refused from then on. And a folder with
// a cache copied into a table folder later is neither listed nor written.
func TestDirMode_ANestedDirectoryModeDatabaseKeepsItsFiles(t *testing.T) {
	ts, root, _ := dirServer(t)
	inner := "db=" + url.QueryEscape(filepath.Join(root, "inner")) + "&table=t"
	outer := "db=" + url.QueryEscape(root) + "&table=inner"
	if err := os.MkdirAll(filepath.Join(root, "inner"), 0o750); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ts.do(t, "PUT", kv("k", inner), "precious"), 200)
	wantError(t, ts.do(t, "PUT", kv("t%2Fk", outer), "overwritten"), 400, "INVALID_DB_PATH")
	if got := string(ts.do(t, "GET", kv("k", inner), "").Body); got != "precious" {
		t.Fatalf("the inner database's key: got %q", got)
	}

	ts, root, _ = dirServer(t)
	outer = "db=" + url.QueryEscape(root) + "&table=notes"
	wantStatus(t, ts.do(t, "PUT", kv("seed", outer), "1"), 200)
	copied := filepath.Join(root, "notes", "copied")
	if err := os.MkdirAll(filepath.Join(copied, "t"), 0o750); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{".kvd-cache.db": "", "t/k": "precious"} {
		if err := os.WriteFile(filepath.Join(copied, name), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if keys := ts.do(t, "GET", "/api/v1/sqlite/kv?rebuild=true&"+outer, "").JSON(t)["keys"].([]any); len(keys) != 1 {
		t.Fatalf("the outer database lists the copied one's files: %v", keys)
	}
	wantError(t, ts.do(t, "PUT", kv("copied%2Ft%2Fk", outer), "overwritten"), 400, "INVALID_PARAMETERS")
	if got := fileOf(t, root, "copied/t/k"); got != "precious" {
		t.Fatalf("the copied database's file: got %q", got)
	}
}

// A table rollback that restores "x" and deletes "x/y" works as in file
// mode: the delete goes first and leaves the folder free for the file.
func TestDirMode_TableRollbackRestoresAFileWhereAFolderWas(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("x", q), "file"), 200)
	then := strconv.FormatInt(ts.Clock.Now().Unix(), 10)
	ts.Clock.Advance(10 * time.Second)
	wantStatus(t, ts.do(t, "DELETE", kv("x", q), ""), 200)
	wantStatus(t, ts.do(t, "PUT", kv("x%2Fy", q), "inner"), 200)
	r := ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?"+q+"&confirm=yes&to_timestamp="+then, "")
	if m := r.JSON(t); m["count"] != 2.0 {
		t.Fatalf("rollback: got %s", r.Body)
	}
	if fileOf(t, root, "x") != "file" || fileOf(t, root, "x/y") != "<missing>" {
		t.Fatalf("after the rollback: x %q, x/y %q", fileOf(t, root, "x"), fileOf(t, root, "x/y"))
	}
}

// A named pipe where a key's file would be is no value, and the answer
// says what it is.
func TestDirMode_ANamedPipeIsNoValue(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("seed", q), "1"), 200)
	if err := syscall.Mkfifo(filepath.Join(root, "notes", "p"), 0o640); err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, "GET", kv("p", q), "")
	wantError(t, r, 404, "KEY_NOT_FOUND")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "named pipe") {
		t.Fatalf("message: %q, want it to name a named pipe", msg)
	}
}

func TestDirMode_ExternalEditsWithAndWithoutRebuild(t *testing.T) {
	ts, root, q := dirServer(t)
	ts.do(t, "PUT", kv("note", q), "v1")
	path := filepath.Join(root, "notes", "note")
	// Edited behind kvd's back: the file wins at once, even without rebuild.
	os.WriteFile(path, []byte("edited by hand"), 0o640)
	r := ts.do(t, "GET", kv("note", q), "")
	if string(r.Body) != "edited by hand" || r.Header.Get("ETag") != "" {
		t.Fatalf("after an outside edit: %q etag %q", r.Body, r.Header.Get("ETag"))
	}
	// A write acts on what is on disk (the edit is imported first).
	wantError(t, ts.do(t, "PUT", kv("note", q+"&if_match=v1"), "v2"), 412, "CAS_MISMATCH")
	wantStatus(t, ts.do(t, "PUT", kv("note", q+"&if_match=edited%20by%20hand"), "v2"), 200)
	// Removed behind kvd's back: gone, whatever the cache said.
	ts.do(t, "PUT", kv("gone", q), "soon")
	os.Remove(filepath.Join(root, "notes", "gone"))
	wantError(t, ts.do(t, "GET", kv("gone", q), ""), 404, "KEY_NOT_FOUND")
	// Added behind kvd's back: readable at once, listed after a rebuild.
	os.MkdirAll(filepath.Join(root, "notes", "new"), 0o750)
	os.WriteFile(filepath.Join(root, "notes", "new", "file.json"), []byte(`{"a":1}`), 0o640)
	if got := ts.do(t, "GET", kv("new%2Ffile.json", q), ""); string(got.Body) != `{"a":1}` || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("added file: %q %s", got.Body, got.Header.Get("Content-Type"))
	}
	wantStatus(t, ts.do(t, "GET", kv("note", q+"&rebuild=true"), ""), 200)
	if got := strs(ts.do(t, "GET", "/api/v1/sqlite/kv?"+q, "").JSON(t)["keys"]); fmt.Sprint(got) != "[new/file.json note]" {
		t.Fatalf("list after rebuild: %v", got)
	}
	hist := ts.do(t, "GET", kv("gone/history", q), "").JSON(t)["operations"].([]any)
	if op := hist[0].(map[string]any)["operation"].(map[string]any)["op"]; op != "import" {
		t.Fatalf("newest op of a file removed outside: %v, want import", op)
	}
	r = ts.do(t, "GET", kv("new%2Ffile.json", q), "")
	if r.Header.Get("ETag") == "" {
		t.Fatal("after rebuild the added file has no version")
	}
}

// A file edited by hand keeps the content type its key was written with
// while the new bytes are of the same kind (text, JSON, binary): its
// writer declared it for such bytes. It fell back to what the bytes say
// (text/markdown became text/plain), in reads and in history.
func TestDirMode_AHandEditKeepsTheDeclaredContentTypeOfItsKind(t *testing.T) {
	ts, root, q := dirServer(t)
	for _, tc := range []struct{ key, declared, before, after, want string }{
		{"readme.md", "text/markdown", "# hi", "# edited", "text/markdown"},
		{"api.json", "application/vnd.api+json", `{"a":1}`, `{"a":2}`, "application/vnd.api+json"},
		{"page.md", "text/markdown", "# hi", "\xff\xfe", "application/octet-stream"}, // no longer text
		{"doc.md", "text/markdown", "# hi", `{"a":1}`, "application/json"},           // no longer only text
	} {
		wantStatus(t, ts.do(t, "PUT", kv(tc.key, q), tc.before, "Content-Type", tc.declared), 200)
		if err := os.WriteFile(filepath.Join(root, "notes", tc.key), []byte(tc.after), 0o640); err != nil {
			t.Fatal(err)
		}
		if got := ts.do(t, "GET", kv(tc.key, q), "").Header.Get("Content-Type"); got != tc.want {
			t.Errorf("%s edited by hand, read before its import: Content-Type %q, want %q", tc.key, got, tc.want)
		}
		wantStatus(t, ts.do(t, "GET", kv(tc.key, q+"&rebuild=true"), ""), 200) // imports it
		op := ts.do(t, "GET", kv(tc.key+"/history", q), "").JSON(t)["operations"].([]any)[0].(map[string]any)["operation"].(map[string]any)
		if op["op"] != "import" || op["content_type"] != tc.want {
			t.Errorf("%s: newest history entry %v, want an import labelled %q", tc.key, op, tc.want)
		}
	}
}

func TestDirMode_KeysCannotEscape(t *testing.T) {
	ts, root, q := dirServer(t)
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root, "notes"), 0o750)
	os.Symlink(outside, filepath.Join(root, "notes", "link"))
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "notes", "filelink"))
	for _, key := range []string{"..%2Fescape", "a%2F..%2F..%2Fb", "a%2F%2Fb", ".%2Fa", "a%2F.", ".kvd-cache.db", "x%2F.kvd-tmp-1", "link%2Fowned", "filelink", "a%5Cb"} {
		wantError(t, ts.do(t, "PUT", kv(key, q), "x"), 400, "INVALID_PARAMETERS")
		if strings.Contains(key, "link") { // a link is no key: nothing to read there
			wantError(t, ts.do(t, "GET", kv(key, q), ""), 404, "KEY_NOT_FOUND")
			continue
		}
		wantError(t, ts.do(t, "GET", kv(key, q), ""), 400, "INVALID_PARAMETERS")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Fatalf("files appeared outside: %v", entries)
	}
	// A key may not turn another key's file into a folder.
	ts.do(t, "PUT", kv("a", q), "file")
	wantError(t, ts.do(t, "PUT", kv("a%2Fb", q), "x"), 400, "INVALID_PARAMETERS")
	if fileOf(t, root, "a") != "file" {
		t.Fatal("a's file was damaged")
	}
	// The table's folder itself may not be a link out.
	os.Symlink(outside, filepath.Join(root, "evil"))
	wantError(t, ts.do(t, "PUT", kv("k", "db="+url.QueryEscape(root)+"&table=evil"), "x"), 400, "INVALID_PARAMETERS")
}

func TestDirMode_ConcurrentIncrLosesNothing(t *testing.T) {
	ts, root, q := dirServer(t)
	const clients, each = 32, 40
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if r := ts.do(t, "POST", kv("n/incr", q), ""); r.Status != 200 {
					t.Errorf("incr: %d %s", r.Status, r.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := fileOf(t, root, "n"); got != fmt.Sprint(clients*each) {
		t.Fatalf("counter file: got %q, want %d", got, clients*each)
	}
}

// tree lists every file and folder under root/notes (slash-separated,
// folders with a trailing slash), so a test can say exactly what is on disk.
func tree(t *testing.T, root string) []string {
	t.Helper()
	base := filepath.Join(root, "notes")
	var got []string
	filepath.WalkDir(base, func(p string, e os.DirEntry, err error) error {
		if err != nil || p == base {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			rel += "/"
		}
		got = append(got, rel)
		return nil
	})
	return got
}

func TestDirMode_KeySegmentLongerThanAFileNameIsRefused(t *testing.T) {
	ts, root, q := dirServer(t)
	long := strings.Repeat("a", 256) // NAME_MAX is 255 bytes
	longest := strings.Repeat("b", 255)
	for _, key := range []string{long, "docs%2F" + long, long + "%2Fx"} {
		wantError(t, ts.do(t, "PUT", kv(key, q), "x"), 400, "INVALID_PARAMETERS")
		wantError(t, ts.do(t, "GET", kv(key, q), ""), 400, "INVALID_PARAMETERS")
		wantError(t, ts.do(t, "DELETE", kv(key, q), ""), 400, "INVALID_PARAMETERS")
		wantError(t, ts.do(t, "POST", kv(key+"/incr", q), ""), 400, "INVALID_PARAMETERS")
	}
	wantError(t, ts.do(t, "POST", batchPath+"get?"+q, `{"keys":["`+long+`"]}`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"ok","value":"1"},{"key":"`+long+`","value":"2"}]}`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", batchPath+"delete?"+q, `{"keys":["`+long+`"]}`), 400, "INVALID_PARAMETERS")
	if got := tree(t, root); len(got) != 0 {
		t.Fatalf("files after refused keys: %v", got)
	}
	// 255 bytes is a file name: it works, in a folder too.
	for _, key := range []string{longest, "docs/" + longest} {
		wantStatus(t, ts.do(t, "PUT", kv(url.PathEscape(key), q), "fits"), 200)
		if got := string(ts.do(t, "GET", kv(url.PathEscape(key), q), "").Body); got != "fits" || fileOf(t, root, key) != "fits" {
			t.Fatalf("key with a %d-byte segment: GET %q, file %q", len(longest), got, fileOf(t, root, key))
		}
	}
}

func TestDirMode_BackupIsRefusedFileModeBackupStaysInItsFolder(t *testing.T) {
	ts, root, q := dirServer(t)
	backup := "/api/v1/sqlite/db/backup?"
	noLeftovers := func(folders ...string) {
		t.Helper()
		for _, f := range folders {
			if left, _ := filepath.Glob(filepath.Join(f, ".kvd-backup-*")); len(left) > 0 {
				t.Fatalf("backup temp files left: %v", left)
			}
		}
	}
	// Refused before and after the folder is open; refusing opens nothing.
	for i := range 2 {
		r := ts.do(t, "GET", backup+q, "")
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "back up the folder itself") {
			t.Fatalf("message: got %q", msg)
		}
		if _, err := os.Stat(filepath.Join(root, ".kvd-cache.db")); i == 0 && err == nil {
			t.Fatal("a refused backup created the folder's cache")
		}
		ts.do(t, "PUT", kv("k", q), "v")
	}
	wantError(t, ts.do(t, "GET", backup+"db="+url.QueryEscape(root), ""), 400, "PATH_IS_DIRECTORY")
	noLeftovers(root, ts.DataDir)
	// File mode: a database in a subfolder backs up as a real SQLite file.
	sub := filepath.Join(ts.DataDir, "sub")
	os.Mkdir(sub, 0o750)
	fq := "db=" + url.QueryEscape(filepath.Join(sub, "app.db"))
	wantStatus(t, ts.do(t, "PUT", kv("k", fq+"&create_db_if_missing=true"), "v"), 200)
	r := ts.do(t, "GET", backup+fq, "")
	wantStatus(t, r, 200)
	if !strings.HasPrefix(string(r.Body), "SQLite format 3\x00") {
		t.Fatalf("file-mode backup is not a SQLite file: %q", r.Body[:min(len(r.Body), 16)])
	}
	noLeftovers(sub, ts.DataDir)
}

// db/create makes database files; of a folder with a table named, it says
// that directory mode needs none (it asked to name a table, which was named).
func TestDirMode_DBCreateSaysTheFolderNeedsNone(t *testing.T) {
	ts, root, _ := dirServer(t)
	create := "/api/v1/sqlite/db/create?path=" + url.QueryEscape(root)
	r := ts.do(t, "POST", create+"&table=notes", "")
	wantError(t, r, 400, "INVALID_PARAMETERS")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "needs no db/create") {
		t.Fatalf("message: got %q", msg)
	}
	if _, err := os.Stat(filepath.Join(root, ".kvd-cache.db")); err == nil {
		t.Fatal("a refused db/create made the folder's cache")
	}
	wantError(t, ts.do(t, "POST", create, ""), 400, "PATH_IS_DIRECTORY")
}

func TestDirMode_ListingReflectsTheCacheUntilRebuild(t *testing.T) {
	ts, root, q := dirServer(t)
	list := func(extra string) string {
		t.Helper()
		r := ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+extra, "")
		wantStatus(t, r, 200)
		return fmt.Sprint(strs(r.JSON(t)["keys"]))
	}
	ts.do(t, "PUT", kv("a", q), "1")
	ts.do(t, "PUT", kv("b", q), "2")
	os.WriteFile(filepath.Join(root, "notes", "added"), []byte("3"), 0o640)
	os.Remove(filepath.Join(root, "notes", "b"))
	if got := list(""); got != "[a b]" {
		t.Fatalf("listing without rebuild: got %s, want the cache's [a b]", got)
	}
	if got := list("&rebuild=true&prefix=a"); got != "[a added]" {
		t.Fatalf("listing with rebuild and prefix a: got %s, want [a added]", got)
	}
	if got := list(""); got != "[a added]" {
		t.Fatalf("listing after a rebuild: got %s, want [a added]", got)
	}
	// Time travel sees the rebuild's imports too.
	ts.Clock.Advance(2 * time.Second)
	os.WriteFile(filepath.Join(root, "notes", "late"), []byte("4"), 0o640)
	at := "&at_timestamp=" + fmt.Sprint(ts.Clock.Now().Unix())
	if got := fmt.Sprint(strs(ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+at+"&rebuild=true", "").JSON(t)["keys"])); got != "[a added late]" {
		t.Fatalf("listing at now with rebuild: got %s, want [a added late]", got)
	}
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=maybe", ""), 400, "INVALID_PARAMETERS")
	// File mode takes the flag and has nothing to rescan.
	ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v")
	if got := fmt.Sprint(strs(ts.do(t, "GET", "/api/v1/sqlite/kv?db=app&rebuild=true", "").JSON(t)["keys"])); got != "[k]" {
		t.Fatalf("file-mode listing with rebuild: got %s", got)
	}
}

// A rebuild over more files than the actor brings in at one turn (256)
// brings in every one of them, in parts: files added, edited and removed
// by hand, each recorded once in its key's history (newest first).
func TestDirMode_ARebuildOverManyFilesBringsInEveryOne(t *testing.T) {
	ts, root, q := dirServer(t)
	for i := range 20 {
		ts.do(t, "PUT", kv(fmt.Sprintf("k%03d", i), q), "kvd")
	}
	for i := range 700 {
		os.WriteFile(filepath.Join(root, "notes", fmt.Sprintf("k%03d", i)), []byte("by hand"), 0o640)
	}
	os.Remove(filepath.Join(root, "notes", "k000"))
	r := ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true&limit=1000", "")
	wantStatus(t, r, 200)
	if keys := strs(r.JSON(t)["keys"]); len(keys) != 699 || keys[0] != "k001" || keys[698] != "k699" {
		t.Fatalf("listing with rebuild: %d keys from %v, want k001 to k699", len(keys), keys[:min(len(keys), 3)])
	}
	for key, want := range map[string]string{"k000": "[import <nil> set kvd]", "k005": "[import by hand set kvd]", "k600": "[import by hand]"} {
		if got := fmt.Sprint(historyOps(t, ts, key, q)); got != want {
			t.Errorf("history of %s: %s, want %s", key, got, want)
		}
	}
}

// A directory moved while served, with a link left at its old path, is
// reopened where it is now: its keys are neither refused as links nor
// recorded as removed by hand.
func TestDirMode_AFolderMovedAndLinkedBackIsReopened(t *testing.T) {
	ts, root, q := dirServer(t)
	for _, key := range []string{"a", "b"} {
		wantStatus(t, ts.do(t, "PUT", kv(key, q+"&ttl=3600"), key), 200)
	}
	moved := root + "-moved"
	if err := os.Rename(root, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(moved), root); err != nil {
		t.Fatal(err)
	}
	wantError(t, ts.do(t, "GET", kv("a", q), ""), 503, "OVERLOADED")
	if r := ts.do(t, "GET", kv("a", q), ""); r.Status != 200 || string(r.Body) != "a" || r.Header.Get("X-Expire-At") == "" {
		t.Fatalf("a read after the move: %d %q, X-Expire-At %q; want a, with its TTL", r.Status, r.Body, r.Header.Get("X-Expire-At"))
	}
	r := ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", "")
	if keys := fmt.Sprint(strs(r.JSON(t)["keys"])); keys != "[a b]" {
		t.Fatalf("listing with rebuild after the move: %s, want [a b]", keys)
	}
	if got := fmt.Sprint(historyOps(t, ts, "b", q)); got != "[set b]" {
		t.Fatalf("history of b: %s, want only its set", got)
	}
	wantStatus(t, ts.do(t, "PUT", kv("c", q), "c"), 200)
	if data, err := os.ReadFile(filepath.Join(moved, "notes", "c")); err != nil || string(data) != "c" {
		t.Fatalf("c in the moved folder: %q (%v)", data, err)
	}
}

func TestDirMode_ReferencesFollowTheFiles(t *testing.T) {
	ts, root, q := dirServer(t)
	ts.do(t, "PUT", kv("target", q), "cached")
	wantStatus(t, ts.do(t, "PUT", kv("ref", q+"&ref=true"), "target"), 200)
	// Batch reads show the reference itself, as in file mode.
	got := ts.do(t, "POST", batchPath+"get?"+q, `{"keys":["ref"]}`).JSON(t)["values"].(map[string]any)["ref"].(map[string]any)
	if got["content_type"] != "application/vnd.kvd.reference" {
		t.Fatalf("batch/get of a reference: got %v, want the reference itself", got)
	}
	// The target's file edited by hand: a read through the reference serves it.
	os.WriteFile(filepath.Join(root, "notes", "target"), []byte("edited"), 0o640)
	if r := ts.do(t, "GET", kv("ref", q), ""); string(r.Body) != "edited" || r.Header.Get("X-KV-Reference") != "true" {
		t.Fatalf("through a reference to an edited file: %q %v", r.Body, r.Header)
	}
	// The target's file removed by hand: the reference dangles.
	os.Remove(filepath.Join(root, "notes", "target"))
	wantError(t, ts.do(t, "GET", kv("ref", q), ""), 404, "KEY_NOT_FOUND")
	// The reference's own file edited by hand is a plain value now.
	os.WriteFile(filepath.Join(root, "notes", "ref"), []byte("plain"), 0o640)
	if r := ts.do(t, "GET", kv("ref", q), ""); string(r.Body) != "plain" || r.Header.Get("X-KV-Reference") != "" {
		t.Fatalf("a reference's file edited by hand: %q %v", r.Body, r.Header)
	}
}

func TestDirMode_DeletesRemoveTheFoldersTheyLeaveEmpty(t *testing.T) {
	ts, root, q := dirServer(t)
	// A deleted key's folders go with it, so its name is free for a key.
	wantStatus(t, ts.do(t, "PUT", kv("a%2Fb", q), "ab"), 200)
	wantStatus(t, ts.do(t, "DELETE", kv("a%2Fb", q), ""), 200)
	wantStatus(t, ts.do(t, "PUT", kv("a", q), "now a file"), 200)
	// A folder still holding a key stays; the table's folder always does.
	for _, k := range []string{"x%2Fy%2Fz", "x%2Fw", "solo%2Fdeep%2Fk"} {
		wantStatus(t, ts.do(t, "PUT", kv(k, q), "v"), 200)
	}
	wantStatus(t, ts.do(t, "POST", batchPath+"delete?"+q, `{"keys":["x/y/z","solo/deep/k"]}`), 200)
	if got := fmt.Sprint(tree(t, root)); got != "[a x/ x/w]" {
		t.Fatalf("after the deletes: got %s, want [a x/ x/w]", got)
	}
	wantStatus(t, ts.do(t, "POST", batchPath+"delete?"+q, `{"keys":["a","x/w"]}`), 200)
	if got := tree(t, root); len(got) != 0 {
		t.Fatalf("after deleting every key: got %v, want nothing", got)
	}
	if info, err := os.Stat(filepath.Join(root, "notes")); err != nil || !info.IsDir() {
		t.Fatalf("the table's folder: %v", err)
	}
	// A folder holding files is in the way; an empty one (made by hand)
	// gives way to the key's file.
	wantStatus(t, ts.do(t, "PUT", kv("docs%2Fone", q), "1"), 200)
	r := ts.do(t, "PUT", kv("docs", q), "x")
	wantError(t, r, 400, "INVALID_PARAMETERS")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "folder on disk that holds other files") || !strings.Contains(msg, `"docs/one"`) {
		t.Fatalf("PUT docs: message %q, want it to say what is in the way, naming a file", msg)
	}
	os.MkdirAll(filepath.Join(root, "notes", "by-hand", "inner"), 0o750)
	wantStatus(t, ts.do(t, "PUT", kv("by-hand", q), "x"), 200)
	if data, err := os.ReadFile(filepath.Join(root, "notes", "by-hand")); string(data) != "x" {
		t.Fatalf("by-hand: got %q, %v; want the key's file where the empty folder was", data, err)
	}
}

// No write may create a key named like a table endpoint, so a file of
// that name put in the table's folder by hand is no key either.
func TestDirMode_FilesNamedLikeTableEndpointsAreNoKeys(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("ok", q), "v"), 200)
	for _, name := range []string{"snapshot", "diff", "rollback"} {
		os.WriteFile(filepath.Join(root, "notes", name), []byte("by hand"), 0o640)
	}
	if got := fmt.Sprint(strs(ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", "").JSON(t)["keys"])); got != "[ok]" {
		t.Fatalf("keys after a rebuild: got %s, want [ok]", got)
	}
	for _, name := range []string{"snapshot", "diff", "rollback"} {
		escaped := "%" + fmt.Sprintf("%02X", name[0]) + name[1:] // reaches the key route
		wantError(t, ts.do(t, "GET", kv(escaped, q), ""), 404, "KEY_NOT_FOUND")
		wantError(t, ts.do(t, "PUT", kv(escaped, q), "x"), 400, "INVALID_PARAMETERS")
		if got := string(ts.do(t, "POST", batchPath+"get?"+q, `{"keys":["`+name+`"]}`).Body); !strings.Contains(got, `"`+name+`":null`) {
			t.Fatalf("batch/get %s: got %s, want null", name, got)
		}
		if fileOf(t, root, name) != "by hand" {
			t.Fatalf("the file %s was touched", name)
		}
	}
	if got := fmt.Sprint(strs(ts.do(t, "GET", "/api/v1/sqlite/kv?"+q, "").JSON(t)["keys"])); got != "[ok]" {
		t.Fatalf("keys after reading the files: got %s, want [ok]", got)
	}
}

// A table rollback's dry run first rescans the folder: it plans over the
// files as they are, changed by hand or not, and changes none of them.
func TestDirMode_ADryRunPlansOverFilesChangedByHand(t *testing.T) {
	ts, root, q := dirServer(t)
	for _, key := range []string{"a", "b"} {
		wantStatus(t, ts.do(t, "PUT", kv(key, q+"&create_db_if_missing=true"), "1"), 200)
	}
	t0 := ts.Clock.Now().Unix()
	ts.Clock.Advance(2 * time.Second)
	wantStatus(t, ts.do(t, "PUT", kv("a", q), "2"), 200)
	for key, data := range map[string]string{"b": "edited", "c": "new"} {
		if err := os.WriteFile(filepath.Join(root, "notes", key), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	r := ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?"+q+fmt.Sprintf("&to_timestamp=%d", t0), "")
	wantStatus(t, r, 200)
	if want := `"changes":[{"key":"a","action":"restore"},{"key":"b","action":"restore"},{"key":"c","action":"delete"}]`; !strings.Contains(string(r.Body), want) {
		t.Fatalf("dry run: %s, want %s", r.Body, want)
	}
	if fileOf(t, root, "a") != "2" || fileOf(t, root, "b") != "edited" || fileOf(t, root, "c") != "new" {
		t.Fatalf("files after a dry run: a %q, b %q, c %q", fileOf(t, root, "a"), fileOf(t, root, "b"), fileOf(t, root, "c"))
	}
}

// A folder whose name is not UTF-8 (another program's) holds no key, as
// a file so named is none: a rescan goes on past it. (Walked as an fs.FS,
// which takes only UTF-8 paths, it failed every rescan of its table, and
// every rollback, with a 500.)
func TestDirMode_ARescanGoesOnPastAFolderNameThatIsNotUTF8(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("a", q), "1"), 200)
	odd := filepath.Join(root, "notes", "dir\xff")
	if err := os.MkdirAll(filepath.Join(odd, "deeper\xfe"), 0o750); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(odd, "file"), []byte("x"), 0o640)
	os.WriteFile(filepath.Join(root, "notes", "b"), []byte("2"), 0o640)
	r := ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", "")
	wantStatus(t, r, 200)
	if got := fmt.Sprint(strs(r.JSON(t)["keys"])); got != "[a b]" {
		t.Fatalf("listing with rebuild: got %s, want [a b]", got)
	}
	if got := ts.do(t, "GET", kv("a", q+"&rebuild=true"), ""); got.Status != 200 || string(got.Body) != "1" {
		t.Fatalf("a with rebuild: %d %s", got.Status, got.Body)
	}
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?"+q+"&to_timestamp=1", ""), 200)
}

// A file changed or made behind kvd's back has no version until kvd
// imports it, so its read carries no ETag; its conditions still hold:
// no tag a client holds names it (If-Match with tags fails, 412), and
// If-None-Match * finds it there (304). They were ignored: If-Match "1"
// served the file's new bytes.
func TestDirMode_AReadOfAFileChangedBehindKvdsBackKeepsItsConditions(t *testing.T) {
	ts, root, q := dirServer(t)
	put := ts.do(t, "PUT", kv("a", q), "1")
	wantStatus(t, put, 200)
	tag := put.Header.Get("ETag")
	os.WriteFile(filepath.Join(root, "notes", "a"), []byte("edited"), 0o640)
	os.WriteFile(filepath.Join(root, "notes", "new"), []byte("made"), 0o640)
	for _, c := range []struct {
		key, header, value string
		want               int
	}{
		{"a", "If-Match", tag, 412},
		{"a", "If-Match", `"abc"`, 412}, // a tag kvd never gave, which reads as version 0
		{"a", "If-Match", "*", 200},
		{"a", "If-None-Match", "*", 304},
		{"a", "If-None-Match", tag, 200},
		{"a", "If-None-Match", `"abc"`, 200},
		{"new", "If-Match", `"1"`, 412},
		{"new", "If-None-Match", "*", 304},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			r := ts.do(t, method, kv(c.key, q), "", c.header, c.value)
			if r.Status != c.want {
				t.Errorf("%s %s with %s: %s: got %d, want %d", method, c.key, c.header, c.value, r.Status, c.want)
			}
		}
	}
	// Once imported (here by a rescan), the file has its version.
	r := ts.do(t, "GET", kv("a", q+"&rebuild=true"), "")
	wantStatus(t, r, 200)
	if got := ts.do(t, "GET", kv("a", q), "", "If-None-Match", r.Header.Get("ETag")); got.Status != 304 || r.Header.Get("ETag") == "" || r.Header.Get("ETag") == tag {
		t.Fatalf("after the import: ETag %q, If-None-Match on it %d", r.Header.Get("ETag"), got.Status)
	}
}

// A hard link to the directory's cache where a key's file would be is no
// key: read, it served the whole cache (every table's values and
// history), and a rescan imported it as a value.
func TestDirMode_AHardLinkToTheCacheIsNoKey(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("a", q), "1"), 200)
	if err := os.Link(filepath.Join(root, ".kvd-cache.db"), filepath.Join(root, "notes", "x")); err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, "GET", kv("x", q), "")
	wantError(t, r, 404, "KEY_NOT_FOUND")
	if msg := r.JSON(t)["message"]; !contains(msg, "a link to the directory's cache") {
		t.Fatalf("GET x: message %q", msg)
	}
	list := ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", "")
	wantStatus(t, list, 200)
	if got := fmt.Sprint(strs(list.JSON(t)["keys"])); got != "[a]" {
		t.Fatalf("listing with rebuild: got %s, want [a]", got)
	}
}
