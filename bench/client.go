package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kvd/kvd/client"
)

// Client speaks kvd's HTTP API with the least work per request: request
// targets are built once per key and shared by every worker, and each
// request is written and its answer read on a keep-alive connection of its
// own (conn) taken from a pool.
type Client struct {
	addr      string      // host:port to dial
	tlsConfig *tls.Config // nil for http
	base      string      // path prefix of the kvd URL, usually empty
	head      string      // header lines every request carries
	db, table string
	timeout   time.Duration
	idle      chan *conn
}

// NewClient returns a client for the kvd at rawURL that keeps up to conns
// connections alive. timeout bounds a request from sending to the end of
// its answer.
func NewClient(rawURL, db, table, token string, conns int, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("url %q: want http(s)://host:port", rawURL)
	}
	c := &Client{
		addr:    u.Host,
		base:    u.EscapedPath(),
		head:    "Host: " + u.Host + "\r\nUser-Agent: kvbench\r\n",
		db:      db,
		table:   table,
		timeout: timeout,
		// Every worker holds one connection; a few more for preloading.
		idle: make(chan *conn, conns+16),
	}
	if u.Port() == "" {
		c.addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if u.Scheme == "https" {
		c.tlsConfig = &tls.Config{ServerName: u.Hostname()}
	}
	if token != "" {
		if strings.ContainsAny(token, "\r\n") {
			return nil, errors.New("token: a line break cannot be sent in a header")
		}
		c.head += "Authorization: Bearer " + token + "\r\n"
	}
	return c, nil
}

// trustCAFile verifies kvd's certificate against the PEM certificates in
// file instead of the system's roots.
func (c *Client) trustCAFile(file string) error {
	if c.tlsConfig == nil {
		return errors.New("a CA file is for an https URL, and this one is http")
	}
	pool, err := client.LoadCertPool(file)
	if err != nil {
		return err
	}
	c.tlsConfig.RootCAs = pool
	return nil
}

// Close drops the idle connections.
func (c *Client) Close() {
	for {
		select {
		case k := <-c.idle:
			k.nc.Close()
		default:
			return
		}
	}
}

// url builds a request target (path and query) once, at set-up time, so the
// hot path never does.
func (c *Client) url(path string, q url.Values) string {
	s := c.base + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
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
func (c *Client) keyURL(key, op string, q url.Values) string {
	p := client.APIPrefix + "/kv/" + client.EscapeKey(key)
	if op != "" {
		p += "/" + op
	}
	return c.url(p, q)
}

// withQuery returns target with extra appended to its query: for CAS, whose
// if_match differs on every request.
func withQuery(target, extra string) string {
	return target + "&" + extra
}

// do sends one request and fully reads the answer: into buf when buf is not
// nil, else nowhere. extra holds header lines of this request alone, each
// ending in CRLF.
//
// A request that fails on a connection that had been idle is sent again on
// a new one only if it is a GET: the server may have closed the connection
// before reading it, but a write may also have been applied, and sending
// it twice would count an incr or a CAS twice.
func (c *Client) do(ctx context.Context, method, target string, body []byte, extra string, buf *bytes.Buffer) (answer, error) {
	for {
		if err := ctx.Err(); err != nil {
			return answer{}, err
		}
		k, err := c.conn(ctx)
		if err != nil {
			return answer{}, err
		}
		a, err := c.exchange(ctx, k, method, target, body, extra, buf)
		switch {
		case err == nil && !a.close:
			c.release(k)
			return a, nil
		case err == nil:
			k.nc.Close()
			return a, nil
		}
		k.nc.Close()
		if !k.reused || method != "GET" || ctx.Err() != nil || isTimeout(err) {
			return answer{}, err
		}
	}
}

// conn takes an idle connection or dials a new one.
func (c *Client) conn(ctx context.Context) (*conn, error) {
	select {
	case k := <-c.idle:
		return k, nil
	default:
		return dial(ctx, c.addr, c.tlsConfig)
	}
}

// release keeps k for the next request, unless the pool is full.
func (c *Client) release(k *conn) {
	select {
	case c.idle <- k:
	default:
		k.nc.Close()
	}
}

// exchange is one round trip on k within the client's timeout. A canceled
// ctx ends it at once (its error then is ctx's); the load's requests carry a
// ctx that is never canceled, and pay nothing for this.
func (c *Client) exchange(ctx context.Context, k *conn, method, target string, body []byte, extra string, buf *bytes.Buffer) (a answer, err error) {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := k.nc.SetDeadline(deadline); err != nil {
		return answer{}, err
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { k.nc.SetDeadline(time.Unix(1, 0)) })
		defer func() {
			if !stop() {
				a.close = true // the cancel has run, or is running: its deadline must not meet the next request
			}
		}()
	}
	a, err = k.roundTrip(method, target, c.head, extra, body, buf)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil {
		k.reused = true
	}
	return a, err
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// readInts reads keys with batch/get at target and parses each value as
// an integer; a missing key (or database) reads as 0.
func (c *Client) readInts(ctx context.Context, target string, keys []string) ([]int64, error) {
	body, err := json.Marshal(map[string][]string{"keys": keys})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	a, err := c.do(ctx, http.MethodPost, target, body, "Content-Type: application/json\r\n", &buf)
	if err != nil {
		return nil, err
	}
	values := make([]int64, len(keys))
	switch a.status {
	case http.StatusOK:
	case http.StatusNotFound:
		return values, nil // no database yet
	default:
		return nil, fmt.Errorf("POST %s: %s", pathOf(target), describe(a, buf.Bytes()))
	}
	var got struct {
		Values map[string]*struct{ Value json.RawMessage }
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		return nil, fmt.Errorf("POST %s: %w", pathOf(target), err)
	}
	for i, k := range keys {
		v := got.Values[k]
		if v == nil {
			continue
		}
		text := string(v.Value)
		if s, err := strconv.Unquote(text); err == nil {
			text = s // a counter written by incr, or a text body, reads as a JSON string
		}
		if values[i], err = strconv.ParseInt(text, 10, 64); err != nil {
			return nil, fmt.Errorf("%s holds %s, not an integer", k, truncate(string(v.Value), 40))
		}
	}
	return values, nil
}

// expectOK sends a set-up request that must succeed.
func (c *Client) expectOK(ctx context.Context, method, target string, body []byte) error {
	var buf bytes.Buffer
	a, err := c.do(ctx, method, target, body, "", &buf)
	if err != nil {
		return err
	}
	if a.status != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, pathOf(target), describe(a, buf.Bytes()))
	}
	return nil
}

// describe turns an error answer into "412 CAS_MISMATCH: message".
func describe(a answer, body []byte) string {
	return strconv.Itoa(a.status) + " " + truncate(strings.TrimSpace(string(body)), 200)
}

// pathOf is a request target without its query, for messages.
func pathOf(target string) string {
	path, _, _ := strings.Cut(target, "?")
	return path
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
