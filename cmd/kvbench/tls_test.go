package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kvd/kvd/client/clienttest"
	"github.com/kvd/kvd/internal/kvdtest"
)

// Against a kvd serving HTTPS with a certificate from the test's own CA,
// kvbench given -ca-file runs its load with every request answered; without
// it, no request gets through the handshake and the run fails.
func TestRun_HTTPSWithTheCAFile(t *testing.T) {
	ca := kvdtest.NewCA(t)
	kvd := clienttest.New(t, clienttest.Options{TLS: ca.ServerTLS(t, 1)})
	caFile := ca.WriteCA(t, t.TempDir())
	const n = 200
	for _, scenario := range []string{"put", "get"} {
		var stdout, stderr bytes.Buffer
		args := []string{"-url", kvd.URL, "-ca-file", caFile, "-scenario", scenario, "-keys", "20", "-n", "200", "-c", "4", "-json", "-quiet"}
		if err := run(t.Context(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%s over https: %v\n%s", scenario, err, stderr.String())
		}
		var res struct {
			Requests, Errors int64
			Status           map[string]int64
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
		}
		if res.Requests != n || res.Errors != 0 || res.Status["200"] != n {
			t.Fatalf("%s over https: got %d answered, %d errors, statuses %v; want %d, all 200", scenario, res.Requests, res.Errors, res.Status, n)
		}
	}

	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-url", kvd.URL, "-scenario", "put", "-n", "20", "-c", "2", "-json", "-quiet"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error()+stdout.String(), "certificate") {
		t.Fatalf("without -ca-file: got %v\n%s; want a failed run naming the certificate", err, stdout.String())
	}
	err = run(t.Context(), []string{"-url", strings.Replace(kvd.URL, "https:", "http:", 1), "-ca-file", caFile, "-n", "1", "-quiet"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("-ca-file with an http URL: got %v, want an error about https", err)
	}
}
