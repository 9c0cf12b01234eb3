package httpapi_test

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
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

func TestDirMode_KeysCannotEscape(t *testing.T) {
	ts, root, q := dirServer(t)
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root, "notes"), 0o750)
	os.Symlink(outside, filepath.Join(root, "notes", "link"))
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "notes", "filelink"))
	for _, key := range []string{"..%2Fescape", "a%2F..%2F..%2Fb", "a%2F%2Fb", ".%2Fa", "a%2F.", ".kvd-cache.db", "x%2F.kvd-tmp-1", "link%2Fowned", "filelink", "a%5Cb"} {
		for _, method := range []string{"PUT", "GET"} {
			wantError(t, ts.do(t, method, kv(key, q), "x"), 400, "INVALID_PARAMETERS")
		}
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

func TestDirMode_ReadOnlyFolderRefusesWritesCleanly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a read-only tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		r, err := sqlitekv.NewResolver(t.TempDir(), []string{mnt}, false)
		if err != nil {
			t.Fatal(err)
		}
		a.Resolver = r
	})
	q := "db=" + url.QueryEscape(mnt) + "&table=notes"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "before"), 200)
	// Make the table's folder read-only underneath kvd: a bind mount of it, remounted ro.
	folder := filepath.Join(mnt, "notes")
	if out, err := exec.Command("mount", "--bind", "-o", "ro", folder, folder).CombinedOutput(); err != nil {
		t.Skipf("cannot bind-mount read-only (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", folder).Run() })
	r := ts.do(t, "PUT", kv("k", q), "after")
	wantError(t, r, 500, "FILE_SYSTEM_ERROR")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "read-only") {
		t.Fatalf("message: %q", msg)
	}
	if got := string(ts.do(t, "GET", kv("k", q), "").Body); got != "before" {
		t.Fatalf("read in a read-only folder: got %q", got)
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

func TestDirMode_FailedBatchSetChangesNoFile(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("docs%2Freadme.md", q), "# hi"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("keep", q), "old"), 200)
	before := fmt.Sprint(tree(t, root))
	for _, body := range []string{
		// docs is a folder of other keys: the third item fails after two were stored.
		`{"items":[{"key":"fresh1","value":"1"},{"key":"fresh2","value":"2"},{"key":"docs","value":"x"}]}`,
		// An existing file replaced, a new folder needed, then the failure.
		`{"items":[{"key":"keep","value":"new"},{"key":"new/deep/file","value":"n"},{"key":"docs","value":"x"}]}`,
		// The failure comes from a staged key of the same batch: a file where a folder must be.
		`{"items":[{"key":"fresh1","value":"1"},{"key":"fresh1/under","value":"2"}]}`,
		`{"items":[{"key":"fresh1/under","value":"1"},{"key":"fresh1","value":"2"}]}`,
	} {
		wantError(t, ts.do(t, "POST", batchPath+"set?"+q, body), 400, "INVALID_PARAMETERS")
		if after := fmt.Sprint(tree(t, root)); after != before {
			t.Fatalf("after a failed batch %s\nfiles: got %s, want %s", body, after, before)
		}
		if got := fileOf(t, root, "keep"); got != "old" {
			t.Fatalf("keep after a failed batch: got %q, want old", got)
		}
	}
	wantError(t, ts.do(t, "GET", kv("fresh1", q), ""), 404, "KEY_NOT_FOUND")
	if got := strs(ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", "").JSON(t)["keys"]); fmt.Sprint(got) != "[docs/readme.md keep]" {
		t.Fatalf("keys after failed batches and a rebuild: got %v", got)
	}
	// A batch that succeeds puts every file in place, new folders included.
	wantStatus(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"fresh1","value":"1"},{"key":"a/b/c","value":"abc"},{"key":"fresh1","value":"last"}]}`), 200)
	if fileOf(t, root, "fresh1") != "last" || fileOf(t, root, "a/b/c") != "abc" {
		t.Fatalf("after a good batch: fresh1 %q, a/b/c %q", fileOf(t, root, "fresh1"), fileOf(t, root, "a/b/c"))
	}
}

// fillDisk writes a filler file on the filesystem of dir until it is full,
// and returns a function that frees the space again.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	// Fill the last partial pages too.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	f.Close()
	return func() { os.Remove(filler) }
}

func TestDirMode_FailedGroupCommitChangesNoFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs and fill it")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		r, err := sqlitekv.NewResolver(t.TempDir(), []string{mnt}, false)
		if err != nil {
			t.Fatal(err)
		}
		a.Resolver = r
	})
	q := "db=" + url.QueryEscape(mnt) + "&table=notes"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "before"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("gone", q), "bye"), 200)
	free := fillDisk(t, mnt)
	// An empty value needs no room of its own on disk, but the cache's
	// COMMIT needs room in the WAL: the SQLite side fails after the file
	// side was staged.
	wantError(t, ts.do(t, "PUT", kv("k", q), ""), 500, "DATABASE_ERROR")
	wantError(t, ts.do(t, "POST", batchPath+"delete?"+q, `{"keys":["k","gone"]}`), 500, "DATABASE_ERROR")
	wantError(t, ts.do(t, "DELETE", kv("gone", q), ""), 500, "DATABASE_ERROR")
	if got := fmt.Sprint(tree(t, mnt)); got != "[gone k]" {
		t.Fatalf("files after failed commits: got %s, want [gone k]", got)
	}
	if fileOf(t, mnt, "k") != "before" || fileOf(t, mnt, "gone") != "bye" {
		t.Fatalf("files after failed commits: k %q, gone %q", fileOf(t, mnt, "k"), fileOf(t, mnt, "gone"))
	}
	free()
	// The cache never moved either: the values read with their versions.
	for key, want := range map[string]string{"k": "before", "gone": "bye"} {
		r := ts.do(t, "GET", kv(key, q), "")
		if string(r.Body) != want || r.Header.Get("ETag") == "" {
			t.Fatalf("GET %s after the disk was freed: %q etag %q", key, r.Body, r.Header.Get("ETag"))
		}
	}
	wantStatus(t, ts.do(t, "PUT", kv("k", q), ""), 200)
	if got := fileOf(t, mnt, "k"); got != "" {
		t.Fatalf("k after the write resumed: got %q", got)
	}
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

// step is one request of a behaviour table, run the same way in file mode
// and in directory mode; both must answer alike.
type step struct {
	method string // an HTTP method; VALUE checks a key's value; FILE checks a file (directory mode); TICK advances the clock 10 s
	target string // key[/op][?query], "?query" for the listing, or a table-level path like "batch/set"
	body   string // request body; for VALUE and FILE the expected bytes, "-" for none
	status int
	want   string   // an error code when status >= 400, else a part of the body ("" skips)
	header []string // request headers; "{etag}" is the newest ETag answered
	hdr    string   // "Name: value" the response must carry
}

// The targets' placeholders: {t0} is the clock when the table started,
// {t+N} N seconds later.
var stepTime = regexp.MustCompile(`\{t\+(\d+)\}`)

func runSteps(t *testing.T, steps []step, dirMode bool) {
	var ts *testServer
	var root, q string
	if dirMode {
		ts, root, q = dirServer(t)
	} else {
		ts = newTestServer(t)
		q = "db=app&table=notes"
		wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/db/create?path=app&table=notes", ""), 200)
	}
	t0 := ts.Clock.Now().Unix()
	etagSeen := ""
	for i, s := range steps {
		target := strings.ReplaceAll(s.target, "{t0}", fmt.Sprint(t0))
		target = stepTime.ReplaceAllStringFunc(target, func(m string) string {
			n, _ := strconv.Atoi(stepTime.FindStringSubmatch(m)[1])
			return fmt.Sprint(t0 + int64(n))
		})
		path, extra, _ := strings.Cut(target, "?")
		u := "/api/v1/sqlite/kv/" + path + "?" + q
		if path == "" {
			u = "/api/v1/sqlite/kv?" + q
		}
		if extra != "" {
			u += "&" + extra
		}
		where := fmt.Sprintf("step %d (%s %s)", i, s.method, s.target)
		switch s.method {
		case "TICK":
			ts.Clock.Advance(10 * time.Second)
			continue
		case "FILE", "VALUE":
			key, _ := url.PathUnescape(path)
			if want := s.body; dirMode {
				if want == "-" {
					want = "<missing>"
				}
				if got := fileOf(t, root, key); got != want {
					t.Fatalf("%s: file %q, want %q", where, got, want)
				}
			}
			if s.method == "FILE" {
				continue
			}
			r := ts.do(t, "GET", u, "")
			if s.body == "-" {
				wantError(t, r, 404, "KEY_NOT_FOUND")
			} else if r.Status != 200 || string(r.Body) != s.body {
				t.Fatalf("%s: GET answered %d %q, want %q", where, r.Status, r.Body, s.body)
			}
			continue
		}
		header := slices.Clone(s.header)
		for j := range header {
			header[j] = strings.ReplaceAll(header[j], "{etag}", etagSeen)
		}
		r := ts.do(t, s.method, u, s.body, header...)
		if s.status >= 400 {
			if r.Status != s.status || s.want != "" && !strings.Contains(string(r.Body), `"code":"`+s.want+`"`) {
				t.Fatalf("%s: got %d %s, want %d %s", where, r.Status, r.Body, s.status, s.want)
			}
		} else if r.Status != s.status || !strings.Contains(string(r.Body), s.want) {
			t.Fatalf("%s: got %d %s, want %d with %s", where, r.Status, r.Body, s.status, s.want)
		}
		if name, value, ok := strings.Cut(s.hdr, ": "); ok && r.Header.Get(name) != value {
			t.Fatalf("%s: header %s: got %q, want %q", where, name, r.Header.Get(name), value)
		}
		if tag := r.Header.Get("ETag"); tag != "" {
			etagSeen = tag
		}
	}
}

// TestDirMode_SameBehaviourAsFileMode runs each table in both modes: the
// answers are the same, and in directory mode the files hold the values.
func TestDirMode_SameBehaviourAsFileMode(t *testing.T) {
	const notFound, casMismatch, casMissing, pathNotFound, invalid = "KEY_NOT_FOUND", "CAS_MISMATCH", "CAS_KEY_MISSING", "PATH_NOT_FOUND", "INVALID_PARAMETERS"
	tables := map[string][]step{
		"arrays": {
			{method: "POST", target: "lists%2Fl/push", body: `"a"`, status: 200, want: `"newLength":1`},
			{method: "POST", target: "lists%2Fl/push", body: `{"b":2}`, status: 200, want: `"newLength":2`},
			{method: "POST", target: "lists%2Fl/push", body: `3`, status: 200, want: `"newLength":3`},
			{method: "VALUE", target: "lists%2Fl", body: `["a",{"b":2},3]`},
			{method: "POST", target: "lists%2Fl/remove", body: `{"b":2}`, status: 200, want: `"removed":1`},
			{method: "POST", target: "lists%2Fl/remove?index=0", status: 200, want: `"newLength":1`},
			{method: "POST", target: "lists%2Fl/pop", status: 200, want: `"value":3`},
			{method: "VALUE", target: "lists%2Fl", body: `[]`},
			{method: "POST", target: "lists%2Fl/pop", status: 200, want: `"value":null`},
			{method: "PUT", target: "doc", body: `{"tags":["a"]}`, status: 200},
			{method: "POST", target: "doc/push?path=tags", body: `"b"`, status: 200, want: `"newLength":2`},
			{method: "VALUE", target: "doc", body: `{"tags":["a","b"]}`},
			{method: "POST", target: "missing/pop", status: 404, want: notFound},
			{method: "POST", target: "doc/pop?path=nothere", status: 404, want: pathNotFound},
			{method: "POST", target: "doc/push", body: `1`, status: 400, want: invalid},
			{method: "POST", target: "lists%2Fl/push", body: `not json`, status: 400, want: invalid},
			{method: "POST", target: "lists%2Fl/remove?index=9", status: 400, want: invalid},
			{method: "VALUE", target: "doc", body: `{"tags":["a","b"]}`},
		},
		"counters, TTL, batches, listing": {
			{method: "POST", target: "c/incr?delta=5", status: 200, want: `"value":5`},
			{method: "POST", target: "c/decr", status: 200, want: `"value":4`},
			{method: "VALUE", target: "c", body: "4"},
			{method: "PUT", target: "doc", body: `{"n":1}`, status: 200},
			{method: "POST", target: "doc/incr?path=n", status: 200, want: `"value":2`},
			{method: "VALUE", target: "doc", body: `{"n":2}`},
			{method: "PUT", target: "s?ttl=5", body: "short", status: 200},
			{method: "FILE", target: "s", body: "short"},
			{method: "TICK"},
			{method: "GET", target: "s", status: 404, want: "KEY_EXPIRED"},
			{method: "PUT", target: "after", body: "x", status: 200}, // the expiry is done once this is answered
			{method: "FILE", target: "s", body: "-"},
			{method: "POST", target: "batch/set", body: `{"items":[{"key":"b/1","value":"one"},{"key":"b/2","value":"{\"x\":2}"}]}`, status: 200, want: `"count":2`},
			{method: "VALUE", target: "b%2F2", body: `{"x":2}`},
			{method: "POST", target: "batch/get", body: `{"keys":["b/1","b/2","none"]}`, status: 200, want: `{"b/1":{"value":"one","content_type":"text/plain"},"b/2":{"value":{"x":2},"content_type":"application/json"},"none":null}`},
			{method: "GET", target: "?prefix=b%2F", status: 200, want: `"keys":["b/1","b/2"]`},
			{method: "GET", target: "?limit=2&offset=1", status: 200, want: `"keys":["b/1","b/2"]`},
			{method: "POST", target: "batch/delete", body: `{"keys":["b/1","b/2","none"]}`, status: 200, want: `"deleted":2`},
			{method: "VALUE", target: "b%2F1", body: "-"},
			{method: "GET", target: "?prefix=b%2F", status: 200, want: `"keys":[]`},
		},
		"key and table rollback": {
			{method: "PUT", target: "k", body: "v1", status: 200},
			{method: "PUT", target: "k", body: "v2", status: 200},
			{method: "PUT", target: "k", body: "v3", status: 200},
			{method: "POST", target: "k/rollback", status: 200, want: `"value":"v2"`},
			{method: "VALUE", target: "k", body: "v2"},
			{method: "DELETE", target: "k", status: 200},
			{method: "FILE", target: "k", body: "-"},
			{method: "POST", target: "k/rollback", status: 200, want: `"value":"v2"`},
			{method: "VALUE", target: "k", body: "v2"},
			{method: "POST", target: "never/rollback", status: 404, want: notFound},
			{method: "POST", target: "k/rollback?steps=0", status: 400, want: invalid},
			{method: "PUT", target: "a%2Fx", body: "a1", status: 200},
			{method: "TICK"},
			{method: "PUT", target: "a%2Fx", body: "a2", status: 200},
			{method: "DELETE", target: "k", status: 200},
			{method: "PUT", target: "new%2Fy", body: "n1", status: 200},
			{method: "POST", target: "rollback?to_timestamp={t0}", status: 200, want: `"dry_run":true`},
			{method: "VALUE", target: "new%2Fy", body: "n1"},
			{method: "POST", target: "rollback?to_timestamp={t0}&confirm=yes", status: 200, want: `"count":3`},
			{method: "VALUE", target: "a%2Fx", body: "a1"},
			{method: "VALUE", target: "k", body: "v2"},
			{method: "VALUE", target: "new%2Fy", body: "-"},
		},
		"time travel": {
			{method: "PUT", target: "k", body: "v1", status: 200},
			{method: "TICK"},
			{method: "PUT", target: "k", body: "v2", status: 200},
			{method: "TICK"},
			{method: "DELETE", target: "k", status: 200},
			{method: "TICK"},
			{method: "PUT", target: "k?history=false", body: "v3", status: 200},
			{method: "GET", target: "k?at_timestamp={t0}", status: 200, want: "v1"},
			{method: "GET", target: "k?at_timestamp={t+15}", status: 200, want: "v2"},
			{method: "GET", target: "k?at_timestamp={t+20}", status: 404, want: notFound},
			{method: "GET", target: "k?at_timestamp={t+30}", status: 409, want: "TIME_TRAVEL_GAP"},
			{method: "GET", target: "?at_timestamp={t+10}", status: 200, want: `"keys":["k"]`},
			{method: "GET", target: "?at_timestamp={t+25}", status: 200, want: `"keys":[]`},
			{method: "GET", target: "k?at_timestamp=soon", status: 400, want: invalid},
			{method: "GET", target: "k/history", status: 200, want: `"op":"delete"`},
			{method: "VALUE", target: "k", body: "v3"},
		},
		"references": {
			{method: "PUT", target: "data%2Ftarget", body: `{"v":1}`, status: 200},
			{method: "PUT", target: "ref?ref=true", body: "data/target", status: 200},
			{method: "FILE", target: "ref", body: "data/target"},
			{method: "GET", target: "ref", status: 200, want: `{"v":1}`, hdr: "X-KV-Reference: true"},
			{method: "GET", target: "ref?path=v", status: 200, want: "1"},
			{method: "HEAD", target: "ref", status: 200, hdr: "X-KV-Reference-Target: data%2Ftarget"},
			{method: "PUT", target: "dangling?ref=true", body: "nowhere", status: 200},
			{method: "GET", target: "dangling", status: 404, want: notFound},
			{method: "PUT", target: "bad?ref=true&path=a", body: "data/target", status: 400, want: invalid},
			{method: "PUT", target: "data%2Ftarget", body: `{"v":2}`, status: 200},
			{method: "GET", target: "ref", status: 200, want: `{"v":2}`},
		},
		"ETags and CAS": {
			{method: "PUT", target: "k", body: "v1", header: []string{"If-None-Match", "*"}, status: 200},
			{method: "PUT", target: "k", body: "again", header: []string{"If-None-Match", "*"}, status: 412, want: casMismatch},
			{method: "PUT", target: "k", body: "v2", header: []string{"If-Match", "{etag}"}, status: 200},
			{method: "GET", target: "k", header: []string{"If-None-Match", "{etag}"}, status: 304},
			{method: "PUT", target: "k", body: "v3", header: []string{"If-Match", `"999999"`}, status: 412, want: casMismatch},
			{method: "PUT", target: "nope", body: "v3", header: []string{"If-Match", "{etag}"}, status: 412, want: casMissing},
			{method: "DELETE", target: "k", header: []string{"If-Match", `"1"`}, status: 412, want: casMismatch},
			{method: "PUT", target: "k", body: "v3", header: []string{"If-Match", "nonsense"}, status: 400, want: invalid},
			{method: "VALUE", target: "k", body: "v2"},
			{method: "PUT", target: "k?if_match=wrong", body: "v3", status: 412, want: casMismatch},
			{method: "PUT", target: "nope?if_match=v1", body: "v3", status: 412, want: casMissing},
			{method: "PUT", target: "k?if_match=v2", body: "v3", status: 200},
			{method: "PUT", target: "cfg", body: `{"theme":"dark"}`, status: 200},
			{method: "PUT", target: "cfg?path=theme&if_match=light", body: `"blue"`, status: 412, want: casMismatch},
			{method: "PUT", target: "cfg?path=theme&if_match=dark", body: `"blue"`, status: 200},
			{method: "VALUE", target: "cfg", body: `{"theme":"blue"}`},
			{method: "FILE", target: "nope", body: "-"},
			{method: "DELETE", target: "cfg", header: []string{"If-Match", "{etag}"}, status: 200},
			{method: "VALUE", target: "cfg", body: "-"},
		},
		"errors": {
			{method: "GET", target: "missing", status: 404, want: notFound},
			{method: "DELETE", target: "missing", status: 404, want: notFound},
			{method: "HEAD", target: "missing", status: 404},
			{method: "PUT", target: "cfg", body: `{"a":{"b":1}}`, status: 200},
			{method: "GET", target: "cfg?path=a.c", status: 404, want: pathNotFound},
			{method: "PUT", target: "text", body: "plain", status: 200},
			{method: "GET", target: "text?path=a", status: 400, want: invalid},
			{method: "POST", target: "text/incr", status: 400, want: invalid},
			{method: "POST", target: "n/incr?delta=0", status: 400, want: invalid},
			{method: "PUT", target: "k?ttl=-1", body: "x", status: 400, want: invalid},
			{method: "PUT", target: "cfg?path=a.b", body: "not json", status: 400, want: invalid},
			{method: "POST", target: "batch/set", body: `{"items":[]}`, status: 400, want: invalid},
			{method: "POST", target: "batch/set", body: `{"items":[{"key":"x","value":1}]}`, status: 400, want: invalid},
			{method: "POST", target: "batch/delete", body: `{"keys":["missing","text"]}`, status: 200, want: `"deleted":1`},
			{method: "VALUE", target: "text", body: "-"},
			{method: "VALUE", target: "n", body: "-"},
			{method: "VALUE", target: "cfg", body: `{"a":{"b":1}}`},
		},
	}
	for name, steps := range tables {
		for _, mode := range []string{"file", "dir"} {
			t.Run(name+"/"+mode, func(t *testing.T) { runSteps(t, steps, mode == "dir") })
		}
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
