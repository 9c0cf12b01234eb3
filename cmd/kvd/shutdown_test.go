package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// An actor that never stops (the probe wedged one in openat on a FIFO
// put where a directory-mode file was) does not keep SIGTERM from
// ending kvd within its --shutdown-timeout: the other databases are
// closed and checkpointed, the wedged one is named in the log, and kvd
// exits 1. Before, the first SIGTERM never finished.
func TestKvd_SIGTERMExitsDespiteAWedgedDatabase(t *testing.T) {
	bin := buildWedgeKvd(t)
	dataDir := t.TempDir()
	d := startCommand(t, []string{bin, "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--shutdown-timeout", "1s"}, nil)
	req, _ := http.NewRequest("PUT", d.url+"/api/v1/sqlite/kv/k?db=healthy&create_db_if_missing=true", strings.NewReader("v"))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("put to the healthy database: %v %v", res, err)
	}
	d.cmd.Process.Signal(syscall.SIGUSR1) // the test build wedges database "wedged"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.logs.String(), "hangs from now on"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the test build did not wedge database wedged\n%s", d.logs)
		}
	}

	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("kvd still running 10s after SIGTERM with --shutdown-timeout 1s\n%s", d.logs)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit code: got %d, want 1 (a database left open)\n%s", code, d.logs)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	logs := d.logs.String()
	if !strings.Contains(logs, "did not close in time") || !strings.Contains(logs, "wedged.db") || strings.Contains(logs, "healthy.db") {
		t.Fatalf("log: want the wedged database named as not closed in time, and the healthy one not\n%s", logs)
	}
	healthy := filepath.Join(dataDir, "healthy.db")
	if info, err := os.Stat(healthy + "-wal"); err == nil && info.Size() > 0 {
		t.Fatalf("healthy database's log after SIGTERM: %d bytes, want it checkpointed", info.Size())
	}
	if err := sqlitekv.CheckIntegrity(healthy); err != nil {
		t.Fatal(err)
	}
}
