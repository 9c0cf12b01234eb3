package httpapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// open leases the database named by the db parameter; create lets a write
// make a missing file. The caller releases the lease when done.
func (s *Server) open(q query, create bool) (*actors.DB, error) {
	return s.cfg.Registry.Open(q.Get("db"), create, q.has("table"))
}

// openForWrite reads create_db_if_missing (or auto_create) and opens.
func (s *Server) openForWrite(q query) (*actors.DB, error) {
	create, err := q.create()
	if err != nil {
		return nil, err
	}
	return s.open(q, create)
}

func (s *Server) handleGetKey(w http.ResponseWriter, r *http.Request, t target) {
	e, ok := s.readKey(w, r, t, true)
	if ok {
		w.Write(e.Value)
	}
}

func (s *Server) handleHeadKey(w http.ResponseWriter, r *http.Request, t target) {
	s.readKey(w, r, t, false)
}

// readKey answers a GET's or HEAD's status and headers; ok means the body
// should follow.
func (s *Server) readKey(w http.ResponseWriter, r *http.Request, t target, full bool) (e sqlitekv.Entry, ok bool) {
	e, err := s.getEntry(r, t, full)
	if err != nil {
		s.writeError(w, r, err)
		return e, false
	}
	condition := readCondition(r, e)
	if condition == http.StatusPreconditionFailed {
		s.writeError(w, r, sqlitekv.Errorf(sqlitekv.CodeCASMismatch, "Precondition failed: current version does not match If-Match"))
		return e, false
	}
	writeEntryHeaders(w, e)
	if condition == http.StatusNotModified {
		w.WriteHeader(http.StatusNotModified)
		return e, false
	}
	return e, true
}

// getEntry parses a read; path and time travel are GET-only.
func (s *Server) getEntry(r *http.Request, t target, full bool) (sqlitekv.Entry, error) {
	q := t.q
	req := sqlitekv.GetRequest{Key: t.key}
	var err error
	if req.Table, err = q.table(); err != nil {
		return sqlitekv.Entry{}, err
	}
	if full {
		if req.Path, err = q.path(); err != nil {
			return sqlitekv.Entry{}, err
		}
		if req.At, err = q.atTimestamp(); err != nil {
			return sqlitekv.Entry{}, err
		}
	}
	rebuild, err := q.boolean("rebuild", false)
	if err != nil {
		return sqlitekv.Entry{}, err
	}
	db, err := s.open(q, false)
	if err != nil {
		return sqlitekv.Entry{}, err
	}
	defer db.Release()
	if err := rebuildIf(r, db, rebuild, req.Table); err != nil {
		return sqlitekv.Entry{}, err
	}
	return db.Get(r.Context(), req)
}

func writeEntryHeaders(w http.ResponseWriter, e sqlitekv.Entry) {
	h := w.Header()
	h.Set("Content-Type", e.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(e.Value)))
	if hasETag(e) {
		h.Set("ETag", etag(e.Version))
	}
	if e.CreatedAt != 0 {
		h.Set("X-Created-At", strconv.FormatInt(e.CreatedAt/1000, 10))
	}
	h.Set("X-Updated-At", strconv.FormatInt(e.UpdatedAt/1000, 10))
	if e.ExpireAt != 0 {
		h.Set("X-Expire-At", strconv.FormatInt(e.ExpireAt/1000, 10))
	}
	if e.RefTarget != "" {
		h.Set("X-KV-Reference", "true")
		h.Set("X-KV-Reference-Target", url.PathEscape(e.RefTarget))
	}
}

type putResponse struct {
	Status  string `json:"status"`
	Success bool   `json:"success"`
	Key     string `json:"key"`
	Created bool   `json:"created"`
}

func (s *Server) handlePutKey(w http.ResponseWriter, r *http.Request, t target) {
	req, db, err := s.parsePut(r, t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := db.Put(r.Context(), req)
	db.Release()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(res.Version))
	writeJSON(w, http.StatusOK, putResponse{Status: "ok", Success: true, Key: t.key, Created: res.Created})
}

