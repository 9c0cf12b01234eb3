package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kvd/kvd/internal/kvdtest"
)

var kvdBinary string

// TestMain builds the kvd binary once for the tests that run it as a
// child process, the way systemd or a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kvd-bin-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755) // tests may run kvd as another user (nobody)
	kvdBinary = filepath.Join(dir, "kvd")
	if out, err := exec.Command("go", "build", "-o", kvdBinary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build kvd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestRun_NotifiesSystemdReadyWatchdogAndStopping(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "40000") // 40ms: pings every 20ms
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, nil, io.Discard, io.Discard)
	}()
	next := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 256)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification: got %q, want READY=1", got)
	}
	for range 2 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("notification: got %q, want WATCHDOG=1", got)
		}
	}
	cancel()
	for {
		if got := next(); got == "STOPPING=1" {
			break
		} else if got != "WATCHDOG=1" {
			t.Fatalf("notification: got %q, want STOPPING=1", got)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestConfig_FlagsFallBackToEnvironment(t *testing.T) {
	env := []string{"KVD_SYNC=normal", "KVD_ALLOW_DIR=/a:/b", "KVD_HISTORY_KEEP=7", "KVD_LISTEN=", "PATH=/bin",
		"KVD_READ_TIMEOUT=5m", "KVD_MAX_CONNECTIONS=300", "KVD_CORS_ORIGIN=https://a.example:8443,http://localhost:5173"}
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:2"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.sync != "normal" || cfg.historyKeep != 7 || fmt.Sprint(cfg.allowDirs) != "[/a /b]" || cfg.listen != "127.0.0.1:2" ||
		cfg.readTimeout != 5*time.Minute || cfg.maxConnections != 300 || fmt.Sprint(cfg.corsOrigins) != "[https://a.example:8443 http://localhost:5173]" {
		t.Fatalf("config: got %+v", cfg)
	}
	for _, bad := range [][]string{{"--sync", "sometimes"}, {"--max-value-bytes", "0"}, {"--max-answer-bytes", "0"}, {"extra"}, {"--log-format", "xml"}, {"--cache-bytes", "1000"}, {"--cache-bytes", "1073741824"},
		{"--listen", ""}, {"--max-queue", "0"}, {"--max-open-dbs", "-3"}, {"--history-keep", "0"}, {"--history-keep", "-5"},
		{"--idle-timeout", "-1s"}, {"--sweep-interval", "-1s"}, {"--history-max-age", "-1h"}, {"--shutdown-timeout", "-1s"}, {"--allow-dir", ""},
		{"--read-timeout", "0"}, {"--max-connections", "-1"}} {
		cfg, err := parseConfig(bad, nil, io.Discard)
		if err == nil {
			_, err = cfg.logger(io.Discard)
		}
		if err == nil {
			t.Errorf("%v: got no error", bad)
		}
	}
	if _, err := parseConfig(nil, []string{"KVD_ALLOW_DIR=/a:"}, io.Discard); err == nil {
		t.Error("KVD_ALLOW_DIR=/a: (an empty root, which would be the working directory): got no error")
	}
	if _, err := parseConfig(nil, []string{"KVD_MAX_QUEUE=abc"}, io.Discard); err == nil || !strings.Contains(err.Error(), `KVD_MAX_QUEUE: invalid value "abc"`) {
		t.Errorf("KVD_MAX_QUEUE=abc: got %v, want the variable and its value named", err)
	}
	if out, err := exec.Command(kvdBinary, "-h").CombinedOutput(); err != nil || !strings.Contains(string(out), "-data-dir") {
		t.Errorf("kvd -h: %v\n%s", err, out)
	}
}

func TestVersion_PrintsTheRevisionItWasBuiltFrom(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (%v): the build has no revision to print", err)
	}
	if dirs, _ := exec.Command("git", "rev-parse", "--git-dir", "--git-common-dir").Output(); len(strings.Fields(string(dirs))) == 2 && strings.Fields(string(dirs))[0] != strings.Fields(string(dirs))[1] {
		t.Skip("a git worktree: Go stamps no revision there")
	}
	// A build of its own: this machine's GOFLAGS may say -buildvcs=false.
	bin := filepath.Join(t.TempDir(), "kvd")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build kvd: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("kvd --version: %v\n%s", err, out)
	}
	if rev := strings.TrimSpace(string(head)); !strings.HasPrefix(string(out), "kvd ") || !strings.Contains(string(out), "revision "+rev) {
		t.Fatalf("kvd --version printed %q, want kvd's name and revision %s", out, rev)
	}
}

// kvdProcess is a kvd child process.
type kvdProcess struct {
	cmd  *exec.Cmd
	url  string
	logs *kvdtest.LogBuffer // the child's stderr
}

