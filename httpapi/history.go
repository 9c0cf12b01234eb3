package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 1000
)

// withDB leases the database of a read and runs fn with it.
func (s *Server) withDB(q query, create bool, fn func(*actors.DB) error) error {
	db, err := s.open(q, create)
	if err != nil {
		return err
	}
	defer db.Release()
	return fn(db)
}

// withWriteDB is withDB for writes, which honour create_db_if_missing.
func (s *Server) withWriteDB(q query, fn func(*actors.DB) error) error {
	create, err := q.create()
	if err != nil {
		return err
	}
	return s.withDB(q, create, fn)
}

type historyOp struct {
	Op          string          `json:"op"`
	OldValue    json.RawMessage `json:"old_value,omitempty"`
	NewValue    json.RawMessage `json:"new_value,omitempty"`
	RawOldValue *string         `json:"raw_old_value,omitempty"` // a pointer: "" is an empty value
	RawNewValue *string         `json:"raw_new_value,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	Unrecorded  bool            `json:"unrecorded,omitempty"`
}

type historyEntry struct {
	OpNumber  int64     `json:"op_number"`
	Timestamp float64   `json:"timestamp"`
	Operation historyOp `json:"operation"`
}

// historyResponse is a page of a key's history. NextCursor, passed back as
// cursor, lists the older writes; Truncated says the byte budget ended the
// page before limit.
type historyResponse struct {
	Key        string         `json:"key"`
	Operations []historyEntry `json:"operations"`
	Truncated  bool           `json:"truncated"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request, t target) {
	res, err := s.history(r, t)
	s.reply(w, r, res, err)
}

func (s *Server) history(r *http.Request, t target) (res historyResponse, err error) {
	req := sqlitekv.HistoryRequest{Key: t.key, Budget: s.answerBudget(historyEntryBytes)}
	if req.Table, err = t.q.table(); err != nil {
		return res, err
	}
	if req.Limit, err = t.q.intIn("limit", 0, 0, maxHistoryLimit); err != nil {
		return res, err
	}
	if req.Limit == 0 {
		req.Limit = defaultHistoryLimit
	}
	if req.Before, err = t.q.historyCursor(); err != nil {
		return res, err
	}
	res = historyResponse{Key: t.key, Operations: []historyEntry{}}
	err = s.withDB(t.q, false, func(db *actors.DB) error {
		page, err := db.HistoryPage(r.Context(), req)
		if err != nil {
			return err
		}
		res.Operations = historyEntries(page)
		res.Truncated = page.Cut
		if page.Next != nil {
			res.NextCursor = fmt.Sprintf("%d-%d", page.Next.Op, page.Next.Ts)
		}
		return nil
	})
	return res, err
}

// historyCursor reads cursor, a history answer's next_cursor: "<op>-<ts>"
// of the last write listed.
func (q query) historyCursor() (sqlitekv.HistoryCursor, error) {
	var c sqlitekv.HistoryCursor
	if !q.has("cursor") {
		return c, nil
	}
	op, ts, ok := strings.Cut(q.Get("cursor"), "-")
	var errOp, errTs error
	c.Op, errOp = strconv.ParseInt(op, 10, 64)
	c.Ts, errTs = strconv.ParseInt(ts, 10, 64)
	if !ok || errOp != nil || errTs != nil || c.Op <= 0 || c.Ts < 0 {
		return c, invalidParam("cursor must be the next_cursor of an earlier history answer")
	}
	return c, nil
}

// historyEntries shows the listed writes of a page, each with the value
// the write before it left.
func historyEntries(page sqlitekv.HistoryPage) []historyEntry {
	versions := page.Versions
	out := make([]historyEntry, 0, page.Listed)
	for i, v := range versions[:page.Listed] {
		e := historyEntry{OpNumber: v.OpNumber, Timestamp: unixSeconds(v.Ts), Operation: historyOp{Op: v.Op, Unrecorded: !v.Recorded}}
		if v.Recorded && !v.Removes() {
			e.Operation.NewValue, e.Operation.RawNewValue = historyValue(v.Entry)
			e.Operation.ContentType = v.Entry.ContentType
		}
		if i+1 < len(versions) {
			if prev := versions[i+1]; prev.Recorded && !prev.Removes() {
				e.Operation.OldValue, e.Operation.RawOldValue = historyValue(prev.Entry)
			}
		}
		out = append(out, e)
	}
	return out
}

// historyValue shows a JSON value inline and anything else as base64.
func historyValue(e sqlitekv.Entry) (json.RawMessage, *string) {
	if isJSONValue(e) {
		return json.RawMessage(e.Value), nil
	}
	raw := base64.StdEncoding.EncodeToString(e.Value)
	return nil, &raw
}

