package sqlitekv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"runtime"
	"strings"
	"testing"
)

// FuzzRemoveMatchesDecodedEquality: remove's shortcuts on an element's
// text (sameElement) decide as comparing the decoded values does, except
// that an element with a string JSON decodes as other than it says (a
// lone surrogate escape, decoded as U+FFFD) matches nothing: the value to
// remove, which removeFrom holds to jsontext.Check, cannot say it. The
// oracle tells such strings its own way (saysExactly).
func FuzzRemoveMatchesDecodedEquality(f *testing.F) {
	for _, pair := range [][2]string{
		{`1`, `1.0`}, {`10e-1`, `1`}, {`-0`, `0`}, {`1e400`, `10e399`}, {`9007199254740993`, `9007199254740992`},
		{`"x"`, `"\u0078"`}, {`"a\"b"`, `"a\u0022b"`}, {`true`, `true`}, {`null`, `false`},
		{`{"a":1,"b":[2]}`, `{"b":[2.0],"a":1}`}, {`[1,"x"]`, `[1,"x"]`}, {`"1"`, `1`}, {`{}`, `[]`},
		{`1E2000000000000000`, `1e+2000000000000000`},
		{`"\ud800"`, `"\ufffd"`}, {`{"a":["x\udfff"]}`, `{"a":["x�"]}`}, {`"\ud83d\ude00"`, `"😀"`},
		{`{"a":1,"a":2}`, `{"a":2}`}, {`{"a":2,"a":1}`, `{"a":2}`}, {`{"\u0061":1}`, `{"a":1}`}, {`{"a\"b":[1,{"c":"x"}]}`, `{"a\u0022b":[1.0,{"c":"x"}]}`},
		{`{"a":1,"b":2}`, `{"a":1}`}, {`{"a":1}`, `{"a":1,"b":2}`}, {`{"\ud800":1}`, `{"\ufffd":1}`}, {`{ "a" : { } }`, `{"a":{}}`},
		{`{"a":"\ud800","a":1}`, `{"a":1}`}, {`[[1,2],[3]]`, `[[1,2],[3,4]]`}, {`[[1,2],3]`, `[[1,2]]`}, {`{"a":[1,{"b":[]}],"c":{}}`, `{"c":{},"a":[1.0,{"b":[]}]}`},
		{`[true,false,null]`, `[true,false,null]`}, {`[false]`, `[true]`},
	} {
		f.Add(pair[0], pair[1])
	}
	f.Fuzz(func(t *testing.T, el, want string) {
		if !ValidJSON([]byte(el)) || !ValidJSON([]byte(want)) {
			return
		}
		a, errA := decodeKeepingNumbers([]byte(el))
		b, errB := decodeKeepingNumbers([]byte(want))
		if errA != nil || errB != nil || !saysExactly(want) {
			t.Skip() // removeFrom refuses such a value
		}
		toCompare, err := decodeToCompare([]byte(want))
		must(t, err)
		if got, wantSame := sameElement(bytes.TrimSpace([]byte(el)), toCompare), saysExactly(el) && sameJSON(a, b); got != wantSame {
			t.Fatalf("sameElement(%s, %s) = %v, want %v (equal decoded, and el spells its strings exactly)", el, want, got, wantSame)
		}
	})
}

// decodeKeepingNumbers decodes v keeping its numbers' text, for sameJSON.
func decodeKeepingNumbers(v []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var out any
	return out, d.Decode(&out)
}

// sameJSON compares two decoded JSON values by content, as remove
// promises: members in any order, strings however escaped, numbers by
// value (numberKey).
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

// saysExactly reports whether every U+FFFD doc's strings decode to is one
// they spell, raw or as \ufffd: a lone surrogate escape decodes as one it
// does not spell. It counts over the decoder's tokens, so that a member
// name given twice is counted twice, and drops escaped backslashes first,
// since they start no escape.
func saysExactly(doc string) bool {
	spelled := strings.ReplaceAll(doc, `\\`, "")
	n := strings.Count(spelled, "\uFFFD") + strings.Count(strings.ToLower(spelled), `\ufffd`)
	d := json.NewDecoder(strings.NewReader(doc))
	d.UseNumber() // 1e400 is a token too
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok {
			n -= strings.Count(s, "\uFFFD")
		}
	}
	return n == 0
}

