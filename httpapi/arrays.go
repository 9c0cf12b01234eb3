package httpapi

import (
	"cmp"
	"encoding/json"
	"net/http"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

type arrayResponse struct {
	Success   bool            `json:"success"`
	Key       string          `json:"key"`
	NewLength int             `json:"newLength"`
	Value     json.RawMessage `json:"value,omitempty"`
	Removed   *int            `json:"removed,omitempty"`
}

func (s *Server) handlePush(w http.ResponseWriter, r *http.Request, t target) {
	s.arrayOp(w, r, t, sqlitekv.OpPush)
}

func (s *Server) handlePop(w http.ResponseWriter, r *http.Request, t target) {
	s.arrayOp(w, r, t, sqlitekv.OpPop)
}

func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request, t target) {
	s.arrayOp(w, r, t, sqlitekv.OpRemove)
}

func (s *Server) arrayOp(w http.ResponseWriter, r *http.Request, t target, op string) {
	req, ref, err := s.parseArray(r, t, op)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var res sqlitekv.ArrayResult
	err = s.withDB(r, ref, func(db *actors.DB) (err error) {
		res, err = db.Array(r.Context(), req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := arrayResponse{Success: true, Key: t.key, NewLength: res.Length}
	switch op {
	case sqlitekv.OpPop:
		out.Value = json.RawMessage("null")
		if res.Value != nil {
			out.Value = res.Value
		}
	case sqlitekv.OpRemove:
		out.Removed = &res.Removed
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) parseArray(r *http.Request, t target, op string) (req sqlitekv.ArrayRequest, ref dbRef, err error) {
	req = sqlitekv.ArrayRequest{Key: t.key, Op: op, Versions: t.versions, MaxValue: s.cfg.MaxValueBytes}
	if req.Table, err = t.q.table(); err != nil {
		return req, ref, err
	}
	if req.Path, err = t.q.path(); err != nil {
		return req, ref, err
	}
	if req.NoHistory, err = t.q.noHistory(); err != nil {
		return req, ref, err
	}
	if op == sqlitekv.OpRemove && t.q.has("index") {
		i, err := t.q.intIn("index", 0, 0, 1<<31-1)
		if err != nil {
			return req, ref, err
		}
		req.Index = &i
		// Both would say two things to remove: which one was meant?
		if body, err := readBody(r, s.cfg.MaxValueBytes); err != nil || len(body) > 0 {
			return req, ref, cmp.Or(err, invalidParam("remove takes index or a body (the element), not both"))
		}
	}
	if op == sqlitekv.OpPush || (op == sqlitekv.OpRemove && req.Index == nil) {
		if req.Value, err = readBody(r, s.cfg.MaxValueBytes); err != nil {
			return req, ref, err
		}
		if sqlitekv.JSONTooDeep(req.Value) {
			return req, ref, sqlitekv.ErrJSONTooDeep
		}
		if !json.Valid(req.Value) { // its text is checked next, naming what is wrong
			return req, ref, invalidParam("The body must be one JSON value (the element)")
		}
		if err := checkJSONText(req.Value); err != nil {
			return req, ref, err
		}
	}
	ref, err = t.q.writeDB()
	return req, ref, err
}