func startDaemon(t *testing.T, dataDir string, args ...string) *kvdProcess {
	t.Helper()
	return startDaemonUnder(t, nil, dataDir, args...)
}

// startDaemonUnder runs kvd through a wrapper that execs it (prlimit ...).
func startDaemonUnder(t *testing.T, wrapper []string, dataDir string, args ...string) *kvdProcess {
	t.Helper()
	return startDaemonWith(t, wrapper, nil, dataDir, args...)
}

// startDaemonWith runs kvd with the test's environment less its KVD_*
// variables (one beside its flag stops kvd), plus env.
func startDaemonWith(t *testing.T, wrapper, env []string, dataDir string, args ...string) *kvdProcess {
	t.Helper()
	argv := append(append(append([]string{}, wrapper...), kvdBinary, "--listen", "127.0.0.1:0", "--data-dir", dataDir), args...)
	return startCommand(t, argv, env)
}

// startCommand runs argv, a kvd listening on 127.0.0.1:0, with the test's
// environment less its KVD_* variables, plus env.
func startCommand(t *testing.T, argv, env []string) *kvdProcess {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(withoutKVDVariables(), env...)
	dieWithTest(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &kvdProcess{cmd: cmd, logs: &kvdtest.LogBuffer{}}
	cmd.Stderr = d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("kvd did not start: %v\n%s", err, d.logs)
	}
	d.url = strings.TrimSpace(strings.TrimPrefix(line, "kvd listening on "))
	go io.Copy(io.Discard, stdout)
	return d
}

// stop sends SIGTERM and waits (at most 30s) for the exit code.
func (d *kvdProcess) stop(t *testing.T) int {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	return d.wait(t)
}

// wait waits (at most 30s) for kvd to exit and returns its exit code.
func (d *kvdProcess) wait(t *testing.T) int {
	t.Helper()
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("kvd did not exit 30s after SIGTERM\n%s", d.logs)
	}
	return d.cmd.ProcessState.ExitCode()
}

func TestKvd_SIGTERMDuringWritesLosesNoAcknowledgedWrite(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, url string) (int, string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(map[string]string{"PUT": "v"}[method])) // an incr takes no body
		res, err := client.Do(req)
		if err != nil {
			return 0, ""
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	api := d.url + "/api/v1/sqlite/kv/"
	var acked, failed atomic.Int64
	var mu sync.Mutex
	var ackedKeys []string
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				if code, _ := do("POST", api+"counter/incr?db=app&create_db_if_missing=true"); code != 200 {
					failed.Add(1)
					return
				}
				acked.Add(1)
				key := fmt.Sprintf("c%d-%d", c, i)
				if code, _ := do("PUT", api+key+"?db=app"); code != 200 {
					return
				}
				mu.Lock()
				ackedKeys = append(ackedKeys, key)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let the load run before the signal
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code after SIGTERM: got %d, want 0\n%s", code, d.logs)
	}
	wg.Wait()
	if acked.Load() == 0 {
		t.Fatal("no write was acknowledged before SIGTERM")
	}

	d = startDaemon(t, dataDir)
	api = d.url + "/api/v1/sqlite/kv/"
	code, body := do("GET", api+"counter?db=app")
	n, _ := strconv.ParseInt(body, 10, 64)
	if code != 200 || n < acked.Load() || n > acked.Load()+failed.Load() {
		t.Fatalf("counter after restart: got %d %q, want %d acknowledged (+ at most %d unacknowledged)", code, body, acked.Load(), failed.Load())
	}
	for _, key := range ackedKeys {
		if code, _ := do("GET", api+key+"?db=app"); code != 200 {
			t.Fatalf("acknowledged key %s after restart: status %d", key, code)
		}
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("second exit code: got %d", code)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "app.db-wal")); err == nil {
		if info, _ := os.Stat(filepath.Join(dataDir, "app.db-wal")); info.Size() > 0 {
			t.Errorf("WAL not checkpointed on shutdown: %d bytes left", info.Size())
		}
	}
}

func TestKvd_SecondSignalExitsAtOnce(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--shutdown-timeout", "30s")
	// A request that never finishes sending its body keeps the first
	// SIGTERM's drain waiting.
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /api/v1/sqlite/kv/k?db=app&create_db_if_missing=true HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
	time.Sleep(100 * time.Millisecond) // let the server start reading the body
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		t.Fatal("kvd exited on the first SIGTERM while a request was in flight")
	case <-time.After(500 * time.Millisecond):
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("kvd still running 5s after a second SIGTERM")
	}
	if d.cmd.ProcessState.Success() {
		t.Fatal("a second signal should end kvd at once, not cleanly")
	}
}

