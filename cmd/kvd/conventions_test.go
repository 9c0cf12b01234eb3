package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withoutKVDVariables is this process's environment less KVD_*, so that a
// developer's settings neither change nor stop the kvd a test starts.
func withoutKVDVariables() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KVD_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestConfig_VariableBesideItsFlagIsRefused: as etcd, kvd will not pick
// one of two settings silently.
func TestConfig_VariableBesideItsFlagIsRefused(t *testing.T) {
	_, err := parseConfig([]string{"--listen", "127.0.0.1:2"}, []string{"KVD_LISTEN=127.0.0.1:1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "KVD_LISTEN") || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("KVD_LISTEN beside --listen: got %v, want an error naming both", err)
	}
}

// TestConfig_UnknownVariablesAreReturnedForAWarning: a typo in a KVD_
// name is reported, not fatal; other variables and kvd's own are not.
func TestConfig_UnknownVariablesAreReturnedForAWarning(t *testing.T) {
	cfg, err := parseConfig(nil, []string{"KVD_SYNC=normal", "KVD_HISTORY_KEPE=7", "KVD_VERSION=1", "KVDX=1", "HOME=/root", "KVD_LISTN="}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.unknownEnv, " "); got != "KVD_HISTORY_KEPE KVD_LISTN KVD_VERSION" || cfg.sync != "normal" {
		t.Fatalf("unknown variables: got %q (sync %q), want KVD_HISTORY_KEPE KVD_LISTN KVD_VERSION", got, cfg.sync)
	}
}

// TestConfig_SizesTakeUnits: a size flag reads 64MiB as an operator writes
// it, in flags and variables alike; a unit that could mean two sizes is refused.
func TestConfig_SizesTakeUnits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1 << 20}, {"64MiB", 64 << 20}, {"512KiB", 512 << 10}, {"1GiB", 1 << 30}, {"2 mib", 2 << 20},
		{"10MB", 10_000_000}, {"100kB", 100_000}, {"1gb", 1_000_000_000}, {"4096B", 4096}, {"1TiB", 1 << 40},
	} {
		if got, err := parseBytes(tc.in); err != nil || got != tc.want {
			t.Errorf("parseBytes(%q): got %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "64M", "64k", "1.5GiB", "-1", "+5", "64 MiBs", "0x10", "9223372036854775807KiB", "99999999999999999999"} {
		if got, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q): got %d, want an error", bad, got)
		}
	}
	cfg, err := parseConfig([]string{"--max-value-bytes", "1MiB", "--cache-bytes=32MiB", "--max-answer-bytes", "4MB"},
		[]string{"KVD_MAX_BODY_MEMORY=1GiB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.maxValueBytes != 1<<20 || cfg.cacheBytes != 32<<20 || cfg.maxAnswerBytes != 4_000_000 || cfg.maxBodyMemory != 1<<30 {
		t.Fatalf("sizes: got value %d cache %d answer %d body %d", cfg.maxValueBytes, cfg.cacheBytes, cfg.maxAnswerBytes, cfg.maxBodyMemory)
	}
	out, _ := exec.Command(kvdBinary, "-h").CombinedOutput()
	if !strings.Contains(string(out), "(default 10MiB)") {
		t.Errorf("kvd -h shows the size defaults in bytes, want 10MiB:\n%s", out)
	}
}

