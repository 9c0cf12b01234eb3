package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

func TestAuth_BearerTokenRequiredOnTheAPIOnly(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokenFile, []byte("# kvd tokens\nfirst-secret\n\n  second-secret  \n"), 0o600)
	tokens, err := httpapi.LoadTokens(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.Tokens = tokens })
	put := kv("k", "db=app&create_db_if_missing=true")
	wantError(t, ts.do(t, "PUT", put, "v"), 401, "UNAUTHORIZED")
	wantError(t, ts.do(t, "PUT", put, "v", "Authorization", "Bearer wrong"), 401, "UNAUTHORIZED")
	wantError(t, ts.do(t, "PUT", put, "v", "Authorization", "first-secret"), 401, "UNAUTHORIZED")
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=app", ""), 401, "UNAUTHORIZED")
	wantStatus(t, ts.do(t, "PUT", put, "v", "Authorization", "Bearer first-secret"), 200)
	wantStatus(t, ts.do(t, "GET", kv("k", "db=app"), "", "Authorization", "Bearer second-secret"), 200)
	wantStatus(t, ts.do(t, "GET", kv("k", "db=app"), "", "Authorization", "bearer second-secret"), 200) // schemes ignore case
	// Two Authorization headers: none counts, whichever a proxy checked.
	wantError(t, ts.do(t, "GET", kv("k", "db=app"), "", "Authorization", "Bearer first-secret", "Authorization", "Bearer wrong"), 401, "UNAUTHORIZED")
	wantError(t, ts.do(t, "GET", kv("k", "db=app"), "", "Authorization", "Bearer wrong", "Authorization", "Bearer first-secret"), 401, "UNAUTHORIZED")
	for _, open := range []string{"/healthz", "/readyz", "/metrics"} {
		wantStatus(t, ts.do(t, "GET", open, ""), 200)
	}
	// Rotation: after a reload only the new token works.
	os.WriteFile(tokenFile, []byte("third-secret\n"), 0o600)
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	wantError(t, ts.do(t, "GET", kv("k", "db=app"), "", "Authorization", "Bearer first-secret"), 401, "UNAUTHORIZED")
	wantStatus(t, ts.do(t, "GET", kv("k", "db=app"), "", "Authorization", "Bearer third-secret"), 200)
	// A reload that would lock everyone out is refused and changes nothing.
	os.WriteFile(tokenFile, []byte("\n# none\n"), 0o600)
	if err := tokens.Reload(); err == nil {
		t.Fatal("reload of an empty token file: got nil error")
	}
	wantStatus(t, ts.do(t, "GET", kv("k", "db=app"), "", "Authorization", "Bearer third-secret"), 200)
}

