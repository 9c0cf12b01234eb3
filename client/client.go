package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultURL is where kvd listens unless told otherwise.
const DefaultURL = "http://127.0.0.1:8080"

// APIPrefix is where kvd's API lives, under the base URL; /healthz and
// /metrics sit at the root.
const APIPrefix = "/api/v1/sqlite"

// Config configures a Client.
type Config struct {
	// URL of kvd, e.g. http://127.0.0.1:8080 (DefaultURL when empty). A
	// path is kept as a prefix, for a kvd behind a reverse proxy.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// DB and Table are what every call addresses unless an option says
	// otherwise. An empty Table means kvd's default, kv_store.
	DB, Table string
	// HTTPClient sends the requests. Nil means a client of this package's
	// own that keeps up to 32 idle connections to kvd; http.DefaultClient
	// keeps only 2, too few for concurrent callers.
	HTTPClient *http.Client
	// CAFile names a PEM file of the certificates to trust for an https
	// URL, instead of the system's: the CA that signed kvd's certificate,
	// or that certificate itself. It needs an https URL, and the client of
	// this package's own (no HTTPClient; give that one its
	// TLSClientConfig instead, see LoadCertPool).
	CAFile string
	// WatchIdleTimeout is how long a watch stream may stay silent before
	// Watch takes it for dead and reconnects (resuming by Last-Event-ID).
	// kvd sends a comment line at least every 15 s on an idle stream, so
	// silence past that means a stalled connection or proxy. Zero means
	// 45 s; a negative value never gives a stream up.
	WatchIdleTimeout time.Duration
}

// defaultWatchIdleTimeout is three of kvd's 15 s heartbeats.
const defaultWatchIdleTimeout = 45 * time.Second

// Client calls one kvd. It is safe for concurrent use.
type Client struct {
	base  string // scheme://host[/prefix] without a trailing slash
	token string
	db    string
	table string
	http  *http.Client
	// watchIdle: see Config.WatchIdleTimeout; 0 here means never.
	watchIdle time.Duration
}

// New checks the configuration and returns a Client.
func New(cfg Config) (*Client, error) {
	raw := cfg.URL
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("client: parse url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: url %q: want http(s)://host:port", raw)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 64
		tr.MaxIdleConnsPerHost = 32
		hc = &http.Client{Transport: tr, CheckRedirect: sameMethodRedirect}
		if cfg.CAFile != "" {
			if u.Scheme != "https" {
				return nil, fmt.Errorf("client: a CA file is for https, and url %q is not", raw)
			}
			pool, err := LoadCertPool(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("client: %w", err)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		}
	} else if cfg.CAFile != "" {
		return nil, errors.New("client: CAFile and HTTPClient together: set the CA in the HTTPClient's TLSClientConfig")
	}
	idle := cfg.WatchIdleTimeout
	switch {
	case idle == 0:
		idle = defaultWatchIdleTimeout
	case idle < 0:
		idle = 0
	}
	return &Client{
		base:      strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"),
		token:     cfg.Token,
		db:        cfg.DB,
		table:     cfg.Table,
		http:      hc,
		watchIdle: idle,
	}, nil
}

// sameMethodRedirect follows a redirect only when it keeps the method
// (307, 308, or any redirect of GET and HEAD). net/http turns a PUT,
// POST or DELETE answered 301, 302 or 303 into a GET without its body;
// the GET's 200 would then pass for the write's success, though nothing
// was written. The redirect itself is returned instead (an *Error).
func sameMethodRedirect(req *http.Request, via []*http.Request) error {
	if req.Method != via[0].Method {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// Close drops idle connections. The Client stays usable.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// request is one HTTP call: where it goes and what it carries.
type request struct {
	method      string
	path        string // escaped, under the base URL
	call        *call
	body        []byte
	contentType string
}

// send performs r and returns the response when its status is 2xx; any
// other answer is read, closed and returned as *Error. The caller closes
// the body of a successful response with drain.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	target := c.base + r.path
	if q := r.call.query.Encode(); q != "" {
		target += "?" + q
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("kvd: %s %s: %w", r.method, r.path, err)
	}
	for name, values := range r.call.header {
		req.Header[name] = values
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kvd: %w", err) // a *url.Error: it names method and URL
	}
	if resp.Request != nil && resp.Request.Method != r.method {
		// A Config.HTTPClient of the caller's followed a redirect that
		// turned this call into another method (see sameMethodRedirect):
		// its answer says nothing of this call, which was never carried out.
		drain(resp)
		status := http.StatusFound
		if via := resp.Request.Response; via != nil {
			status = via.StatusCode
		}
		return nil, &Error{StatusCode: status, Message: fmt.Sprintf("redirected to %s, which made this %s a %s: not carried out",
			resp.Request.URL.Redacted(), r.method, resp.Request.Method)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer drain(resp)
		return nil, errorFrom(resp)
	}
	return resp, nil
}

// sendJSON performs r and decodes a JSON answer into out (when not nil).
// It returns the response headers, which some endpoints use (ETag).
func (c *Client) sendJSON(ctx context.Context, r request, out any) (http.Header, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if out == nil {
		return resp.Header, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return nil, fmt.Errorf("kvd: %s %s: decode answer: %w", r.method, r.path, err)
	}
	return resp.Header, nil
}

// jsonRequest is a request whose body is in, encoded as JSON. A body
// that cannot be encoded exactly (marshalExact) is the caller's mistake:
// an *ArgumentError.
func jsonRequest(method, path string, cl *call, in any) (request, error) {
	body, err := marshalExact(in)
	if err != nil {
		return request{}, argErrorf(cl.endpoint, "encode request body: %w", err)
	}
	return request{method: method, path: path, call: cl, body: body, contentType: "application/json"}, nil
}

// drain reads what is left of a body before closing it: a connection is
// only reused once its previous response has been read to the end.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
	resp.Body.Close()
}

// unixTime turns kvd's Unix seconds (milliseconds as a fraction) into a time.
func unixTime(seconds float64) time.Time {
	return time.UnixMilli(int64(seconds*1000 + 0.5))
}

// LoadCertPool reads the PEM certificates in file into a pool to trust
// instead of the system's (tls.Config.RootCAs).
func LoadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