// FuzzEachElementSplitsAsDecoding: the array operations walk the array's
// text (eachElement) instead of decoding it; they must find the elements
// that decoding finds, with their bytes.
func FuzzEachElementSplitsAsDecoding(f *testing.F) {
	for _, arr := range []string{`[]`, `[ ]`, `[1]`, ` [ 1 , "a,b" , [2,[3]] , {"x":"]"} ]`, `["\"],", "\\", {}]`, `[[],{},""]`, "[\n1\t,2]"} {
		f.Add(arr)
	}
	f.Fuzz(func(t *testing.T, arr string) {
		var decoded []json.RawMessage
		if !ValidJSON([]byte(arr)) || json.Unmarshal([]byte(arr), &decoded) != nil {
			return
		}
		var walked []string
		eachElement(bytes.TrimSpace([]byte(arr)), func(i int, el []byte) bool {
			if i != len(walked) {
				t.Fatalf("index %d after %d elements", i, len(walked))
			}
			walked = append(walked, string(el))
			return true
		})
		if len(walked) != len(decoded) {
			t.Fatalf("%s: walked %q, decoded %d elements", arr, walked, len(decoded))
		}
		for i, el := range decoded {
			if walked[i] != string(bytes.TrimSpace(el)) {
				t.Fatalf("%s: element %d walked %q, decoded %q", arr, i, walked[i], el)
			}
		}
		// A pop's one walk: the elements but the last, joined as
		// rebuildArray joins them, and the last.
		encoded, last, length := withoutLast(bytes.TrimSpace([]byte(arr)))
		if len(walked) == 0 {
			if last != nil || length != 0 || string(encoded) != "[]" {
				t.Fatalf("%s: popped %q, left %s (%d)", arr, last, encoded, length)
			}
			return
		}
		n := len(walked) - 1
		if want := "[" + strings.Join(walked[:n], ",") + "]"; string(encoded) != want || string(last) != walked[n] || length != n {
			t.Fatalf("%s: popped %q, left %s (%d); want %q, %s (%d)", arr, last, encoded, length, walked[n], want, n)
		}
	})
}

// A pop, push or remove of a large array, and a failed compare of a
// large array or object, allocate about the value's size, not the tens
// of times that decoding it took (430 MB for a pop of a 10 MiB array of
// zeros, 274 MB for a failed if_match under a path).
func TestLargeJSON_ArrayOpsAndComparesAllocateAboutItsSize(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	arr := []byte("[" + strings.Repeat("0,", 1<<20) + "0]")
	_, err := w.Put(PutRequest{Table: DefaultTable, Key: "arr", Value: arr, ContentType: "application/json"})
	must(t, err)
	index := 5
	for _, req := range []ArrayRequest{
		{Op: OpPop}, {Op: OpPush, Value: []byte("1")}, {Op: OpRemove, Index: &index}, {Op: OpRemove, Value: []byte("1")},
	} {
		req.Table, req.Key, req.NoHistory = DefaultTable, "arr", true
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := w.Array(req)
		runtime.ReadMemStats(&after)
		must(t, err)
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8*uint64(len(arr)) {
			t.Errorf("%s of an array of %d bytes: %d MB allocated", req.Op, len(arr), allocated>>20)
		}
	}
	// A compare-and-swap under a path compares arrays element by element
	// and objects member by member: one that fails writes nothing, and
	// can be sent again and again.
	obj := append(append([]byte(`{"n":1,"x":`), arr...), '}')
	_, err = w.Put(PutRequest{Table: DefaultTable, Key: "obj", Value: obj, ContentType: "application/json"})
	must(t, err)
	whole, err := ParseJSONPath("$")
	must(t, err)
	for key, ifMatch := range map[string]string{"arr": "[0,0,1]", "obj": `{"x":[0,1],"n":1}`} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err = w.Put(PutRequest{Table: DefaultTable, Key: key, Path: whole, Value: []byte("1"), IfMatch: []byte(ifMatch)})
		runtime.ReadMemStats(&after)
		if CodeOf(err) != CodeCASMismatch {
			t.Fatalf("if_match %s under $: got %v, want a mismatch", ifMatch, err)
		}
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8*uint64(len(arr)) {
			t.Errorf("a failed compare with %s of %d bytes: %d MB allocated", ifMatch, len(arr), allocated>>20)
		}
	}
}

