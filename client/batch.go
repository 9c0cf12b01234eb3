package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"
)

// Batches hold 1 to MaxBatch entries and run as one transaction: all or
// nothing.
const MaxBatch = 100

const (
	batchGetPath    = APIPrefix + "/kv/batch/get"
	batchSetPath    = APIPrefix + "/kv/batch/set"
	batchDeletePath = APIPrefix + "/kv/batch/delete"
)

// BatchGet reads keys in one consistent read. Every key is in the answer;
// a missing one maps to nil. JSON values come back compacted (kvd
// re-encodes them inside its JSON answer). kvd bounds each answer in bytes
// (--max-answer-bytes); when the values exceed it, BatchGet asks again for
// the keys left out, and the answer is then several reads, each
// consistent on its own. Options: DB, Table.
func (c *Client) BatchGet(ctx context.Context, keys []string, opts ...Option) (map[string]*Value, error) {
	cl, err := c.newCall("BatchGet", opts, "DB", "Table")
	if err == nil {
		err = noEmptyKey("BatchGet", keys)
	}
	if err != nil {
		return nil, err
	}
	values := make(map[string]*Value, len(keys))
	for { // at least once: kvd refuses an empty list
		req, err := jsonRequest(http.MethodPost, batchGetPath, cl, map[string][]string{"keys": keys})
		if err != nil {
			return nil, err
		}
		var res struct {
			Values   map[string]*wireValue `json:"values"`
			NextKeys []string              `json:"next_keys"`
		}
		if _, err := c.sendJSON(ctx, req, &res); err != nil {
			return nil, err
		}
		for k, w := range res.Values {
			if w == nil {
				values[k] = nil
				continue
			}
			v, err := w.value()
			if err != nil {
				return nil, fmt.Errorf("kvd: batch get: value of %q: %w", k, err)
			}
			values[k] = v
		}
		switch {
		case len(res.NextKeys) == 0:
			return values, nil
		case len(res.Values) == 0:
			return nil, fmt.Errorf("kvd: batch get: an answer with no value and %d keys left", len(res.NextKeys))
		}
		keys = res.NextKeys
	}
}

// Item is one write of BatchSet.
type Item struct {
	Key   string
	Value Value
	TTL   time.Duration // whole seconds; 0 for none
}

// wireItem is an item as batch/set reads it: the value's bytes in a JSON
// string, base64 when they are not UTF-8 (a JSON string cannot hold them).
type wireItem struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ContentType string `json:"content_type,omitempty"`
	TTL         int64  `json:"ttl,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
}

// BatchSetResult is kvd's answer to BatchSet.
type BatchSetResult struct {
	Count   int      `json:"count"`
	Created []string `json:"created"` // keys that did not exist before
}

// BatchSet writes items in one transaction; duplicates are allowed, the
// last wins. Options: DB, Table, NoHistory, CreateIfMissing.
func (c *Client) BatchSet(ctx context.Context, items []Item, opts ...Option) (*BatchSetResult, error) {
	cl, err := c.newCall("BatchSet", opts, "DB", "Table", "NoHistory", "CreateIfMissing")
	if err != nil {
		return nil, err
	}
	wire := make([]wireItem, len(items))
	for i, it := range items {
		if it.Key == "" {
			return nil, argErrorf("BatchSet", "items[%d].Key must not be empty", i)
		}
		if it.TTL < 0 || it.TTL%time.Second != 0 {
			return nil, argErrorf("BatchSet", "items[%d].TTL %v is not a whole number of seconds", i, it.TTL)
		}
		wire[i] = wireItem{Key: it.Key, ContentType: it.Value.ContentType, TTL: int64(it.TTL / time.Second)}
		if utf8.Valid(it.Value.Data) {
			wire[i].Value = string(it.Value.Data)
		} else {
			wire[i].Value, wire[i].Encoding = base64.StdEncoding.EncodeToString(it.Value.Data), "base64"
		}
	}
	req, err := jsonRequest(http.MethodPost, batchSetPath, cl, map[string][]wireItem{"items": wire})
	if err != nil {
		return nil, err
	}
	var res BatchSetResult
	if _, err := c.sendJSON(ctx, req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// BatchDelete removes keys in one transaction and returns how many
// existed; missing keys are skipped. Options: DB, Table, NoHistory,
// CreateIfMissing.
func (c *Client) BatchDelete(ctx context.Context, keys []string, opts ...Option) (int, error) {
	cl, err := c.newCall("BatchDelete", opts, "DB", "Table", "NoHistory", "CreateIfMissing")
	if err == nil {
		err = noEmptyKey("BatchDelete", keys)
	}
	if err != nil {
		return 0, err
	}
	req, err := jsonRequest(http.MethodPost, batchDeletePath, cl, map[string][]string{"keys": keys})
	if err != nil {
		return 0, err
	}
	var res struct {
		Deleted int `json:"deleted"`
	}
	if _, err := c.sendJSON(ctx, req, &res); err != nil {
		return 0, err
	}
	return res.Deleted, nil
}

// noEmptyKey refuses a list with an empty key, as every call naming one
// key does (keyPath): kvd would answer 400 for the whole batch.
func noEmptyKey(method string, keys []string) error {
	for i, k := range keys {
		if k == "" {
			return argErrorf(method, "keys[%d] must not be empty", i)
		}
	}
	return nil
}
