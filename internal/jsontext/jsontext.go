// Package jsontext finds the strings of a JSON document that do not say
// exactly what was sent: bytes that are not UTF-8, or a \u escape of half
// a surrogate pair. encoding/json decodes either as U+FFFD without a
// word, so a key stored or named would differ from the key sent (one a
// URL path refuses would pass) and two keys sent could become one. kvd
// checks its JSON bodies with it, and kvctl its batch files.
package jsontext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Flaw is a string of a document that encoding/json would not decode to
// what it says.
type Flaw struct {
	// Where is the string's place as a path (items[3].key), "" for the
	// document itself; for a member name, the place of the object holding
	// it.
	Where string
	// InName is true when the string is a member name.
	InName bool
	// Problem is what is wrong with it: "invalid UTF-8", or
	// `an unpaired surrogate escape \ud800`.
	Problem string
}

// String says where and what: "items[3].key: invalid UTF-8",
// "items[0]: a member name holds invalid UTF-8"; at the top of the
// document, what alone.
func (f *Flaw) String() string {
	what := f.Problem
	if f.InName {
		what = "a member name holds " + what
	}
	if f.Where == "" {
		return what
	}
	return f.Where + ": " + what
}

// Check returns the first flawed string of doc, or nil when every string
// says exactly what it holds. doc must already be valid JSON; on anything
// else the scanner stops without a verdict (it never reads past the end).
func Check(doc []byte) *Flaw {
	var at where
	expectName := false // the next string is an object's member name
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case '{':
			at.enter(false)
			expectName = true
		case '[':
			at.enter(true)
		case '}', ']':
			at.leave()
			expectName = false
		case ',':
			expectName = at.next()
		case '"':
			end, problem := scanString(doc, i+1)
			if problem != "" {
				if expectName {
					return &Flaw{Where: at.forName(), InName: true, Problem: problem}
				}
				return &Flaw{Where: at.String(), Problem: problem}
			}
			if expectName {
				at.name(doc[i+1 : end])
				expectName = false
			}
			i = end
		}
	}
	return nil
}

// scanString reads the string starting at doc[start] (after its opening
// quote) up to its closing quote, and says what is wrong with it, if
// anything.
func scanString(doc []byte, start int) (end int, problem string) {
	i := start
	for i < len(doc) {
		switch c := doc[i]; {
		case c == '"':
			return i, ""
		case c == '\\' && i+5 < len(doc) && doc[i+1] == 'u':
			r := hex4(doc[i+2 : i+6])
			switch {
			case r >= 0xD800 && r < 0xDC00: // high half: a low half must follow
				if i+11 < len(doc) && doc[i+6] == '\\' && doc[i+7] == 'u' {
					if low := hex4(doc[i+8 : i+12]); low >= 0xDC00 && low < 0xE000 {
						i += 12
						continue
					}
				}
				return i, fmt.Sprintf(`an unpaired surrogate escape \u%s`, doc[i+2:i+6])
			case r >= 0xDC00 && r < 0xE000: // a low half alone
				return i, fmt.Sprintf(`an unpaired surrogate escape \u%s`, doc[i+2:i+6])
			}
			i += 6
		case c == '\\':
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(doc[i:])
			if r == utf8.RuneError && size == 1 {
				return i, "invalid UTF-8"
			}
			i += size
		}
	}
	return len(doc), ""
}

// hex4 reads four hex digits (valid JSON guarantees them); -1 if not.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// where is the scanner's place in the document, as the containers it is
// inside: an array's index, or an object's current member name.
type where struct{ steps []step }

type step struct {
	array  bool
	index  int
	named  bool
	member []byte
}

func (w *where) enter(array bool) { w.steps = append(w.steps, step{array: array}) }

func (w *where) leave() {
	if len(w.steps) > 0 {
		w.steps = w.steps[:len(w.steps)-1]
	}
}

// next moves past a comma; it reports whether a member name comes next.
func (w *where) next() bool {
	if len(w.steps) == 0 {
		return false
	}
	top := &w.steps[len(w.steps)-1]
	if top.array {
		top.index++
		return false
	}
	top.named = false
	return true
}

func (w *where) name(member []byte) {
	if len(w.steps) > 0 {
		top := &w.steps[len(w.steps)-1]
		top.named, top.member = true, member
	}
}

// forName is where a member name sits: the object holding it.
func (w *where) forName() string {
	if len(w.steps) > 0 {
		w.steps[len(w.steps)-1].named = false
	}
	return w.String()
}

// maxMemberInPath bounds a member name quoted in an error message.
const maxMemberInPath = 40

// String is the place as a path: items[3].key, or "" at the top.
func (w *where) String() string {
	var b strings.Builder
	for _, s := range w.steps {
		switch {
		case s.array:
			fmt.Fprintf(&b, "[%d]", s.index)
		case s.named:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.Write(shortened(s.member))
		}
	}
	return b.String()
}

// shortened cuts a long member name at a rune boundary.
func shortened(member []byte) []byte {
	if len(member) <= maxMemberInPath {
		return member
	}
	n := maxMemberInPath
	for n > 0 && !utf8.RuneStart(member[n]) {
		n--
	}
	return append(member[:n:n], "..."...)
}
