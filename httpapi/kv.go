package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

func (s *Server) handleGetKey(w http.ResponseWriter, r *http.Request, t target) {
	e, release, ok := s.readKey(w, r, t, true)
	if ok {
		w.Write(e.Value)
		release()
	}
}

func (s *Server) handleHeadKey(w http.ResponseWriter, r *http.Request, t target) {
	s.readKey(w, r, t, false)
}

// readKey answers a GET's or HEAD's status and headers; ok means the body
// should follow, holding answer memory until release.
func (s *Server) readKey(w http.ResponseWriter, r *http.Request, t target, full bool) (e sqlitekv.Entry, release func(), ok bool) {
	get, err := parseGet(t, full)
	if err != nil {
		s.writeError(w, r, err)
		return e, nil, false
	}
	err = s.withDB(r, t.q.readDB(), func(db *actors.DB) error {
		if err := rebuildIf(r, db, get.rebuild, get.req.Table); err != nil {
			return err
		}
		e, err = db.Get(r.Context(), get.req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return e, nil, false
	}
	condition := readCondition(r, e)
	if condition == http.StatusPreconditionFailed {
		s.writeError(w, r, sqlitekv.Errorf(sqlitekv.CodeCASMismatch, "Precondition failed: current version does not match If-Match"))
		return e, nil, false
	}
	if full && condition != http.StatusNotModified {
		if release, err = s.holdAnswer(len(e.Value)); err != nil {
			s.writeError(w, r, err)
			return e, nil, false
		}
	}
	writeEntryHeaders(w, e)
	if condition == http.StatusNotModified {
		w.WriteHeader(http.StatusNotModified)
		return e, nil, false
	}
	return e, release, full
}

// getRequest is a parsed read of a key.
type getRequest struct {
	req     sqlitekv.GetRequest
	rebuild bool
}

// parseGet parses a read; path and time travel are GET-only.
func parseGet(t target, full bool) (get getRequest, err error) {
	q := t.q
	get.req = sqlitekv.GetRequest{Key: t.key}
	if get.req.Table, err = q.table(); err != nil {
		return get, err
	}
	if full {
		if get.req.Path, err = q.path(); err != nil {
			return get, err
		}
		if get.req.At, err = q.atTimestamp(); err != nil {
			return get, err
		}
	}
	get.rebuild, err = q.boolean("rebuild", false)
	return get, err
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

func (r putResponse) appendJSON(b []byte) []byte {
	b = appendJSONString(append(b, `{"status":`...), r.Status)
	b = strconv.AppendBool(append(b, `,"success":`...), r.Success)
	b = appendJSONString(append(b, `,"key":`...), r.Key)
	b = strconv.AppendBool(append(b, `,"created":`...), r.Created)
	return append(b, '}')
}

func (s *Server) handlePutKey(w http.ResponseWriter, r *http.Request, t target) {
	req, ref, err := s.parsePut(r, t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var res sqlitekv.PutResult
	err = s.withDB(r, ref, func(db *actors.DB) (err error) {
		res, err = db.Put(r.Context(), req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(res.Version))
	writeJSON(w, http.StatusOK, putResponse{Status: "ok", Success: true, Key: t.key, Created: res.Created})
}

func (s *Server) parsePut(r *http.Request, t target) (req sqlitekv.PutRequest, ref dbRef, err error) {
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
	req.Versions = t.versions
	if req.Value, err = readBody(r, s.cfg.MaxValueBytes); err != nil {
		return
	}
	if req.ContentType, err = sqlitekv.InferContentType(r.Header.Get("Content-Type"), req.Value); err != nil {
		return
	}
	if req.Path.Given() {
		// Spliced into a JSON document: it must be JSON, and say what it
		// was sent as (checkJSONText names bytes that are not UTF-8).
		if sqlitekv.JSONTooDeep(req.Value) { // sent as text/plain, say
			err = sqlitekv.ErrJSONTooDeep
			return
		}
		if !json.Valid(req.Value) {
			err = invalidParam("A write under path needs a JSON body")
			return
		}
		if err = checkJSONText(req.Value); err != nil {
			return
		}
	}
	ref, err = q.writeDB()
	return
}

type deleteResponse struct {
	Status  string `json:"status"`
	Success bool   `json:"success"`
	Key     string `json:"key"`
	Deleted bool   `json:"deleted"`
}

func (r deleteResponse) appendJSON(b []byte) []byte {
	b = appendJSONString(append(b, `{"status":`...), r.Status)
	b = strconv.AppendBool(append(b, `,"success":`...), r.Success)
	b = appendJSONString(append(b, `,"key":`...), r.Key)
	b = strconv.AppendBool(append(b, `,"deleted":`...), r.Deleted)
	return append(b, '}')
}

func (s *Server) handleDeleteKey(w http.ResponseWriter, r *http.Request, t target) {
	req, ref, err := parseDelete(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.withDB(r, ref, func(db *actors.DB) error {
		return db.Delete(r.Context(), req)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, deleteResponse{Status: "ok", Success: true, Key: t.key, Deleted: true})
}

func parseDelete(t target) (req sqlitekv.DeleteRequest, ref dbRef, err error) {
	q := t.q
	req.Key = t.key
	if req.Table, err = q.table(); err != nil {
		return req, ref, err
	}
	if req.NoHistory, err = q.noHistory(); err != nil {
		return req, ref, err
	}
	req.Versions = t.versions
	ref, err = q.writeDB()
	return req, ref, err
}

type incrResponse struct {
	Key      string `json:"key"`
	Value    int64  `json:"value"`
	Previous int64  `json:"previous"`
}

func (r incrResponse) appendJSON(b []byte) []byte {
	b = appendJSONString(append(b, `{"key":`...), r.Key)
	b = strconv.AppendInt(append(b, `,"value":`...), r.Value, 10)
	b = strconv.AppendInt(append(b, `,"previous":`...), r.Previous, 10)
	return append(b, '}')
}

func (s *Server) handleIncr(w http.ResponseWriter, r *http.Request, t target) {
	s.incr(w, r, t, 1)
}

func (s *Server) handleDecr(w http.ResponseWriter, r *http.Request, t target) {
	s.incr(w, r, t, -1)
}

func (s *Server) incr(w http.ResponseWriter, r *http.Request, t target, sign int64) {
	req, ref, err := s.parseIncr(t, sign)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var res sqlitekv.IncrResult
	err = s.withDB(r, ref, func(db *actors.DB) (err error) {
		res, err = db.Incr(r.Context(), req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, incrResponse{Key: t.key, Value: res.Value, Previous: res.Previous})
}

func (s *Server) parseIncr(t target, sign int64) (req sqlitekv.IncrRequest, ref dbRef, err error) {
	q := t.q
	req = sqlitekv.IncrRequest{Key: t.key, Versions: t.versions, MaxValue: s.cfg.MaxValueBytes}
	if req.Table, err = q.table(); err != nil {
		return req, ref, err
	}
	if req.Delta, err = q.delta(); err != nil {
		return req, ref, err
	}
	req.Delta *= sign
	if req.Path, err = q.path(); err != nil {
		return req, ref, err
	}
	if req.NoHistory, err = q.noHistory(); err != nil {
		return req, ref, err
	}
	ref, err = q.writeDB()
	return req, ref, err
}
