package sqlitekv

import (
	"encoding/json"
	"strings"
	"testing"
)

// validAtAnyDepth agrees with json.Valid wherever json.Valid can tell
// (10,000 levels at most), and goes deeper.
func FuzzValidAtAnyDepth(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, ` [ 1 , 2.5e-3 , -0 , "a\u00e9\n" , true , false , null ] `, `{"a":{"b":[{}]},"c":""}`,
		`[1,]`, `{"a":1,}`, `{"a"}`, `[01]`, `[1.]`, `[.5]`, `[1e]`, `["\x"]`, `["\u12"]`, "[\"\t\"]",
		`[] []`, `tru`, `nul`, `-`, `"`, `{"a":1 "b":2}`, `[1 2]`, `{1:2}`, "\v1", `[`, `]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if nestingDepth(b) >= 10000 {
			return
		}
		if got, want := validAtAnyDepth(b), json.Valid(b); got != want {
			t.Fatalf("validAtAnyDepth(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func TestValidAtAnyDepth_GoesDeeperThanEncodingJSON(t *testing.T) {
	const n = 200_000
	for doc, want := range map[string]bool{
		strings.Repeat("[", n) + strings.Repeat("]", n):                                  true,
		strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n):                        true,
		strings.Repeat("[", n) + strings.Repeat("]", n-1):                                false,
		strings.Repeat("[", n):                                                           false,
		strings.Repeat(`[1,`, n) + "2" + strings.Repeat("]", n) + " ":                    true,
		strings.Repeat(`[1,`, n) + "2" + strings.Repeat("]", n) + strings.Repeat("]", 1): false,
	} {
		if got := validAtAnyDepth([]byte(doc)); got != want {
			t.Errorf("validAtAnyDepth of %.20q… (%d bytes): got %v, want %v", doc, len(doc), got, want)
		}
	}
}
