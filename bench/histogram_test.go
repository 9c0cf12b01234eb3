package bench

import (
	"math"
	"testing"
	"time"
)

func TestHistogram_PercentilesOfKnownData(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 5000 * time.Microsecond},
		{90, 9000 * time.Microsecond},
		{99, 9900 * time.Microsecond},
		{99.9, 9990 * time.Microsecond},
		{100, 10000 * time.Microsecond},
	} {
		got := h.Percentile(tc.p)
		if diff := math.Abs(float64(got-tc.want)) / float64(tc.want); diff > 0.001 {
			t.Errorf("p%g: got %v, want %v within 0.1%%", tc.p, got, tc.want)
		}
	}
	if h.Count() != 10000 || h.Min() != time.Microsecond {
		t.Errorf("got count %d min %v, want 10000 and 1µs", h.Count(), h.Min())
	}
	if m := h.Mean(); m < 4995*time.Microsecond || m > 5006*time.Microsecond {
		t.Errorf("got mean %v, want about 5000.5µs", m)
	}
	if mx := h.Max(); mx < 9990*time.Microsecond || mx > 10010*time.Microsecond {
		t.Errorf("got max %v, want 10ms within 0.1%%", mx)
	}
}

func TestHistogram_ClampsOutOfRange(t *testing.T) {
	h := NewHistogram()
	h.Record(0)
	h.Record(time.Hour)
	if h.Count() != 2 || h.Min() != time.Microsecond || h.Max() < 99*time.Second {
		t.Errorf("got count %d, min %v, max %v; want 2, 1µs, 100s", h.Count(), h.Min(), h.Max())
	}
}

func TestHistogram_MergeAddsCounts(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	for range 90 {
		a.Record(time.Millisecond)
	}
	for range 10 {
		b.Record(time.Second)
	}
	a.Merge(b)
	if a.Count() != 100 || a.Percentile(50) > 2*time.Millisecond || a.Percentile(95) < 990*time.Millisecond {
		t.Errorf("got count %d, p50 %v, p95 %v", a.Count(), a.Percentile(50), a.Percentile(95))
	}
}

func TestHistogram_CurveRisesToTheMax(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	c := h.Curve()
	if len(c) < 10 {
		t.Fatalf("got %d points, want a curve", len(c))
	}
	for i := 1; i < len(c); i++ {
		if c[i].Percentile <= c[i-1].Percentile || c[i].Latency < c[i-1].Latency {
			t.Fatalf("point %d %+v after %+v: the curve must rise", i, c[i], c[i-1])
		}
	}
	if last := c[len(c)-1]; last.Latency != h.Max() || last.Percentile < 99.8 {
		t.Errorf("last point %+v, want the max at 99.9%%", last)
	}
	if NewHistogram().Curve() != nil {
		t.Error("empty histogram: want no curve")
	}
}
