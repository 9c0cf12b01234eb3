package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Get reads a key: its stored bytes, content type and metadata. Options:
// DB, Table, Path (a JSON fragment), At (time travel), Rebuild.
func (c *Client) Get(ctx context.Context, key string, opts ...Option) (*Entry, error) {
	cl, path, err := c.newKeyCall("Get", key, "", opts, "DB", "Table", "Path", "At", "Rebuild")
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: path, call: cl})
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	e := entryFrom(key, resp.Header)
	if e.Data, err = io.ReadAll(resp.Body); err != nil {
		return nil, fmt.Errorf("kvd: GET %s: read value: %w", path, err)
	}
	return e, nil
}

// GetJSON reads a key and unmarshals its value into out.
func (c *Client) GetJSON(ctx context.Context, key string, out any, opts ...Option) (*Entry, error) {
	e, err := c.Get(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	if err := e.DecodeJSON(out); err != nil {
		return e, fmt.Errorf("client: value of %q: %w", key, err)
	}
	return e, nil
}

// Head reads a key's metadata and content type without its value (Data is
// nil). A HEAD answer carries no body, so an error has no message of kvd's;
// its code comes from the X-Error-Code header and matches the sentinels as
// any other. Options: DB, Table, Rebuild.
func (c *Client) Head(ctx context.Context, key string, opts ...Option) (*Entry, error) {
	cl, path, err := c.newKeyCall("Head", key, "", opts, "DB", "Table", "Rebuild")
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, request{method: http.MethodHead, path: path, call: cl})
	if err != nil {
		return nil, err
	}
	drain(resp)
	return entryFrom(key, resp.Header), nil
}

// Exists reports whether a key is there (and not expired). A missing
// database holds no keys, so it answers false too. Options as Head.
func (c *Client) Exists(ctx context.Context, key string, opts ...Option) (bool, error) {
	_, err := c.Head(ctx, key, opts...)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// entryFrom reads the metadata headers of GET and HEAD.
func entryFrom(key string, h http.Header) *Entry {
	e := &Entry{
		Key:       key,
		Value:     Value{ContentType: h.Get("Content-Type")},
		CreatedAt: unixHeader(h, "X-Created-At"),
		UpdatedAt: unixHeader(h, "X-Updated-At"),
		ExpiresAt: unixHeader(h, "X-Expire-At"),
		Version:   parseETag(h.Get("ETag")),
		Reference: h.Get("X-KV-Reference") == "true",
	}
	if t := h.Get("X-KV-Reference-Target"); t != "" {
		if target, err := url.PathUnescape(t); err == nil {
			e.ReferenceTarget = target
		}
	}
	return e
}

func unixHeader(h http.Header, name string) time.Time {
	s, err := strconv.ParseInt(h.Get(name), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// parseETag reads kvd's ETag, the version in quotes; 0 when absent.
func parseETag(s string) int64 {
	s = strings.TrimPrefix(s, "W/")
	v, err := strconv.ParseInt(strings.Trim(s, `"`), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// PutResult is kvd's answer to a write of a key.
type PutResult struct {
	Key     string `json:"key"`
	Created bool   `json:"created"` // false when the key existed
	Version int64  `json:"-"`       // the key's new version (ETag)
}

// Put stores v under key. Options: DB, Table, Path (replace one JSON leaf;
// v must be JSON), TTL, IfMatch (value CAS), IfVersion, IfAbsent,
// NoHistory, Ref (v names the target key), CreateIfMissing.
func (c *Client) Put(ctx context.Context, key string, v Value, opts ...Option) (*PutResult, error) {
	cl, path, err := c.newKeyCall("Put", key, "", opts, "DB", "Table", "Path", "TTL", "IfMatch", "IfVersion", "IfAbsent", "NoHistory", "Ref", "CreateIfMissing")
	if err != nil {
		return nil, err
	}
	if strings.ContainsFunc(v.ContentType, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		// net/http would refuse the header without sending anything, in
		// words of its own; kvd refuses one too.
		return nil, argErrorf("Put", "ContentType must not contain control characters")
	}
	var res PutResult
	h, err := c.sendJSON(ctx, request{method: http.MethodPut, path: path, call: cl, body: v.Data, contentType: v.ContentType}, &res)
	if err != nil {
		return nil, err
	}
	res.Version = parseETag(h.Get("ETag"))
	return &res, nil
}

// PutJSON stores v marshalled with encoding/json, as application/json;
// a string in v that is not valid UTF-8 is refused (an *ArgumentError),
// not stored as U+FFFD. Options as Put.
func (c *Client) PutJSON(ctx context.Context, key string, v any, opts ...Option) (*PutResult, error) {
	data, err := marshalExact(v)
	if err != nil {
		return nil, argErrorf("PutJSON", "encode value of %q: %w", key, err)
	}
	return c.Put(ctx, key, RawJSON(data), opts...)
}

// Delete removes a key (a reference itself, not its target); a missing
// key is ErrKeyNotFound. Options: DB, Table, IfVersion, NoHistory,
// CreateIfMissing.
func (c *Client) Delete(ctx context.Context, key string, opts ...Option) error {
	cl, path, err := c.newKeyCall("Delete", key, "", opts, "DB", "Table", "IfVersion", "NoHistory", "CreateIfMissing")
	if err != nil {
		return err
	}
	_, err = c.sendJSON(ctx, request{method: http.MethodDelete, path: path, call: cl}, nil)
	return err
}

// Counter is a counter after incr or decr.
type Counter struct {
	Key      string `json:"key"`
	Value    int64  `json:"value"`
	Previous int64  `json:"previous"`
}

// Incr adds delta (a positive number) to the integer stored at key,
// starting from 0 when it is missing; atomic on the server. Options: DB,
// Table, Path (a number inside a JSON value), NoHistory, CreateIfMissing.
func (c *Client) Incr(ctx context.Context, key string, delta int64, opts ...Option) (*Counter, error) {
	return c.count(ctx, "Incr", "incr", key, delta, opts)
}

// Decr subtracts delta (a positive number); otherwise as Incr.
func (c *Client) Decr(ctx context.Context, key string, delta int64, opts ...Option) (*Counter, error) {
	return c.count(ctx, "Decr", "decr", key, delta, opts)
}

func (c *Client) count(ctx context.Context, endpoint, op, key string, delta int64, opts []Option) (*Counter, error) {
	cl, path, err := c.newKeyCall(endpoint, key, op, opts, "DB", "Table", "Path", "NoHistory", "CreateIfMissing")
	if err != nil {
		return nil, err
	}
	cl.query.Set("delta", strconv.FormatInt(delta, 10))
	var res Counter
	if _, err := c.sendJSON(ctx, request{method: http.MethodPost, path: path, call: cl}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
