package client

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

const listPath = APIPrefix + "/kv"

// KeyList is one page of keys, in byte order.
type KeyList struct {
	Keys   []string `json:"keys"`
	Count  int      `json:"count"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
	Prefix string   `json:"prefix"`
	// NextAfter, when more keys may follow, is the page's last key: pass
	// it to After for the next page, which then misses no key however
	// many before it expire or are deleted meanwhile (Offset would).
	NextAfter string `json:"next_after"`
}

// List returns the live keys. Options: DB, Table, Prefix, Limit (default
// 100, at most 1000), After (a NextAfter) or Offset. A page shorter than
// its limit is the last. kvd bounds each answer in bytes
// (--max-answer-bytes); List asks again for the rest of a page kvd cut
// short.
func (c *Client) List(ctx context.Context, opts ...Option) (*KeyList, error) {
	cl, err := c.newCall("List", opts, "DB", "Table", "Prefix", "Limit", "After", "Offset")
	if err != nil {
		return nil, err
	}
	var page *KeyList
	for {
		var res struct {
			KeyList
			Truncated bool `json:"truncated"`
		}
		if _, err := c.sendJSON(ctx, request{method: http.MethodGet, path: listPath, call: cl}, &res); err != nil {
			return nil, err
		}
		if page == nil {
			page = &res.KeyList
		} else {
			page.Keys = append(page.Keys, res.Keys...)
			page.Count, page.NextAfter = len(page.Keys), res.NextAfter
		}
		if !res.Truncated || len(res.Keys) == 0 || page.Count >= page.Limit {
			return page, nil
		}
		cl.query.Del("offset")
		cl.query.Set("after", res.NextAfter)
		cl.query.Set("limit", strconv.Itoa(page.Limit-page.Count))
	}
}

// KeysAt lists the keys that existed at a time.
type KeysAt struct {
	Keys []string
	// GapKeys are keys whose state then history cannot tell (a write
	// without history, or pruned history); they are not in Keys.
	GapKeys []string
	// Truncated is true when more keys with history matched than the limit
	// let kvd look at, or when kvd's byte bound on answers ended the page
	// early; NextAfter, passed to After, lists the next page. It is empty
	// on the last page.
	Truncated bool
	NextAfter string
	At        time.Time
}

// ListAt lists the keys as they were at t (see At for how t is read), over
// one page of the keys with history. Options: DB, Table, Prefix, Limit
// (keys with history looked at, default 100, at most 1000), After (a
// NextAfter; Offset does not apply). A page may hold fewer keys than Limit
// and still not be the last: page until NextAfter is empty.
func (c *Client) ListAt(ctx context.Context, t time.Time, opts ...Option) (*KeysAt, error) {
	cl, err := c.newCall("ListAt", opts, "DB", "Table", "Prefix", "Limit", "After")
	if err != nil {
		return nil, err
	}
	cl.query.Set("at_timestamp", unixParam(t))
	var res struct {
		Keys               []string `json:"keys"`
		GapKeys            []string `json:"gap_keys"`
		CandidateTruncated bool     `json:"candidate_truncated"`
		NextAfter          string   `json:"next_after"`
		AtTimestamp        float64  `json:"at_timestamp"`
	}
	if _, err := c.sendJSON(ctx, request{method: http.MethodGet, path: listPath, call: cl}, &res); err != nil {
		return nil, err
	}
	return &KeysAt{Keys: res.Keys, GapKeys: res.GapKeys, Truncated: res.CandidateTruncated, NextAfter: res.NextAfter,
		At: unixTime(res.AtTimestamp)}, nil
}
