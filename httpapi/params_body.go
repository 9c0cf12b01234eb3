package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
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
	if entries := longestList(body, list); entries > sqlitekv.MaxBatch {
		return checkBatchSize(entries, list)
	}
	return decodeJSONBody(body, into)
}

// longestList counts, without decoding body, the entries of each member
// encoding/json would decode as list (it matches names in any case, and
// keeps the last of a name given twice; checkMembers refuses both after
// the decoding), and returns the most.
func longestList(body []byte, list string) (most int) {
	jsonparser.ObjectEach(body, func(name, value []byte, kind jsonparser.ValueType, _ int) error {
		if kind == jsonparser.Array && strings.EqualFold(string(name), list) {
			n := 0
			jsonparser.ArrayEach(value, func([]byte, jsonparser.ValueType, int, error) { n++ })
			most = max(most, n)
		}
		return nil
	})
	return most
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
	for _, list := range []string{"keys", "exclude_keys"} {
		if n := longestList(body, list); n > MaxListedKeys {
			return invalidParam("Invalid JSON body: %s must hold at most %d keys, got %d", list, MaxListedKeys, n)
		}
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
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) || json.Unmarshal(body, into) != nil {
		return invalidParam("Invalid JSON body: expected a JSON object")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	return checkMembers(body, into)
}

// messageOf is err's message without the code in front, to quote inside
// the error about a body field.
func messageOf(err error) string {
	if e := (*sqlitekv.Error)(nil); errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
