package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kvd/kvd/client/clienttest"
)

// Every scenario against a real kvd (HTTP, actors, SQLite files), closed
// and open loop: each request is answered, only with the statuses the
// scenario allows, and -verify finds every acknowledged write counted once.
func TestRun_EveryScenarioAgainstARealKvd(t *testing.T) {
	kvd := clienttest.New(t, clienttest.Options{})
	const n = 200
	for _, tc := range []struct {
		name    string
		args    []string
		allowed []string // statuses besides 200
		verify  bool
	}{
		{name: "noop", args: []string{"-scenario", "noop"}},
		{name: "get", args: []string{"-scenario", "get", "-keys", "50"}},
		{name: "put", args: []string{"-scenario", "put", "-value-size", "300"}},
		{name: "mixed", args: []string{"-scenario", "mixed", "-keys", "50", "-read-ratio", "0.5"}},
		{name: "batch-set", args: []string{"-scenario", "batch-set", "-keys", "100", "-batch", "20"}},
		{name: "incr-hot", args: []string{"-scenario", "incr-hot"}, verify: true},
		{name: "incr-spread", args: []string{"-scenario", "incr-spread", "-keys", "20"}, verify: true},
		{name: "cas", args: []string{"-scenario", "cas", "-keys", "2"}, allowed: []string{"412"}, verify: true},
		{name: "cas-etag", args: []string{"-scenario", "cas", "-keys", "2", "-etag"}, allowed: []string{"412"}, verify: true},
		{name: "incr-open-loop", args: []string{"-scenario", "incr-spread", "-keys", "5", "-rate", "1000"}, verify: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-url", kvd.URL, "-db", "bench-" + tc.name, "-n", strconv.Itoa(n), "-c", "8", "-json", "-quiet"}, tc.args...)
			if tc.verify {
				args = append(args, "-verify")
			}
			var stdout, stderr bytes.Buffer
			if err := run(t.Context(), args, &stdout, &stderr); err != nil {
				t.Fatalf("run %v: %v\n%s", args, err, stderr.String())
			}
			var res struct {
				Requests int64            `json:"requests"`
				Errors   int64            `json:"errors"`
				Dropped  int64            `json:"dropped"`
				Items    int64            `json:"items"`
				Status   map[string]int64 `json:"status"`
				Verify   *struct {
					OK      bool   `json:"ok"`
					Applied int64  `json:"applied"`
					Message string `json:"message"`
				} `json:"verify"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
			}
			if res.Requests != n || res.Errors != 0 || res.Dropped != 0 {
				t.Fatalf("got %d answered, %d errors, %d dropped; want %d, 0, 0", res.Requests, res.Errors, res.Dropped, n)
			}
			for status, count := range res.Status {
				if status != "200" && !slices.Contains(tc.allowed, status) {
					t.Errorf("got %d answers of %s (statuses %v)", count, status, res.Status)
				}
			}
			if res.Status["200"] == 0 {
				t.Errorf("no 200 at all: %v", res.Status)
			}
			if tc.name == "batch-set" && res.Items != n*20 {
				t.Errorf("got %d items written, want %d", res.Items, n*20)
			}
			if tc.verify && (res.Verify == nil || !res.Verify.OK || res.Verify.Applied != res.Status["200"]) {
				t.Errorf("got verification %+v, want ok with %d applied", res.Verify, res.Status["200"])
			}
			if tc.name != "noop" {
				if _, err := os.Stat(filepath.Join(kvd.DataDir, "bench-"+tc.name+".db")); err != nil {
					t.Errorf("database file: %v", err)
				}
			}
		})
	}
}

// Against a real kvd that wants a token, a run with the wrong one gets a
// 401 for every write: it still reports, then fails as a whole.
func TestRun_AWrongTokenFailsTheRun(t *testing.T) {
	kvd := clienttest.New(t, clienttest.Options{Tokens: []string{"right"}})
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-url", kvd.URL, "-token", "wrong", "-scenario", "put", "-n", "20", "-c", "2", "-json", "-quiet"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no operation succeeded (status 401: 20)") {
		t.Fatalf("got error %v, want one saying no operation succeeded", err)
	}
	var res struct {
		Succeeded int64 `json:"succeeded"`
		Requests  int64 `json:"requests"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.Requests != 20 || res.Succeeded != 0 {
		t.Errorf("report: %+v, %v; want 20 answered, 0 succeeded", res, err)
	}
}
