package client

import (
	"fmt"
	"strings"
)

// tableLevel are the one-segment paths under /kv/ that name table-level
// endpoints rather than keys.
var tableLevel = map[string]bool{"snapshot": true, "diff": true, "rollback": true, "watch": true}

// keyPath is the escaped path of a key, or of an operation on it ("incr",
// "history", ...), for method. Escaping every "/" of the key is what lets
// kvd tell the key "a/incr" (a%2Fincr) from incr on "a" (a/incr).
func keyPath(method, key, op string) (string, error) {
	if key == "" {
		// It would address the listing endpoint, not a key.
		return "", argErrorf(method, "key must not be empty")
	}
	escaped := EscapeKey(key)
	if tableLevel[escaped] {
		// Sent as is, these words would reach kvd's table-level endpoints
		// (a GET of the key "snapshot" would get the table's snapshot).
		// Escaping the first letter too still names the key, so kvd
		// answers for the key: no key may take these names (400).
		escaped = fmt.Sprintf("%%%02X", escaped[0]) + escaped[1:]
	}
	p := APIPrefix + "/kv/" + escaped
	if op != "" {
		p += "/" + op
	}
	return p, nil
}

// EscapeKey percent-encodes a key as JavaScript's encodeURIComponent does,
// which is what the contract's reference client sends: everything but
// A-Z a-z 0-9 - _ . ! ~ * ' ( ) is escaped, byte by byte of the UTF-8
// encoding. "/" becomes %2F, so "users/alice" is never read as an
// operation on "users". For a path of its own, put the result after
// /api/v1/sqlite/kv/; the client's methods also escape the first letter
// of the keys snapshot, diff and rollback, which name table endpoints.
func EscapeKey(s string) string {
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
