package bench

import (
	"math"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are kept in microseconds with 3 significant digits from 1µs to
// 100s: exact below 2ms, within 0.1% above, about 140 KB per histogram.
const (
	histLowest  = 1
	histHighest = 100 * 1000 * 1000
	histDigits  = 3
)

// Histogram is an HDR latency histogram. It is not safe for concurrent use:
// each worker records into its own and the runner merges them at the end, so
// the hot path takes no lock.
type Histogram struct {
	h *hdr.Histogram
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdr.New(histLowest, histHighest, histDigits)}
}

// Record adds one latency. Values beyond the range are clamped rather than
// dropped, so a pathological stall still shows up as the maximum.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	us = min(max(us, histLowest), histHighest)
	_ = h.h.RecordValue(us) // cannot fail: us is within range
}

// Merge adds every value of o.
func (h *Histogram) Merge(o *Histogram) { h.h.Merge(o.h) }

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Percentile returns the latency at or below which p percent (0..100) of the
// recorded values lie.
func (h *Histogram) Percentile(p float64) time.Duration {
	return time.Duration(h.h.ValueAtPercentile(p)) * time.Microsecond
}

// Max is the largest recorded latency (to the histogram's precision).
func (h *Histogram) Max() time.Duration { return time.Duration(h.h.Max()) * time.Microsecond }

// Min is the smallest recorded latency.
func (h *Histogram) Min() time.Duration { return time.Duration(h.h.Min()) * time.Microsecond }

// Mean is the average latency.
func (h *Histogram) Mean() time.Duration {
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// CurvePoint is one point of the percentile curve: Percentile in 0..100.
type CurvePoint struct {
	Percentile float64
	Latency    time.Duration
}

// Curve samples the percentile curve evenly on the classic HDR axis, where
// x = log10(1/(1-p)) puts 90%, 99%, 99.9% ... at equal distances. It stops at
// the resolution the sample count supports and ends with the maximum.
func (h *Histogram) Curve() []CurvePoint {
	n := h.Count()
	if n == 0 {
		return nil
	}
	top := math.Log10(float64(n)) // beyond 1-1/n every percentile is the max
	var pts []CurvePoint
	for i := 0; float64(i)/20 < top-0.01; i++ {
		p := 100 * (1 - math.Pow(10, -float64(i)/20))
		pts = append(pts, CurvePoint{p, h.Percentile(p)})
	}
	return append(pts, CurvePoint{100 * (1 - math.Pow(10, -top)), h.Max()})
}
