package httpapi_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A write that replaces a key's file keeps the file's permissions, owner
// and group, as a person set them; a new file is kvd's own, 0600.
func TestDirMode_AWriteKeepsTheFilesModeAndOwner(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("shared", q), "v1"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("new", q), "v1"), 200)
	file := filepath.Join(root, "notes", "shared")
	const nobody = 65534
	if err := os.Chown(file, nobody, nobody); err != nil {
		t.Skipf("cannot give the file away (%v): kvd would keep it as well", err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ts.do(t, "PUT", kv("shared", q), "v2"), 200)
	wantStatus(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"shared","value":"v3"}]}`), 200)
	if got := fileOf(t, root, "shared"); got != "v3" {
		t.Fatalf("file after the writes: got %q, want v3", got)
	}
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if info.Mode().Perm() != 0o644 || st.Uid != nobody || st.Gid != nobody {
		t.Fatalf("after the writes: got %v %d:%d, want -rw-r--r-- %d:%d", info.Mode(), st.Uid, st.Gid, nobody, nobody)
	}
	if info, err := os.Stat(filepath.Join(root, "notes", "new")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("a new key's file: got %v (%v), want -rw-------", info.Mode(), err)
	}
}
