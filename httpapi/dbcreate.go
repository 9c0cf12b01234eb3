package httpapi

import (
	"net/http"
)

type createDBResponse struct {
	Success bool   `json:"success"`
	Path    string `json:"path"`
	Table   string `json:"table"`
}

// handleCreateDB creates an empty database (path names it like db does
// elsewhere) with its KV table; an existing one is left as it is.
func (s *Server) handleCreateDB(w http.ResponseWriter, r *http.Request, _ target) {
	res, err := s.createDB(r)
	s.reply(w, r, res, err)
}

func (s *Server) createDB(r *http.Request) (createDBResponse, error) {
	q, err := parseQuery(r)
	if err != nil {
		return createDBResponse{}, err
	}
	table, err := q.table()
	if err != nil {
		return createDBResponse{}, err
	}
	db, err := s.cfg.Registry.Open(q.Get("path"), true, false)
	if err != nil {
		return createDBResponse{}, err
	}
	defer db.Release()
	if err := db.EnsureTable(r.Context(), table); err != nil {
		return createDBResponse{}, err
	}
	return createDBResponse{Success: true, Path: db.Path(), Table: table}, nil
}
