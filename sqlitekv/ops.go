package sqlitekv

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/buger/jsonparser"
	"github.com/kvd/kvd/internal/jsontext"
)

// PutRequest stores Value under Key. The CAS fields are preconditions:
// IfMatch compares the stored bytes (or, with Path, the JSON at Path),
// Versions checks the ETag version (If-Match, If-None-Match).
type PutRequest struct {
	Table, Key  string
	Value       []byte
	ContentType string
	TTL         time.Duration
	Path        JSONPath
	IfMatch     []byte // nil: no value precondition
	Versions    Versions
	Ref         bool // Value is the key this key refers to
	NoHistory   bool
	MaxValue    int64 // with Path: the largest document it may leave (0: no limit)
}

type PutResult struct {
	Created bool
	Version int64
}

type DeleteRequest struct {
	Table, Key string
	Versions   Versions
	NoHistory  bool
}

// IncrRequest adds Delta (negative for decr) to the integer at Key or at
// Path inside Key's JSON document.
type IncrRequest struct {
	Table, Key string
	Delta      int64
	Path       JSONPath
	Versions   Versions // If-Match, If-None-Match
	NoHistory  bool
	MaxValue   int64 // with Path: the largest document it may leave (0: no limit)
}

type IncrResult struct {
	Value, Previous int64
}

// Put applies a PutRequest.
func (w *Writer) Put(req PutRequest) (res PutResult, err error) {
	if req.Ref {
		if req.Path.Given() {
			return res, Errorf(CodeInvalidParameters, "A reference cannot be written under a path")
		}
		if err := validateRefTarget(req.Value); err != nil {
			return res, err
		}
	}
	t, err := w.table(req.Table, true)
	if err != nil {
		return res, err
	}
	err = w.checkedFirst(func() error {
		cur, exists, expired, err := t.current(req.Key, w.writeNow())
		if err != nil {
			return err
		}
		if !exists && (req.Path.Given() || req.IfMatch != nil || req.Versions.Absent) {
			if err := t.fileLeftOut(req.Key); err != nil {
				return err
			}
		}
		if err := checkPreconditions(req, cur, exists); err != nil {
			return err
		}
		if req.Path.Given() {
			if err := notARef(cur, exists, "a write under a path"); err != nil {
				return err
			}
		}
		next := Entry{Value: req.Value, ContentType: req.ContentType, ExpireAt: ttlExpiry(w.writeNow(), req.TTL)}
		if req.Ref {
			next.ContentType = RefContentType
		}
		if req.Path.Given() {
			if next.Value, err = jsonSet(cur.Value, req.Path, req.Value); err != nil {
				return err
			}
			if err := fits(next.Value, req.MaxValue); err != nil {
				return err
			}
			next.ContentType = underPathType(cur, exists)
		}
		if err := w.expireIf(t, req.Key, expired); err != nil {
			return err
		}
		res.Created = !exists
		res.Version, err = w.writeVersion(t, req.Key, OpSet, cur, exists, next, !req.NoHistory)
		return err
	})
	return res, err
}

// fits refuses a value a write has built (a document changed at a path, an
// array pushed to) that came out larger than limit: the limit holds for
// what is stored, not only for what a request carries.
func fits(value []byte, limit int64) error {
	if limit > 0 && int64(len(value)) > limit {
		return Errorf(CodePayloadTooLarge, "The value would be larger than %d bytes", limit)
	}
	return nil
}

func checkPreconditions(req PutRequest, cur Entry, exists bool) error {
	if err := req.Versions.check(cur, exists); err != nil || req.IfMatch == nil {
		return err
	}
	if !exists {
		return Errorf(CodeCASKeyMissing, "Compare-and-swap failed: key does not exist")
	}
	if !valueMatches(cur.Value, req.Path, req.IfMatch) {
		return Errorf(CodeCASMismatch, "Compare-and-swap failed: current value does not match if_match")
	}
	return nil
}

