package client

import (
	"errors"
	"fmt"
	"strings"
)

// errEmptyKey is refused before sending: an empty key would address the
// listing endpoint, not a key.
var errEmptyKey = errors.New("client: key must not be empty")

// tableLevel are the one-segment paths under /kv/ that name table-level
// endpoints rather than keys.
var tableLevel = map[string]bool{"snapshot": true, "diff": true, "rollback": true}

// keyPath is the escaped path of a key, or of an operation on it ("incr",
// "history", ...). Escaping every "/" of the key is what lets kvd tell the
// key "a/incr" (a%2Fincr) from incr on "a" (a/incr).
func keyPath(key, op string) (string, error) {
	if key == "" {
		return "", errEmptyKey
	}
	escaped := escapeKey(key)
	if tableLevel[escaped] {
		// Sent as is, these words would reach kvd's table-level endpoints
		// (a GET of the key "snapshot" would get the table's snapshot).
		// Escaping the first letter too still names the key, so kvd
		// answers for the key: no key may take these names (400).
		escaped = fmt.Sprintf("%%%02X", escaped[0]) + escaped[1:]
	}
	p := apiPrefix + "/kv/" + escaped
	if op != "" {
		p += "/" + op
	}
	return p, nil
}

// escapeKey percent-encodes like JavaScript's encodeURIComponent, which the
// contract's reference client uses: everything but A-Z a-z 0-9 - _ . ! ~ * ' ( )
// is escaped, byte by byte of the UTF-8 encoding.
func escapeKey(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreservedInComponent(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unreservedInComponent(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()", c) >= 0
}
