package httpapi

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkParseBatchSet reads the body kvbench's batch-set sends: 100
// items of 100-byte text values.
func BenchmarkParseBatchSet(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"items":[`)
	for i := range 100 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"key":"kvbench/batch/%06d","value":"%s"}`, i*7, strings.Repeat("qwertyuiop", 10))
	}
	body.WriteString(`]}`)
	s := &Server{cfg: Config{MaxValueBytes: 10 << 20}}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/kv/batch/set", bytes.NewReader(body.Bytes()))
		if _, err := s.parseBatchItems(r); err != nil {
			b.Fatal(err)
		}
	}
}
