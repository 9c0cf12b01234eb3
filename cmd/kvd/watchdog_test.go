package main

import (
	"bufio"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A kvd whose database actor hangs still answers /healthz (HTTP runs on
// other goroutines), so a watchdog that pinged on a timer alone would keep
// it alive forever. kvd must stop pinging so that systemd restarts it.
func TestWatchdog_StopsPingingWhileAnActorHangs(t *testing.T) {
	bin := buildWedgeKvd(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	notes, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Env = append(cmd.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000") // pings every 100ms
	dieWithTest(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }() // a wedged kvd cannot drain: SIGTERM would hang
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("kvd did not start: %v", err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "kvd listening on "))

	// pings counts the watchdog pings that arrive within d.
	pings := func(d time.Duration) int {
		n := 0
		buf := make([]byte, 256)
		for deadline := time.Now().Add(d); ; {
			notes.SetReadDeadline(deadline)
			m, err := notes.Read(buf)
			if err != nil {
				return n
			}
			if string(buf[:m]) == "WATCHDOG=1" {
				n++
			}
		}
	}
	// A healthy kvd with an open database pings.
	if res, err := http.Post(url+"/api/v1/sqlite/kv/batch/set?db=other&create_db_if_missing=true", "application/json",
		strings.NewReader(`{"items":[{"key":"k","value":"v"}]}`)); err != nil || res.StatusCode != 200 {
		t.Fatalf("write before the wedge: %v %v", res, err)
	}
	if n := pings(time.Second); n < 5 {
		t.Fatalf("healthy kvd: %d watchdog pings in 1s, want about 10", n)
	}
	cmd.Process.Signal(syscall.SIGUSR1) // the test build wedges database "wedged"
	pings(500 * time.Millisecond)       // the wedge lands, a ping may be under way
	if n := pings(time.Second); n != 0 {
		t.Fatalf("wedged kvd: %d watchdog pings in 1s, want none", n)
	}
	res, err := http.Get(url + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/healthz of the wedged kvd: %v %v; want 200 (the point: HTTP alone looks healthy)", res, err)
	}
	res.Body.Close()
}

// buildWedgeKvd builds the test build of kvd whose database "wedged" hangs
// on SIGUSR1 (wedge_kvdwedge.go); skipped under -short.
func buildWedgeKvd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds kvd with the kvdwedge tag")
	}
	bin := filepath.Join(t.TempDir(), "kvd-wedge")
	if out, err := exec.Command("go", "build", "-tags", "kvdwedge", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build kvd -tags kvdwedge: %v\n%s", err, out)
	}
	return bin
}
