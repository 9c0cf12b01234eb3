package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// The answers that write their own JSON (jsonAppender) write what
// encoding/json, as writeJSON configures it, writes for the same value.
func TestJSONAppenders_SameBytesAsEncodingJSON(t *testing.T) {
	keys := []string{"k", "users/é \"q\" \\ <p>&", "bad\xffutf8\u2028\u2029\x01\t\n", ""}
	var answers []jsonAppender
	for i, key := range keys {
		answers = append(answers,
			incrResponse{Key: key, Value: math.MaxInt64 - int64(i), Previous: math.MinInt64 + int64(i)},
			incrResponse{Key: key, Value: -1},
			putResponse{Status: "ok", Success: true, Key: key, Created: i%2 == 0},
			putResponse{Status: key, Key: key},
			deleteResponse{Status: "ok", Success: true, Key: key, Deleted: true},
			deleteResponse{Status: key, Key: key},
		)
	}
	for _, a := range answers {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(a); err != nil {
			t.Fatal(err)
		}
		if got := append(a.appendJSON(nil), '\n'); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%#v:\n got %s\nwant %s", a, got, want.Bytes())
		}
	}
}
