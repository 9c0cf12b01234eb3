package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kvd/kvd/client"
)

// apiPrefix is where the KV API lives; /healthz sits at the root.
const apiPrefix = "/api/v1/sqlite"

// Client speaks kvd's HTTP API with the least work per request: URLs are
// parsed once per key and shared by every worker, requests go straight to the
// Transport (no redirects, cookies or per-request timers), and bodies are
// drained so each connection is kept alive.
type Client struct {
	base   *url.URL
	db     string
	table  string
	tr     *http.Transport
	header http.Header // read-only after construction; shared by all requests
}

// NewClient returns a client for the kvd at rawURL that keeps up to conns
// connections alive. timeout bounds the wait for response headers.
func NewClient(rawURL, db, table, token string, conns int, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("url %q: want http://host:port", rawURL)
	}
	tr := &http.Transport{
		Proxy:       nil, // load goes straight to the target, never through a proxy
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// Every worker holds one connection; a few more for preloading.
		MaxIdleConns:          conns + 16,
		MaxIdleConnsPerHost:   conns + 16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
	}
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return &Client{base: u, db: db, table: table, tr: tr, header: h}, nil
}

// Close drops the idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// url builds and parses a URL once, at set-up time, so the hot path never does.
func (c *Client) url(path string, q url.Values) *url.URL {
	s := c.base.String() + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	u, err := url.Parse(s)
	if err != nil {
		panic("bench: bad url " + s) // keys are escaped, so this is a bug here
	}
	return u
}

// query holds db and table, plus create_db_if_missing for writes.
func (c *Client) query(write bool) url.Values {
	q := url.Values{"db": {c.db}}
	if c.table != "" {
		q.Set("table", c.table)
	}
	if write {
		q.Set("create_db_if_missing", "true")
	}
	return q
}

// keyURL is /kv/{key}[/op]: the key escaped as package client escapes it
// (encodeURIComponent), so that its slashes are never taken for an
// operation.
func (c *Client) keyURL(key, op string, q url.Values) *url.URL {
	p := apiPrefix + "/kv/" + client.EscapeKey(key)
	if op != "" {
		p += "/" + op
	}
	return c.url(p, q)
}

// withQuery returns u with extra appended to its query: for CAS, whose
// if_match differs on every request.
func withQuery(u *url.URL, extra string) *url.URL {
	v := *u
	v.RawQuery = u.RawQuery + "&" + extra
	return &v
}

// do sends one request and fully reads the answer: into buf when buf is not
// nil, else to io.Discard. The returned response's body is already closed;
// its status and headers stay readable.
func (c *Client) do(ctx context.Context, method string, u *url.URL, body []byte, h http.Header, buf *bytes.Buffer) (*http.Response, error) {
	if h == nil {
		h = c.header
	}
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	if body != nil {
		// No GetBody on purpose: the Transport then replays a write only when
		// nothing of it was sent, so an incr or CAS is never applied twice.
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	resp, err := c.tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if buf != nil {
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	return resp, err
}

// authHeader returns a fresh header holding the token, for requests that add
// headers of their own.
func (c *Client) authHeader() http.Header {
	return c.header.Clone()
}

// readInt GETs key and parses its value as an integer; a missing key or
// database reads as 0, as incr would start it.
func (c *Client) readInt(ctx context.Context, u *url.URL) (int64, error) {
	var buf bytes.Buffer
	resp, err := c.do(ctx, http.MethodGet, u, nil, nil, &buf)
	if err != nil {
		return 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		n, err := strconv.ParseInt(strings.TrimSpace(buf.String()), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("GET %s: value %q is not an integer", u.EscapedPath(), truncate(buf.String(), 40))
		}
		return n, nil
	case http.StatusNotFound:
		return 0, nil
	default:
		return 0, fmt.Errorf("GET %s: %s", u.EscapedPath(), describe(resp, buf.Bytes()))
	}
}

// expectOK sends a set-up request that must succeed.
func (c *Client) expectOK(ctx context.Context, method string, u *url.URL, body []byte) error {
	var buf bytes.Buffer
	resp, err := c.do(ctx, method, u, body, nil, &buf)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, u.EscapedPath(), describe(resp, buf.Bytes()))
	}
	return nil
}

// describe turns an error answer into "412 CAS_MISMATCH: message".
func describe(resp *http.Response, body []byte) string {
	return strconv.Itoa(resp.StatusCode) + " " + truncate(strings.TrimSpace(string(body)), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
