package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection, used by one request at a
// time. kvbench writes requests and reads answers itself instead of going
// through net/http's Transport, whose bookkeeping per request (a hand-off
// between goroutines, header maps, body wrappers) cost as much CPU as kvd
// spent answering /healthz. Client and server share the machine, so every
// microsecond the client spends is taken from the server it measures.
type conn struct {
	nc     net.Conn
	br     *bufio.Reader
	req    []byte // the request being written; reused
	reused bool   // answered a request before, so the server may have closed it meanwhile
}

// answer is what kvbench needs of a response.
type answer struct {
	status int
	etag   string
	close  bool // the server will not take another request on this connection
}

// errMalformed reports an answer that is not HTTP/1.x.
var errMalformed = errors.New("malformed HTTP response")

func dial(ctx context.Context, addr string, tlsConfig *tls.Config) (*conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		nc.SetDeadline(time.Now().Add(d.Timeout)) // exchange sets the request's own
		tc := tls.Client(nc, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}, nil
}

// roundTrip sends one request and reads its whole answer, the body into
// buf (or nowhere when buf is nil). head holds the header lines every
// request carries, extra those of this one; both end in CRLF.
func (k *conn) roundTrip(method, target, head, extra string, body []byte, buf *bytes.Buffer) (answer, error) {
	r := append(k.req[:0], method...)
	r = append(r, ' ')
	r = append(r, target...)
	r = append(r, " HTTP/1.1\r\n"...)
	r = append(r, head...)
	r = append(r, extra...)
	if body != nil || method != "GET" && method != "HEAD" {
		r = append(r, "Content-Length: "...)
		r = strconv.AppendInt(r, int64(len(body)), 10)
		r = append(r, "\r\n"...)
	}
	r = append(r, "\r\n"...)
	r = append(r, body...)
	k.req = r
	if _, err := k.nc.Write(r); err != nil {
		return answer{}, err
	}
	return k.readAnswer(method == "HEAD", buf)
}

// readAnswer reads a status line, headers and body. Interim 1xx answers
// are skipped; a body is framed by Content-Length, by chunks, or by the
// server closing the connection.
func (k *conn) readAnswer(noBody bool, buf *bytes.Buffer) (answer, error) {
	if buf != nil {
		buf.Reset()
	}
	for {
		a, length, chunked, err := k.readHead()
		if err != nil {
			return a, err
		}
		if a.status/100 == 1 {
			continue
		}
		if noBody || a.status == 204 || a.status == 304 {
			return a, nil
		}
		var dst io.Writer = io.Discard
		if buf != nil {
			dst = buf
		}
		switch {
		case chunked:
			if _, err := io.Copy(dst, httputil.NewChunkedReader(k.br)); err != nil {
				return a, err
			}
			err = k.skipTrailers()
		case length >= 0 && buf == nil:
			_, err = k.br.Discard(int(length))
		case length >= 0:
			_, err = io.CopyN(dst, k.br, length)
		default:
			a.close = true
			_, err = io.Copy(dst, k.br)
		}
		return a, err
	}
}

// readHead reads the status line and the headers kvbench looks at.
func (k *conn) readHead() (a answer, length int64, chunked bool, err error) {
	line, err := k.br.ReadSlice('\n')
	if err != nil {
		return a, 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[12] != ' ' && line[12] != '\r' && line[12] != '\n' {
		return a, 0, false, fmt.Errorf("%w: status line %q", errMalformed, truncate(string(line), 40))
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return a, 0, false, fmt.Errorf("%w: status line %q", errMalformed, truncate(string(line), 40))
		}
		a.status = a.status*10 + int(d-'0')
	}
	if a.status < 100 {
		return a, 0, false, fmt.Errorf("%w: status line %q", errMalformed, truncate(string(line), 40))
	}
	a.close = line[7] == '0' // HTTP/1.0 closes unless told otherwise; kvd speaks 1.1
	length = -1
	for {
		line, err := k.br.ReadSlice('\n')
		if err != nil {
			return a, 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return a, length, chunked, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return a, 0, false, fmt.Errorf("%w: header %q", errMalformed, truncate(string(line), 40))
		}
		value = bytes.TrimSpace(value)
		switch {
		case headerIs(name, "Content-Length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return a, 0, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case headerIs(name, "Transfer-Encoding"):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case headerIs(name, "Connection"):
			a.close = bytes.EqualFold(value, []byte("close"))
		case headerIs(name, "ETag"):
			a.etag = string(value)
		}
	}
}

// skipTrailers reads the header lines that may follow the last chunk.
func (k *conn) skipTrailers() error {
	for {
		line, err := k.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}

func headerIs(name []byte, want string) bool {
	return len(name) == len(want) && bytes.EqualFold(name, []byte(want))
}
