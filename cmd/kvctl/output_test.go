package main

import (
	"bytes"
	"io"
	"testing"
)

// The JSON form of an answer (for a value, a base64 copy of it) is built
// only when --json asks for it.
func TestOutput_BuildsTheJSONFormOnlyForJSON(t *testing.T) {
	built := 0
	jsonForm := func() any { built++; return map[string]int{"n": 1} }
	plain := func(w io.Writer) { io.WriteString(w, "plain\n") }
	var buf bytes.Buffer
	if err := newOutput(&buf, false).print(jsonForm, plain); err != nil || buf.String() != "plain\n" || built != 0 {
		t.Fatalf("plain: wrote %q (err %v), JSON form built %d times", buf.String(), err, built)
	}
	buf.Reset()
	if err := newOutput(&buf, true).print(jsonForm, plain); err != nil || buf.String() != "{\"n\":1}\n" || built != 1 {
		t.Fatalf("--json: wrote %q (err %v), JSON form built %d times", buf.String(), err, built)
	}
}
