package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/kvdtest"
)

// netDialer bounds every test handshake.
var netDialer = net.Dialer{Timeout: 5 * time.Second}

// servedSerial opens a new TLS connection to addr, trusting pool, and
// returns the serial number of the certificate kvd served.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool) int64 {
	t.Helper()
	conn, err := tls.DialWithDialer(&netDialer, "tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS handshake with kvd: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// kvd with --tls-cert and --tls-key speaks HTTPS only, with TLS 1.2 at
// least: the Go client given the CA reads and writes; plain HTTP, a client
// that does not know the CA, and a TLS 1.1 client all fail.
func TestKvd_ServesHTTPSWithItsCertificate(t *testing.T) {
	// Go's servers accept TLS 1.0 and 1.1 again under this setting: only
	// kvd's own floor can refuse them.
	t.Setenv("GODEBUG", "tls10server=1")
	ca := kvdtest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WritePair(t, dir, 1)
	d := startDaemon(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	addr, ok := strings.CutPrefix(d.url, "https://")
	if !ok {
		t.Fatalf("kvd printed %q, want an https:// URL", d.url)
	}
	c, err := client.New(client.Config{URL: d.url, DB: "app", CAFile: ca.WriteCA(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(t.Context(), "k", client.Text("secret"), client.CreateIfMissing()); err != nil {
		t.Fatalf("PUT over https: %v", err)
	}
	if e, err := c.Get(t.Context(), "k"); err != nil || e.String() != "secret" {
		t.Fatalf("GET over https: got %v, %v; want secret", e, err)
	}

	res, err := http.Get("http://" + addr + "/api/v1/sqlite/kv/k?db=app")
	if err != nil {
		t.Fatalf("plain HTTP to the TLS port: %v, want a 400", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), "https://") {
		t.Errorf("plain HTTP to the TLS port: got %d %s, want 400 naming https://", res.StatusCode, body)
	}

	untrusting, err := client.New(client.Config{URL: d.url, DB: "app"})
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := untrusting.Get(t.Context(), "k"); !errors.As(err, &unknown) {
		t.Errorf("GET without the CA: got %v, want an unknown authority error", err)
	}

	for version, wantOK := range map[uint16]bool{tls.VersionTLS10: false, tls.VersionTLS11: false, tls.VersionTLS12: true, tls.VersionTLS13: true} {
		conn, err := tls.DialWithDialer(&netDialer, "tcp", addr, &tls.Config{RootCAs: ca.Pool(), MinVersion: version, MaxVersion: version})
		if err == nil {
			conn.Close()
		}
		if (err == nil) != wantOK {
			t.Errorf("a client speaking only %s: handshake error %v, want success %v", tls.VersionName(version), err, wantOK)
		}
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
}

// SIGHUP rereads the certificate files: new connections get the new
// certificate while one already open keeps working. A pair that does not
// match is refused and the one served stays.
func TestKvd_SIGHUPServesTheReplacedCertificate(t *testing.T) {
	ca := kvdtest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WritePair(t, dir, 1)
	d := startDaemon(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	addr := strings.TrimPrefix(d.url, "https://")
	if got := servedSerial(t, addr, ca.Pool()); got != 1 {
		t.Fatalf("served certificate before SIGHUP: serial %d, want 1", got)
	}
	c, err := client.New(client.Config{URL: d.url, DB: "app", CAFile: ca.WriteCA(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(t.Context(), "k", client.Text("v1"), client.CreateIfMissing()); err != nil {
		t.Fatal(err)
	}

	ca.WritePair(t, dir, 2)
	d.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); servedSerial(t, addr, ca.Pool()) != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial 1 5s after SIGHUP\n%s", d.logs)
		}
	}
	if _, err := c.Put(t.Context(), "k", client.Text("v2")); err != nil {
		t.Fatalf("PUT after the reload: %v", err)
	}

	cert3, _ := ca.Issue(t, 3)
	_, key4 := ca.Issue(t, 4)
	os.WriteFile(certFile, cert3, 0o600)
	os.WriteFile(keyFile, key4, 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(d.logs.String(), "keeping the previous one"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no sign of the mismatched pair being refused\n%s", d.logs)
		}
	}
	if got := servedSerial(t, addr, ca.Pool()); got != 2 {
		t.Fatalf("served certificate after a refused reload: serial %d, want 2 kept", got)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
}

// A TLS setting kvd cannot serve stops it at start with a message that
// says why, rather than serving plain HTTP or nothing.
func TestKvd_BadTLSSettingsStopItAtStart(t *testing.T) {
	ca := kvdtest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WritePair(t, dir, 1)
	_, otherKey := ca.Issue(t, 2)
	wrongKey := filepath.Join(dir, "other.pem")
	os.WriteFile(wrongKey, otherKey, 0o600)
	timed := func(name string, from, to time.Time) string {
		cert, key := ca.IssueValid(t, 3, from, to)
		os.WriteFile(filepath.Join(dir, name+"-key.pem"), key, 0o600)
		os.WriteFile(filepath.Join(dir, name+".pem"), cert, 0o600)
		return filepath.Join(dir, name)
	}
	expired := timed("expired", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	early := timed("early", time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
	for name, tc := range map[string]struct {
		args []string
		code int // 2: a mistake in the flags; 1: files that do not serve
		want string
	}{
		"cert alone":      {[]string{"--tls-cert", certFile}, 2, "--tls-cert and --tls-key go together"},
		"key alone":       {[]string{"--tls-key", keyFile}, 2, "--tls-cert and --tls-key go together"},
		"key of another":  {[]string{"--tls-cert", certFile, "--tls-key", wrongKey}, 1, "load TLS certificate"},
		"no such file":    {[]string{"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", keyFile}, 1, "load TLS certificate"},
		"key as the cert": {[]string{"--tls-cert", keyFile, "--tls-key", keyFile}, 1, "load TLS certificate"},
		"expired":         {[]string{"--tls-cert", expired + ".pem", "--tls-key", expired + "-key.pem"}, 1, "expired at"},
		"not yet valid":   {[]string{"--tls-cert", early + ".pem", "--tls-key", early + "-key.pem"}, 1, "not valid before"},
	} {
		cmd := exec.Command(kvdBinary, append([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); err == nil || code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: exit %d, output %q; want exit %d saying %q", name, code, out, tc.code, tc.want)
		}
	}
	cfg, err := parseConfig(nil, []string{"KVD_TLS_CERT=" + certFile, "KVD_TLS_KEY=" + keyFile}, io.Discard)
	if err != nil || cfg.tlsCert != certFile || cfg.tlsKey != keyFile {
		t.Errorf("KVD_TLS_CERT and KVD_TLS_KEY: got %q, %q, %v", cfg.tlsCert, cfg.tlsKey, err)
	}
}

// Tokens in plain text are warned about only where they could leave the
// machine: any address but loopback.
func TestIsLoopback_OnlyLoopbackAddressesAreSpared(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "127.0.0.2:1": true, "[::1]:8080": true, "0.0.0.0:8080": false, "[::]:8080": false, "10.1.2.3:8080": false} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := isLoopback(tcp); got != want {
			t.Errorf("isLoopback(%s): got %v, want %v", addr, got, want)
		}
	}
}
