package sqlitekv

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/kvd/kvd/internal/jsontext"
)

// ArrayRequest is an atomic operation on a JSON array stored at Key (or at
// Path inside Key's document): Op is OpPush (append Value), OpPop (take the
// last element) or OpRemove (the element at Index, or every element equal
// to Value).
type ArrayRequest struct {
	Table, Key string
	Path       JSONPath
	Op         string
	Value      []byte
	Index      *int
	Versions   Versions // If-Match, If-None-Match
	NoHistory  bool
	MaxValue   int64 // push: the largest value it may leave (0: no limit)
}

// ArrayResult reports the array's new length; Value is the popped element
// (nil when the array was empty), Removed how many elements remove took.
type ArrayResult struct {
	Length  int
	Value   []byte
	Removed int
}

// Array applies an ArrayRequest. A missing key (or path) is an empty array
// for push, and not found for pop and remove.
func (w *Writer) Array(req ArrayRequest) (res ArrayResult, err error) {
	t, err := w.table(req.Table, req.Op == OpPush)
	if err != nil {
		return res, err
	}
	if t == nil {
		return res, missingTable(req.Versions, "Key not found")
	}
	err = w.atomically(func() error {
		cur, exists, err := w.loadForWrite(t, req.Key)
		if err == nil {
			err = t.mayBuildOn(req.Key, cur, exists, req.Versions, req.Op)
		}
		if err != nil {
			return err
		}
		arr, err := loadArray(cur.Value, exists, req.Path, req.Op == OpPush)
		if err != nil {
			return err
		}
		changed := true
		switch req.Op {
		case OpPush:
			el := compactJSON(req.Value)
			if len(req.Path) == 0 && nestingDepth(el) >= MaxJSONDepth { // the array is one level more
				return errBuildsTooDeep // under a path, jsonSet checks the document it builds
			}
			arr = append(arr, el)
		case OpPop:
			if len(arr) == 0 {
				changed = false
				break
			}
			res.Value, arr = arr[len(arr)-1], arr[:len(arr)-1]
		case OpRemove:
			if arr, res.Removed, err = removeFrom(arr, req); err != nil {
				return err
			}
			changed = res.Removed > 0
		}
		res.Length = len(arr)
		if !changed {
			return nil
		}
		next := Entry{ContentType: underPathType(cur, exists), ExpireAt: cur.ExpireAt}
		if next.Value, err = storeArray(cur.Value, req.Path, arr); err != nil {
			return err
		}
		if req.Op == OpPush { // pop and remove only shrink it, even one past the limit
			if err := fits(next.Value, req.MaxValue); err != nil {
				return err
			}
		}
		_, err = w.writeVersion(t, req.Key, req.Op, cur, exists, next, !req.NoHistory)
		return err
	})
	return res, err
}

// loadArray decodes only the array itself (never the whole document).
func loadArray(doc []byte, exists bool, path JSONPath, missingIsEmpty bool) ([]json.RawMessage, error) {
	if !exists {
		if missingIsEmpty {
			return nil, nil
		}
		return nil, Errorf(CodeKeyNotFound, "Key not found")
	}
	if !ValidJSON(doc) { // bytes of JSON's shape with others in a string are no JSON
		return nil, errNotJSON
	}
	fragment := doc
	if len(path) > 0 {
		var err error
		if fragment, err = jsonGet(doc, path); err != nil {
			if CodeOf(err) == CodePathNotFound && missingIsEmpty {
				return nil, nil
			}
			return nil, err
		}
	}
	var arr []json.RawMessage
	if !bytes.HasPrefix(bytes.TrimSpace(fragment), []byte("[")) || json.Unmarshal(fragment, &arr) != nil {
		return nil, Errorf(CodeInvalidParameters, "Value at path is not a JSON array")
	}
	return arr, nil
}

// storeArray writes arr back at path. Its elements keep their bytes:
// json.Marshal would escape <, > and & in every one of them, so that the
// array no longer matched an if_match of its old text.
func storeArray(doc []byte, path JSONPath, arr []json.RawMessage) ([]byte, error) {
	encoded := []byte{'['}
	for i, el := range arr {
		if i > 0 {
			encoded = append(encoded, ',')
		}
		encoded = append(encoded, el...)
	}
	encoded = append(encoded, ']')
	if len(path) == 0 {
		return encoded, nil
	}
	return jsonSet(doc, path, encoded)
}

