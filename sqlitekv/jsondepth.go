package sqlitekv

import "unicode/utf8"

// MaxJSONDepth is how deeply a value kvd takes as JSON may nest. Past
// 10,000 levels encoding/json refuses a document (json.Valid, decoding,
// json.Marshal of a json.RawMessage; RFC 8259 section 9 lets a parser set
// such a limit), and kvd's answers put a value up to four levels down in
// theirs (history: {"operations":[{"operation":{"new_value":V}}]}), which
// kvd's Go client and kvctl decode with encoding/json. Ten levels of room
// keep every answer readable. A deeper document could be stored but not
// shown inline, walked by a path or decoded: kvd refuses it where it
// would label or build JSON, and never shows one as JSON.
const MaxJSONDepth = 10000 - 10

// ErrJSONTooDeep refuses a value that is JSON but for its depth.
var ErrJSONTooDeep = Errorf(CodeInvalidParameters, "The value is JSON nested deeper than %d levels, more than kvd reads", MaxJSONDepth)

// errBuildsTooDeep refuses a write under a path, or a push, that would
// nest its document deeper than MaxJSONDepth.
var errBuildsTooDeep = Errorf(CodeInvalidParameters, "The document would be JSON nested deeper than %d levels, more than kvd reads", MaxJSONDepth)

// JSONTooDeep reports whether b is one JSON value nested deeper than
// MaxJSONDepth. The depth is measured first, so a usual value costs one
// quick pass over its bytes.
func JSONTooDeep(b []byte) bool {
	return nestingDepth(b) > MaxJSONDepth && utf8.Valid(b) && validAtAnyDepth(b)
}

// nestingDepth is the deepest a document's arrays and objects go, brackets
// inside strings left out. On text that is no JSON it is a bound, not a
// verdict.
func nestingDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++ // the escaped byte cannot end the string
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
