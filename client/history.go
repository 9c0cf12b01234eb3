package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Operation is one recorded write of a key.
type Operation struct {
	OpNumber int64
	Time     time.Time
	// Op is what the write did: set, delete, incr, decr, expire, rollback,
	// push, pop, remove, import.
	Op string
	// OldValue and NewValue are the bytes before and after, nil when there
	// was none (or it was not recorded). JSON values come back compacted.
	OldValue, NewValue []byte
	ContentType        string // of NewValue
	// OldJSON and NewJSON tell that kvd showed the value inline as JSON (a
	// JSON content type and valid JSON) rather than as base64 bytes, so
	// that a caller can show the history as kvd does.
	OldJSON, NewJSON bool
	// Unrecorded marks a write made with NoHistory: its value is unknown.
	Unrecorded bool
}

type wireOperation struct {
	OpNumber  int64   `json:"op_number"`
	Timestamp float64 `json:"timestamp"`
	Operation struct {
		Op          string          `json:"op"`
		OldValue    json.RawMessage `json:"old_value"`
		NewValue    json.RawMessage `json:"new_value"`
		RawOldValue *string         `json:"raw_old_value"`
		RawNewValue *string         `json:"raw_new_value"`
		ContentType string          `json:"content_type"`
		Unrecorded  bool            `json:"unrecorded"`
	} `json:"operation"`
}

// History lists a key's recorded writes, newest first: Limit of them
// (default 50, at most 1000), or as many as there are. A key never
// written is ErrKeyNotFound. kvd bounds each answer in bytes
// (--max-answer-bytes), so History may take several requests, each
// following the cursor of the one before. Options: DB, Table, Limit.
func (c *Client) History(ctx context.Context, key string, opts ...Option) ([]Operation, error) {
	cl, path, err := c.newKeyCall("History", key, "history", opts, "DB", "Table", "Limit")
	if err != nil {
		return nil, err
	}
	want, err := strconv.Atoi(cl.query.Get("limit"))
	if err != nil || want == 0 {
		want = 50 // kvd's default; a bad limit is kvd's to refuse
	}
	var ops []Operation
	for {
		page, err := c.historyPage(ctx, key, path, cl)
		if err != nil {
			return nil, err
		}
		ops = append(ops, page.Operations...)
		if page.NextCursor == "" || len(ops) >= want || len(page.Operations) == 0 {
			return ops, nil
		}
		cl.query.Set("cursor", page.NextCursor)
		cl.query.Set("limit", strconv.Itoa(want-len(ops)))
	}
}

// HistoryPage is one answer of a key's history.
type HistoryPage struct {
	Operations []Operation // newest first
	// NextCursor, passed to Cursor, reads the older writes; empty when
	// there are none.
	NextCursor string
	// Truncated is true when kvd's byte bound ended the page before Limit.
	Truncated bool
}

// HistoryPage reads one page of a key's history, for a caller that works
// a page at a time (History gathers them). Options: DB, Table, Limit,
// Cursor (a NextCursor).
func (c *Client) HistoryPage(ctx context.Context, key string, opts ...Option) (*HistoryPage, error) {
	cl, path, err := c.newKeyCall("HistoryPage", key, "history", opts, "DB", "Table", "Limit", "Cursor")
	if err != nil {
		return nil, err
	}
	return c.historyPage(ctx, key, path, cl)
}

func (c *Client) historyPage(ctx context.Context, key, path string, cl *call) (*HistoryPage, error) {
	var res struct {
		Operations []wireOperation `json:"operations"`
		Truncated  bool            `json:"truncated"`
		NextCursor string          `json:"next_cursor"`
	}
	if _, err := c.sendJSON(ctx, request{method: http.MethodGet, path: path, call: cl}, &res); err != nil {
		return nil, err
	}
	page := &HistoryPage{Operations: make([]Operation, len(res.Operations)), NextCursor: res.NextCursor, Truncated: res.Truncated}
	for i, w := range res.Operations {
		o := w.Operation
		op := Operation{OpNumber: w.OpNumber, Time: unixTime(w.Timestamp), Op: o.Op, ContentType: o.ContentType, Unrecorded: o.Unrecorded,
			OldJSON: o.RawOldValue == nil && len(o.OldValue) > 0, NewJSON: o.RawNewValue == nil && len(o.NewValue) > 0}
		var err error
		if op.OldValue, err = historyValue(o.OldValue, o.RawOldValue); err == nil {
			op.NewValue, err = historyValue(o.NewValue, o.RawNewValue)
		}
		if err != nil {
			return nil, fmt.Errorf("kvd: history of %q, op %d: %w", key, w.OpNumber, err)
		}
		page.Operations[i] = op
	}
	return page, nil
}

