package httpapi

import (
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"
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
}

type listAtResponse struct {
	Keys               []string `json:"keys"`
	HasGaps            bool     `json:"has_gaps"`
	GapKeys            []string `json:"gap_keys"`
	CandidateTruncated bool     `json:"candidate_truncated"`
	AtTimestamp        float64  `json:"at_timestamp"`
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
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
	db, err := s.open(q, false)
	if err != nil {
		return listResponse{}, err
	}
	defer db.Release()
	keys, err := db.List(r.Context(), req)
	if err != nil {
		return listResponse{}, err
	}
	return listResponse{Keys: keys, Count: len(keys), Limit: req.Limit, Offset: req.Offset, Prefix: req.Prefix}, nil
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

// listKeysAt lists the keys that existed at at_timestamp. It looks at up to
// limit keys with history under the prefix; offset does not apply.
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
	limit, err := q.intIn("limit", defaultListLimit, 1, maxListLimit)
	if err != nil {
		return listAtResponse{}, err
	}
	var res listAtResponse
	err = s.withDB(q, false, func(db *actors.DB) error {
		asOf, err := db.TableAt(r.Context(), table, q.Get("prefix"), at, limit)
		res = listAtResponse{Keys: asOf.Keys, HasGaps: len(asOf.GapKeys) > 0, GapKeys: asOf.GapKeys,
			CandidateTruncated: asOf.Truncated, AtTimestamp: unixSeconds(at)}
		return err
	})
	return res, err
}
