package sqlitekv_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvd/kvd/internal/kvdtest"
	"github.com/kvd/kvd/sqlitekv"
)

// startKvd serves kvd over the data directory dir until the test ends.
func startKvd(t *testing.T, dir string) *kvdtest.Server {
	t.Helper()
	srv, err := kvdtest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// dirKvd serves kvd with a directory-mode database at <data>/tree; do
// sends a request to its table "notes" and gives up after 5 s.
func dirKvd(t *testing.T) (root string, do func(method, key, body string) (int, string)) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(root, "notes"), 0o750); err != nil {
		t.Fatal(err)
	}
	srv := startKvd(t, dir)
	client := &http.Client{Timeout: 5 * time.Second}
	return root, func(method, key, body string) (int, string) {
		t.Helper()
		target := srv.URL + "/api/v1/sqlite/kv/" + key + "?table=notes&db=" + url.QueryEscape(root)
		req, _ := http.NewRequest(method, target, strings.NewReader(body))
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, key, err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(data)
	}
}

// keyInFolders starts a directory-mode kvd holding the key a/b/k (1) and
// returns, with it, the key's folder (notes/a/b) and a hook that removes
// the key's folders (notes/a), as another program might, the first time
// it is called on that folder; *removed says whether it has.
func keyInFolders(t *testing.T) (do func(method, key, body string) (int, string), folder string, removeOnce func(string), removed *bool) {
	t.Helper()
	root, do := dirKvd(t)
	if status, body := do("PUT", "a%2Fb%2Fk", "1"); status != 200 {
		t.Fatalf("PUT a/b/k: got %d %s, want 200", status, body)
	}
	folder, removed = filepath.Join(root, "notes", "a", "b"), new(bool)
	return do, folder, func(f string) {
		if f == folder && !*removed {
			*removed = true
			if err := os.RemoveAll(filepath.Join(root, "notes", "a")); err != nil {
				t.Error(err)
			}
		}
	}, removed
}