// With --drain-delay, SIGTERM first only makes /readyz answer 503, so a
// load balancer moves traffic away while every request is still served.
func TestKvd_DrainDelayServesWhileNotReady(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--drain-delay", "2s")
	get := func(path string) int {
		res, err := http.Get(d.url + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := get("/readyz"); got != 200 {
		t.Fatalf("readyz before SIGTERM: %d", got)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(time.Second); get("/readyz") != 503; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("readyz never answered 503 after SIGTERM\n%s", d.logs)
		}
	}
	if got := get("/api/v1/sqlite/kv?db=app"); got != 404 {
		t.Fatalf("an API request while not ready: %d, want it served (404: no database)", got)
	}
	if code := d.wait(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0", code)
	}
}

// systemctl reload sends SIGHUP whether or not kvd has tokens: without a
// token file it is a no-op, never the signal's default (ending kvd).
func TestKvd_SIGHUPWithoutTokensKeepsServing(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	d.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(d.logs.String(), "nothing to reload"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no sign of SIGHUP being handled\n%s", d.logs)
		}
	}
	res, err := http.Get(d.url + "/healthz")
	if err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	res.Body.Close()
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0", code)
	}
}

// SIGHUP rereads the token file: rotated tokens take effect without a
// restart, and a file that would lock everyone out is refused.
func TestKvd_SIGHUPReloadsTokens(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokenFile, []byte("old-token\n"), 0o600)
	d := startDaemon(t, t.TempDir(), "--auth-token-file", tokenFile)
	status := func(token string) int {
		req, _ := http.NewRequest("GET", d.url+"/api/v1/sqlite/kv?db=app", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// reload rewrites the file, signals, and waits (bounded) until done.
	reload := func(content string, done func() bool) {
		t.Helper()
		os.WriteFile(tokenFile, []byte(content), 0o600)
		d.cmd.Process.Signal(syscall.SIGHUP)
		for deadline := time.Now().Add(5 * time.Second); !done(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no effect of SIGHUP with %q\n%s", content, d.logs)
			}
		}
	}
	if got := status("old-token"); got != 404 {
		t.Fatalf("old token before rotation: got %d, want 404 (authorized; no database yet)", got)
	}
	reload("\ufeffnew-token\r\n", func() bool { return status("new-token") == 404 }) // a byte-order mark and CRLF, as some editors write
	if got := status("old-token"); got != 401 {
		t.Fatalf("old token after rotation: got %d, want 401", got)
	}
	reload("# nobody\n", func() bool { return strings.Contains(d.logs.String(), "keeping the previous ones") })
	if got := status("new-token"); got != 404 {
		t.Fatalf("new token after a refused reload: got %d, want 404", got)
	}

	// A watch stream opened with a token rotated out ends at its next
	// event, with a comment saying why, and sends nothing more.
	put := func(token, key string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", d.url+"/api/v1/sqlite/kv/"+key+"?db=app&create_db_if_missing=true", strings.NewReader("v"))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("PUT %s with %s: %v %v", key, token, res, err)
		}
		res.Body.Close()
	}
	put("new-token", "before")
	req, _ := http.NewRequest("GET", d.url+"/api/v1/sqlite/kv/watch?db=app", nil)
	req.Header.Set("Authorization", "Bearer new-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("watch with new-token: %v %v", res, err)
	}
	defer res.Body.Close()
	reload("third-token\n", func() bool { return status("third-token") == 200 })
	put("third-token", "after")
	got := make(chan string, 1)
	go func() { rest, _ := io.ReadAll(res.Body); got <- string(rest) }()
	select {
	case rest := <-got:
		if !strings.Contains(rest, "its token is no longer accepted") || strings.Contains(rest, `"key":"after"`) {
			t.Fatalf("stream of a rotated-out token: got %q, want it ended before the write of after", rest)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of a rotated-out token still runs 10 s after the next write")
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0", code)
	}
}

// SIGTERM ends open watch streams cleanly (their answer ends, the client
// sees EOF), and kvd exits 0 without waiting out its shutdown timeout.
func TestKvd_SIGTERMEndsWatchStreams(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--shutdown-timeout", "60s")
	req, _ := http.NewRequest("PUT", d.url+"/api/v1/sqlite/kv/k?db=app&create_db_if_missing=true", strings.NewReader("v"))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("put: %v %v", res, err)
	}
	res.Body.Close()
	var streams []*bufio.Reader
	for range 3 {
		res, err := http.Get(d.url + "/api/v1/sqlite/kv/k/watch?db=app")
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("watch: %v %v", res, err)
		}
		defer res.Body.Close()
		r := bufio.NewReader(res.Body)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": watching") {
			t.Fatalf("first line %q, %v", line, err)
		}
		streams = append(streams, r)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
	for i, r := range streams {
		if rest, err := io.ReadAll(r); err != nil {
			t.Fatalf("stream %d: %v after %q, want a clean end", i, err, rest)
		}
	}
}
