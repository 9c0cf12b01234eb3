package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestResult_JSONShape(t *testing.T) {
	_, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "incr-spread", Keys: 3, Conns: 2, Requests: 30, Verify: true})
	var b bytes.Buffer
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	for _, k := range []string{"scenario", "mode", "url", "db", "dbs", "connections", "keys", "elapsed_s",
		"requests", "errors", "throughput_rps", "ok_rps", "latency_ms", "status", "timeline", "verify"} {
		if _, ok := got[k]; !ok {
			t.Errorf("missing %q in %s", k, b.String())
		}
	}
	lat, _ := got["latency_ms"].(map[string]any)
	for _, k := range []string{"min", "mean", "p50", "p90", "p99", "p99.9", "max"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("latency_ms.%s: got %v, want a number", k, lat[k])
		}
	}
	if st, _ := got["status"].(map[string]any); st["200"] != 30.0 {
		t.Errorf("status: got %v, want {\"200\": 30}", got["status"])
	}
	if v, _ := got["verify"].(map[string]any); v["ok"] != true || v["acknowledged"] != 30.0 {
		t.Errorf("verify: got %v", got["verify"])
	}
	if _, ok := got["timeline"].([]any); !ok {
		t.Errorf("timeline: got %T, want an array", got["timeline"])
	}
}

func TestResult_TableNamesTheNumbers(t *testing.T) {
	_, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "batch-set", Keys: 100, Conns: 1, Requests: 5})
	var b bytes.Buffer
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"batch-set", "closed loop", "ops/s", "items/s", "p50", "p99.9", "max", "200: 5"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestResult_TableNamesTheDatabases(t *testing.T) {
	_, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "incr-spread", DBs: 3, Keys: 4, Conns: 3, Requests: 30, Verify: true})
	var b bytes.Buffer
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"db=bench-0…bench-2", "3, bench-0 to bench-2, operations in turn", "4 keys in each",
		"12 keys (4 in each of 3 databases)", "acknowledged per database: 10 in each"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestTimeline_StaysShortForLongRuns(t *testing.T) {
	samples := make([]sample, 3001) // five minutes of 100ms samples
	for i := range samples {
		samples[i] = sample{at: time.Duration(i) * sampleInterval, done: int64(i) * 100}
	}
	pts := timeline(samples)
	if len(pts) > maxTimeline || len(pts) < maxTimeline/2 {
		t.Fatalf("got %d points, want at most %d", len(pts), maxTimeline)
	}
	for _, p := range pts {
		if p.RPS < 999 || p.RPS > 1001 {
			t.Fatalf("got %v, want 1000 ops/s throughout", p)
		}
	}
}

func TestFmtMS(t *testing.T) {
	for v, want := range map[float64]string{0.042: "42µs", 1.5: "1.50ms", 2500: "2.50s"} {
		if got := fmtMS(v); got != want {
			t.Errorf("fmtMS(%g) = %q, want %q", v, got, want)
		}
	}
}
