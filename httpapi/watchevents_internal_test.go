package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The hand-written event data is byte for byte what encoding/json (no
// HTML escaping) writes for the same fields.
func TestAppendEventData_SameBytesAsEncodingJSON(t *testing.T) {
	raw, empty := "aGVsbG8=", ""
	cases := []watchEventData{
		{Key: "k", Op: "set", OpNumber: 1, Timestamp: 1700000000500, Value: json.RawMessage(`{"a":[1,2]}`), ContentType: "application/json"},
		{Key: "users/é \"q\" \\ <p>&", Op: "set", OpNumber: 42, Timestamp: 1700000000000, Value: json.RawMessage("{\n  \"a\" : [1, 2],\n\t\"b\": \"x y\"\n}"), ContentType: "application/json; charset=utf-8"},
		{Key: "bin", Op: "push", OpNumber: 9, Timestamp: 1, RawValue: &raw, ContentType: "application/octet-stream"},
		{Key: "empty", Op: "set", OpNumber: 3, Timestamp: 1e15, RawValue: &empty, ContentType: "text/plain"},
		{Key: "bad\xffutf8\u2028\u2029\x01", Op: "delete", OpNumber: 7, Timestamp: -1500},
		{Key: "h", Op: "set", OpNumber: 8, Timestamp: 17, Code: "TIME_TRAVEL_GAP", ResumeOp: 9},
		{Code: "TIME_TRAVEL_GAP", ResumeOp: 12},
	}
	for _, d := range cases {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			t.Fatal(err)
		}
		got := appendEventData(nil, d)
		if !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("got  %s\nwant %s", got, want.Bytes())
		}
	}
}

func BenchmarkSSEEvent(b *testing.B) {
	d := watchEventData{Key: "kvbench/hot", Op: "incr", OpNumber: 123456, Timestamp: 1700000000123, Value: json.RawMessage(`17`), ContentType: "text/plain"}
	b.ReportAllocs()
	for b.Loop() {
		appendEventData(make([]byte, 0, 256), d)
	}
}
