package httpapi_test

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

// The failures of directory mode's staging: writes refused before COMMIT,
// COMMITs that fail, files that cannot be put in place after COMMIT, and
// what a crash leaves behind.

// tmpfsServer mounts a tmpfs with the given mount options (root only; the
// test skips otherwise) and serves directory mode on it, table "notes".
func tmpfsServer(t *testing.T, options string) (ts *testServer, mnt, q string) {
	t.Helper()
	mnt = smallDisk(t, options)
	ts = newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		r, err := sqlitekv.NewResolver(t.TempDir(), []string{mnt}, false)
		if err != nil {
			t.Fatal(err)
		}
		a.Resolver = r
	})
	return ts, mnt, "db=" + url.QueryEscape(mnt) + "&table=notes"
}

func TestDirMode_ReadOnlyFolderRefusesWritesCleanly(t *testing.T) {
	ts, mnt, q := tmpfsServer(t, "size=4m")
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "before"), 200)
	// Make the table's folder read-only underneath kvd: a bind mount of it, remounted ro.
	folder := filepath.Join(mnt, "notes")
	if out, err := exec.Command("mount", "--bind", "-o", "ro", folder, folder).CombinedOutput(); err != nil {
		t.Skipf("cannot bind-mount read-only (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", folder).Run() })
	r := ts.do(t, "PUT", kv("k", q), "after")
	wantError(t, r, 403, "READ_ONLY")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "read-only") {
		t.Fatalf("message: %q", msg)
	}
	if got := string(ts.do(t, "GET", kv("k", q), "").Body); got != "before" {
		t.Fatalf("read in a read-only folder: got %q", got)
	}
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

// fillDiskLeaving fills the filesystem of dir as fillDisk does, but for
// about room bytes, and returns a function that frees the space again.
func fillDiskLeaving(t *testing.T, dir string, room int64) (free func()) {
	t.Helper()
	reserve := filepath.Join(dir, "reserve")
	if err := os.WriteFile(reserve, make([]byte, room), 0o600); err != nil {
		t.Fatal(err)
	}
	free = fillDisk(t, dir)
	os.Remove(reserve)
	return free
}

func TestDirMode_FailedGroupCommitChangesNoFile(t *testing.T) {
	ts, mnt, q := tmpfsServer(t, "size=2m")
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "before"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("gone", q), "bye"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("spare", q), ""), 200)
	free := fillDisk(t, mnt)
	// An empty value needs no room of its own on disk, but the cache's
	// COMMIT needs room in the WAL: the SQLite side fails after the file
	// side was staged. The WAL's reserve (sqlitekv/walbuffer.go) takes
	// some commits more: spend it first.
	for i := 0; ts.do(t, "PUT", kv("spare", q), "").Status != 507; i++ {
		if i == 1000 {
			t.Fatal("1000 commits on a full disk, and none failed")
		}
	}
	wantError(t, ts.do(t, "PUT", kv("k", q), ""), 507, "STORAGE_FULL")
	wantError(t, ts.do(t, "POST", batchPath+"delete?"+q, `{"keys":["k","gone"]}`), 507, "STORAGE_FULL")
	wantError(t, ts.do(t, "DELETE", kv("gone", q), ""), 507, "STORAGE_FULL")
	if got := fmt.Sprint(tree(t, mnt)); got != "[gone k spare]" {
		t.Fatalf("files after failed commits: got %s, want [gone k spare]", got)
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

// The group's COMMIT succeeds but a folder its file needs cannot be made
// (the filesystem is out of inodes): the write answers 507 saying what
// failed, the folders made for it are gone again, and the cache, ahead of
// the disk, follows the file back.
func TestDirMode_FileThatCannotBePutInPlaceAfterCommitFailsItsWrite(t *testing.T) {
	ts, mnt, q := tmpfsServer(t, "size=4m,nr_inodes=64")
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "v"), 200)
	// Two inodes left: one for the temp file, one for the folder new;
	// new/deep cannot be made.
	freeInodes := useUpInodesBut(t, mnt, 2)
	r := ts.do(t, "PUT", kv("new%2Fdeep%2Fkey", q), "n")
	wantError(t, r, 507, "STORAGE_FULL")
	msg := r.JSON(t)["message"].(string)
	for _, want := range []string{`key "new/deep/key"`, "no space left on device", "committed"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message %q does not say %q", msg, want)
		}
	}
	if got := fmt.Sprint(tree(t, mnt)); got != "[k]" {
		t.Fatalf("files after the failure: got %s, want [k]", got)
	}
	wantError(t, ts.do(t, "GET", kv("new%2Fdeep%2Fkey", q), ""), 404, "KEY_NOT_FOUND")
	freeInodes()
	wantStatus(t, ts.do(t, "PUT", kv("new%2Fdeep%2Fkey", q), "n"), 200)
	if got := fileOf(t, mnt, "new/deep/key"); got != "n" {
		t.Fatalf("file once inodes are free: got %q, want n", got)
	}
}

