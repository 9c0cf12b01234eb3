package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A replica's newest transaction, read from a file:// replica's folder
// and listed by `litestream ltx` (as for an s3:// one), must agree; so
// must a listing that Litestream prefixes with its log. A listing that
// fails says why.
func TestShippedTXID_ReadAndListedAgree(t *testing.T) {
	replica := t.TempDir()
	level0 := filepath.Join(replica, "ltx", "0")
	level1 := filepath.Join(replica, "ltx", "1")
	for _, dir := range []string{level0, level1} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{
		filepath.Join(level0, "0000000000000001-0000000000000009.ltx"),
		filepath.Join(level0, "000000000000000a-000000000000001c.ltx"),
		filepath.Join(level0, "000000000000001d-0000000000000030.ltx.tmp"), // not yet written
		filepath.Join(level1, "0000000000000001-000000000000001c.ltx"),
	} {
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read, err := newestL0(replica)
	if err != nil || read != 0x1c {
		t.Fatalf("read: %d, %v; want 28", read, err)
	}

	bin, err := exec.LookPath("litestream")
	if err != nil {
		if os.Getenv("KVD_CLUSTER_DRILL") == "require" {
			t.Fatal("litestream is not on PATH (.ci/run installs it)")
		}
		t.Skip("litestream is not on PATH")
	}
	listed, err := newLitestream(bin, "").listedTXID(t.Context(), "file://"+replica)
	if err != nil || listed != read {
		t.Errorf("litestream ltx: %d, %v; the folder says %d", listed, err, read)
	}

	logging := filepath.Join(t.TempDir(), "litestream")
	script := "#!/bin/sh\necho 'time=2026-12-06T00:00:00Z level=WARN msg=\"[s3] unknown debug value\"'\nprintf '[\\n  {\\n    \"level\": 0,\\n    \"max_txid\": \"000000000000001c\"\\n  }\\n]\\n'\n"
	if err := os.WriteFile(logging, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := newLitestream(logging, "").listedTXID(t.Context(), "s3://bucket/app.db/1"); err != nil || got != 0x1c {
		t.Errorf("a listing after a log line: %d, %v; want 28", got, err)
	}

	failing := filepath.Join(t.TempDir(), "litestream")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'Error: bucket required for s3 replica' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := newLitestream(failing, "").listedTXID(t.Context(), "s3:///app.db/1"); err == nil || !strings.Contains(err.Error(), "bucket required") {
		t.Errorf("a failed listing: %v; want Litestream's reason", err)
	}
}
