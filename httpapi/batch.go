package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// BatchBodyLimit bounds a batch body: room for 100 values of the largest
// allowed size would be a gigabyte, so a batch gets four values' worth.
func BatchBodyLimit(maxValueBytes int64) int64 { return 4 * maxValueBytes }

type batchKeysBody struct {
	Keys []json.RawMessage `json:"keys"`
}

type batchSetBody struct {
	Items []struct {
		Key         json.RawMessage `json:"key"`
		Value       json.RawMessage `json:"value"`
		ContentType *string         `json:"content_type"`
		TTL         json.RawMessage `json:"ttl"`
		Encoding    string          `json:"encoding"`
	} `json:"items"`
}

func checkBatchSize(n int, what string) error {
	if n < 1 || n > sqlitekv.MaxBatch {
		return invalidParam("Invalid JSON body: %s must hold 1 to %d entries, got %d", what, sqlitekv.MaxBatch, n)
	}
	return nil
}

// batchKey decodes and validates a key of a batch body; validate is
// sqlitekv's ValidateKey, or s.validateNewKey where the batch writes. where
// names the key in an error (items[3].key); it is made only for one.
func batchKey(raw json.RawMessage, where func() string, validate func(string) error) (string, error) {
	b, ok := jsonString(raw)
	if !ok {
		return "", invalidParam("Invalid JSON body: %s must be a string", where())
	}
	key := string(b)
	if err := validate(key); err != nil {
		return "", invalidParam("Invalid JSON body: %s: %s", where(), messageOf(err))
	}
	return key, nil
}

// jsonString is what a string of a body decodeJSONBody accepted holds; ok
// is false for any other JSON value. Such a body is valid JSON and its
// strings hold what they say (checkJSONText), so a string without an
// escape holds its bytes as they are, and only one with an escape is
// decoded: most of a batch's bytes are its values.
func jsonString(raw json.RawMessage) (s []byte, ok bool) {
	switch {
	case len(raw) < 2 || raw[0] != '"':
		return nil, false
	case bytes.IndexByte(raw, '\\') < 0:
		return raw[1 : len(raw)-1], true
	}
	var decoded string
	if json.Unmarshal(raw, &decoded) != nil {
		return nil, false
	}
	return []byte(decoded), true
}

