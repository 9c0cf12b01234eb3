package sqlitekv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The staging of directory mode where HTTP cannot reach: the disk changing
// between a write's staging and its group's COMMIT, and the group's own
// changes meeting each other.

func mustBegin(tb testing.TB, w *Writer) {
	tb.Helper()
	if err := w.Begin(); err != nil {
		tb.Fatal(err)
	}
}

func mustDirPut(tb testing.TB, d *Dir, key, value string) {
	tb.Helper()
	if err := dirPut(tb, d, key, value); err != nil {
		tb.Fatalf("put %s: %v", key, err)
	}
}

// tempFiles lists the temp files left anywhere under root.
func tempFiles(tb testing.TB, root string) []string {
	tb.Helper()
	var got []string
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), tmpPrefix) {
			got = append(got, p)
		}
		return nil
	})
	return got
}

func fileText(root, rel string) string {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return "<missing>"
	}
	return string(data)
}

func TestDir_RemovalThatCannotBeCheckedFailsTheCommit(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "a/b", "v")
	mustBegin(t, w)
	if err := w.Delete(DeleteRequest{Table: "t", Key: "a/b"}); err != nil {
		t.Fatal(err)
	}
	// After staging, a/b's folder becomes a link to itself: looking at the
	// file fails (ELOOP), which is neither "no such file" nor "not a folder".
	if err := os.Rename(filepath.Join(root, "t", "a"), filepath.Join(root, "t", "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(root, "t", "a")); err != nil {
		t.Fatal(err)
	}
	err := w.Commit()
	if CodeOf(err) != CodeFileSystemError || !strings.Contains(err.Error(), `key "a/b"`) {
		t.Fatalf("commit of a delete whose file cannot be looked at: got %v, want FILE_SYSTEM_ERROR naming a/b", err)
	}
}

// Without root, a folder without search permission makes its files
// impossible to look at: a delete there fails alone, before COMMIT, and the
// other writes of its group commit.
func TestDir_RemovalThatCannotBeCheckedFailsOnlyItsWrite(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root looks into any folder")
	}
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "locked/k", "v")
	locked := filepath.Join(root, "t", "locked")
	if err := os.Chmod(locked, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o750) })
	mustBegin(t, w)
	if err := w.Delete(DeleteRequest{Table: "t", Key: "locked/k"}); CodeOf(err) != CodeFileSystemError {
		t.Fatalf("delete in a folder that cannot be searched: got %v, want FILE_SYSTEM_ERROR", err)
	}
	mustDirPut(t, d, "other", "o")
	if err := w.Commit(); err != nil {
		t.Fatalf("commit of the other writes: %v", err)
	}
	os.Chmod(locked, 0o750)
	if got := fileText(root, "t/locked/k") + " " + fileText(root, "t/other"); got != "v o" {
		t.Fatalf("files: got %q, want %q", got, "v o")
	}
}

func TestDir_FailureAfterCommitIsAFileSystemErrorAndLeavesNothingOutside(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "ok", "v1")
	outside := t.TempDir()
	mustBegin(t, w)
	mustDirPut(t, d, "a/b/c", "abc")
	mustDirPut(t, d, "ok", "v2")
	// A link out appears where a's folder is to be made: the key would now
	// leave the table's folder. That is no fault of the client's.
	if err := os.Symlink(outside, filepath.Join(root, "t", "a")); err != nil {
		t.Fatal(err)
	}
	err := w.Commit()
	if CodeOf(err) != CodeFileSystemError || !strings.Contains(err.Error(), `key "a/b/c"`) {
		t.Fatalf("commit: got %v, want FILE_SYSTEM_ERROR naming a/b/c", err)
	}
	// Only the write of a/b/c failed; the write of ok landed.
	var files *FileFailures
	if !errors.As(err, &files) {
		t.Fatalf("commit: got %T, want *FileFailures", err)
	}
	if got := files.For("t", []string{"ok"}); got != nil {
		t.Errorf("write of ok: got %v, want no failure", got)
	}
	for _, keys := range [][]string{{"a/b/c"}, {"ok", "a/b/c"}} {
		if got := files.For("t", keys); CodeOf(got) != CodeFileSystemError {
			t.Errorf("write of %v: got %v, want FILE_SYSTEM_ERROR", keys, got)
		}
	}
	if got := files.For("", nil); CodeOf(got) != CodeFileSystemError {
		t.Errorf("write of unknown keys: got %v, want FILE_SYSTEM_ERROR", got)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("entries made outside the table's folder: %v", entries)
	}
	if got := fileText(root, "t/ok"); got != "v2" {
		t.Fatalf("the group's other file: got %q, want v2", got)
	}
	if left := tempFiles(t, root); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestDir_FoldersMadeForAFailedRenameAreRemoved(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "kept", "v")
	mustBegin(t, w)
	mustDirPut(t, d, "x/y/z", "xyz")
	// The staged bytes vanish before COMMIT: the rename fails after
	// x and x/y were made for it.
	for _, tmp := range tempFiles(t, root) {
		os.Remove(tmp)
	}
	if err := w.Commit(); CodeOf(err) != CodeFileSystemError {
		t.Fatalf("commit: got %v, want FILE_SYSTEM_ERROR", err)
	}
	if got := fmt.Sprint(onDisk(t, root)); got != "[t/ t/kept]" {
		t.Fatalf("on disk after the failed rename: got %s, want [t/ t/kept]", got)
	}
}