// swapForFIFO makes the next open of key's file to read find a FIFO in
// its place, as if a person swapped it in just after kvd looked. Should
// an open wait on it anyway, the cleanup lets it go (opening the FIFO to
// write), so the test fails instead of hanging. It reports whether the
// swap has happened.
func swapForFIFO(t *testing.T, file string) (swappedYet func() bool) {
	t.Helper()
	swapped := false
	restore := sqlitekv.SetBeforeKeyFileOpen(func(p string) {
		if p != file || swapped {
			return
		}
		swapped = true
		fifo := filepath.Join(filepath.Dir(file), "fifo")
		if err := syscall.Mkfifo(fifo, 0o640); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(fifo, file); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() {
		restore()
		if w, err := os.OpenFile(file, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	return func() bool { return swapped }
}

// A key's file swapped for a FIFO between kvd's look at it and its open
// reads as a FIFO found by the look does: no key. A read answers at
// once, and so does a write, which imports the file in the database's
// owner first; the owner goes on serving the other keys.
func TestKvd_DirModeAFIFOSwappedInIsNoValueAndHoldsNobody(t *testing.T) {
	for _, method := range []string{"GET", "POST"} { // POST: incr, in the owner
		t.Run(method, func(t *testing.T) {
			root, do := dirKvd(t)
			if status, body := do("PUT", "k", "1"); status != 200 {
				t.Fatalf("PUT k: got %d %s, want 200", status, body)
			}
			swapped := swapForFIFO(t, filepath.Join(root, "notes", "k"))
			key := "k"
			if method == "POST" {
				key = "k/incr"
			}
			status, body := do(method, key, "")
			if !swapped() {
				t.Fatal("the file was never opened to read: nothing was swapped")
			}
			if method == "GET" && (status != 404 || !strings.Contains(body, "named pipe")) {
				t.Fatalf("GET of a key swapped for a FIFO: got %d %s, want 404 naming a named pipe", status, body)
			}
			if method == "POST" && status != 200 {
				t.Fatalf("incr of a key swapped for a FIFO: got %d %s, want 200", status, body)
			}
			if status, body := do("PUT", "other", "v"); status != 200 {
				t.Fatalf("PUT of another key after: got %d %s, want 200", status, body)
			}
		})
	}
}

// A key's folders removed by another program between kvd's finding the
// key's folder and resolving it leave the key as if the steps had run one
// at a time: a read or delete answers 404 KEY_NOT_FOUND, a write makes
// the folders again.
func TestKvd_DirModeAFolderRemovedWhileKvdLooksIsNoKey(t *testing.T) {
	for _, c := range []struct {
		method, body string
		status       int
		want         string
	}{
		{"GET", "", 404, "KEY_NOT_FOUND"},
		{"DELETE", "", 404, "KEY_NOT_FOUND"},
		{"PUT", "2", 200, `"created":true`},
	} {
		t.Run(c.method, func(t *testing.T) {
			do, folder, removeOnce, removed := keyInFolders(t)
			defer sqlitekv.SetBeforeResolveFolder(removeOnce)()
			status, body := do(c.method, "a%2Fb%2Fk", c.body)
			if !*removed {
				t.Fatal("the key's folder was never resolved: nothing was removed")
			}
			if status != c.status || !strings.Contains(body, c.want) {
				t.Fatalf("%s after its folder was removed: got %d %s, want %d %s", c.method, status, body, c.status, c.want)
			}
			if data, _ := os.ReadFile(folder + "/k"); c.method == "PUT" && string(data) != "2" {
				t.Fatalf("file after the PUT: got %q, want 2", data)
			}
		})
	}
}

// A key's folder removed by another program between kvd's choosing it for
// the temp file of the key's new bytes and creating the file there: the
// write looks again and makes the folders, as it does for folders already
// gone (it answered 500 "Could not write the file").
func TestKvd_DirModeAFolderRemovedBeforeTheTempFileIsMadeAgain(t *testing.T) {
	for _, c := range []struct{ method, key, body string }{
		{"PUT", "a%2Fb%2Fk", "2"},
		{"POST", "a%2Fb%2Fk/incr", ""},
	} {
		t.Run(c.method, func(t *testing.T) {
			do, folder, removeOnce, removed := keyInFolders(t)
			defer sqlitekv.SetBeforeStagingTemp(removeOnce)()
			status, body := do(c.method, c.key, c.body)
			if !*removed {
				t.Fatal("no temp file was made in the key's folder: nothing was removed")
			}
			if status != 200 {
				t.Fatalf("%s after its folder was removed: got %d %s, want 200", c.method, status, body)
			}
			if data, err := os.ReadFile(filepath.Join(folder, "k")); err != nil || string(data) != "2" {
				t.Fatalf("file after the %s: got %q, %v; want 2", c.method, data, err)
			}
		})
	}
}

// An empty folder where a key's file is to go, removed by another program
// while kvd opens it to see what it holds, is out of the way: the write
// puts the file there (it answered 500 "Could not check the key's
// folder").
func TestKvd_DirModeAFolderInTheKeysPlaceThatVanishesIsOutOfTheWay(t *testing.T) {
	root, do := dirKvd(t)
	folder, removed := filepath.Join(root, "notes", "a", "k"), false
	if err := os.MkdirAll(folder, 0o750); err != nil {
		t.Fatal(err)
	}
	restore := sqlitekv.SetBeforeFolderInTheWay(func(f string) {
		if f == folder && !removed {
			removed = true
			if err := os.Remove(folder); err != nil {
				t.Error(err)
			}
		}
	})
	defer restore()
	status, body := do("PUT", "a%2Fk", "v")
	if !removed {
		t.Fatal("the folder in the key's place was never opened: nothing was removed")
	}
	if status != 200 {
		t.Fatalf("PUT after the folder in its place vanished: got %d %s, want 200", status, body)
	}
	if data, err := os.ReadFile(folder); err != nil || string(data) != "v" {
		t.Fatalf("file after the PUT: got %q, %v; want v", data, err)
	}
}

// A key's folder removed by another program after kvd put the key's file
// there, before kvd fsynced the folder: the write is done (the file went
// with the folder, as if removed after it), and the next read finds the
// key removed by hand. (The group answered 500 "a folder could not be
// synced".)
func TestKvd_DirModeAFolderRemovedBeforeItsSyncFailsNoWrite(t *testing.T) {
	do, _, removeOnce, removed := keyInFolders(t)
	defer sqlitekv.SetSyncDir(func(f string) error {
		removeOnce(f)
		return sqlitekv.SyncFolder(f)
	})()
	status, body := do("PUT", "a%2Fb%2Fk", "2")
	if !*removed {
		t.Fatal("the key's folder was never synced: nothing was removed")
	}
	if status != 200 {
		t.Fatalf("PUT whose folder was removed before its sync: got %d %s, want 200", status, body)
	}
	if status, body := do("GET", "a%2Fb%2Fk", ""); status != 404 {
		t.Fatalf("GET after: got %d %s, want 404", status, body)
	}
}

// A symlink swapped in between kvd's look at a key's path and its open,
// for the key's file or for a folder on its way, is not followed: the
// open refuses any link, so the read finds no key (404 naming the link)
// rather than another key's bytes under this key's name.
func TestKvd_DirModeALinkSwappedInIsNotFollowed(t *testing.T) {
	for _, c := range []struct{ name, key, swap, target string }{
		{"file", "k", "k", "other"},          // k becomes a link to other's file
		{"folder", "a%2Fk", "a", "b"},        // a becomes a link to folder b, which holds its own k
		{"outside", "k", "k", "/etc/passwd"}, // k becomes a link out of the directory
	} {
		t.Run(c.name, func(t *testing.T) {
			root, do := dirKvd(t)
			for key, value := range map[string]string{c.key: "mine", "other": "theirs", "b%2Fk": "theirs"} {
				if status, body := do("PUT", key, value); status != 200 {
					t.Fatalf("PUT %s: got %d %s, want 200", key, status, body)
				}
			}
			notes := filepath.Join(root, "notes")
			file, swapped := filepath.Join(notes, strings.ReplaceAll(c.key, "%2F", "/")), false
			restore := sqlitekv.SetBeforeKeyFileOpen(func(p string) {
				if p != file || swapped {
					return
				}
				swapped = true
				aside := filepath.Join(notes, "aside")
				if err := os.Symlink(c.target, aside); err != nil {
					t.Error(err)
				}
				if err := os.RemoveAll(filepath.Join(notes, c.swap)); err != nil {
					t.Error(err)
				}
				if err := os.Rename(aside, filepath.Join(notes, c.swap)); err != nil {
					t.Error(err)
				}
			})
			defer restore()
			status, body := do("GET", c.key, "")
			if !swapped {
				t.Fatal("the file was never opened to read: nothing was swapped")
			}
			if status != 404 || !strings.Contains(body, "symlink") {
				t.Fatalf("GET of a key whose path a link took: got %d %s, want 404 naming a symlink", status, body)
			}
		})
	}
}
