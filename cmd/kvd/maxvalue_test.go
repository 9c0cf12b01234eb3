package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --max-value-bytes bounds the files directory mode serves, not only the
// bodies it accepts: the flag reaches the storage too.
func TestKvd_MaxValueBytesBoundsDirectoryModeFiles(t *testing.T) {
	dataDir := t.TempDir()
	folder := filepath.Join(dataDir, "tree", "notes")
	if err := os.MkdirAll(folder, 0o750); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int{"fits": 64, "big": 65} {
		if err := os.WriteFile(filepath.Join(folder, name), []byte(strings.Repeat("x", size)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	d := startDaemon(t, dataDir, "--max-value-bytes", "64")
	q := "?db=" + url.QueryEscape(filepath.Join(dataDir, "tree")) + "&table=notes"
	for key, want := range map[string]int{"fits": 200, "big": 413} {
		res, err := http.Get(d.url + "/api/v1/sqlite/kv/" + key + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want || (want == 413 && !strings.Contains(string(body), "PAYLOAD_TOO_LARGE")) {
			t.Errorf("GET %s: got %d %s, want %d", key, res.StatusCode, body, want)
		}
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
}