// TestKvd_BadFlagsExitTwo: a mistake in how kvd was called exits 2 with a
// message; a start-up failure of another kind stays 1.
func TestKvd_BadFlagsExitTwo(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, nil, 0o600)
	shared := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(shared, 0o700)
	os.Chmod(shared, 0o777)                      // any local user could swap a link into it
	underShared := filepath.Join(shared, "data") // or swap the data dir itself
	os.Mkdir(underShared, 0o700)
	for _, tc := range []struct {
		args, env []string
		code      int
		says      string
	}{
		{args: []string{"--no-such-flag"}, code: 2, says: "no-such-flag"},
		{args: []string{"--max-value-bytes", "10XB"}, code: 2, says: "10XB"},
		{args: []string{"--sync", "sometimes"}, code: 2, says: "--sync"},
		{args: []string{"--log-level", "loud"}, code: 2, says: "--log-level"},
		{args: []string{"--cors-origin", "app.example.com"}, code: 2, says: "not an origin"},
		{args: []string{"--cors-origin", "https://bücher.example"}, code: 2, says: "xn--"}, // browsers send punycode: it would never match
		{args: []string{"stray"}, code: 2, says: "unexpected arguments"},
		{env: []string{"KVD_HISTORY_KEEP=many"}, code: 2, says: "KVD_HISTORY_KEEP"},
		{args: []string{"--listen", "127.0.0.1:0"}, env: []string{"KVD_LISTEN=127.0.0.1:0"}, code: 2, says: "KVD_LISTEN"},
		{args: []string{"--data-dir", filepath.Join(notADir, "data")}, code: 1, says: "create data dir"},
		{args: []string{"--data-dir", ""}, code: 2, says: "--data-dir"},
		{args: []string{"--data-dir", shared}, code: 1, says: "can be changed by other users"},
		{args: []string{"--data-dir", underShared}, code: 1, says: "can be changed by other users"},
		{args: []string{"--listen", "19206"}, code: 2, says: "--listen"},
		{args: []string{"--listen", "127.0.0.1:99999"}, code: 2, says: "--listen"},
		{args: []string{"--max-value-bytes", "2097152TiB"}, code: 2, says: "at most 512 MiB"}, // overflowed the batch limit
		{args: []string{"--cluster-replica", "file:///r"}, code: 2, says: "without --cluster-node"},
		{env: []string{"KVD_LITESTREAM=/usr/bin/litestream"}, code: 2, says: "--litestream"},
		{args: []string{"--cluster-lease-ttl", "10s"}, code: 2, says: "without --cluster-node"}, // its default, written out
		{env: []string{"KVD_CLUSTER_ETCD=http://127.0.0.1:2379"}, code: 2, says: "--cluster-etcd"},
		{args: []string{"--shutdown-timeout", "0s"}, code: 2, says: "--shutdown-timeout"}, // no database could close
		{args: []string{"--cluster-node", "n1"}, code: 2, says: "--cluster-replica"},
		{args: []string{"--cluster-node", "n1", "--cluster-replica", "file:///r", "--allow-dir", "/tmp"}, code: 2, says: "cluster mode"},
		{args: []string{"--cluster-node", "n1", "--cluster-replica", "file:///r", "--auth-token-file", notADir}, code: 2, says: "--cluster-token-file"},
		{args: []string{"--cluster-node", "n1", "--cluster-replica", "file:///r", "--cluster-etcd", "http://127.0.0.1:1"}, code: 1, says: "join the cluster"},
	} {
		// Bounded, in a folder of its own: a kvd that starts after all
		// is killed and leaves no ./data behind.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		cmd := exec.CommandContext(ctx, kvdBinary, tc.args...)
		cmd.Env, cmd.Dir, cmd.WaitDelay = append(withoutKVDVariables(), tc.env...), t.TempDir(), time.Second
		out, err := cmd.CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tc.code || !strings.Contains(string(out), tc.says) {
			t.Errorf("kvd %v with %v: got %v, want exit status %d and a message with %q:\n%s", tc.args, tc.env, err, tc.code, tc.says, out)
		}
	}
}

// TestKvd_WarnsOfUnknownVariablesLogsAccessAndAnswersCORS: the flags and
// variables reach the running server.
func TestKvd_WarnsOfUnknownVariablesLogsAccessAndAnswersCORS(t *testing.T) {
	d := startDaemonWith(t, nil, []string{"KVD_HISTROY_KEEP=5", "KVD_ACCESS_LOG=true", "KVD_MAX_VALUE_BYTES=1KiB"}, t.TempDir(),
		"--cors-origin", "HTTPS://App.Example.com:443/") // as a browser sends it: https://app.example.com
	if !d.logs.Holds("KVD_HISTROY_KEEP", 5*time.Second) || !strings.Contains(d.logs.String(), "names no flag") {
		t.Errorf("no warning naming KVD_HISTROY_KEEP:\n%s", d.logs)
	}
	req, _ := http.NewRequest("PUT", d.url+"/api/v1/sqlite/kv/k?db=app&create_db_if_missing=true", strings.NewReader(strings.Repeat("v", 1025)))
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("X-Request-Id", "from-the-page")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("PUT of 1025 bytes under KVD_MAX_VALUE_BYTES=1KiB from an allowed page: got %d, Access-Control-Allow-Origin %q",
			res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0", code)
	}
	if logs := d.logs.String(); !strings.Contains(logs, "msg=request") || !strings.Contains(logs, "request_id=from-the-page") || !strings.Contains(logs, "status=413") {
		t.Errorf("no access log line for the PUT:\n%s", logs)
	}
}

// TestKvd_LogsEachTableItUpgrades: the upgrade of an older kvd's database
// holds its requests up (tens of seconds for millions of versions), so
// each table's is logged as it starts and ends. Before, the log said
// nothing, and an operator saw a silent stall.
func TestKvd_LogsEachTableItUpgrades(t *testing.T) {
	dir := t.TempDir()
	old, err := os.ReadFile(filepath.Join("..", "..", "httpapi", "testdata", "v1-history.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.db"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir)
	res, err := http.Get(d.url + "/api/v1/sqlite/kv?db=old")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET of the old database: %d", res.StatusCode)
	}
	for _, table := range []string{"kv_store", "orders"} {
		if !d.logs.Holds("upgrading a table an older kvd wrote", 5*time.Second) || !d.logs.Holds(`msg="table upgraded" db=`+filepath.Join(dir, "old.db")+" table="+table+" took=", 5*time.Second) {
			t.Errorf("no line for the upgrade of %s:\n%s", table, d.logs)
		}
	}
}
