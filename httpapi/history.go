package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/internal/unixtime"
	"github.com/kvd/kvd/sqlitekv"
)

const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 1000
)

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
	OpNumber  int64           `json:"op_number"`
	Timestamp unixtime.Millis `json:"timestamp"`
	Operation historyOp       `json:"operation"`
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
	req, err := s.parseHistory(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var page sqlitekv.HistoryPage
	err = s.withDB(r, t.q.readDB(), func(db *actors.DB) (err error) {
		page, err = db.HistoryPage(r.Context(), req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := historyResponse{Key: t.key, Operations: historyEntries(page), Truncated: page.Cut}
	if page.Next != nil {
		res.NextCursor = fmt.Sprintf("%d-%d", page.Next.Op, page.Next.Ts)
	}
	s.writeAnswer(w, r, res)
}

func (s *Server) parseHistory(t target) (req sqlitekv.HistoryRequest, err error) {
	req = sqlitekv.HistoryRequest{Key: t.key, Budget: s.answerBudget(historyEntryBytes)}
	if req.Table, err = t.q.table(); err != nil {
		return req, err
	}
	if req.Limit, err = t.q.intIn("limit", 0, 0, maxHistoryLimit); err != nil {
		return req, err
	}
	if req.Limit == 0 {
		req.Limit = defaultHistoryLimit
	}
	if req.Before, err = t.q.historyCursor(); err != nil {
		return req, err
	}
	return req, nil
}

// historyEntries shows the listed writes of a page, each with the value
// the write before it left.
func historyEntries(page sqlitekv.HistoryPage) []historyEntry {
	versions := page.Versions
	out := make([]historyEntry, 0, page.Listed)
	for i, v := range versions[:page.Listed] {
		e := historyEntry{OpNumber: v.OpNumber, Timestamp: unixtime.Millis(v.Ts), Operation: historyOp{Op: v.Op, Unrecorded: !v.Recorded}}
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
	table, op, err := parseKeySnapshot(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var e sqlitekv.Entry
	err = s.withDB(r, t.q.readDB(), func(db *actors.DB) (err error) {
		e, err = db.SnapshotAt(r.Context(), table, t.key, op)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := newValueResponse(t.key, &e)
	res.OpNumber = op
	s.writeAnswer(w, r, res)
}

func parseKeySnapshot(t target) (table string, op int64, err error) {
	if table, err = t.q.table(); err != nil {
		return "", 0, err
	}
	op, err = t.q.opNumber()
	return table, op, err
}

type tableSnapshotResponse struct {
	Timestamp          unixtime.Millis `json:"timestamp"`
	Entries            map[string]any  `json:"entries"`
	BinaryKeys         []string        `json:"binary_keys,omitempty"`
	HasGaps            bool            `json:"has_gaps"`
	GapKeys            []string        `json:"gap_keys"`
	CandidateTruncated bool            `json:"candidate_truncated"`
	Truncated          bool            `json:"truncated"` // the byte budget ended the page
	NextAfter          string          `json:"next_after,omitempty"`
}

func (s *Server) handleTableSnapshot(w http.ResponseWriter, r *http.Request, t target) {
	req, err := s.parseTableSnapshot(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var asOf sqlitekv.AsOf
	err = s.withDB(r, t.q.readDB(), func(db *actors.DB) (err error) {
		asOf, err = db.TableAt(r.Context(), req.table, req.at, req.page)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := tableSnapshotResponse{Timestamp: unixtime.Millis(req.at), Entries: map[string]any{},
		HasGaps: len(asOf.GapKeys) > 0, GapKeys: asOf.GapKeys, CandidateTruncated: asOf.Truncated, Truncated: asOf.Cut, NextAfter: asOf.Next}
	for _, k := range asOf.Keys {
		v, binary := jsonValue(asOf.Entries[k])
		res.Entries[k] = v
		if binary {
			res.BinaryKeys = append(res.BinaryKeys, k)
		}
	}
	s.writeAnswer(w, r, res)
}

// pastRequest is a parsed look at a table as it was at a time.
type pastRequest struct {
	table string
	at    int64
	page  sqlitekv.Candidates
}

func (s *Server) parseTableSnapshot(t target) (req pastRequest, err error) {
	if req.table, err = t.q.table(); err != nil {
		return req, err
	}
	if req.at, err = t.q.unixTime("timestamp"); err != nil {
		return req, err
	}
	if req.page, err = t.q.candidates(); err != nil {
		return req, err
	}
	req.page.Budget = s.answerBudget(itemBytes)
	return req, nil
}

type diffChange struct {
	Key         string `json:"key"`
	Change      string `json:"change"`
	OldValue    any    `json:"old_value"`
	NewValue    any    `json:"new_value"`
	OldEncoding string `json:"old_encoding,omitempty"` // "base64": old_value is a binary value's bytes in base64
	NewEncoding string `json:"new_encoding,omitempty"`
}

func (s *Server) handleDiff(w http.ResponseWriter, r *http.Request, t target) {
	req, err := s.parseDiff(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var d sqlitekv.Diff
	err = s.withDB(r, t.q.readDB(), func(db *actors.DB) (err error) {
		d, err = db.Diff(r.Context(), req.table, req.from, req.to, req.keys, req.page)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stats := map[string]int{sqlitekv.ChangeCreated: 0, sqlitekv.ChangeModified: 0, sqlitekv.ChangeDeleted: 0}
	changes := make([]diffChange, len(d.Changes))
	for i, c := range d.Changes {
		stats[c.Kind]++
		changes[i] = diffChange{Key: c.Key, Change: c.Kind}
		changes[i].OldValue, changes[i].OldEncoding = optionalValue(c.Old)
		changes[i].NewValue, changes[i].NewEncoding = optionalValue(c.New)
	}
	res := map[string]any{"from": unixtime.Millis(req.from), "to": unixtime.Millis(req.to), "stats": stats, "changes": changes,
		"has_gaps": len(d.GapKeys) > 0, "gap_keys": d.GapKeys, "candidate_truncated": d.Truncated, "truncated": d.Cut}
	if d.Next != "" {
		res["next_after"] = d.Next
	}
	s.writeAnswer(w, r, res)
}

// diffRequest is a parsed diff of a table between two times.
type diffRequest struct {
	table    string
	from, to int64
	keys     []string
	page     sqlitekv.Candidates
}

func (s *Server) parseDiff(t target) (req diffRequest, err error) {
	if req.table, err = t.q.table(); err != nil {
		return req, err
	}
	if req.from, err = t.q.unixTime("from"); err != nil {
		return req, err
	}
	if req.to, err = t.q.unixTime("to"); err != nil {
		return req, err
	}
	if req.from > req.to {
		return req, invalidParam("from must not be later than to")
	}
	if req.page, err = t.q.candidates(); err != nil {
		return req, err
	}
	req.page.Budget = s.answerBudget(itemBytes)
	if req.keys, err = t.q.keys(); err != nil {
		return req, err
	}
	return req, nil
}

// optionalValue shows e as jsonValue does (nil if absent), with
// "base64" as its encoding when it is a binary value's bytes: text that
// looks like base64 and a binary value are then told apart, as
// batch/get's encoding and a snapshot's binary_keys tell them.
func optionalValue(e *sqlitekv.Entry) (value any, encoding string) {
	if e == nil {
		return nil, ""
	}
	v, binary := jsonValue(*e)
	if binary {
		encoding = "base64"
	}
	return v, encoding
}
