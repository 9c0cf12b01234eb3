package httpapi

import (
	"net/http"
	"strconv"

	"github.com/kvd/kvd/actors"
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
	// is where the rest starts.
	Truncated  bool `json:"truncated"`
	NextOffset int  `json:"next_offset,omitempty"`
}

type listAtResponse struct {
	Keys               []string `json:"keys"`
	HasGaps            bool     `json:"has_gaps"`
	GapKeys            []string `json:"gap_keys"`
	CandidateTruncated bool     `json:"candidate_truncated"`
	Truncated          bool     `json:"truncated"` // the byte budget ended the page
	NextAfter          string   `json:"next_after,omitempty"`
	AtTimestamp        float64  `json:"at_timestamp"`
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request, _ target) {
	var res any
	var err error
	if r.URL.Query().Has("at_timestamp") {
		res, err = s.listKeysAt(r)
	} else {
		res, err = s.listKeys(r)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) listKeys(r *http.Request) (listResponse, error) {
	q, err := parseQuery(r)
	if err != nil {
		return listResponse{}, err
	}
	req := sqlitekv.ListRequest{Prefix: q.Get("prefix")}
	if req.Table, err = q.table(); err != nil {
		return listResponse{}, err
	}
	if req.Limit, err = q.intIn("limit", defaultListLimit, 1, maxListLimit); err != nil {
		return listResponse{}, err
	}
	if req.Offset, err = q.intIn("offset", 0, 0, 1<<31-1); err != nil {
		return listResponse{}, err
	}
	rebuild, err := q.boolean("rebuild", false)
	if err != nil {
		return listResponse{}, err
	}
	db, err := s.open(q, false)
	if err != nil {
		return listResponse{}, err
	}
	defer db.Release()
	if err := rebuildIf(r, db, rebuild, req.Table); err != nil {
		return listResponse{}, err
	}
	keys, err := db.List(r.Context(), req)
	if err != nil {
		return listResponse{}, err
	}
	res := listResponse{Keys: s.keysWithin(keys), Limit: req.Limit, Offset: req.Offset, Prefix: req.Prefix}
	res.Count = len(res.Keys)
	if res.Truncated = res.Count < len(keys); res.Truncated {
		res.NextOffset = req.Offset + res.Count
	}
	return res, nil
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

// intIn reads a whole number within [lo, hi], or def when absent.
func (q query) intIn(name string, def, lo, hi int) (int, error) {
	if !q.has(name) {
		return def, nil
	}
	n, err := strconv.Atoi(q.Get(name))
	if err != nil || n < lo || n > hi {
		return 0, invalidParam("%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// listKeysAt lists the keys that existed at at_timestamp, over one page of
// the keys with history (see candidates).
func (s *Server) listKeysAt(r *http.Request) (listAtResponse, error) {
	q, err := parseQuery(r)
	if err != nil {
		return listAtResponse{}, err
	}
	table, err := q.table()
	if err != nil {
		return listAtResponse{}, err
	}
	at, err := q.unixTime("at_timestamp")
	if err != nil {
		return listAtResponse{}, err
	}
	page, err := q.candidates()
	if err != nil {
		return listAtResponse{}, err
	}
	page.Budget = s.answerBudget(itemBytes)
	rebuild, err := q.boolean("rebuild", false)
	if err != nil {
		return listAtResponse{}, err
	}
	var res listAtResponse
	err = s.withDB(q, false, func(db *actors.DB) error {
		if err := rebuildIf(r, db, rebuild, table); err != nil {
			return err
		}
		asOf, err := db.KeysAt(r.Context(), table, at, page)
		res = listAtResponse{Keys: asOf.Keys, HasGaps: len(asOf.GapKeys) > 0, GapKeys: asOf.GapKeys,
			CandidateTruncated: asOf.Truncated, Truncated: asOf.Cut, NextAfter: asOf.Next, AtTimestamp: unixSeconds(at)}
		return err
	})
	return res, err
}

// candidates reads the page of keys with history that a look into the
// past (listing, snapshot or diff at a time) goes over: prefix, limit, and
// after, the next_after of the previous page. Which of those keys existed
// then is only known once each is read, so pages are cut by key, not by
// offset.
func (q query) candidates() (sqlitekv.Candidates, error) {
	c := sqlitekv.Candidates{Prefix: q.Get("prefix"), After: q.Get("after")}
	var err error
	if c.Limit, err = q.intIn("limit", defaultListLimit, 1, maxListLimit); err != nil {
		return c, err
	}
	offset, err := q.intIn("offset", 0, 0, 1<<31-1)
	if err != nil {
		return c, err
	}
	if offset != 0 {
		return c, invalidParam("offset does not apply to a look at a past time: page with after=<next_after>")
	}
	return c, nil
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
