package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/kvdtest"
	"github.com/kvd/kvd/sqlitekv"
)

// logLines collects a server's slog JSON lines.
type logLines struct{ kvdtest.LogBuffer }

// withMessage returns the lines whose msg is msg, decoded.
func (l *logLines) withMessage(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m["msg"] == msg {
			lines = append(lines, m)
		}
	}
	return lines
}

// withLog logs the server's lines at level into logs.
func withLog(logs *logLines, level slog.Level) serverOption {
	return func(_ *actors.Config, h *httpapi.Config) {
		h.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	}
}

func sizeOf(tb testing.TB, path string) int64 {
	tb.Helper()
	info, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return info.Size()
}

// TestMetrics_DatabaseFileAndWALSizesByName: each open database's file and
// WAL sizes, taken at scrape time and labelled as its queue depth is.
func TestMetrics_DatabaseFileAndWALSizesByName(t *testing.T) {
	notes := t.TempDir()
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		resolver, err := sqlitekv.NewResolver(a.Resolver.DataDir(), []string{notes}, false)
		if err != nil {
			t.Fatal(err)
		}
		a.Resolver = resolver
	})
	value := strings.Repeat("v", 64<<10)
	for i := range 4 {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprint("k", i), "db=app&create_db_if_missing=true"), value), 200)
	}
	wantStatus(t, ts.do(t, "PUT", kv("k", "db="+url.QueryEscape(notes)+"&table=notes"), "v"), 200) // directory mode

	body := string(ts.do(t, "GET", "/metrics", "").Body)
	for series, path := range map[string]string{
		`kvd_db_file_bytes{db="app.db"}`:      filepath.Join(ts.DataDir, "app.db"),
		`kvd_db_wal_bytes{db="app.db"}`:       filepath.Join(ts.DataDir, "app.db-wal"),
		`kvd_db_file_bytes{db="allow-dir-1"}`: filepath.Join(notes, ".kvd-cache.db"),
		`kvd_db_wal_bytes{db="allow-dir-1"}`:  filepath.Join(notes, ".kvd-cache.db-wal"),
	} {
		if got, want := int64(metricValue(t, body, series)), sizeOf(t, path); got != want {
			t.Errorf("%s: got %d, want %d (the file's size)", series, got, want)
		}
	}
	if got := metricValue(t, body, `kvd_db_wal_bytes{db="app.db"}`); got < 4*64<<10 {
		t.Errorf("app.db's WAL after 256 KiB of uncheckpointed writes: got %v bytes", got)
	}
	if strings.Contains(body, ts.DataDir) || strings.Contains(body, notes) {
		t.Error("metrics show an absolute path")
	}
}

// TestRequestID_SaneClientIDIsEchoedAnyOtherReplaced: a proxy's id follows
// the request; bytes that could forge log lines or headers never do.
func TestRequestID_SaneClientIDIsEchoedAnyOtherReplaced(t *testing.T) {
	ts := newTestServer(t)
	for _, id := range []string{"abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:span.1_x", strings.Repeat("a", 128)} {
		if got := ts.do(t, "GET", "/healthz", "", "X-Request-Id", id).Header.Get("X-Request-Id"); got != id {
			t.Errorf("X-Request-Id %q: got %q back, want it echoed", id, got)
		}
	}
	own := ts.do(t, "GET", "/healthz", "").Header.Get("X-Request-Id")
	if own == "" {
		t.Fatal("no X-Request-Id without one from the client")
	}
	for _, id := range []string{strings.Repeat("a", 129), "two words", `x"y`, "a/b", "é", "a\tb"} {
		got := ts.do(t, "GET", "/healthz", "", "X-Request-Id", id).Header.Get("X-Request-Id")
		if got == id || got == "" || !strings.HasPrefix(got, own[:strings.IndexByte(own, '-')+1]) {
			t.Errorf("X-Request-Id %q: got %q back, want one of kvd's own (like %q)", id, got, own)
		}
	}
}