// parseBatchKeys reads {"keys":[...]} for batch get and delete.
func (s *Server) parseBatchKeys(r *http.Request) ([]string, error) {
	var body batchKeysBody
	if err := s.decodeBatch(r, &body, "keys"); err != nil {
		return nil, err
	}
	if err := checkBatchSize(len(body.Keys), "keys"); err != nil {
		return nil, err
	}
	keys := make([]string, len(body.Keys))
	for i, raw := range body.Keys {
		var err error
		where := func() string { return fmt.Sprintf("keys[%d]", i) }
		if keys[i], err = batchKey(raw, where, sqlitekv.ValidateKey); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// parseBatchItems validates every item before anything is written.
func (s *Server) parseBatchItems(r *http.Request) ([]sqlitekv.BatchItem, error) {
	var body batchSetBody
	if err := s.decodeBatch(r, &body, "items"); err != nil {
		return nil, err
	}
	if err := checkBatchSize(len(body.Items), "items"); err != nil {
		return nil, err
	}
	items := make([]sqlitekv.BatchItem, len(body.Items))
	for i, in := range body.Items {
		where := func() string { return fmt.Sprintf("items[%d]", i) }
		key, err := batchKey(in.Key, func() string { return where() + ".key" }, s.validateNewKey)
		if err != nil {
			return nil, err
		}
		value, ok := jsonString(in.Value)
		if !ok {
			return nil, invalidParam("Invalid JSON body: %s.value must be a string", where())
		}
		// A JSON string cannot carry bytes that are not UTF-8, so binary
		// values come base64-encoded, as batch/get returns them.
		switch in.Encoding {
		case "":
		case "base64":
			raw := make([]byte, base64.StdEncoding.DecodedLen(len(value)))
			n, err := base64.StdEncoding.Decode(raw, value)
			if err != nil {
				return nil, invalidParam("Invalid JSON body: %s.value is not valid base64", where())
			}
			value = raw[:n]
		default:
			return nil, invalidParam("Invalid JSON body: %s.encoding must be base64 when given", where())
		}
		if int64(len(value)) > s.cfg.MaxValueBytes {
			return nil, sqlitekv.Errorf(sqlitekv.CodePayloadTooLarge, "%s.value is larger than %d bytes", where(), s.cfg.MaxValueBytes)
		}
		item := sqlitekv.BatchItem{Key: key, Value: value}
		declared := ""
		if in.ContentType != nil {
			declared = *in.ContentType
		}
		if item.ContentType, err = sqlitekv.InferContentType(declared, item.Value); err != nil {
			if errors.Is(err, sqlitekv.ErrJSONTooDeep) {
				return nil, invalidParam("Invalid JSON body: %s.value is JSON nested deeper than %d levels, more than kvd reads", where(), sqlitekv.MaxJSONDepth)
			}
			return nil, invalidParam("Invalid JSON body: %s.content_type: %s", where(), messageOf(err))
		}
		if item.TTL, err = batchTTL(in.TTL); err != nil {
			return nil, invalidParam("Invalid JSON body: %s.ttl must be a positive whole number of seconds (at most %d)", where(), int64(maxTTL/time.Second))
		}
		items[i] = item
	}
	return items, nil
}

func batchTTL(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil || n <= 0 || n > int64(maxTTL/time.Second) {
		return 0, fmt.Errorf("bad ttl")
	}
	return time.Duration(n) * time.Second, nil
}

type batchSetResponse struct {
	Status  string   `json:"status"`
	Success bool     `json:"success"`
	Count   int      `json:"count"`
	Created []string `json:"created"`
}

func (s *Server) handleBatchSet(w http.ResponseWriter, r *http.Request, t target) {
	req, ref, err := s.parseBatchSet(r, t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var created []string
	err = s.withDB(r, ref, func(db *actors.DB) (err error) {
		created, err = db.BatchSet(r.Context(), req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, batchSetResponse{Status: "ok", Success: true, Count: len(req.Items), Created: created})
}

func (s *Server) parseBatchSet(r *http.Request, t target) (req sqlitekv.BatchSetRequest, ref dbRef, err error) {
	if req.Table, err = t.q.table(); err != nil {
		return req, ref, err
	}
	if req.NoHistory, err = t.q.noHistory(); err != nil {
		return req, ref, err
	}
	if req.Items, err = s.parseBatchItems(r); err != nil {
		return req, ref, err
	}
	ref, err = t.q.writeDB()
	return req, ref, err
}

type batchDeleteResponse struct {
	Status  string `json:"status"`
	Success bool   `json:"success"`
	Deleted int    `json:"deleted"`
}

func (s *Server) handleBatchDelete(w http.ResponseWriter, r *http.Request, t target) {
	req, ref, err := s.parseBatchDelete(r, t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var n int
	err = s.withDB(r, ref, func(db *actors.DB) (err error) {
		n, err = db.BatchDelete(r.Context(), req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, batchDeleteResponse{Status: "ok", Success: true, Deleted: n})
}

func (s *Server) parseBatchDelete(r *http.Request, t target) (req sqlitekv.BatchDeleteRequest, ref dbRef, err error) {
	if req.Table, err = t.q.table(); err != nil {
		return req, ref, err
	}
	if req.NoHistory, err = t.q.noHistory(); err != nil {
		return req, ref, err
	}
	if req.Keys, err = s.parseBatchKeys(r); err != nil {
		return req, ref, err
	}
	ref, err = t.q.writeDB()
	return req, ref, err
}

// batchValue is one value of a batch get: JSON inline when it is JSON,
// a string when it is text, base64 otherwise.
type batchValue struct {
	Value       any    `json:"value"`
	ContentType string `json:"content_type"`
	Encoding    string `json:"encoding,omitempty"`
}

func newBatchValue(e sqlitekv.Entry) *batchValue {
	v := &batchValue{ContentType: e.ContentType}
	var binary bool
	if v.Value, binary = jsonValue(e); binary {
		v.Encoding = "base64"
	}
	return v
}

// batchGetResponse maps every key read to its value (null when missing).
// Keys the byte budget left unread are not in Values but in NextKeys, to
// ask for again.
type batchGetResponse struct {
	Values    map[string]*batchValue `json:"values"`
	Truncated bool                   `json:"truncated"`
	NextKeys  []string               `json:"next_keys,omitempty"`
}

func (s *Server) handleBatchGet(w http.ResponseWriter, r *http.Request, t target) {
	table, keys, err := s.parseBatchGet(r, t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var found map[string]sqlitekv.Entry
	var rest []string
	err = s.withDB(r, t.q.readDB(), func(db *actors.DB) (err error) {
		found, rest, err = db.BatchGet(r.Context(), table, keys, s.answerBudget(itemBytes))
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAnswer(w, r, newBatchGetResponse(keys, found, rest))
}

func (s *Server) parseBatchGet(r *http.Request, t target) (table string, keys []string, err error) {
	if table, err = t.q.table(); err != nil {
		return "", nil, err
	}
	keys, err = s.parseBatchKeys(r)
	return table, keys, err
}

// newBatchGetResponse answers every key asked for but those the byte
// budget left unread (rest).
func newBatchGetResponse(keys []string, found map[string]sqlitekv.Entry, rest []string) batchGetResponse {
	unread := make(map[string]bool, len(rest))
	for _, k := range rest {
		unread[k] = true
	}
	res := batchGetResponse{Values: make(map[string]*batchValue, len(keys)), Truncated: len(rest) > 0, NextKeys: rest}
	for _, k := range keys {
		if unread[k] {
			continue
		}
		res.Values[k] = nil
		if e, ok := found[k]; ok {
			res.Values[k] = newBatchValue(e)
		}
	}
	return res
}