func TestMetrics_ReportRequestsCommitsAndDatabases(t *testing.T) {
	metrics := httpapi.NewMetrics()
	ts := newTestServer(t, func(a *actors.Config, h *httpapi.Config) {
		a.Hooks = metrics.Hooks()
		h.Metrics = metrics
	})
	metrics.Watch(ts.Registry)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				ts.do(t, "POST", kv("n/incr", "db=app&create_db_if_missing=true"), "")
			}
		}()
	}
	wg.Wait()
	ts.do(t, "GET", kv("missing", "db=app"), "")
	ts.do(t, "GET", kv("a%2Fincr", "db=app"), "") // a key, not an operation
	ts.do(t, "POST", "/api/v1/sqlite/kv/batch/get?db=app", `{"keys":["n"]}`)
	ts.do(t, "PATCH", kv("n/incr", "db=app"), "")
	ts.do(t, "POST", "/api/v1/sqlite/db/create?path=made", "")
	ts.do(t, "GET", "/api/v1/sqlite/kv?db=app", "")
	for i := range 20 { // invented methods share one label value
		ts.do(t, fmt.Sprintf("M%d", i), "/healthz", "")
	}
	db, err := ts.Registry.Open(context.Background(), "app", false, false)
	if err != nil {
		t.Fatal(err)
	}
	db.Sweep(t.Context())
	db.Release()
	body := string(ts.do(t, "GET", "/metrics", "").Body)
	for _, want := range []string{
		`kvd_http_requests_total{code="200",route="POST /kv/{key}/incr"} 320`,
		`kvd_http_requests_total{code="404",route="GET /kv/{key}"} 2`,
		`kvd_http_requests_total{code="200",route="POST /kv/batch/get"} 1`,
		`kvd_http_requests_total{code="405",route="OTHER /kv/{key}/incr"} 1`,
		`kvd_http_requests_total{code="200",route="POST /db/create"} 1`,
		`kvd_http_requests_total{code="200",route="GET /kv"} 1`,
		`kvd_http_request_duration_seconds_count{route="POST /kv/{key}/incr"} 320`,
		"kvd_open_databases 2", // app and made
		`kvd_db_queue_depth{db="app.db"} 0`,
		"kvd_expired_keys_swept_total 0",
		"go_goroutines",
		`kvd_http_requests_total{code="405",route="OTHER /healthz"} 20`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every incr, the sweep and the created table went through a group commit.
	count := metricValue(t, body, "kvd_group_commit_writes_sum")
	if count != 322 {
		t.Errorf("kvd_group_commit_writes_sum: got %v, want 322", count)
	}
	if n := metricValue(t, body, "kvd_group_commit_seconds_count"); n < 1 || n > 322 {
		t.Errorf("kvd_group_commit_seconds_count: got %v, want 1..322", n)
	}
}

func metricValue(tb testing.TB, body, name string) float64 {
	tb.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return f
		}
	}
	tb.Fatalf("metric %s not found", name)
	return 0
}

func realPath(tb testing.TB, p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestBackup_DuringWritesIsConsistentAndOpensAsADatabase(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("seed", "db=app&create_db_if_missing=true"), "x")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ts.do(t, "POST", batchPath+"set?db=app", batchItems(50, func(int) string { return strconv.Itoa(i) }))
		}
	}()
	var backup response
	for range 3 {
		backup = ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=app", "")
		wantStatus(t, backup, 200)
	}
	close(stop)
	wg.Wait()
	if ct := backup.Header.Get("Content-Type"); ct != "application/vnd.sqlite3" {
		t.Fatalf("Content-Type: got %q", ct)
	}
	file := filepath.Join(t.TempDir(), "copy.db")
	os.WriteFile(file, backup.Body, 0o600)
	if err := sqlitekv.CheckIntegrity(file); err != nil {
		t.Fatalf("the backup: %v", err)
	}
	conn, err := sqlite3.OpenFlags(file, sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A consistent snapshot: every batch is whole, so all 50 values agree.
	stmt, _, err := conn.Prepare(`SELECT count(DISTINCT value), count(*) FROM kv_store WHERE key LIKE 'k%'`)
	if err != nil || !stmt.Step() {
		t.Fatal(err)
	}
	if distinct, n := stmt.ColumnInt(0), stmt.ColumnInt(1); n != 0 && (distinct != 1 || n != 50) {
		t.Fatalf("backup holds %d rows with %d distinct values, want 50 rows of one batch", n, distinct)
	}
	stmt.Close()
	leftovers, _ := filepath.Glob(filepath.Join(ts.DataDir, ".kvd-backup-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary backup files left: %v", leftovers)
	}
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=missing", ""), 404, "DATABASE_NOT_FOUND")
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=..%2Fx", ""), 400, "INVALID_DB_PATH")
}