// TestRequestID_ClientIDInTheLogLineOfA500: the id an operator is given
// by a user finds the server's error line.
func TestRequestID_ClientIDInTheLogLineOfA500(t *testing.T) {
	logs := &logLines{}
	ts := newTestServer(t, withLog(logs, slog.LevelInfo))
	// A real database damaged on disk past its first page.
	broken := filepath.Join(ts.DataDir, "broken.db")
	t.Cleanup(func() { os.Remove(broken) }) // the integrity check is for databases kvd keeps
	store, err := sqlitekv.Open(broken, true, sqlitekv.Options{Sync: sqlitekv.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]sqlitekv.BatchItem, 100)
	for i := range items {
		items[i] = sqlitekv.BatchItem{Key: fmt.Sprintf("k%03d", i), Value: bytes.Repeat([]byte("v"), 200), ContentType: "text/plain"}
	}
	if _, err := store.Writer().BatchSet(sqlitekv.BatchSetRequest{Table: "kv_store", Items: items}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	data, _ := os.ReadFile(broken)
	os.WriteFile(broken, append(data[:4096], bytes.Repeat([]byte{0xAB}, len(data)-4096)...), 0o600)
	r := ts.do(t, "GET", kv("k001", "db=broken"), "", "X-Request-Id", "support-ticket-42")
	if r.Status < 500 {
		t.Fatalf("status: got %d, want a 5xx (body %s)", r.Status, r.Body)
	}
	if got := r.Header.Get("X-Request-Id"); got != "support-ticket-42" {
		t.Fatalf("X-Request-Id: got %q", got)
	}
	lines := logs.withMessage(t, "request failed")
	if len(lines) != 1 || lines[0]["request_id"] != "support-ticket-42" {
		t.Fatalf("error log lines: got %v, want one with request_id support-ticket-42", lines)
	}
}

// TestAccessLog_OneInfoLinePerRequest: with AccessLog each request logs
// one info line naming its route, status and size; without it, none at info.
func TestAccessLog_OneInfoLinePerRequest(t *testing.T) {
	logs := &logLines{}
	ts := newTestServer(t, withLog(logs, slog.LevelInfo), func(_ *actors.Config, h *httpapi.Config) { h.AccessLog = true })
	wantStatus(t, ts.do(t, "PUT", kv("users%2Falice", "db=app&create_db_if_missing=true"), "secret"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("users%2Falice", "db=app&if_match=secret"), "hello"), 200)
	get := ts.do(t, "GET", kv("users%2Falice", "db=app"), "", "X-Request-Id", "req-1")
	wantStatus(t, get, 200)
	wantError(t, ts.do(t, "GET", kv("nobody", "db=app"), ""), 404, "KEY_NOT_FOUND")

	lines := logs.withMessage(t, "request")
	if len(lines) != 4 {
		t.Fatalf("access log: got %d lines, want 4: %v", len(lines), lines)
	}
	want := map[string]any{"level": "INFO", "request_id": "req-1", "method": "GET", "route": "GET /kv/{key}",
		"path": "/api/v1/sqlite/kv/users/alice", "status": float64(200), "bytes": float64(5)}
	for k, v := range want {
		if lines[2][k] != v {
			t.Errorf("access line %s: got %v, want %v (line %v)", k, lines[2][k], v, lines[2])
		}
	}
	if !contains(lines[2]["remote"], "127.0.0.1:") || lines[2]["took"] == nil {
		t.Errorf("access line lacks remote address or duration: %v", lines[2])
	}
	if lines[0]["route"] != "PUT /kv/{key}" || lines[3]["status"] != float64(404) {
		t.Errorf("access lines: got %v", lines)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Error("the access log shows a query (if_match carries a value)")
	}

	quiet := &logLines{}
	ts = newTestServer(t, withLog(quiet, slog.LevelInfo))
	wantStatus(t, ts.do(t, "GET", "/healthz", ""), 200)
	if lines := quiet.withMessage(t, "request"); len(lines) != 0 {
		t.Errorf("without AccessLog: got %d info lines per request, want none", len(lines))
	}
}

// A directory-mode cache with other names (a hard-link copy of the
// folder, cp -al) is logged when kvd opens it: every write changes the
// copy too. (A database file with other names is refused: hardlinks_test.go.)
func TestLog_ACacheWithOtherNamesIsWarnedOf(t *testing.T) {
	var logs logLines
	ts := newTestServer(t, func(a *actors.Config, h *httpapi.Config) {
		l := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		a.Logger, h.Logger = l, l
	})
	folder := filepath.Join(ts.DataDir, "notes")
	os.Mkdir(folder, 0o700)
	q := "db=" + url.QueryEscape(folder) + "&table=t"
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "v"), 200)
	const warning = "database file has other names (hard links): every write changes them too, so such a copy is no backup, and serving two of them at once loses writes; copy it with db/backup instead"
	if lines := logs.withMessage(t, warning); len(lines) != 0 {
		t.Fatalf("a cache with one name: %v", lines)
	}
	if err := os.Link(filepath.Join(folder, ".kvd-cache.db"), filepath.Join(ts.DataDir, "copy-of-the-cache")); err != nil {
		t.Fatal(err)
	}
	ts.Registry.CloseDB(folder)
	wantStatus(t, ts.do(t, "GET", kv("k", q), ""), 200)
	if lines := logs.withMessage(t, warning); len(lines) != 1 || lines[0]["links"] != 2.0 {
		t.Fatalf("a cache with two names: %v, want one warning counting 2 links", lines)
	}
	os.Remove(filepath.Join(ts.DataDir, "copy-of-the-cache"))
}