func (s *Server) parsePut(r *http.Request, t target) (req sqlitekv.PutRequest, db *actors.DB, err error) {
	q := t.q
	req.Key, req.MaxValue = t.key, s.cfg.MaxValueBytes
	if req.Table, err = q.table(); err != nil {
		return
	}
	if req.Path, err = q.path(); err != nil {
		return
	}
	if req.TTL, err = q.ttl(); err != nil {
		return
	}
	if req.NoHistory, err = q.noHistory(); err != nil {
		return
	}
	if req.Ref, err = q.boolean("ref", false); err != nil {
		return
	}
	if q.has("if_match") {
		req.IfMatch = []byte(q.Get("if_match"))
	}
	if req.Versions, err = versionConditions(r); err != nil {
		return
	}
	if req.Value, err = readBody(r, s.cfg.MaxValueBytes); err != nil {
		return
	}
	if req.ContentType, err = sqlitekv.InferContentType(r.Header.Get("Content-Type"), req.Value); err != nil {
		return
	}
	if len(req.Path) > 0 && !sqlitekv.ValidJSON(req.Value) {
		err = invalidParam("A write under path needs a JSON body")
		return
	}
	if len(req.Path) > 0 {
		// Spliced into a JSON document: it must say what it was sent as.
		if err = checkJSONText(req.Value); err != nil {
			return
		}
	}
	db, err = s.openForWrite(q)
	return
}

type deleteResponse struct {
	Status  string `json:"status"`
	Success bool   `json:"success"`
	Key     string `json:"key"`
	Deleted bool   `json:"deleted"`
}

func (s *Server) handleDeleteKey(w http.ResponseWriter, r *http.Request, t target) {
	err := s.deleteKey(r, t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, deleteResponse{Status: "ok", Success: true, Key: t.key, Deleted: true})
}

func (s *Server) deleteKey(r *http.Request, t target) (err error) {
	q := t.q
	req := sqlitekv.DeleteRequest{Key: t.key}
	if req.Table, err = q.table(); err != nil {
		return err
	}
	if req.NoHistory, err = q.noHistory(); err != nil {
		return err
	}
	if req.Versions, err = versionConditions(r); err != nil {
		return err
	}
	db, err := s.openForWrite(q)
	if err != nil {
		return err
	}
	defer db.Release()
	return db.Delete(r.Context(), req)
}

type incrResponse struct {
	Key      string `json:"key"`
	Value    int64  `json:"value"`
	Previous int64  `json:"previous"`
}

func (s *Server) handleIncr(w http.ResponseWriter, r *http.Request, t target) {
	s.incr(w, r, t, 1)
}

func (s *Server) handleDecr(w http.ResponseWriter, r *http.Request, t target) {
	s.incr(w, r, t, -1)
}

func (s *Server) incr(w http.ResponseWriter, r *http.Request, t target, sign int64) {
	res, err := s.incrKey(r, t, sign)
	s.reply(w, r, incrResponse{Key: t.key, Value: res.Value, Previous: res.Previous}, err)
}

func (s *Server) incrKey(r *http.Request, t target, sign int64) (sqlitekv.IncrResult, error) {
	q := t.q
	req := sqlitekv.IncrRequest{Key: t.key, MaxValue: s.cfg.MaxValueBytes}
	var err error
	if req.Table, err = q.table(); err != nil {
		return sqlitekv.IncrResult{}, err
	}
	if req.Delta, err = q.delta(); err != nil {
		return sqlitekv.IncrResult{}, err
	}
	req.Delta *= sign
	if req.Path, err = q.path(); err != nil {
		return sqlitekv.IncrResult{}, err
	}
	if req.NoHistory, err = q.noHistory(); err != nil {
		return sqlitekv.IncrResult{}, err
	}
	db, err := s.openForWrite(q)
	if err != nil {
		return sqlitekv.IncrResult{}, err
	}
	defer db.Release()
	return db.Incr(r.Context(), req)
}
