package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/kvd/kvd/sqlitekv"
)

// jsonValue presents a stored value inside a JSON answer: inline when it is
// JSON, a string when it is text, base64 otherwise (then binary is true).
func jsonValue(e sqlitekv.Entry) (v any, binary bool) {
	switch {
	case sqlitekv.IsJSONContentType(e.ContentType) && json.Valid(e.Value):
		return json.RawMessage(e.Value), false
	case (strings.HasPrefix(e.ContentType, "text/") || sqlitekv.IsJSONContentType(e.ContentType) ||
		e.ContentType == sqlitekv.RefContentType) && utf8.Valid(e.Value):
		return string(e.Value), false
	}
	return base64.StdEncoding.EncodeToString(e.Value), true
}

// unixSeconds shows a millisecond time as Unix seconds.
func unixSeconds(ms int64) float64 { return float64(ms) / 1000 }
