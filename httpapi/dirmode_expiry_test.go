package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// historyOps lists key's history as "op value" lines, newest first
// ("<nil>" where an operation left no value).
func historyOps(t *testing.T, ts *testServer, key, q string) []string {
	t.Helper()
	var ops []string
	for _, h := range ts.do(t, "GET", kv(key+"/history", q), "").JSON(t)["operations"].([]any) {
		op := h.(map[string]any)["operation"].(map[string]any)
		value := "<nil>"
		if raw, ok := op["raw_new_value"].(string); ok {
			b, err := base64.StdEncoding.DecodeString(raw)
			if err != nil {
				t.Fatal(err)
			}
			value = string(b)
		}
		ops = append(ops, fmt.Sprintf("%v %s", op["op"], value))
	}
	return ops
}

// sweepDir runs one sweep of the directory-mode database at root.
func sweepDir(t *testing.T, ts *testServer, root string) {
	t.Helper()
	db, err := ts.Registry.Open(t.Context(), root, false, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	if _, err := db.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A file a person wrote over a key with a TTL is a new value: neither the
// sweep, nor a read that finds the old value expired, nor a batch get
// removes it when the old TTL runs out. It is imported, without the TTL.
func TestDirMode_AFileEditedByHandOutlivesTheOldValuesTTL(t *testing.T) {
	for _, expireBy := range []string{"sweep", "get", "batch get"} {
		t.Run(expireBy, func(t *testing.T) {
			ts, root, q := dirServer(t)
			wantStatus(t, ts.do(t, "PUT", kv("k", q+"&ttl=2"), "old"), 200)
			if err := os.WriteFile(filepath.Join(root, "notes", "k"), []byte("edited by a person"), 0o640); err != nil {
				t.Fatal(err)
			}
			ts.Clock.Advance(3 * time.Second)
			switch expireBy {
			case "sweep":
				sweepDir(t, ts, root)
			case "get":
				if r := ts.do(t, "GET", kv("k", q), ""); r.Status != 200 || string(r.Body) != "edited by a person" {
					t.Fatalf("GET: got %d %q, want 200 with the person's bytes", r.Status, r.Body)
				}
			case "batch get":
				r := ts.do(t, "POST", batchPath+"get?"+q, `{"keys":["k"]}`)
				if !strings.Contains(string(r.Body), `"k":{"value":"edited by a person"`) {
					t.Fatalf("batch get: got %s, want the person's bytes", r.Body)
				}
			}
			wantStatus(t, ts.do(t, "PUT", kv("later", q), "x"), 200) // FIFO: what the read queued is done
			if got := fileOf(t, root, "k"); got != "edited by a person" {
				t.Fatalf("file after the old TTL: got %q, want the person's bytes", got)
			}
			if got, want := fmt.Sprint(historyOps(t, ts, "k", q)), "[import edited by a person set old]"; got != want {
				t.Fatalf("history: got %s, want %s", got, want)
			}
			ts.Clock.Advance(time.Hour) // the import carries no TTL
			sweepDir(t, ts, root)
			if r := ts.do(t, "GET", kv("k", q), ""); string(r.Body) != "edited by a person" || r.Header.Get("ETag") == "" {
				t.Fatalf("GET an hour later: got %d %q ETag %q, want the imported value", r.Status, r.Body, r.Header.Get("ETag"))
			}
		})
	}
}

// A file that still holds the expired value is expired as before, by the
// sweep or by the write that finds it: the write creates the key anew.
func TestDirMode_AnUnchangedFileExpiresWithItsTTL(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("swept", q+"&ttl=2"), "old"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("rewritten", q+"&ttl=2"), "old"), 200)
	ts.Clock.Advance(3 * time.Second)
	wantStatus(t, ts.do(t, "PUT", kv("rewritten", q), "new", "If-None-Match", "*"), 200)
	sweepDir(t, ts, root)
	if got := fileOf(t, root, "swept"); got != "<missing>" {
		t.Fatalf("swept file: got %q, want it removed", got)
	}
	if got, want := fmt.Sprint(historyOps(t, ts, "swept", q)), "[expire <nil> set old]"; got != want {
		t.Fatalf("history of swept: got %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(historyOps(t, ts, "rewritten", q)), "[set new expire <nil> set old]"; got != want {
		t.Fatalf("history of rewritten: got %s, want %s", got, want)
	}
}

// A FIFO, a folder or a symlink a person put where an expired key's file
// was is theirs: it reads as no key, recorded as a file removed by hand, and
// neither the sweep nor a read that finds the key expired removes it.
func TestDirMode_WhatAPersonPutInAnExpiredFilesPlaceStays(t *testing.T) {
	for _, expireBy := range []string{"sweep", "get"} {
		t.Run(expireBy, func(t *testing.T) {
			ts, root, q := dirServer(t)
			wantStatus(t, ts.do(t, "PUT", kv("fifo", q+"&ttl=2"), "old"), 200)
			wantStatus(t, ts.do(t, "PUT", kv("folder", q+"&ttl=2"), "old"), 200)
			wantStatus(t, ts.do(t, "PUT", kv("link", q+"&ttl=2"), "old"), 200)
			wantStatus(t, ts.do(t, "PUT", kv("target", q), "old"), 200) // what the link leads to holds the expired value
			fifo, folder, link := filepath.Join(root, "notes", "fifo"), filepath.Join(root, "notes", "folder"), filepath.Join(root, "notes", "link")
			os.Remove(fifo)
			os.Remove(folder)
			os.Remove(link)
			if err := os.Symlink("target", link); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(folder, 0o750); err != nil {
				t.Fatal(err)
			}
			ts.Clock.Advance(3 * time.Second)
			switch expireBy {
			case "sweep":
				sweepDir(t, ts, root)
			case "get":
				for _, key := range []string{"fifo", "folder", "link"} {
					if r := ts.do(t, "GET", kv(key, q), ""); r.Status != 404 {
						t.Fatalf("GET %s: got %d %s, want 404", key, r.Status, r.Body)
					}
				}
			}
			wantStatus(t, ts.do(t, "PUT", kv("later", q), "x"), 200) // what the read queued is done
			if info, err := os.Lstat(fifo); err != nil || info.Mode().Type() != fs.ModeNamedPipe {
				t.Fatalf("the FIFO after the old TTL: %v, %v", info, err)
			}
			if info, err := os.Lstat(folder); err != nil || !info.IsDir() {
				t.Fatalf("the folder after the old TTL: %v, %v", info, err)
			}
			if target, err := os.Readlink(link); err != nil || target != "target" || fileOf(t, root, "target") != "old" {
				t.Fatalf("the link after the old TTL: %q, %v; target's file %q", target, err, fileOf(t, root, "target"))
			}
			for _, key := range []string{"fifo", "link"} {
				if got, want := fmt.Sprint(historyOps(t, ts, key, q)), "[import <nil> set old]"; got != want {
					t.Fatalf("history of %s: got %s, want %s (the key's file gone, as when removed by hand)", key, got, want)
				}
			}
		})
	}
}
