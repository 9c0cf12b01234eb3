package sqlitekv

import (
	"os"
	"path/filepath"
	"testing"
)

// A read of a key's file that a directory's close overtakes (the store
// reopens after a -shm fault, say: faults.go) met the closed folder and
// answered 500 FILE_SYSTEM_ERROR "statat ...: file already closed"; it is
// a request in flight on a closing database, to retry (503), as the
// cache's own reads answer then (ErrClosing).
func TestDir_AReadOvertakenByCloseIsToRetry(t *testing.T) {
	root := t.TempDir()
	d, err := OpenDir(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "site", "k"), []byte("v"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = d.readFile("site", "k")
	if CodeOf(err) != CodeOverloaded {
		t.Fatalf("read after close: %v (code %s), want %s", err, CodeOf(err), CodeOverloaded)
	}
}