type valueResponse struct {
	Success     bool   `json:"success"`
	Key         string `json:"key"`
	OpNumber    int64  `json:"op_number,omitempty"`
	Value       any    `json:"value"`
	ContentType string `json:"content_type,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
}

func newValueResponse(key string, e *sqlitekv.Entry) valueResponse {
	res := valueResponse{Success: true, Key: key}
	if e != nil {
		var binary bool
		res.ContentType = e.ContentType
		if res.Value, binary = jsonValue(*e); binary {
			res.Encoding = "base64"
		}
	}
	return res
}

func (s *Server) handleKeySnapshot(w http.ResponseWriter, r *http.Request, t target) {
	res, err := s.keySnapshot(r, t)
	s.reply(w, r, res, err)
}

func (s *Server) keySnapshot(r *http.Request, t target) (res valueResponse, err error) {
	table, err := t.q.table()
	if err != nil {
		return res, err
	}
	op, err := strconv.ParseInt(t.q.Get("op_number"), 10, 64)
	if err != nil || op <= 0 {
		return res, invalidParam("op_number is required: a positive op number from the key's history")
	}
	err = s.withDB(t.q, false, func(db *actors.DB) error {
		e, err := db.SnapshotAt(r.Context(), table, t.key, op)
		res = newValueResponse(t.key, &e)
		res.OpNumber = op
		return err
	})
	return res, err
}

type tableSnapshotResponse struct {
	Timestamp          float64        `json:"timestamp"`
	Entries            map[string]any `json:"entries"`
	BinaryKeys         []string       `json:"binary_keys,omitempty"`
	HasGaps            bool           `json:"has_gaps"`
	GapKeys            []string       `json:"gap_keys"`
	CandidateTruncated bool           `json:"candidate_truncated"`
	Truncated          bool           `json:"truncated"` // the byte budget ended the page
	NextAfter          string         `json:"next_after,omitempty"`
}

func (s *Server) handleTableSnapshot(w http.ResponseWriter, r *http.Request, t target) {
	res, err := s.tableSnapshot(r, t)
	s.reply(w, r, res, err)
}

func (s *Server) tableSnapshot(r *http.Request, t target) (res tableSnapshotResponse, err error) {
	table, err := t.q.table()
	if err != nil {
		return res, err
	}
	at, err := t.q.unixTime("timestamp")
	if err != nil {
		return res, err
	}
	page, err := t.q.candidates()
	if err != nil {
		return res, err
	}
	page.Budget = s.answerBudget(itemBytes)
	err = s.withDB(t.q, false, func(db *actors.DB) error {
		asOf, err := db.TableAt(r.Context(), table, at, page)
		if err != nil {
			return err
		}
		res = tableSnapshotResponse{Timestamp: unixSeconds(at), Entries: map[string]any{},
			HasGaps: len(asOf.GapKeys) > 0, GapKeys: asOf.GapKeys, CandidateTruncated: asOf.Truncated, Truncated: asOf.Cut, NextAfter: asOf.Next}
		for _, k := range asOf.Keys {
			v, binary := jsonValue(asOf.Entries[k])
			res.Entries[k] = v
			if binary {
				res.BinaryKeys = append(res.BinaryKeys, k)
			}
		}
		return nil
	})
	return res, err
}

type diffChange struct {
	Key      string `json:"key"`
	Change   string `json:"change"`
	OldValue any    `json:"old_value"`
	NewValue any    `json:"new_value"`
}

func (s *Server) handleDiff(w http.ResponseWriter, r *http.Request, t target) {
	res, err := s.diff(r, t)
	s.reply(w, r, res, err)
}

func (s *Server) diff(r *http.Request, t target) (map[string]any, error) {
	table, err := t.q.table()
	if err != nil {
		return nil, err
	}
	from, err := t.q.unixTime("from")
	if err != nil {
		return nil, err
	}
	to, err := t.q.unixTime("to")
	if err != nil {
		return nil, err
	}
	if from > to {
		return nil, invalidParam("from must not be later than to")
	}
	page, err := t.q.candidates()
	if err != nil {
		return nil, err
	}
	page.Budget = s.answerBudget(itemBytes)
	var keys []string
	if t.q.has("keys") {
		for _, k := range strings.Split(t.q.Get("keys"), ",") {
			if err := sqlitekv.ValidateKey(k); err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
	}
	var res map[string]any
	err = s.withDB(t.q, false, func(db *actors.DB) error {
		d, err := db.Diff(r.Context(), table, from, to, keys, page)
		if err != nil {
			return err
		}
		stats := map[string]int{sqlitekv.ChangeCreated: 0, sqlitekv.ChangeModified: 0, sqlitekv.ChangeDeleted: 0}
		changes := make([]diffChange, len(d.Changes))
		for i, c := range d.Changes {
			stats[c.Kind]++
			changes[i] = diffChange{Key: c.Key, Change: c.Kind, OldValue: optionalValue(c.Old), NewValue: optionalValue(c.New)}
		}
		res = map[string]any{"from": unixSeconds(from), "to": unixSeconds(to), "stats": stats, "changes": changes,
			"has_gaps": len(d.GapKeys) > 0, "gap_keys": d.GapKeys, "candidate_truncated": d.Truncated, "truncated": d.Cut}
		if d.Next != "" {
			res["next_after"] = d.Next
		}
		return nil
	})
	return res, err
}

func optionalValue(e *sqlitekv.Entry) any {
	if e == nil {
		return nil
	}
	v, _ := jsonValue(*e)
	return v
}