func TestOverload_AnswersServiceUnavailableWithRetryAfter(t *testing.T) {
	logs := &logLines{}
	ts := newTestServer(t, withLog(logs, slog.LevelWarn), func(a *actors.Config, _ *httpapi.Config) {
		a.MaxQueue = 1
		a.Store.Sync = sqlitekv.SyncFull
	})
	ts.do(t, "PUT", kv("seed", "db=app&create_db_if_missing=true"), "x")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.do(t, "POST", kv("n/incr", "db=app"), "")
			mu.Lock()
			codes[r.Status]++
			mu.Unlock()
			if r.Status == 503 {
				wantError(t, r, 503, "OVERLOADED")
				if r.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
		}()
	}
	wg.Wait()
	if codes[503] == 0 || codes[200] == 0 || codes[200]+codes[503] != 64 {
		t.Fatalf("answers: got %v, want some 200 and some 503 only", codes)
	}
	if got := string(ts.do(t, "GET", kv("n", "db=app"), "").Body); got != strconv.Itoa(codes[200]) {
		t.Fatalf("counter: got %s, want %d (only accepted writes applied)", got, codes[200])
	}
	// The refusals are a warning a second, not an error line each.
	if failed := logs.withMessage(t, "request failed"); len(failed) != 0 {
		t.Fatalf("refusals logged as failures: %v", failed)
	}
	if refused := logs.withMessage(t, "request refused"); len(refused) == 0 || codes[503] > 3 && len(refused) >= codes[503] {
		t.Fatalf("%d refusals logged in %d lines, want at least one and fewer than refusals", codes[503], len(refused))
	}
}

func TestMetrics_SayWhichBuildIsRunning(t *testing.T) {
	ts := newTestServer(t)
	body := string(ts.do(t, "GET", "/metrics", "").Body)
	want := `kvd_build_info{goversion="` + runtime.Version() + `",revision=`
	if !strings.Contains(body, want) {
		t.Fatalf("metrics lack %q", want)
	}
}

// Each backup being made or sent holds a copy of its database on disk,
// so only --max-backups of them run at once; past it a backup answers
// 503, and once one ends, the next is served.
func TestBackup_OnlyMaxBackupsAtOnce(t *testing.T) {
	var logs logLines
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxBackups = 1 }, withLog(&logs, slog.LevelDebug))
	for i := range 16 { // 8 MiB: more than the sockets' buffers take in
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%d", i), "db=app&history=false&create_db_if_missing=true"), strings.Repeat("v", 512<<10)), 200)
	}
	slow := dialSmallWindow(t, ts) // asks for the copy and reads only its status line
	if _, err := slow.Write([]byte("GET /api/v1/sqlite/db/backup?db=app HTTP/1.1\r\nHost: kvd\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Sent, so it holds the one slot until its client has read it all.
	if status, err := bufio.NewReader(slow).ReadString('\n'); err != nil || status != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("the slow backup: %q, %v", status, err)
	}
	r := ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=app", "")
	wantError(t, r, 503, "OVERLOADED")
	if msg := r.JSON(t)["message"]; !contains(msg, "--max-backups") {
		t.Fatalf("message: got %q", msg)
	}
	slow.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r = ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=app", "")
		if r.Status == 200 {
			break
		}
		wantError(t, r, 503, "OVERLOADED")
		if time.Now().After(deadline) {
			t.Fatal("backups still refused 5 s after the slow one's client left")
		}
	}
	if !strings.HasPrefix(string(r.Body), "SQLite format 3\x00") {
		t.Fatalf("the backup served: %d bytes, not a database", len(r.Body))
	}
	// A client that hangs up on its backup is its own business: one that
	// did so in a loop wrote hundreds of warnings a second.
	if lines := logs.withMessage(t, "backup stream interrupted"); len(lines) != 1 || lines[0]["level"] != "DEBUG" {
		t.Fatalf("the slow backup's end in the log: %v, want one line at DEBUG", lines)
	}
}

// A data directory removed under kvd serves no bare name: /readyz says so
// (a load balancer then sends clients elsewhere), and is ready again once
// the directory is back. (It stayed 200.)
func TestReadyz_NotReadyWithoutTheDataDirectory(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	ts.Registry.CloseDB(filepath.Join(ts.DataDir, "app.db"))
	if err := os.RemoveAll(ts.DataDir); err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, "GET", "/readyz", "")
	if r.Status != 503 || !strings.Contains(string(r.Body), "data directory") {
		t.Fatalf("/readyz without the data directory: %d %s", r.Status, r.Body)
	}
	if err := os.Mkdir(ts.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ts.do(t, "GET", "/readyz", ""), 200)
}