// valueMatches compares byte for byte. Under a path the JSON fragment is
// compared as JSON, as remove compares (members in any order, strings
// however escaped, numbers by value), and a string fragment also matches
// its unquoted text, since that is what a client naturally sends.
func valueMatches(stored []byte, path JSONPath, want []byte) bool {
	if !path.Given() {
		return bytes.Equal(stored, want)
	}
	fragment, err := jsonGet(stored, path)
	if err != nil {
		return false
	}
	if bytes.Equal(fragment, want) {
		return true
	}
	if wantJSON := bytes.TrimSpace(want); json.Valid(wantJSON) && jsontext.Check(wantJSON) == nil {
		if v, err := decodeToCompare(wantJSON); err == nil && sameElement(bytes.TrimSpace(fragment), v) {
			return true
		}
	}
	n := len(fragment)
	if n < 2 || fragment[0] != '"' || fragment[n-1] != '"' {
		return false
	}
	s, err := jsonparser.ParseString(fragment[1 : n-1])
	return err == nil && s == string(want) && jsontext.Check(fragment) == nil // a lone surrogate says no U+FFFD
}

// Delete removes a key. A key that already expired answers KEY_EXPIRED and
// is removed as an expiry.
func (w *Writer) Delete(req DeleteRequest) error {
	t, err := w.table(req.Table, false)
	if err != nil {
		return err
	}
	if t == nil {
		return missingTable(req.Versions, "Key not found")
	}
	expired := false
	err = w.checkedFirst(func() error {
		var cur Entry
		var exists bool
		var err error
		cur, exists, expired, err = t.current(req.Key, w.writeNow())
		if err != nil {
			return err
		}
		if err := req.Versions.check(cur, exists); err != nil {
			return err // before the 404: If-Match on a missing (or expired) key is a failed precondition
		}
		if expired {
			return w.removeExpired(t, req.Key)
		}
		if !exists && t.fileLeftOut(req.Key) == nil {
			return Errorf(CodeKeyNotFound, "Key not found")
		}
		return w.removeVersion(t, req.Key, OpDelete, !req.NoHistory)
	})
	if err == nil && expired {
		// The removal above is kept; the client still learns why nothing was deleted.
		return Errorf(CodeKeyExpired, "Key expired")
	}
	return err
}

// Incr adds req.Delta. A missing key (or field) starts at 0; the key keeps
// its TTL and content type.
func (w *Writer) Incr(req IncrRequest) (res IncrResult, err error) {
	t, err := w.table(req.Table, true)
	if err != nil {
		return res, err
	}
	err = w.checkedFirst(func() error {
		cur, exists, expired, err := t.current(req.Key, w.writeNow())
		if err == nil {
			err = t.mayBuildOn(req.Key, cur, exists, req.Versions, "incr")
		}
		if err != nil {
			return err
		}
		next := Entry{ContentType: contentTypeText, ExpireAt: cur.ExpireAt}
		if exists {
			next.ContentType = cur.ContentType
		}
		if req.Path.Given() {
			next.Value, res.Previous, res.Value, err = jsonIncr(cur.Value, req.Path, req.Delta)
			if err == nil {
				err = fits(next.Value, req.MaxValue)
			}
			next.ContentType = underPathType(cur, exists)
		} else {
			res, next.Value, err = incrCounter(cur, exists, req.Delta)
		}
		if err != nil {
			return err
		}
		op := OpIncr
		if req.Delta < 0 {
			op = OpDecr
		}
		if err := w.expireIf(t, req.Key, expired); err != nil {
			return err
		}
		_, err = w.writeVersion(t, req.Key, op, cur, exists, next, !req.NoHistory)
		return err
	})
	return res, err
}

// incrCounter adds delta to the counter cur holds: none (a new key) and a
// stored JSON null count as 0, as null does under a path (jsonIncr).
func incrCounter(cur Entry, exists bool, delta int64) (IncrResult, []byte, error) {
	var res IncrResult
	if exists && !isJSONNull(cur) {
		n, err := parseCounter(cur.Value)
		if err != nil {
			return res, nil, err
		}
		res.Previous = n
	}
	n, err := addDelta(res.Previous, delta)
	if err != nil {
		return res, nil, err
	}
	res.Value = n
	return res, strconv.AppendInt(nil, n, 10), nil
}

