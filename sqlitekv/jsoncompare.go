package sqlitekv

import (
	"bytes"
	"encoding/json"

	"github.com/buger/jsonparser"
	"github.com/kvd/kvd/internal/jsontext"
)

// sameElement compares a JSON value as stored (valid, without the space
// around it) with a decoded one (decodeToCompare), as remove and an
// if_match under a path promise: members in any order, of a member named
// twice the last, strings however escaped ("x" and "\u0078"), numbers by
// value (1, 1.0 and 1e0).
//
// It reads the stored text once, front to back, comparing as it goes and
// decoding only a string with escapes, never the whole value: decoding
// every element held the writer three seconds over an array of two
// million numbers, and a 10 MiB one took 274 MB. Splitting each level
// into its parts before comparing them read a value nested D deep D
// times (33 s of the writer for a 10 MB document 1,000 deep), and doing
// so again for each stored element multiplied a body's size by the
// array's length (269 s for 1,000 stored elements and a 2 MB body).
//
// A string that does not say exactly what it decodes as (a lone
// surrogate escape, "\ud800", which decodes as U+FFFD as "\ufffd" does;
// only a plain PUT can store one) makes a value match none: a value to
// remove or compare cannot say it, as kvd refuses it in every body.
func sameElement(stored []byte, want any) bool {
	c := jsonCompare{doc: stored, skip: pathWalk{doc: stored}}
	same, _ := c.value(0, want)
	return same && jsontext.Check(stored) == nil
}

// decodeToCompare decodes a value for sameElement, each of its numbers
// as its numberKey: made once here, not again for each stored number
// compared with it (a 10 MB number took 87 s against 10,000 stored ones).
func decodeToCompare(v []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber() // as float64, 2^53 and 2^53+1 would be one
	var out any
	if err := d.Decode(&out); err != nil {
		return nil, err
	}
	return keyNumbers(out), nil
}

// numberValue is a number of a decoded value, as its numberKey.
type numberValue string

func keyNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		return numberValue(numberKey(v))
	case []any:
		for i := range v {
			v[i] = keyNumbers(v[i])
		}
	case map[string]any:
		for name, m := range v {
			v[name] = keyNumbers(m)
		}
	}
	return v
}

// jsonCompare reads a valid JSON document, comparing its values with
// decoded ones.
type jsonCompare struct {
	doc  []byte
	skip pathWalk // on no path: it only finds where values end
}

// value compares the value that starts at doc[i] with want and returns
// where it ends; what follows a difference is skipped, not compared.
func (c *jsonCompare) value(i int, want any) (same bool, end int) {
	switch c.doc[i] {
	case '{':
		if w, ok := want.(map[string]any); ok {
			return c.object(i, w)
		}
		return false, c.skip.value(i, 0, false)
	case '[':
		if w, ok := want.([]any); ok {
			return c.array(i, w)
		}
		return false, c.skip.value(i, 0, false)
	case '"':
		end = skipString(c.doc, i)
		w, ok := want.(string)
		return ok && sameString(c.doc[i+1:end-1], w), end
	}
	end = c.skip.value(i, 0, false)
	text := c.doc[i:end]
	switch w := want.(type) {
	case numberValue:
		isNumber := text[0] == '-' || text[0] >= '0' && text[0] <= '9'
		return isNumber && numberKey(json.Number(text)) == string(w), end
	case bool:
		return w && string(text) == "true" || !w && string(text) == "false", end
	case nil:
		return string(text) == "null", end
	}
	return false, end
}

// array compares the array at doc[i] with want, element by element.
func (c *jsonCompare) array(i int, want []any) (same bool, end int) {
	same, n := true, 0
	for i = skipJSONSpace(c.doc, i+1); c.doc[i] != ']'; n++ {
		if same && n < len(want) {
			same, end = c.value(i, want[n])
		} else {
			same, end = false, c.skip.value(i, 0, false)
		}
		if i = skipJSONSpace(c.doc, end); c.doc[i] == ',' {
			i = skipJSONSpace(c.doc, i+1)
		}
	}
	return same && n == len(want), i + 1
}

// object compares the object at doc[i] with want, member by member in any
// order; of a member named twice the last counts, as decoding keeps it.
func (c *jsonCompare) object(i int, want map[string]any) (same bool, end int) {
	other := false // a member want lacks: no later one makes up for it
	// made at a member want has, unsized: sized by want, it cost every
	// stored object want's size (9.5 s for 10,000 empty objects)
	var matched map[string]bool
	for i = skipJSONSpace(c.doc, i+1); c.doc[i] != '}'; {
		nameEnd := skipString(c.doc, i)
		name, err := decodedName(c.doc[i:nameEnd])
		i = skipJSONSpace(c.doc, skipJSONSpace(c.doc, nameEnd)+1) // past the colon
		w, ok := want[string(name)]
		if other = other || err != nil || !ok; other {
			end = c.skip.value(i, 0, false)
		} else {
			same, end = c.value(i, w)
			if matched == nil {
				matched = map[string]bool{}
			}
			matched[string(name)] = same
		}
		if i = skipJSONSpace(c.doc, end); c.doc[i] == ',' {
			i = skipJSONSpace(c.doc, i+1)
		}
	}
	if other || len(matched) != len(want) {
		return false, i + 1
	}
	for _, same := range matched {
		if !same {
			return false, i + 1
		}
	}
	return true, i + 1
}

// sameString compares a string's text as written (escapes and all,
// without its quotes) with a decoded string.
func sameString(written []byte, want string) bool {
	if bytes.IndexByte(written, '\\') < 0 {
		return string(written) == want
	}
	s, err := jsonparser.Unescape(written, nil)
	return err == nil && string(s) == want
}