func TestDir_DeletesRemoveTheFoldersTheyLeaveEmpty(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	for _, k := range []string{"a/b/c/d", "a/x", "solo/deep/k"} {
		mustDirPut(t, d, k, k)
	}
	mustBegin(t, w)
	for _, k := range []string{"a/b/c/d", "solo/deep/k"} {
		if err := w.Delete(DeleteRequest{Table: "t", Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	// a keeps x; the table's folder stays even when empty.
	if got := fmt.Sprint(onDisk(t, root)); got != "[t/ t/a/ t/a/x]" {
		t.Fatalf("after the deletes: got %s, want [t/ t/a/ t/a/x]", got)
	}
	if err := w.Delete(DeleteRequest{Table: "t", Key: "a/x"}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(onDisk(t, root)); got != "[t/]" {
		t.Fatalf("after the last delete: got %s, want [t/]", got)
	}
}

func TestDir_KeyStoredThenRemovedInAGroupNoLongerHoldsItsFolder(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustBegin(t, w)
	mustDirPut(t, d, "a/b", "ab")
	if err := w.Delete(DeleteRequest{Table: "t", Key: "a/b"}); err != nil {
		t.Fatal(err)
	}
	if err := dirPut(t, d, "a", "file"); err != nil {
		t.Fatalf("a after a/b was stored and removed in the same group: got %v, want no error", err)
	}
	// A removal undone with its savepoint gives the folder back to its key.
	mustDirPut(t, d, "p/q", "pq")
	undone := w.atomically(func() error {
		if err := w.Delete(DeleteRequest{Table: "t", Key: "p/q"}); err != nil {
			return err
		}
		return Errorf(CodeInvalidParameters, "the write fails after the delete")
	})
	if undone == nil {
		t.Fatal("the failing write succeeded")
	}
	if err := dirPut(t, d, "p", "file"); CodeOf(err) != CodeInvalidParameters {
		t.Fatalf("p while p/q is still stored in the group: got %v, want INVALID_PARAMETERS", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(onDisk(t, root)); got != "[t/ t/a t/p/ t/p/q]" {
		t.Fatalf("on disk: got %s, want [t/ t/a t/p/ t/p/q]", got)
	}
}

func TestDir_FilesNamedLikeTableEndpointsAreNotImported(t *testing.T) {
	d, root := mustOpenDir(t)
	mustDirPut(t, d, "snapshot", "stored before the rule") // sqlitekv itself does not refuse the name
	mustDirPut(t, d, "plain", "p")
	for name, value := range map[string]string{"snapshot": "edited", "diff": "d", "rollback": "r", "sub/diff": "ok"} {
		if err := os.MkdirAll(filepath.Join(root, "t", "sub"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "t", filepath.FromSlash(name)), []byte(value), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := rescan(t, d, "t"); err != nil {
		t.Fatal(err)
	}
	keys, err := d.Cache().List(t.Context(), ListRequest{Table: "t", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keys); got != "[plain snapshot sub/diff]" {
		t.Fatalf("keys after rebuild: got %s, want [plain snapshot sub/diff]", got)
	}
	// The key stored before follows its file; the others are no keys.
	if e, stale, err := d.Own(t.Context(), "t", "snapshot"); err != nil || stale || string(e.Value) != "edited" {
		t.Fatalf("snapshot: got %q stale %v err %v, want the imported edit", e.Value, stale, err)
	}
	for _, key := range []string{"diff", "rollback"} {
		if err := d.Sync("t", key); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Own(t.Context(), "t", key); CodeOf(err) != CodeKeyNotFound {
			t.Fatalf("read %s: got %v, want KEY_NOT_FOUND", key, err)
		}
	}
}

// A key's file may take the place of a folder once nothing else is in it:
// the files of keys removed in the same group, empty folders (made by hand
// or left by a crash). Anything else keeps the folder and refuses the key.
func TestDir_AKeyTakesThePlaceOfAFolderItsGroupEmpties(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	for _, k := range []string{"a/b", "a/c/d", "a/sub/y", "x/y"} {
		mustDirPut(t, d, k, k)
	}
	// a/sub keeps an empty folder once y goes, so the deletes alone do not
	// remove it: the key's file takes its place all the same.
	for _, folder := range []string{"empty/inner", "stray", "a/sub/e"} {
		if err := os.MkdirAll(filepath.Join(root, "t", folder), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "t", "stray", tmpPrefix+"left"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	mustBegin(t, w)
	for _, k := range []string{"a/b", "a/c/d", "a/sub/y"} {
		if err := w.Delete(DeleteRequest{Table: "t", Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	mustDirPut(t, d, "a", "file a")
	mustDirPut(t, d, "empty", "file empty")
	for _, k := range []string{"x", "stray"} { // x/y stays; stray holds a file that is no key
		if err := dirPut(t, d, k, "no"); CodeOf(err) != CodeInvalidParameters {
			t.Errorf("put %s over a folder that is not empty: got %v, want INVALID_PARAMETERS", k, err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	want := "[t/ t/a t/empty t/stray/ t/stray/" + tmpPrefix + "left t/x/ t/x/y]"
	if got := fmt.Sprint(onDisk(t, root)); got != want {
		t.Fatalf("on disk: got %s, want %s", got, want)
	}
	if got := fileText(root, "t/a") + "," + fileText(root, "t/empty"); got != "file a,file empty" {
		t.Errorf("files: got %s", got)
	}
}

// A file put in an empty folder after the key was staged to replace it
// keeps the folder: that key's write fails, the hand-made file stays.
func TestDir_AFolderFilledBeforeTheCommitIsNotReplaced(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "kept", "v")
	if err := os.Mkdir(filepath.Join(root, "t", "late"), 0o750); err != nil {
		t.Fatal(err)
	}
	mustBegin(t, w)
	mustDirPut(t, d, "late", "file")
	if err := os.WriteFile(filepath.Join(root, "t", "late", "by-hand"), []byte("mine"), 0o640); err != nil {
		t.Fatal(err)
	}
	err := w.Commit()
	var failures *FileFailures
	if !errors.As(err, &failures) || failures.For("t", []string{"late"}) == nil {
		t.Fatalf("commit: got %v, want the write of late failed", err)
	}
	if got := fileText(root, "t/late/by-hand"); got != "mine" {
		t.Errorf("the hand-made file: got %s", got)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

// A file replaced by hand between the write that removes its key and
// that write's commit is a new value, not the removed one: it stays, and
// the next read imports it. (A tester renamed new files over 500 expired
// ones as the sweep ran: the removals after the sweep's commit took 10
// of them.)
func TestDir_AFileReplacedBeforeItsRemovalCommitsStays(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "gone", "old")
	mustDirPut(t, d, "replaced", "old")
	mustBegin(t, w)
	for _, k := range []string{"gone", "replaced"} {
		if err := w.Delete(DeleteRequest{Table: "t", Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(root, "t", "new")
	if err := os.WriteFile(tmp, []byte("by hand"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "t", "replaced")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(onDisk(t, root)); got != "[t/ t/replaced]" {
		t.Fatalf("on disk after the removals: got %s, want [t/ t/replaced]", got)
	}
	e, _, err := d.Get(context.Background(), GetRequest{Table: "t", Key: "replaced"})
	if err != nil || string(e.Value) != "by hand" {
		t.Fatalf("replaced after its removal: got %q, %v; want the file's bytes", e.Value, err)
	}
}