// useUpInodesBut fills the filesystem at mnt with empty files until n
// inodes are left, and returns the func that frees them (also run at
// the test's end).
func useUpInodesBut(tb testing.TB, mnt string, n int) (free func()) {
	var fillers []string
	for i := 0; ; i++ {
		f := filepath.Join(mnt, fmt.Sprintf("filler-%d", i))
		if err := os.WriteFile(f, nil, 0o640); err != nil {
			break
		}
		fillers = append(fillers, f)
	}
	free = func() {
		for _, f := range fillers {
			os.Remove(f)
		}
		fillers = nil
	}
	tb.Cleanup(free)
	if len(fillers) < n {
		tb.Fatalf("only %d inodes to take", len(fillers))
	}
	for _, f := range fillers[:n] {
		os.Remove(f)
	}
	fillers = fillers[n:]
	return free
}

// A write whose file cannot be put in place fails alone: a rescan and a
// dry-run table rollback that share its group change no file, and answer
// as they would without it (they answered its 507, about a key they
// never named).
func TestDirMode_AFailedFileFailsNoReadInItsGroup(t *testing.T) {
	ts, mnt, q := tmpfsServer(t, "size=64m,nr_inodes=64") // room for the log of many commits
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "v"), 200)
	useUpInodesBut(t, mnt, 2) // new/deep cannot be made, as above
	stop := make(chan struct{})
	var failing sync.WaitGroup
	failing.Add(1)
	go func() {
		defer failing.Done()
		for {
			select {
			case <-stop:
				return
			default:
				if r := ts.do(t, "PUT", kv("new%2Fdeep%2Fkey", q), "n"); r.Status != 507 {
					t.Errorf("the write whose file cannot be made: got %d %s, want 507", r.Status, r.Body)
					return
				}
			}
		}
	}()
	defer func() { close(stop); failing.Wait() }()
	reads := map[string]func() response{
		"rescan of a key": func() response { return ts.do(t, "GET", kv("k", q+"&rebuild=true"), "") },
		"rescan listing":  func() response { return ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", "") },
		"dry-run rollback": func() response {
			return ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?"+q+"&to_timestamp=1700000000", `{}`)
		},
	}
	for range 100 {
		for name, read := range reads {
			if r := read(); r.Status != 200 {
				t.Fatalf("%s beside a write whose file failed: got %d %s", name, r.Status, r.Body)
			}
		}
	}
}

// A crash leaves temp files behind; a rebuild deletes them, in the table's
// folder and in the directory itself, whatever characters its path holds.
func TestDirMode_RebuildDeletesTempFilesACrashLeft(t *testing.T) {
	ts := newTestServer(t)
	root := filepath.Join(ts.DataDir, "odd [name] * ?")
	if err := os.MkdirAll(root, 0o750); err != nil {
		t.Fatal(err)
	}
	q := "db=" + url.QueryEscape(root) + "&table=notes"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "v"), 200)
	orphans := []string{filepath.Join(root, ".kvd-tmp-1"), filepath.Join(root, "notes", ".kvd-tmp-2")}
	for _, p := range orphans {
		if err := os.WriteFile(p, []byte("half"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", ""), 200)
	for _, p := range orphans {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s survived the rebuild", p)
		}
	}
	if got := fileOf(t, root, "k"); got != "v" {
		t.Fatalf("k after the rebuild: got %q, want v", got)
	}
}
