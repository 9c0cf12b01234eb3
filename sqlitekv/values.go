package sqlitekv

import (
	"mime"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxKeyBytes         = 1024
	maxContentTypeBytes = 255

	contentTypeJSON   = "application/json"
	contentTypeText   = "text/plain"
	contentTypeBinary = "application/octet-stream"
)

// ValidateKey enforces the key contract: 1..1024 bytes of UTF-8 without
// control characters.
func ValidateKey(key string) error {
	if key == "" {
		return Errorf(CodeInvalidParameters, "Key must not be empty")
	}
	if len(key) > maxKeyBytes {
		return Errorf(CodeInvalidParameters, "Key is longer than %d bytes", maxKeyBytes)
	}
	if !utf8.ValidString(key) {
		return Errorf(CodeInvalidParameters, "Key must be valid UTF-8")
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return Errorf(CodeInvalidParameters, "Key must not contain control characters")
		}
	}
	return nil
}

// InferContentType decides how a value is labelled. A declared JSON type (or
// none) is only kept when the body really is JSON; otherwise the label falls
// back to what the bytes are, so GET never claims JSON it cannot parse.
func InferContentType(declared string, body []byte) (string, error) {
	declared = strings.TrimSpace(declared)
	if len(declared) > maxContentTypeBytes {
		return "", Errorf(CodeInvalidParameters, "Content-Type is longer than %d bytes", maxContentTypeBytes)
	}
	for _, r := range declared {
		if r < 0x20 || r == 0x7f {
			return "", Errorf(CodeInvalidParameters, "Content-Type must not contain control characters")
		}
	}
	// History, batch reads and watch show it in JSON, which would turn
	// other bytes into U+FFFD: the label read back would not be the one sent.
	if !utf8.ValidString(declared) {
		return "", Errorf(CodeInvalidParameters, "Content-Type must be UTF-8")
	}
	if declared != "" {
		// It is echoed back as a header on every read: it must parse.
		mediaType, _, err := mime.ParseMediaType(declared)
		if err != nil || !strings.Contains(mediaType, "/") {
			return "", Errorf(CodeInvalidParameters, "Content-Type is not a valid media type (type/subtype)")
		}
		if mediaType == RefContentType { // a reference however it is sent, ref=true or this header
			if err := validateRefTarget(body); err != nil {
				return "", err
			}
			return RefContentType, nil // in one spelling: reads know a reference by it
		}
		if mediaType != contentTypeJSON {
			return declared, nil
		}
	}
	switch label := sniffContentType(body); {
	case label == contentTypeJSON && declared != "":
		return declared, nil
	case label == contentTypeText && JSONTooDeep(body):
		// Labelled text, a document would come back as a string.
		return "", ErrJSONTooDeep
	default:
		return label, nil
	}
}

// relabel is the label of a directory-mode file edited from outside,
// whose key was last written as old: old's label while the new bytes are
// of the same kind as old's (JSON, text or binary), since its writer
// declared it for bytes of that kind (text/markdown stays so); else what
// the bytes say. A reference edited by hand is a plain value.
func relabel(old Entry, data []byte) string {
	label := sniffContentType(data)
	if old.ContentType == "" || old.ContentType == RefContentType || label != sniffContentType(old.Value) {
		return label
	}
	return old.ContentType
}

// sniffContentType labels a value by its bytes alone: JSON, else text when
// it is UTF-8, else binary. A file put in a directory-mode folder from
// outside is labelled so.
func sniffContentType(body []byte) string {
	switch {
	case ValidJSON(body):
		return contentTypeJSON
	case utf8.Valid(body):
		return contentTypeText
	default:
		return contentTypeBinary
	}
}

// IsJSONContentType reports whether a stored value is labelled JSON
// (application/json or any +json type).
func IsJSONContentType(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mediaType == contentTypeJSON || strings.HasSuffix(mediaType, "+json"))
}

// parseCounter reads a stored value, or the number under a path, as a
// counter: an integer as JSON writes one (a minus or none, no plus, no
// leading zero) within int64. Spaces, tabs and line breaks around it are
// tolerated: `echo 5 | curl --data-binary @-` stores "5\n". "+5" and
// "007", which strconv takes, are refused, as Redis's INCR refuses them:
// no document labelled JSON could hold them, and incr rewrites them in
// another form.
func parseCounter(value []byte) (int64, error) {
	s := strings.Trim(string(value), jsonSpace)
	n, err := strconv.ParseInt(s, 10, 64) // refuses a fraction or an exponent
	if err != nil || numberEnd([]byte(s), 0) != len(s) {
		return 0, Errorf(CodeInvalidParameters, "Value at path is not numeric")
	}
	return n, nil
}

// addDelta adds with an overflow check: a counter must never wrap.
func addDelta(n, delta int64) (int64, error) {
	sum := n + delta
	switch {
	case delta > 0 && sum < n:
		return 0, Errorf(CodeInvalidParameters, "Increment would overflow a 64-bit integer")
	case delta < 0 && sum > n:
		return 0, Errorf(CodeInvalidParameters, "Decrement would overflow a 64-bit integer")
	}
	return sum, nil
}