func removeFrom(arr []json.RawMessage, req ArrayRequest) ([]json.RawMessage, int, error) {
	if req.Index != nil {
		i := *req.Index
		if i < 0 || i >= len(arr) {
			return nil, 0, Errorf(CodeInvalidParameters, "index %d is out of range for an array of %d", i, len(arr))
		}
		return append(arr[:i], arr[i+1:]...), 1, nil
	}
	want, err := decodeKeepingNumbers(req.Value)
	if err != nil {
		return nil, 0, Errorf(CodeInvalidParameters, "The value to remove is not JSON")
	}
	if flaw := jsontext.Check(req.Value); flaw != nil { // sameElement takes want as exact
		return nil, 0, Errorf(CodeInvalidParameters, "The value to remove holds %s", flaw)
	}
	wantText := bytes.TrimSpace(req.Value)
	kept := arr[:0]
	for _, el := range arr {
		if !sameElement(bytes.TrimSpace(el), wantText, want) {
			kept = append(kept, el)
		}
	}
	return kept, len(arr) - len(kept), nil
}

// sameElement is sameJSON for an element as stored, whose strings must
// say exactly what they hold, decoding it only where its text cannot
// tell: a value of another kind (its first byte), a number (numberKey),
// a literal, a string without escapes. Decoding every element held the
// writer three seconds over an array of two million numbers, seven times
// a push's time.
func sameElement(el, wantText []byte, want any) bool {
	kind := jsonKind(el[0])
	switch {
	case kind != jsonKind(wantText[0]):
		return false
	case kind == '0':
		return numberKey(json.Number(el)) == numberKey(json.Number(wantText))
	case kind == 't' || kind == 'f' || kind == 'n':
		return bytes.Equal(el, wantText)
	case kind == '"' && bytes.IndexByte(el, '\\') < 0 && bytes.IndexByte(wantText, '\\') < 0:
		return bytes.Equal(el, wantText)
	}
	v, err := decodeKeepingNumbers(el)
	// A lone surrogate escape ("\ud800", which only a plain PUT can
	// store) decodes as U+FFFD, as "\ufffd" does, yet says something
	// else. No value to remove can say it (kvd refuses it in every body),
	// so such an element matches none.
	return err == nil && sameJSON(v, want) && jsontext.Check(el) == nil
}

// jsonKind is the kind of JSON value that starts with c: '0' for a
// number, else c itself ('{', '[', '"', or t, f, n of a literal).
func jsonKind(c byte) byte {
	if c == '-' || c >= '0' && c <= '9' {
		return '0'
	}
	return c
}

// compactJSON strips insignificant space from an element pushed.
func compactJSON(v []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return v
	}
	return buf.Bytes()
}

// decodeKeepingNumbers decodes v keeping its numbers' text, which
// sameJSON compares exactly: as float64, 2^53 and 2^53+1 would be one.
func decodeKeepingNumbers(v []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var out any
	return out, d.Decode(&out)
}

// sameJSON compares two decoded JSON values by content, as remove
// promises: members in any order, strings however escaped ("x" and
// "\u0078"), numbers by value (1, 1.0 and 1e0).
func sameJSON(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			if bv, ok := b[k]; !ok || !sameJSON(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameJSON(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		return ok && numberKey(a) == numberKey(b)
	}
	return a == b // strings, booleans, null
}

// numberKey is a JSON number's value in one spelling: sign, digits with
// no leading or trailing zeros, and the power of ten, so that 1, 1.0 and
// 1e0 are "1e0". It works on the text because math/big takes tens of
// milliseconds over an exponent like 1e1000000, and an array of such
// numbers would hold up the database's writer.
func numberKey(n json.Number) string {
	s := string(n)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mantissa, exp := s, int64(0)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.ParseInt(s[i+1:], 10, 64)
		if err != nil || e > 1<<50 || e < -(1<<50) {
			// Beyond any float: the same text is equal, E or e, + or none.
			return strings.NewReplacer("E+", "e", "e+", "e", "E", "e").Replace(string(n))
		}
		mantissa, exp = s[:i], e
	}
	whole, frac, _ := strings.Cut(mantissa, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	exp -= int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	if trimmed == "" {
		return "0"
	}
	return sign + trimmed + "e" + strconv.FormatInt(exp, 10)
}
