package sqlitekv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file too large to import, met in the middle of a group (the import
// before a write, a write that would build on it), fails only what
// touches it: the group's other writes commit, the file stays as it was
// and the cache never holds its bytes.
func TestDir_AFileTooLargeToImportFailsOnlyItsOwnWrites(t *testing.T) {
	root := t.TempDir()
	d, err := OpenDir(root, Options{MaxValueBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	must(t, dirPut(t, d, "a", "first"))
	big := strings.Repeat("b", 17)
	must(t, os.WriteFile(filepath.Join(root, "t", "big"), []byte(big), 0o640))

	w := d.Cache().Writer()
	must(t, w.Begin())
	must(t, dirPut(t, d, "a", "second"))
	must(t, d.Sync("t", "big"))
	if _, err := w.Incr(IncrRequest{Table: "t", Key: "big", Delta: 1}); CodeOf(err) != CodePayloadTooLarge {
		t.Fatalf("incr of the big file: got %v, want PAYLOAD_TOO_LARGE", err)
	}
	must(t, dirPut(t, d, "c", "third"))
	must(t, w.Commit())

	for key, want := range map[string]string{"a": "second", "c": "third", "big": big} {
		if got, _ := os.ReadFile(filepath.Join(root, "t", key)); string(got) != want {
			t.Errorf("file %s: got %q, want %q", key, got, want)
		}
	}
	if _, err := d.Cache().history(t.Context(), "t", "big", 10); CodeOf(err) != CodeKeyNotFound {
		t.Errorf("history of the big file: got %v, want KEY_NOT_FOUND (never imported)", err)
	}
	if _, _, err := d.Get(t.Context(), GetRequest{Table: "t", Key: "big"}); CodeOf(err) != CodePayloadTooLarge {
		t.Errorf("read of the big file: got %v, want PAYLOAD_TOO_LARGE", err)
	}
}
