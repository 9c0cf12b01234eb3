package httpapi

import (
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
	res, err := s.array(r, t, op)
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

func (s *Server) array(r *http.Request, t target, op string) (sqlitekv.ArrayResult, error) {
	req := sqlitekv.ArrayRequest{Key: t.key, Op: op, MaxValue: s.cfg.MaxValueBytes}
	var err error
	if req.Table, err = t.q.table(); err != nil {
		return sqlitekv.ArrayResult{}, err
	}
	if req.Path, err = t.q.path(); err != nil {
		return sqlitekv.ArrayResult{}, err
	}
	if req.NoHistory, err = t.q.noHistory(); err != nil {
		return sqlitekv.ArrayResult{}, err
	}
	if op == sqlitekv.OpRemove && t.q.has("index") {
		i, err := t.q.intIn("index", 0, 0, 1<<31-1)
		if err != nil {
			return sqlitekv.ArrayResult{}, err
		}
		req.Index = &i
	}
	if op == sqlitekv.OpPush || (op == sqlitekv.OpRemove && req.Index == nil) {
		if req.Value, err = readBody(r, s.cfg.MaxValueBytes); err != nil {
			return sqlitekv.ArrayResult{}, err
		}
		if !sqlitekv.ValidJSON(req.Value) {
			return sqlitekv.ArrayResult{}, invalidParam("The body must be one JSON value (the element)")
		}
		if err := checkJSONText(req.Value); err != nil {
			return sqlitekv.ArrayResult{}, err
		}
	}
	var res sqlitekv.ArrayResult
	err = s.withWriteDB(t.q, func(db *actors.DB) error {
		res, err = db.Array(r.Context(), req)
		return err
	})
	return res, err
}

// decodeOptionalBody decodes a JSON object body; an empty body is {}.
func (s *Server) decodeOptionalBody(r *http.Request, into any) error {
	body, err := readBody(r, BatchBodyLimit(s.cfg.MaxValueBytes))
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return nil
	}
	if !json.Valid(body) {
		return invalidParam("Invalid JSON body: expected a JSON object")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	if json.Unmarshal(body, into) != nil {
		return invalidParam("Invalid JSON body: expected a JSON object")
	}
	return nil
}
