package httpapi

import (
	"net/http"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/internal/unixtime"
	"github.com/kvd/kvd/sqlitekv"
)

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

type listResponse struct {
	Keys   []string `json:"keys"`
	Count  int      `json:"count"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
	Prefix string   `json:"prefix"`
	// Truncated: the byte budget ended the page before limit; NextOffset
	// is where the rest starts. NextAfter, whenever more keys may follow,
	// is the page's last key: as after=, the cursor that misses none.
	Truncated  bool   `json:"truncated"`
	NextOffset int    `json:"next_offset,omitempty"`
	NextAfter  string `json:"next_after,omitempty"`
}

type listAtResponse struct {
	Keys               []string        `json:"keys"`
	HasGaps            bool            `json:"has_gaps"`
	GapKeys            []string        `json:"gap_keys"`
	CandidateTruncated bool            `json:"candidate_truncated"`
	Truncated          bool            `json:"truncated"` // the byte budget ended the page
	NextAfter          string          `json:"next_after,omitempty"`
	AtTimestamp        unixtime.Millis `json:"at_timestamp"`
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request, t target) {
	if t.q.has("at_timestamp") {
		s.listKeysAt(w, r, t)
		return
	}
	req, rebuild, err := parseList(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var keys []string
	err = s.withDB(r, t.q.readDB(), func(db *actors.DB) (err error) {
		if err := rebuildIf(r, db, rebuild, req.Table); err != nil {
			return err
		}
		keys, err = db.List(r.Context(), req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := listResponse{Keys: s.keysWithin(keys), Limit: req.Limit, Offset: req.Offset, Prefix: req.Prefix}
	res.Count = len(res.Keys)
	if res.Truncated = res.Count < len(keys); res.Truncated {
		res.NextOffset = req.Offset + res.Count
	}
	if res.Count > 0 && (res.Truncated || res.Count == req.Limit) {
		res.NextAfter = res.Keys[res.Count-1]
	}
	s.writeAnswer(w, r, res)
}

func parseList(t target) (req sqlitekv.ListRequest, rebuild bool, err error) {
	q := t.q
	req.Prefix, req.After = q.Get("prefix"), q.Get("after")
	if req.Table, err = q.table(); err != nil {
		return req, false, err
	}
	if req.Limit, err = q.intIn("limit", defaultListLimit, 1, maxListLimit); err != nil {
		return req, false, err
	}
	if req.Offset, err = q.intIn("offset", 0, 0, 1<<31-1); err != nil {
		return req, false, err
	}
	rebuild, err = q.boolean("rebuild", false)
	return req, rebuild, err
}

// keysWithin is the first of keys that fit the answer's byte budget. A
// page of keys is small (at most 1000 keys of 1 KiB), so it is read whole
// and cut here.
func (s *Server) keysWithin(keys []string) []string {
	budget := s.answerBudget(itemBytes)
	for i, k := range keys {
		if !budget.Take(k) {
			return keys[:i]
		}
	}
	return keys
}

// listKeysAt lists the keys that existed at at_timestamp, over one page of
// the keys with history (see candidates).
func (s *Server) listKeysAt(w http.ResponseWriter, r *http.Request, t target) {
	req, rebuild, err := s.parseListAt(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var asOf sqlitekv.AsOf
	err = s.withDB(r, t.q.readDB(), func(db *actors.DB) (err error) {
		if err := rebuildIf(r, db, rebuild, req.table); err != nil {
			return err
		}
		asOf, err = db.KeysAt(r.Context(), req.table, req.at, req.page)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAnswer(w, r, listAtResponse{Keys: asOf.Keys, HasGaps: len(asOf.GapKeys) > 0, GapKeys: asOf.GapKeys,
		CandidateTruncated: asOf.Truncated, Truncated: asOf.Cut, NextAfter: asOf.Next, AtTimestamp: unixtime.Millis(req.at)})
}

func (s *Server) parseListAt(t target) (req pastRequest, rebuild bool, err error) {
	q := t.q
	if req.table, err = q.table(); err != nil {
		return req, false, err
	}
	if req.at, err = q.unixTime("at_timestamp"); err != nil {
		return req, false, err
	}
	if req.page, err = q.candidates(); err != nil {
		return req, false, err
	}
	req.page.Budget = s.answerBudget(itemBytes)
	rebuild, err = q.boolean("rebuild", false)
	return req, rebuild, err
}

// rebuildIf rescans a directory-mode table's folder first when the client
// asked (rebuild=true): listings come from the cache, which otherwise
// learns of files added or removed from outside only when they are read.
func rebuildIf(r *http.Request, db *actors.DB, rebuild bool, table string) error {
	if !rebuild {
		return nil
	}
	return db.Rebuild(r.Context(), table)
}