// TestRemoveByValue_ReadsItsBodyOnceNotPerElement: the value to remove is
// decoded once, and comparing it with an element costs what the element
// holds, not what the value does. Each of an array's elements of its kind
// re-read a 2 MB body (1,000 of them held the database's writer for
// 269 s), each object compared with a 10,000-member one made room for
// all of them (9.5 s for 10,000 empty objects), and each number spelt a
// 10 MB one again (87 s for 10,000).
func TestRemoveByValue_ReadsItsBodyOnceNotPerElement(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	members := make([]string, 10_000)
	for i := range members {
		members[i] = fmt.Sprintf(`"m%d":0`, i)
	}
	for _, tc := range []struct{ element, body string }{
		{"[]", "[" + strings.Repeat("0,", 10_000) + "0]"},
		{"{}", "{" + strings.Join(members, ",") + "}"},
		{"1", "2." + strings.Repeat("0", 100_000)},
	} {
		allocated := func(elements int) uint64 {
			arr := []byte("[" + strings.Repeat(tc.element+",", elements-1) + tc.element + "]")
			_, err := w.Put(PutRequest{Table: DefaultTable, Key: "arr", Value: arr, ContentType: "application/json"})
			must(t, err)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res, err := w.Array(ArrayRequest{Table: DefaultTable, Key: "arr", Op: OpRemove, Value: []byte(tc.body), NoHistory: true})
			runtime.ReadMemStats(&after)
			must(t, err)
			if res.Removed != 0 {
				t.Fatalf("removed %d of %d %s, want none", res.Removed, elements, tc.element)
			}
			return after.TotalAlloc - before.TotalAlloc
		}
		one, thousand := allocated(1), allocated(1000)
		if thousand > 2*one {
			t.Errorf("remove of a %d-byte value from 1,000 %s allocated %d KB, from one %d KB: each element pays for the value", len(tc.body), tc.element, thousand>>10, one>>10)
		}
	}
}

// TestNumberKey_ComparesByValue: numbers with exponents beyond any
// integer type compare by value too (they compared as text).
func TestNumberKey_ComparesByValue(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"1", "1.0", true}, {"1e0", "10e-1", true}, {"-0", "0", true}, {"0e99999999999999999999", "0", true},
		{"1e99999999999999999999", "10e99999999999999999998", true},
		{"1e-99999999999999999999", "0.1e-99999999999999999998", true},
		{"1E+0099999999999999999999", "1e99999999999999999999", true},
		{"1e99999999999999999999", "1e99999999999999999998", false},
		{"-1e99999999999999999999", "1e99999999999999999999", false},
		{"9007199254740993", "9007199254740992", false},
	} {
		if got := numberKey(json.Number(tc.a)) == numberKey(json.Number(tc.b)); got != tc.same {
			t.Errorf("%s and %s: same %v, want %v (keys %s, %s)", tc.a, tc.b, got, tc.same, numberKey(json.Number(tc.a)), numberKey(json.Number(tc.b)))
		}
	}
}

// FuzzAddToIntegerAsBig holds numberKey's exponent arithmetic to math/big.
func FuzzAddToIntegerAsBig(f *testing.F) {
	for _, x := range []string{"0", "-0", "+7", "007", "999999999999999999", "1000000000000000000", "-1000000000000000000", "99999999999999999999999"} {
		f.Add(x, int64(-12))
		f.Add(x, int64(12))
	}
	f.Fuzz(func(t *testing.T, x string, d int64) {
		digits := strings.TrimLeft(x, "+-")
		if digits == "" || strings.Trim(digits, "0123456789") != "" || len(x)-len(digits) > 1 || d > 1<<40 || d < -(1<<40) {
			return
		}
		want, _ := new(big.Int).SetString(strings.TrimPrefix(x, "+"), 10)
		want.Add(want, big.NewInt(d))
		if got := addToInteger(x, d); got != want.String() {
			t.Fatalf("addToInteger(%q, %d) = %s, want %s", x, d, got, want)
		}
	})
}