// historyValue reads a value of history: JSON inline or base64 raw bytes.
func historyValue(inline json.RawMessage, raw *string) ([]byte, error) {
	if raw != nil {
		return base64.StdEncoding.DecodeString(*raw)
	}
	if len(inline) == 0 { // no value; a stored JSON null is the text null
		return nil, nil
	}
	return inline, nil
}

// KeySnapshot returns the value a key had right after the write numbered
// opNumber (an Operation.OpNumber). Options: DB, Table.
func (c *Client) KeySnapshot(ctx context.Context, key string, opNumber int64, opts ...Option) (*Value, error) {
	cl, path, err := c.newKeyCall("KeySnapshot", key, "snapshot", opts, "DB", "Table")
	if err != nil {
		return nil, err
	}
	cl.query.Set("op_number", strconv.FormatInt(opNumber, 10))
	var res wireValue
	if _, err := c.sendJSON(ctx, request{method: http.MethodGet, path: path, call: cl}, &res); err != nil {
		return nil, err
	}
	v, err := res.value()
	if err != nil {
		return nil, fmt.Errorf("kvd: snapshot of %q: %w", key, err)
	}
	return v, nil
}

// TableSnapshot is a table (or the part under a prefix) as it was at a time.
type TableSnapshot struct {
	Time time.Time
	// Entries are the values as kvd shows them: JSON inline, text as a
	// JSON string, and base64 strings for the keys in BinaryKeys. Bytes
	// recovers the bytes.
	Entries    map[string]json.RawMessage
	BinaryKeys []string
	// GapKeys are keys whose state then history cannot tell.
	GapKeys []string
	// Truncated is true when more keys with history matched than the
	// limit, or when kvd's byte bound on answers (--max-answer-bytes)
	// ended the page early; NextAfter, passed to After, reads the next
	// page. It is empty on the last page.
	Truncated bool
	NextAfter string
	// Cut is true when it was kvd's byte bound that ended the page (then
	// Truncated is true too).
	Cut bool
}

// Bytes returns the value of key in the snapshot. A JSON string comes back
// as its text: without content types, kvd's answer does not tell the JSON
// value "x" (quotes included) from the text x.
func (s *TableSnapshot) Bytes(key string) ([]byte, bool) {
	raw, ok := s.Entries[key]
	if !ok {
		return nil, false
	}
	if string(raw) == "null" {
		return raw, true // the key is there, so this is a stored JSON null
	}
	data, err := decodeWire(raw, "", slices.Contains(s.BinaryKeys, key))
	return data, err == nil
}

// TableSnapshot reconstructs the table at t (see At for how t is read),
// over one page of the keys with history. Options: DB, Table, Prefix, Limit
// (keys looked at, default 100, at most 1000), After (a NextAfter).
func (c *Client) TableSnapshot(ctx context.Context, t time.Time, opts ...Option) (*TableSnapshot, error) {
	cl, err := c.newCall("TableSnapshot", opts, "DB", "Table", "Prefix", "Limit", "After")
	if err != nil {
		return nil, err
	}
	cl.query.Set("timestamp", unixParam(t))
	var res struct {
		Timestamp          float64                    `json:"timestamp"`
		Entries            map[string]json.RawMessage `json:"entries"`
		BinaryKeys         []string                   `json:"binary_keys"`
		GapKeys            []string                   `json:"gap_keys"`
		CandidateTruncated bool                       `json:"candidate_truncated"`
		Cut                bool                       `json:"truncated"`
		NextAfter          string                     `json:"next_after"`
	}
	if _, err := c.sendJSON(ctx, request{method: http.MethodGet, path: APIPrefix + "/kv/snapshot", call: cl}, &res); err != nil {
		return nil, err
	}
	return &TableSnapshot{Time: unixTime(res.Timestamp), Entries: res.Entries, BinaryKeys: res.BinaryKeys,
		GapKeys: res.GapKeys, Truncated: res.CandidateTruncated, NextAfter: res.NextAfter, Cut: res.Cut}, nil
}

