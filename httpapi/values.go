package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/kvd/kvd/sqlitekv"
)

// valueForm is how an answer shows a stored value.
type valueForm int

const (
	formJSON   valueForm = iota // inline
	formText                    // a JSON string
	formBase64                  // a JSON string of base64
)

// formOf: a value labelled JSON that is no JSON (a "+json" type kvd keeps
// as declared) goes in base64, not as a string: a client reads a string
// under a JSON type as the JSON text it is, and would get the bytes back
// with quotes around them.
func formOf(e sqlitekv.Entry) valueForm {
	switch {
	case isJSONValue(e):
		return formJSON
	case (strings.HasPrefix(e.ContentType, "text/") || e.ContentType == sqlitekv.RefContentType) && utf8.Valid(e.Value):
		return formText
	}
	return formBase64
}

func isJSONValue(e sqlitekv.Entry) bool {
	return sqlitekv.IsJSONContentType(e.ContentType) && sqlitekv.ValidJSON(e.Value)
}

// jsonValue presents a stored value inside a JSON answer: inline when it is
// JSON, a string when it is text, base64 otherwise (then binary is true).
func jsonValue(e sqlitekv.Entry) (v any, binary bool) {
	switch formOf(e) {
	case formJSON:
		return json.RawMessage(e.Value), false
	case formText:
		return string(e.Value), false
	}
	return base64.StdEncoding.EncodeToString(e.Value), true
}
