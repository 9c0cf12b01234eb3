package sqlitekv

import (
	"bytes"
	"cmp"
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
		var encoded []byte
		switch req.Op {
		case OpPush:
			el := compactJSON(req.Value)
			if len(req.Path) == 0 && nestingDepth(el) >= MaxJSONDepth { // the array is one level more
				return errBuildsTooDeep // under a path, jsonSet checks the document it builds
			}
			encoded, res.Length = rebuildArray(arr, func(int, []byte) bool { return true }, el)
		case OpPop:
			if encoded, res.Value, res.Length = withoutLast(arr); res.Value == nil {
				return nil // empty: nothing to write
			}
		case OpRemove:
			if encoded, res.Length, res.Removed, err = removeFrom(arr, req); err != nil || res.Removed == 0 {
				return err
			}
		}
		next := Entry{ContentType: underPathType(cur, exists), ExpireAt: cur.ExpireAt}
		if next.Value, err = storeArray(cur.Value, exists, req.Path, encoded); err != nil {
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

// loadArray finds the array's text (never decoding the document, nor the
// array: an array decoded element by element took 430 MB for a 10 MiB
// value); nil for push's missing array.
func loadArray(doc []byte, exists bool, path JSONPath, missingIsEmpty bool) ([]byte, error) {
	if !exists {
		if missingIsEmpty {
			return nil, nil
		}
		return nil, Errorf(CodeKeyNotFound, "Key not found")
	}
	fragment := doc
	if len(path) == 0 && !ValidJSON(doc) { // bytes of JSON's shape with others in a string are no JSON
		return nil, errNotJSON
	} else if len(path) > 0 {
		var err error
		if fragment, err = jsonGet(doc, path); err != nil { // which checks doc as above
			if CodeOf(err) == CodePathNotFound && missingIsEmpty {
				return nil, nil
			}
			return nil, err
		}
	}
	fragment = bytes.TrimSpace(fragment)
	if !bytes.HasPrefix(fragment, []byte("[")) {
		return nil, Errorf(CodeInvalidParameters, "Value at path is not a JSON array")
	}
	return fragment, nil
}

func countElements(arr []byte) (n int) {
	eachElement(arr, func(int, []byte) bool { n++; return true })
	return n
}

// rebuildArray is arr with the elements keep keeps, and extra (if any)
// after them, and their number. Elements keep their bytes, joined by
// commas alone: json.Marshal would escape <, > and & in every one, so
// that the array no longer matched an if_match of its old text.
func rebuildArray(arr []byte, keep func(i int, el []byte) bool, extra []byte) (encoded []byte, kept int) {
	encoded = make([]byte, 1, len(arr)+len(extra)+2)
	encoded[0] = '['
	add := func(el []byte) {
		if kept > 0 {
			encoded = append(encoded, ',')
		}
		encoded = append(encoded, el...)
		kept++
	}
	eachElement(arr, func(i int, el []byte) bool {
		if keep(i, el) {
			add(el)
		}
		return true
	})
	if extra != nil {
		add(extra)
	}
	return append(encoded, ']'), kept
}

// withoutLast is arr rebuilt as rebuildArray does without its last
// element, that element (nil when arr is empty) and the length left, in
// one walk: counted first, a pop walked the array twice.
func withoutLast(arr []byte) (encoded, last []byte, length int) {
	encoded = make([]byte, 1, len(arr))
	encoded[0] = '['
	eachElement(arr, func(i int, el []byte) bool {
		if i > 1 {
			encoded = append(encoded, ',')
		}
		encoded = append(encoded, last...) // the one before el, known now not to be the last
		last, length = el, i
		return true
	})
	return append(encoded, ']'), bytes.Clone(last), length
}

// storeArray writes the array's new text back at path. A document that
// exists was read as JSON by loadArray, so it is not read again for that.
func storeArray(doc []byte, exists bool, path JSONPath, encoded []byte) ([]byte, error) {
	switch {
	case len(path) == 0:
		return encoded, nil
	case exists:
		return setInJSON(doc, path, encoded)
	}
	return jsonSet(doc, path, encoded)
}

// removeFrom is arr without the element at req.Index, or without every
// element equal to req.Value; with the array's new length and how many
// it took.
func removeFrom(arr []byte, req ArrayRequest) (encoded []byte, length, removed int, err error) {
	if req.Index != nil {
		i, n := *req.Index, countElements(arr)
		if i < 0 || i >= n {
			return nil, 0, 0, Errorf(CodeInvalidParameters, "index %d is out of range for an array of %d", i, n)
		}
		encoded, length = rebuildArray(arr, func(at int, _ []byte) bool { return at != i }, nil)
		return encoded, length, 1, nil
	}
	want, err := decodeToCompare(req.Value)
	if err != nil {
		return nil, 0, 0, Errorf(CodeInvalidParameters, "The value to remove is not JSON")
	}
	if flaw := jsontext.Check(req.Value); flaw != nil { // sameElement takes want as exact
		return nil, 0, 0, Errorf(CodeInvalidParameters, "The value to remove holds %s", flaw)
	}
	encoded, length = rebuildArray(arr, func(_ int, el []byte) bool {
		if sameElement(el, want) {
			removed++
			return false
		}
		return true
	}, nil)
	return encoded, length, removed, nil
}

// compactJSON strips insignificant space from an element pushed.
func compactJSON(v []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return v
	}
	return buf.Bytes()
}

// numberKey is a JSON number's value in one spelling: sign, digits with
// no leading or trailing zeros, and the power of ten, so that 1, 1.0 and
// 1e0 are "1e0", and 0, -0 and 0e999 are "0". It works on the text
// because math/big takes tens of milliseconds over an exponent like
// 1e1000000, and an array of such numbers would hold up the database's
// writer; the power of ten too, which may be beyond any integer type
// (1e99999999999999999999 is 10e99999999999999999998).
func numberKey(n json.Number) string {
	s := string(n)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mantissa, exp := s, "0"
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mantissa, exp = s[:i], s[i+1:]
	}
	whole, frac, _ := strings.Cut(mantissa, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	trimmed := strings.TrimRight(digits, "0")
	if trimmed == "" {
		return "0"
	}
	return sign + trimmed + "e" + addToInteger(exp, int64(len(digits)-len(trimmed)-len(frac)))
}

// addToInteger is the decimal integer text x (a sign or none, digits,
// leading zeros allowed, as a JSON exponent) plus d, in canonical
// decimal; d is small (at most a number's length), x may be of any size.
func addToInteger(x string, d int64) string {
	negative := strings.HasPrefix(x, "-")
	digits := strings.TrimLeft(strings.TrimLeft(x, "+-"), "0")
	if len(digits) <= 18 { // within int64, and so is the sum
		v, _ := strconv.ParseInt(cmp.Or(digits, "0"), 10, 64)
		if negative {
			v = -v
		}
		return strconv.FormatInt(v+d, 10)
	}
	// |x| ≥ 10^18 > |d|: the sum has x's sign, and |x| moves by ±d.
	if negative {
		d = -d
	}
	out := []byte(digits)
	carry := d
	for i := len(out) - 1; i >= 0 && carry != 0; i-- {
		v := int64(out[i]-'0') + carry%10
		carry /= 10
		switch {
		case v < 0:
			v += 10
			carry--
		case v > 9:
			v -= 10
			carry++
		}
		out[i] = byte('0' + v)
	}
	if carry > 0 {
		out = append([]byte(strconv.FormatInt(carry, 10)), out...)
	}
	sum := strings.TrimLeft(string(out), "0")
	if negative {
		return "-" + sum
	}
	return sum
}
