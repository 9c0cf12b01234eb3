package main

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A write refused because the disk's fsync failed stays refused: SQLite
// leaves the refused group's frames in the log, commit mark included, and
// a kill -9 then must not have the restart read them back in (a retried
// incr would count twice, a refused DELETE be done). The failure is real:
// strace makes every fsync of kvd fail while the writes are sent.
func TestKvd_WritesRefusedOnAFailedFsyncStayRefusedAfterAKill(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is needed to fail kvd's fsyncs")
	}
	dir := t.TempDir()
	d := startDaemon(t, dir)
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, d.url+"/api/v1/sqlite/kv/"+path, strings.NewReader(body))
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, w := range [][3]string{{"PUT", "k?db=app&create_db_if_missing=true", "v1"}, {"PUT", "gone?db=app", "kept"}, {"POST", "c/incr?db=app", ""}} {
		if status, body := call(w[0], w[1], w[2]); status != 200 {
			t.Fatalf("%s %s: %d %s", w[0], w[1], status, body)
		}
	}

	tracer := exec.Command(strace, "-f", "-p", strconv.Itoa(d.cmd.Process.Pid), "-o", "/dev/null",
		"-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO")
	stderr, _ := tracer.StderrPipe()
	if err := tracer.Start(); err != nil {
		t.Fatal(err)
	}
	defer tracer.Process.Kill()
	if line, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || !strings.Contains(line, "attached") {
		t.Fatalf("strace did not attach: %q %v", line, err)
	}
	go io.Copy(io.Discard, stderr)
	time.Sleep(200 * time.Millisecond) // its other threads
	for _, w := range [][3]string{{"PUT", "k?db=app", "refused"}, {"DELETE", "gone?db=app", ""}, {"POST", "c/incr?db=app", ""}} {
		if status, body := call(w[0], w[1], w[2]); status < 500 {
			t.Fatalf("%s %s while every fsync fails: %d %s, want it refused", w[0], w[1], status, body)
		}
	}
	tracer.Process.Signal(syscall.SIGTERM) // strace detaches
	tracer.Wait()
	d.cmd.Process.Kill()
	d.cmd.Wait()

	d = startDaemon(t, dir)
	for key, want := range map[string]string{"k": "v1", "gone": "kept", "c": "1"} {
		if status, body := call("GET", key+"?db=app", ""); status != 200 || body != want {
			t.Errorf("%s after the kill: %d %q, want %q, as before the refused writes", key, status, body, want)
		}
	}
	d.stop(t)
}