// Diff is what changed in a table between two times.
type Diff struct {
	From, To time.Time
	Created  int
	Modified int
	Deleted  int
	Changes  []Change
	// GapKeys are keys whose state history cannot tell at one of the times.
	GapKeys []string
	// Truncated and NextAfter page as in TableSnapshot, a Diff of Keys
	// too (kvd goes over the keys in byte order).
	Truncated bool
	NextAfter string
	Cut       bool // as in TableSnapshot
}

// Change is one key's change. The values are as kvd shows them (JSON
// inline, text and base64 as JSON strings); null where there was none.
// OldBytes and NewBytes recover the bytes.
type Change struct {
	Key      string          `json:"key"`
	Change   string          `json:"change"` // created, modified or deleted
	OldValue json.RawMessage `json:"old_value"`
	NewValue json.RawMessage `json:"new_value"`
	// OldEncoding and NewEncoding are "base64" when the value is a binary
	// value's bytes in base64: a text value may read the same.
	OldEncoding string `json:"old_encoding,omitempty"`
	NewEncoding string `json:"new_encoding,omitempty"`
}

// OldBytes returns the value before the change; false for a created key,
// which had none. A JSON string comes back as its text, as in
// TableSnapshot.Bytes.
func (c *Change) OldBytes() ([]byte, bool) {
	return changeBytes(c.OldValue, c.OldEncoding, c.Change != "created")
}

// NewBytes returns the value after the change; false for a deleted key.
func (c *Change) NewBytes() ([]byte, bool) {
	return changeBytes(c.NewValue, c.NewEncoding, c.Change != "deleted")
}

func changeBytes(shown json.RawMessage, encoding string, there bool) ([]byte, bool) {
	if !there {
		return nil, false
	}
	if string(shown) == "null" {
		return shown, true // the key was there, so this is a stored JSON null
	}
	data, err := decodeWire(shown, "", encoding == "base64")
	return data, err == nil
}

// Diff compares the table at from with the table at to, over one page of
// the keys with history or over Keys. Options: DB, Table, Prefix, Limit
// (keys looked at, default 100, at most 1000), After (a NextAfter), or
// instead of Prefix and Limit Keys (only these; none may contain a comma).
func (c *Client) Diff(ctx context.Context, from, to time.Time, opts ...Option) (*Diff, error) {
	cl, err := c.newCall("Diff", opts, "DB", "Table", "Keys", "Prefix", "Limit", "After")
	if err != nil {
		return nil, err
	}
	cl.query.Set("from", unixParam(from))
	cl.query.Set("to", unixParam(to))
	if cl.keys != nil {
		for _, param := range []string{"prefix", "limit"} {
			if cl.query.Has(param) {
				// kvd would drop the page and compare exactly the keys.
				return nil, argErrorf("Diff", "Keys names the keys; it takes no %s", param)
			}
		}
		for _, k := range cl.keys {
			if strings.Contains(k, ",") {
				return nil, argErrorf("Diff", "key %q: kvd takes the keys of a diff as a comma list, so a key cannot contain a comma", k)
			}
		}
		cl.query.Set("keys", strings.Join(cl.keys, ","))
	}
	var res struct {
		From  float64 `json:"from"`
		To    float64 `json:"to"`
		Stats struct {
			Created  int `json:"created"`
			Modified int `json:"modified"`
			Deleted  int `json:"deleted"`
		} `json:"stats"`
		Changes            []Change `json:"changes"`
		GapKeys            []string `json:"gap_keys"`
		CandidateTruncated bool     `json:"candidate_truncated"`
		Cut                bool     `json:"truncated"`
		NextAfter          string   `json:"next_after"`
	}
	if _, err := c.sendJSON(ctx, request{method: http.MethodGet, path: APIPrefix + "/kv/diff", call: cl}, &res); err != nil {
		return nil, err
	}
	return &Diff{From: unixTime(res.From), To: unixTime(res.To), Created: res.Stats.Created, Modified: res.Stats.Modified,
		Deleted: res.Stats.Deleted, Changes: res.Changes, GapKeys: res.GapKeys, Truncated: res.CandidateTruncated, NextAfter: res.NextAfter, Cut: res.Cut}, nil
}
