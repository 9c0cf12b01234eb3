package jsontext

import "testing"

func TestCheck_NamesTheFlawedStringAndItsPlace(t *testing.T) {
	for doc, want := range map[string]string{
		`{"keys":["a","\ud83d\ude00"]}`:         "", // a whole pair
		`"\\ud800"`:                             "", // an escaped backslash, then text
		`{"a":"\u0041","b":[1,{"c":"\uFFFD"}]}`: "", // U+FFFD spelt out is what it says
		`"\ud800"`:                              `an unpaired surrogate escape \ud800`,
		`["ok","\udc00\ud800"]`:                 `[1]: an unpaired surrogate escape \udc00`,
		`{"items":[{"key":"a"},{"key":"x` + "\xff" + `"}]}`: "items[1].key: invalid UTF-8",
		`{"items":[{"key":"a","` + "\xfe" + `":1}]}`:        "items[0]: a member name holds invalid UTF-8",
		`{"a` + "\xed\xa0\x80" + `":1}`:                     "a member name holds invalid UTF-8",
		`{"v":{"n":[1,"x\ud800\u0041"]}}`:                   `v.n[1]: an unpaired surrogate escape \ud800`,
	} {
		got := ""
		if flaw := Check([]byte(doc)); flaw != nil {
			got = flaw.String()
		}
		if got != want {
			t.Errorf("Check(%q): got %q, want %q", doc, got, want)
		}
	}
}
