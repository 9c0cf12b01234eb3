package kvdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority made for one test. The certificates it
// issues name 127.0.0.1, so a client that trusts the CA (its PEM, or
// Pool) verifies a kvd serving one of them on loopback.
type CA struct {
	PEM  []byte // the CA's own certificate, for a client's CA file
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA valid from an hour ago for a day.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kvd test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &CA{PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert: cert, key: key}
}

// Pool holds the CA alone: what a client given its CA file trusts.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// Issue signs a server certificate for 127.0.0.1 with this serial number
// (tests tell certificates apart by it) and returns it with its key, in PEM.
func (ca *CA) Issue(tb testing.TB, serial int64) (certPEM, keyPEM []byte) {
	return ca.IssueValid(tb, serial, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// IssueValid is Issue of a certificate valid from notBefore to notAfter.
func (ca *CA) IssueValid(tb testing.TB, serial int64, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "kvd"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// ServerTLS serves a certificate of this serial: an httpapi.Config.TLS.
func (ca *CA) ServerTLS(tb testing.TB, serial int64) *tls.Config {
	tb.Helper()
	certPEM, keyPEM := ca.Issue(tb, serial)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}
}

// WriteCA writes the CA's certificate into dir and returns its path.
func (ca *CA) WriteCA(tb testing.TB, dir string) string {
	tb.Helper()
	return writeFile(tb, filepath.Join(dir, "ca.pem"), ca.PEM)
}

// WritePair writes a certificate of this serial and its key into dir, as
// cert.pem and key.pem (replacing any there), and returns their paths.
func (ca *CA) WritePair(tb testing.TB, dir string, serial int64) (certFile, keyFile string) {
	tb.Helper()
	certPEM, keyPEM := ca.Issue(tb, serial)
	return writeFile(tb, filepath.Join(dir, "cert.pem"), certPEM), writeFile(tb, filepath.Join(dir, "key.pem"), keyPEM)
}

func writeFile(tb testing.TB, path string, data []byte) string {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}
