package httpapi

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// TLS is applied to each connection inside the connection cap and beneath
// the framing guard: the cap counts sockets and may close one before a
// byte is decrypted, while the guard must read the plaintext requests.
// net/http therefore never sees a *tls.Conn; it serves HTTP/1.1 only
// (ALPN offers nothing else), which is all the guard follows.

// Certificate is kvd's certificate and key, read from PEM files. Reload
// rereads them and swaps the pair atomically: handshakes after it are
// served the new pair, while open connections keep the one they began
// with.
type Certificate struct {
	certFile, keyFile string
	pair              atomic.Pointer[tls.Certificate]
}

// LoadCertificate reads the pair; a key that does not match the
// certificate, or a certificate already expired, is an error.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	return c, c.Reload()
}

// Reload rereads the files; on error the previous pair stays in use.
func (c *Certificate) Reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("read %s and %s: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("parse %s: %w", c.certFile, err)
		}
	}
	if now := time.Now(); now.After(pair.Leaf.NotAfter) {
		return fmt.Errorf("certificate %s expired at %s", c.certFile, pair.Leaf.NotAfter.Format(time.RFC3339))
	} else if now.Before(pair.Leaf.NotBefore) { // clients would refuse it until then
		return fmt.Errorf("certificate %s is not valid before %s", c.certFile, pair.Leaf.NotBefore.Format(time.RFC3339))
	}
	c.pair.Store(&pair)
	return nil
}

// Leaf is the certificate served now, for logs.
func (c *Certificate) Leaf() *x509.Certificate { return c.pair.Load().Leaf }

// TLSConfig serves whatever pair is current at each handshake; it is what
// Config.TLS takes.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.pair.Load(), nil }}
}

// serverTLS is the configuration kvd serves with: at least TLS 1.2, and
// HTTP/1.1 as the only protocol offered.
func serverTLS(given *tls.Config) *tls.Config {
	if given == nil {
		return nil
	}
	c := given.Clone()
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	c.NextProtos = []string{"http/1.1"}
	return c
}

// maxTLSRefusals bounds the refusals at the cap being written at once: each
// needs a handshake, so it runs beside the accept loop and holds its socket
// meanwhile. Past it a newcomer is closed without a word. It stays well
// inside the files cmd/kvd keeps spare beyond the cap.
const maxTLSRefusals = 16

// tlsRefusalTime bounds the handshake and the 503 of one refusal.
const tlsRefusalTime = time.Second

// refuseTLS writes the 503 of a full cap through a handshake, beside the
// accept loop; a plain one would be garbage to a TLS client.
func (l *connLimiter) refuseTLS(c net.Conn) {
	select {
	case l.refusing <- struct{}{}:
		go func() {
			defer func() { <-l.refusing }()
			c.SetDeadline(time.Now().Add(tlsRefusalTime))
			c.Write(l.refusal())
			c.Close()
		}()
	default:
		c.Close()
	}
}

// plainToTLS is the body of the answer to plain HTTP sent to the TLS
// port, in plain text since that is what the client reads.
var plainToTLS, _ = json.Marshal(errorBody{StatusCode: http.StatusBadRequest, Error: http.StatusText(http.StatusBadRequest),
	Code: sqlitekv.CodeInvalidParameters, Message: "This port serves HTTPS: use an https:// URL"})

// answerPlainHTTP tells a client that spoke plain HTTP to the TLS port
// what went wrong, as Go's own HTTPS server does, instead of a bare close;
// with a request id of kvd's, as every answer has. err is what reading the
// connection returned.
func answerPlainHTTP(err error, newID func() string) {
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) || rh.Conn == nil || !looksLikeHTTP(rh.RecordHeader) {
		return
	}
	rh.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	rh.Conn.Write(fmt.Appendf(nil, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nX-Request-Id: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		newID(), len(plainToTLS), plainToTLS))
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}
