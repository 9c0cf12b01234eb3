package main

import (
	"strings"
	"testing"

	"github.com/kvd/kvd/client/clienttest"
	"github.com/kvd/kvd/internal/kvdtest"
)

// Against a kvd serving HTTPS with a certificate from a CA of the test's
// own, kvctl works given that CA (--ca-file or KVCTL_CA_FILE) and fails
// without it, naming the certificate.
func TestCAFile_KvctlTalksToAnHTTPSKvd(t *testing.T) {
	ca := kvdtest.NewCA(t)
	srv := clienttest.New(t, clienttest.Options{TLS: ca.ServerTLS(t, 1)})
	caFile := ca.WriteCA(t, t.TempDir())
	k := &kvd{t: t, url: srv.URL, db: "app"}
	k.must("", "--ca-file", caFile, "put", "--create", "k", "over tls")
	if got := k.must("", "get", "k", "--ca-file", caFile); got != "over tls" {
		t.Errorf("get with --ca-file: got %q, want over tls", got)
	}
	if r := k.run("", "get", "k"); r.code != exitFailure || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("without the CA: got %+v, want exit 3 naming the certificate", r)
	}
	getenv := envOf(map[string]string{"KVCTL_URL": srv.URL, "KVCTL_DB": "app", "KVCTL_CA_FILE": caFile})
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"get", "k"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK || stdout.String() != "over tls" {
		t.Errorf("KVCTL_CA_FILE: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if r := (&kvd{t: t, url: strings.Replace(srv.URL, "https:", "http:", 1), db: "app"}).run("", "--ca-file", caFile, "get", "k"); r.code != exitUsage || !strings.Contains(r.stderr, "https") {
		t.Errorf("--ca-file with an http URL: got %+v, want exit 2 about https", r)
	}
}
