package httpapi

import (
	"encoding/base64"

	"github.com/kvd/kvd/sqlitekv"
)

// DefaultMaxAnswerBytes bounds an answer that lists values when the
// config names no bound: above the default largest value (10 MiB), so
// one value always fits on its own.
const DefaultMaxAnswerBytes = 16 << 20

// answerBudget bounds one answer that lists values, each item measured as
// the answer will show it (see sqlitekv.Budget).
func (s *Server) answerBudget(measure func(key string, e *sqlitekv.Entry) int) sqlitekv.Budget {
	return sqlitekv.Budget{Max: int(s.cfg.MaxAnswerBytes), Measure: measure}
}

// The measures below are upper bounds of what an item takes in its JSON
// answer, so the items of a page never add up past the budget: the key and
// the value as jsonValue or historyValue show them, plus room for field
// names, punctuation and numbers.

// itemBytes measures an item of batch/get, a table snapshot, a diff or a
// listing. The key counts twice: a snapshot names a binary value's key
// again in binary_keys, a gap's key in gap_keys. key "" is a diff's second
// value.
func itemBytes(key string, e *sqlitekv.Entry) int {
	n := 64 + 2*jsonStringBytes(key)
	if e != nil {
		n += jsonValueBytes(*e) + jsonStringBytes(e.ContentType)
	}
	return n
}

// historyEntryBytes measures a history entry: its own value (key set; the
// key itself is shown once per answer, not per entry) or the old value
// shown beside it (key "").
func historyEntryBytes(key string, e *sqlitekv.Entry) int {
	n := 32 // "raw_old_value":"",
	if key != "" {
		n = 192 // op_number, timestamp, op, unrecorded and the field names
	}
	if e != nil {
		n += historyValueBytes(*e) + jsonStringBytes(e.ContentType)
	}
	return n
}

// jsonValueBytes is the length of jsonValue's form of e: JSON as stored
// (the encoder only compacts it: no HTML escaping), text as a JSON
// string, else base64.
func jsonValueBytes(e sqlitekv.Entry) int {
	switch formOf(e) {
	case formJSON:
		return len(e.Value)
	case formText:
		return jsonStringBytes(e.Value)
	}
	return base64Bytes(len(e.Value))
}

// historyValueBytes is the length of historyValue's form of e.
func historyValueBytes(e sqlitekv.Entry) int {
	if isJSONValue(e) {
		return len(e.Value)
	}
	return base64Bytes(len(e.Value))
}

func base64Bytes(n int) int { return base64.StdEncoding.EncodedLen(n) + 2 }

// jsonStringBytes is the length of s as a JSON string the way
// encoding/json writes it without HTML escaping (s valid UTF-8).
func jsonStringBytes[T ~string | ~[]byte](s T) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n += 2
		case c < 0x20:
			n += 6 // \u00XX
		case c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9):
			n, i = n+6, i+2 // U+2028, U+2029 are always escaped
		default:
			n++
		}
	}
	return n
}
