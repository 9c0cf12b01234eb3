package sqlitekv

import (
	"os"
	"path/filepath"
	"testing"
)

// A link out that appears as a key's folder after the write was staged
// (and checked) and before its group commits: the folder exists then, so
// nothing is created and no check runs again, and the rename would follow
// the link. Done through the directory's root, the rename fails instead;
// nothing lands outside.
func TestDir_LinkSwappedInAfterTheCheckLeadsNowhereOutside(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "ok", "v1") // the table's folder exists
	outside := t.TempDir()
	mustBegin(t, w)
	mustDirPut(t, d, "a/k", "secret?")
	if err := os.Symlink(outside, filepath.Join(root, "t", "a")); err != nil {
		t.Fatal(err)
	}
	err := w.Commit()
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("entries made outside the directory: %v", entries)
	}
	if CodeOf(err) != CodeFileSystemError {
		t.Fatalf("commit: got %v, want FILE_SYSTEM_ERROR for a/k", err)
	}
	if got := tempFiles(t, root); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
}
