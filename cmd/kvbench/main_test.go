package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// healthz answers only /healthz: enough for the noop scenario. The
// scenarios themselves are tested in package bench against a fuller fake.
func healthz(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRun_NoopAsJSONWithPlot(t *testing.T) {
	out := filepath.Join(t.TempDir(), "noop.svg")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-url", healthz(t), "-scenario", "noop", "-n", "100", "-c", "2",
		"-fresh", "-json", "-out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var res struct {
		Scenario string           `json:"scenario"`
		DB       string           `json:"db"`
		Requests int64            `json:"requests"`
		Status   map[string]int64 `json:"status"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
	}
	if res.Scenario != "noop" || res.Requests != 100 || res.Status["200"] != 100 {
		t.Errorf("got %+v, want 100 noop answers of 200", res)
	}
	if !strings.HasPrefix(res.DB, "bench-") {
		t.Errorf("got db %q, want bench-<timestamp> with -fresh", res.DB)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("plot not written: %v", err)
	}
}

func TestRun_TableByDefault(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"-url", healthz(t), "-scenario", "noop", "-n", "20", "-quiet"}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(stdout.String(), "throughput") || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want a table and a quiet stderr", stdout.String(), stderr.String())
	}
}

func TestRun_RejectsBadInvocations(t *testing.T) {
	u := healthz(t)
	for _, args := range [][]string{
		{"-bogus"},
		{"-url", u, "extra"},
		{"-url", u, "-scenario", "nope", "-n", "1"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-verify"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-out", "plot.gif"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-c", "-5"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-keys", "0"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-value-size", "-4"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-batch", "0"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-dbs", "0"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-dbs", "-3"},
		{"-url", u, "-scenario", "noop", "-n", "1", "-timeout", "-1s"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), args, &stdout, &stderr); exitCode(err) != 2 {
			t.Errorf("%v: got %v (exit %d), want a usage error (exit 2)", args, err, exitCode(err))
		}
	}
}

// A run that failed as a whole still writes its report, then exits
// non-zero, so a script notices a wrong token or a kvd that went away.
func TestRun_FailsAfterItsReportWhenTheRunFailed(t *testing.T) {
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"code":"UNAUTHORIZED"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(unauthorized.Close)
	hangsUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(hangsUp.Close)
	for _, tc := range []struct {
		url, want string
	}{
		{unauthorized.URL, "no operation succeeded (status 401: 20)"},
		{hangsUp.URL, "20 operations got no answer"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"-url", tc.url, "-scenario", "noop", "-n", "20", "-c", "2", "-quiet"}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 1 {
			t.Errorf("%s: got error %v (exit %d), want one saying %q (exit 1)", tc.url, err, exitCode(err), tc.want)
		}
		if !strings.Contains(stdout.String(), "throughput") {
			t.Errorf("%s: got stdout %q, want the report first", tc.url, stdout.String())
		}
	}
}

func TestRun_VersionPrintsBuildAndRunsNothing(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// No kvd at this URL: --version must answer without a run.
	if err := run(t.Context(), []string{"-url", "http://127.0.0.1:1", "-version"}, &stdout, &stderr); err != nil {
		t.Fatalf("run -version: %v", err)
	}
	if got := stdout.String(); !strings.HasPrefix(got, "kvbench ") || !strings.Contains(got, runtime.Version()) {
		t.Fatalf("got %q, want kvbench's name and Go version", got)
	}
}
