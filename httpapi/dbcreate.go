package httpapi

import (
	"net/http"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

type createDBResponse struct {
	Success bool   `json:"success"`
	Path    string `json:"path"`
	Table   string `json:"table"`
}

// handleCreateDB creates an empty database (path names it like db does
// elsewhere) with its KV table; an existing one is left as it is.
func (s *Server) handleCreateDB(w http.ResponseWriter, r *http.Request, t target) {
	table, err := t.q.table()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var path string
	err = s.withDB(r, t.q.newDB(), func(db *actors.DB) error {
		path = db.Path()
		return db.EnsureTable(r.Context(), table)
	})
	if sqlitekv.CodeOf(err) == sqlitekv.CodePathIsDirectory && t.q.has("table") {
		// Registry.Open asked the client to name a table, which it did.
		err = invalidParam("Directory mode needs no db/create: the folder is the database, and a table's folder is made by its first write")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, createDBResponse{Success: true, Path: path, Table: table})
}
