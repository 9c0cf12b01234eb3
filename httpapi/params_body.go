package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/buger/jsonparser"
	"github.com/kvd/kvd/sqlitekv"
)

// readBody reads at most limit bytes; more is PAYLOAD_TOO_LARGE, a body
// that would overdraw the server's budget of bodies in memory is
// OVERLOADED (see bodyMeter), and one that did not arrive in time
// REQUEST_TIMEOUT (see bodyWatch).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if coding := contentCoding(r); coding != "" {
		return nil, invalidParam("Content-Encoding %q is not supported: kvd stores the bytes it receives, so send them without a content coding", coding)
	}
	if r.ContentLength > limit {
		return nil, sqlitekv.Errorf(sqlitekv.CodePayloadTooLarge, "Body is larger than %d bytes", limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		return nil, bodyReadError(err)
	case int64(len(body)) > limit:
		return nil, sqlitekv.Errorf(sqlitekv.CodePayloadTooLarge, "Body is larger than %d bytes", limit)
	}
	return body, nil
}

// bodyReadError is the answer to a body that could not be read.
func bodyReadError(err error) error {
	switch {
	case errors.Is(err, errBodyBudget):
		return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Too many request bodies held in memory; retry shortly")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return sqlitekv.Errorf(codeRequestTimeout, "The request body did not arrive in time")
	}
	return invalidParam("Could not read request body")
}

// refuseBody refuses a write that sends a body to an endpoint that takes
// none (route names it): a client that put its parameters there,
// `{"delta":5}` to an incr or `{"if_match":…}` to a DELETE, would
// otherwise see them silently ignored. A body that says nothing passes,
// as a generated client may send one: none, whitespace, an empty JSON
// object or null.
func refuseBody(r *http.Request, route string) error {
	if r.ContentLength == 0 || r.Body == http.NoBody { // a server's request always has a Body
		return nil
	}
	// {} or null fit in said bytes with room for whitespace; a body
	// declared longer says something, and is refused unread.
	const said = 64
	if r.ContentLength <= said {
		body, err := io.ReadAll(io.LimitReader(r.Body, said+1))
		if err != nil {
			return bodyReadError(err)
		}
		var members map[string]json.RawMessage
		if len(body) <= said && (len(bytes.TrimSpace(body)) == 0 || json.Unmarshal(body, &members) == nil && len(members) == 0) {
			return nil
		}
	}
	return invalidParam("%s takes no request body: give its parameters in the query string", route)
}

// contentCoding is the first content coding of a request's body other
// than identity, or "". kvd applies none: a gzip body would be stored as
// its compressed bytes and served back as the type it claimed.
func contentCoding(r *http.Request) string {
	for _, line := range r.Header.Values("Content-Encoding") {
		for _, coding := range strings.Split(line, ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				return coding
			}
		}
	}
	return ""
}

// decodeBatch reads a JSON object body whose member list holds the
// batch's entries; anything else is "Invalid JSON body". The entries are
// counted before the body is decoded: 40 MiB of {} decoded into items
// took 4 GB before the count refused them.
func (s *Server) decodeBatch(r *http.Request, into any, list string) error {
	body, err := readBody(r, BatchBodyLimit(s.cfg.MaxValueBytes))
	if err != nil {
		return err
	}
	if err := checkListLength(body, sqlitekv.MaxBatch, checkBatchSize, list); err != nil {
		return err
	}
	return decodeJSONBody(body, into)
}

// checkListLength refuses, without decoding body and in one pass over it,
// a member of lists holding more than limit entries (tooMany(n, list) says
// why). encoding/json would also decode a member whose name is one of
// lists in another case ("Items"), which checkMembers refuses only after
// the decoding: that name is refused here, as checkMembers would. A body
// that is no JSON object is said to be, as decodeJSONBody would, rather
// than what its first members hold.
func checkListLength(body []byte, limit int, tooMany func(n int, list string) error, lists ...string) error {
	var err error
	jsonparser.ObjectEach(body, func(name, value []byte, kind jsonparser.ValueType, _ int) error {
		i := slices.IndexFunc(lists, func(list string) bool { return strings.EqualFold(string(name), list) })
		switch {
		case i < 0:
		case string(name) != lists[i]:
			err = invalidParam("Invalid JSON body: unknown member %q", name)
		case kind == jsonparser.Array:
			n := 0
			jsonparser.ArrayEach(value, func([]byte, jsonparser.ValueType, int, error) { n++ })
			if n > limit {
				err = tooMany(n, lists[i])
			}
		}
		return err
	})
	if err != nil && !isJSONObject(body) {
		return notAnObject()
	}
	return err
}

// decodeKeyLists decodes a table rollback's JSON object body (an empty
// body is {}), refusing one whose keys or exclude_keys names more than
// MaxListedKeys before decoding it: 40 MiB of one-letter keys took 735 MB
// decoded.
func (s *Server) decodeKeyLists(r *http.Request, into any) error {
	body, err := readBody(r, BatchBodyLimit(s.cfg.MaxValueBytes))
	if err != nil || len(body) == 0 {
		return err
	}
	tooMany := func(n int, list string) error {
		return invalidParam("Invalid JSON body: %s must hold at most %d keys, got %d", list, MaxListedKeys, n)
	}
	if err := checkListLength(body, MaxListedKeys, tooMany, "keys", "exclude_keys"); err != nil {
		return err
	}
	return decodeJSONBody(body, into)
}

// MaxListedKeys is the most keys a table rollback's body may list.
const MaxListedKeys = 100_000

// decodeJSONBody decodes body into into once it is a JSON object whose
// text kvd would store as sent (checkJSONText). A member into does not
// name is refused, as an unknown query parameter is: a misspelt "keys"
// must not leave a table rollback to take every key. So is a name in
// another case, or given twice (checkMembers). The decoding comes first:
// it is also the check that body is JSON, which the other two need, and a
// batch body is read once for each of the three.
func decodeJSONBody(body []byte, into any) error {
	if !opensAnObject(body) || json.Unmarshal(body, into) != nil {
		return notAnObject()
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	return checkMembers(body, into)
}

// isJSONObject reports whether body is one JSON object.
func isJSONObject(body []byte) bool { return opensAnObject(body) && json.Valid(body) }

// opensAnObject reports whether body's first token opens an object: JSON
// that is valid but no object (null, []) decodes into a struct without a
// word.
func opensAnObject(body []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{"))
}

func notAnObject() error { return invalidParam("Invalid JSON body: expected a JSON object") }

// messageOf is err's message without the code in front, to quote inside
// the error about a body field.
func messageOf(err error) string {
	if e := (*sqlitekv.Error)(nil); errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