func isJSONNull(e Entry) bool {
	return IsJSONContentType(e.ContentType) && string(bytes.TrimSpace(e.Value)) == "null"
}

// mayBuildOn refuses a write that builds on key's value (incr, an array
// operation) where that value cannot be built on: a directory-mode file
// too large to import or unreadable, a failed If-Match or If-None-Match, a reference.
func (t *writeTable) mayBuildOn(key string, cur Entry, exists bool, v Versions, op string) error {
	if !exists {
		if err := t.fileLeftOut(key); err != nil {
			return err
		}
	}
	if err := v.check(cur, exists); err != nil {
		return err
	}
	return notARef(cur, exists, op)
}

// Expire removes key if it is still past its expiry when the owner gets to
// it (a read saw it expired, but a write may have renewed it since, or,
// in directory mode, a person may have changed its file).
func (w *Writer) Expire(table, key string) error {
	t, err := w.table(table, false)
	if err != nil || t == nil {
		return err
	}
	_, err = w.expireKey(t, key)
	return err
}

// loadForWrite reads key's entry for a write that replaces it. A key past its
// expiry is expired first (recorded in history, row removed), so the write
// finds it absent and history shows the expiry between the two values.
func (w *Writer) loadForWrite(t *writeTable, key string) (Entry, bool, error) {
	cur, exists, expired, err := t.current(key, w.writeNow())
	if err == nil {
		err = w.expireIf(t, key, expired)
	}
	return cur, exists, err
}

// expireIf records key's expiry if it had passed: a write calls it once
// nothing can refuse it any more, so a refused write leaves the expired
// row to the sweep, as the rollback of its savepoint would.
func (w *Writer) expireIf(t *writeTable, key string, expired bool) error {
	if !expired {
		return nil
	}
	return w.removeExpired(t, key)
}

func (w *Writer) removeExpired(t *writeTable, key string) error {
	return w.removeVersion(t, key, OpExpire, true)
}

// writeVersion writes one version of key: it appends the history row, then
// the values row (the entry, with the write's op number as its version).
// The values row is written here (storeValue: UPDATE or INSERT), or, for a
// write without a savepoint, held in memory and written once at the
// group's end by writeHeld, called from Commit and before anything on the
// writer's connection reads the values table (heldvalues.go). A large
// value the history row recorded is not written again (largevalues.go).
func (w *Writer) writeVersion(t *writeTable, key, op string, cur Entry, exists bool, next Entry, recorded bool) (int64, error) {
	opNumber, ts, err := w.appendHistory(t, key, op, &next, recorded)
	if err != nil {
		return 0, err
	}
	next.CreatedAt, next.UpdatedAt, next.Version = ts, ts, opNumber
	if exists {
		next.CreatedAt = cur.CreatedAt
	}
	inHistory := keptInHistory(next)
	if w.holdRows {
		t.holdValue(key, next, exists, inHistory)
		return opNumber, nil
	}
	return opNumber, t.storeValue(key, next, exists, inHistory)
}

// removeVersion is writeVersion's counterpart for a write that leaves key
// absent (op: a delete, an expiry, a rollback): its history row, then the
// values row's removal.
func (w *Writer) removeVersion(t *writeTable, key, op string, recorded bool) error {
	if _, _, err := w.appendHistory(t, key, op, nil, recorded); err != nil {
		return err
	}
	return t.delete(key)
}

// underPathType is the content type of a document written under a JSON
// path: the stored one where that names JSON, else application/json (the
// key was missing, or held an empty value or one labelled as text).
func underPathType(cur Entry, exists bool) string {
	if exists && IsJSONContentType(cur.ContentType) {
		return cur.ContentType
	}
	return contentTypeJSON
}
