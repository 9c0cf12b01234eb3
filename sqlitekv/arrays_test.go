package sqlitekv

import (
	"bytes"
	"testing"
)

// FuzzRemoveMatchesDecodedEquality: remove's shortcuts on an element's
// text (sameElement) decide as comparing the decoded values does.
func FuzzRemoveMatchesDecodedEquality(f *testing.F) {
	for _, pair := range [][2]string{
		{`1`, `1.0`}, {`10e-1`, `1`}, {`-0`, `0`}, {`1e400`, `10e399`}, {`9007199254740993`, `9007199254740992`},
		{`"x"`, `"\u0078"`}, {`"a\"b"`, `"a\u0022b"`}, {`true`, `true`}, {`null`, `false`},
		{`{"a":1,"b":[2]}`, `{"b":[2.0],"a":1}`}, {`[1,"x"]`, `[1,"x"]`}, {`"1"`, `1`}, {`{}`, `[]`},
		{`1E2000000000000000`, `1e+2000000000000000`},
	} {
		f.Add(pair[0], pair[1])
	}
	f.Fuzz(func(t *testing.T, el, want string) {
		if !ValidJSON([]byte(el)) || !ValidJSON([]byte(want)) {
			return
		}
		a, errA := decodeKeepingNumbers([]byte(el))
		b, errB := decodeKeepingNumbers([]byte(want))
		if errA != nil || errB != nil {
			t.Skip()
		}
		if got, wantSame := sameElement(bytes.TrimSpace([]byte(el)), bytes.TrimSpace([]byte(want)), b), sameJSON(a, b); got != wantSame {
			t.Fatalf("sameElement(%s, %s) = %v, decoded they compare %v", el, want, got, wantSame)
		}
	})
}
