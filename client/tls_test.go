package client_test

import (
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/client/clienttest"
	"github.com/kvd/kvd/internal/kvdtest"
)

// With CAFile, a client talks to a kvd serving HTTPS with a certificate
// that CA signed; without it, the system's roots do not know that CA.
func TestCAFile_TrustsKvdsCertificateOverHTTPS(t *testing.T) {
	ca := kvdtest.NewCA(t)
	srv := clienttest.New(t, clienttest.Options{TLS: ca.ServerTLS(t, 1)})
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("URL: got %s, want https://", srv.URL)
	}
	c, err := client.New(client.Config{URL: srv.URL, DB: "app", CAFile: ca.WriteCA(t, t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(t.Context(), "k", client.Text("over tls"), client.CreateIfMissing()); err != nil {
		t.Fatalf("Put over https: %v", err)
	}
	if e, err := c.Get(t.Context(), "k"); err != nil || e.String() != "over tls" {
		t.Fatalf("Get over https: got %v, %v; want over tls", e, err)
	}

	untrusting, err := client.New(client.Config{URL: srv.URL, DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := untrusting.Get(t.Context(), "k"); !errors.As(err, &unknown) {
		t.Fatalf("Get without the CA: got %v, want an unknown authority error", err)
	}
}

func TestCAFile_MistakesAreRefusedAtNew(t *testing.T) {
	dir := t.TempDir()
	ca := kvdtest.NewCA(t).WriteCA(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for name, cfg := range map[string]client.Config{
		"an http URL":       {URL: "http://127.0.0.1:1", CAFile: ca},
		"no file":           {URL: "https://127.0.0.1:1", CAFile: filepath.Join(dir, "missing.pem")},
		"no certificate":    {URL: "https://127.0.0.1:1", CAFile: notPEM},
		"an HTTPClient too": {URL: "https://127.0.0.1:1", CAFile: ca, HTTPClient: &http.Client{}},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}
