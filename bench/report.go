package bench

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. An operation is answered (Requests, with a
// status and a latency) or not (Errors: no answer at all). For cas an
// operation is one attempt: a GET and a conditional PUT, whose status counts.
type Result struct {
	Scenario  string  `json:"scenario"`
	Mode      string  `json:"mode"` // "closed" or "open"
	URL       string  `json:"url"`
	DB        string  `json:"db"`
	DBs       int     `json:"dbs"` // databases: DB alone when 1, else DB-0 … DB-(DBs-1)
	Table     string  `json:"table,omitempty"`
	Conns     int     `json:"connections"`
	Rate      float64 `json:"target_rate,omitempty"` // open loop, ops/s
	Keys      int     `json:"keys"`                  // in each database
	ValueSize int     `json:"value_size"`

	Elapsed    float64 `json:"elapsed_s"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Dropped    int64   `json:"dropped,omitempty"` // open loop: due but never sent
	Throughput float64 `json:"throughput_rps"`    // answered per second
	Succeeded  int64   `json:"succeeded"`         // answered 2xx
	OKRate     float64 `json:"ok_rps"`            // 2xx per second
	Items      int64   `json:"items,omitempty"`   // batch-set: items written
	ItemsRate  float64 `json:"items_per_s,omitempty"`

	Latency    Latency          `json:"latency_ms"`
	Status     map[string]int64 `json:"status"`
	ErrorKinds map[string]int64 `json:"errors_by_kind,omitempty"`
	Timeline   []Point          `json:"timeline"`

	Verify      *Verification `json:"verify,omitempty"`
	Watch       *WatchReport  `json:"watch,omitempty"`
	Interrupted bool          `json:"interrupted,omitempty"`

	Hist *Histogram `json:"-"` // every answered operation's latency

	acked, unknown []int64 // per counter, merged over workers
}

// Latency summarizes the histogram, in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// Point is the throughput over the interval ending T seconds into the run.
type Point struct {
	T   float64 `json:"t_s"`
	RPS float64 `json:"rps"`
}

// maxTimeline keeps long runs' timelines small enough to read and plot.
const maxTimeline = 300

func newResult(cfg Config, elapsed time.Duration, recs []*recorder, samples []sample) *Result {
	r := &Result{
		Scenario: cfg.Scenario, Mode: "closed", URL: cfg.URL, DB: cfg.DB, DBs: cfg.DBs, Table: cfg.Table,
		Conns: cfg.Conns, Keys: cfg.Keys, ValueSize: cfg.ValueSize,
		Elapsed: elapsed.Seconds(), Status: map[string]int64{}, ErrorKinds: map[string]int64{},
		Hist: NewHistogram(),
	}
	if cfg.Rate > 0 {
		r.Mode, r.Rate = "open", cfg.Rate
	}
	for i, rec := range recs {
		r.Hist.Merge(rec.hist)
		for s, n := range rec.status {
			r.Status[strconv.Itoa(s)] += n
			r.Requests += n
			if s/100 == 2 {
				r.Succeeded += n
			}
		}
		for k, n := range rec.errs {
			r.ErrorKinds[k] += n
			r.Errors += n
		}
		r.Items += rec.items
		if i == 0 {
			r.acked = make([]int64, len(rec.acked))
			r.unknown = make([]int64, len(rec.unknown))
		}
		for k := range rec.acked {
			r.acked[k] += rec.acked[k]
			r.unknown[k] += rec.unknown[k]
		}
	}
	if secs := elapsed.Seconds(); secs > 0 {
		r.Throughput = float64(r.Requests) / secs
		r.OKRate = float64(r.Succeeded) / secs
		r.ItemsRate = float64(r.Items) / secs
	}
	if cfg.Scenario != "batch-set" {
		r.Items, r.ItemsRate = 0, 0 // one item per operation says nothing new
	}
	if len(r.ErrorKinds) == 0 {
		r.ErrorKinds = nil
	}
	r.Latency = summarize(r.Hist)
	r.Timeline = timeline(samples)
	return r
}

// Failed says why the run failed as a whole, or nil: a failed
// verification, operations that got no answer at all, or not one 2xx
// answer (a wrong token, URL or database). Other statuses, a lost CAS
// race's 412 or an overloaded kvd's 503, are what a load test measures.
func (r *Result) Failed() error {
	switch {
	case r.Verify != nil && !r.Verify.OK:
		return errors.New("verification failed: " + r.Verify.Message)
	case r.Watch != nil && !r.Watch.OK():
		return errors.New("watchers: " + r.Watch.Message)
	case r.Errors > 0:
		return fmt.Errorf("%d operations got no answer (%s)", r.Errors, counts(r.ErrorKinds))
	case r.Succeeded == 0 && r.Requests > 0:
		return fmt.Errorf("no operation succeeded (status %s)", counts(r.Status))
	}
	return nil
}

func summarize(h *Histogram) Latency {
	if h.Count() == 0 {
		return Latency{}
	}
	return Latency{
		Min: ms(h.Min()), Mean: ms(h.Mean()), Max: ms(h.Max()),
		P50: ms(h.Percentile(50)), P90: ms(h.Percentile(90)),
		P99: ms(h.Percentile(99)), P999: ms(h.Percentile(99.9)),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timeline turns cumulative samples into throughput per interval, merging
// neighbours so that there are at most maxTimeline points.
func timeline(samples []sample) []Point {
	step := max(1, (len(samples)+maxTimeline-1)/maxTimeline)
	pts := []Point{}
	for i := step; i < len(samples); i += step {
		a, b := samples[i-step], samples[i]
		if d := (b.at - a.at).Seconds(); d > 0 {
			pts = append(pts, Point{T: b.at.Seconds(), RPS: float64(b.done-a.done) / d})
		}
	}
	return pts
}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the result for a person to read.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := fmt.Sprintf("closed loop, %d connections", r.Conns)
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop at %.0f ops/s, %d connections", r.Rate, r.Conns)
	}
	fmt.Fprintf(tw, "scenario\t%s (%s, %.2fs)\n", r.Scenario, mode, r.Elapsed)
	target := fmt.Sprintf("%s db=%s", r.URL, r.DB)
	if r.DBs > 1 {
		target = fmt.Sprintf("%s db=%s-0…%s-%d", r.URL, r.DB, r.DB, r.DBs-1)
	}
	if r.Table != "" {
		target += " table=" + r.Table
	}
	if r.Scenario != "noop" {
		target += fmt.Sprintf(" keys=%d value=%dB", r.Keys, r.ValueSize)
	}
	fmt.Fprintf(tw, "target\t%s\n", target)
	if r.DBs > 1 && r.Scenario != "noop" {
		fmt.Fprintf(tw, "databases\t%d, %s-0 to %s-%d, operations in turn over them, %s in each\n",
			r.DBs, r.DB, r.DB, r.DBs-1, plural(r.Keys, "key"))
	}
	fmt.Fprintf(tw, "throughput\t%.1f ops/s (2xx %.1f/s), %d answered, %d errors\n",
		r.Throughput, r.OKRate, r.Requests, r.Errors)
	if r.Items > 0 {
		fmt.Fprintf(tw, "items\t%.1f items/s, %d written\n", r.ItemsRate, r.Items)
	}
	if r.Dropped > 0 {
		fmt.Fprintf(tw, "dropped\t%d due but never sent: the target could not keep the rate\n", r.Dropped)
	}
	l := r.Latency
	fmt.Fprintf(tw, "latency\tp50 %s\tp90 %s\tp99 %s\tp99.9 %s\tmax %s\tmean %s\n",
		fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max), fmtMS(l.Mean))
	fmt.Fprintf(tw, "status\t%s\n", counts(r.Status))
	if len(r.ErrorKinds) > 0 {
		fmt.Fprintf(tw, "errors\t%s\n", counts(r.ErrorKinds))
	}
	if w := r.Watch; w != nil {
		on := "the prefix"
		switch {
		case w.PerKey:
			on = "a key each"
		case w.HotKey:
			on = "the hot key"
		}
		fmt.Fprintf(tw, "watchers\t%d on %s: %s\n", w.Watchers, on, w.Message)
		if w.Latency != (Latency{}) {
			l := w.Latency
			fmt.Fprintf(tw, "event latency\tp50 %s\tp90 %s\tp99 %s\tp99.9 %s\tmax %s\t(acknowledgement to arrival)\n",
				fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max))
		}
	}
	if r.Interrupted {
		fmt.Fprintf(tw, "interrupted\tthe run was stopped early\n")
	}
	if v := r.Verify; v != nil {
		fmt.Fprintf(tw, "verify\t%s\n", v.Message)
		for _, m := range v.Mismatches {
			fmt.Fprintf(tw, "\t%s%s: initial %d, stored %d, acknowledged %d, unknown %d\n",
				m.Key, inDB(m.DB, r.DBs), m.Initial, m.Stored, m.Acknowledged, m.Unknown)
		}
		if lo, hi, ok := spread(v.PerDB); ok && lo.Acknowledged == hi.Acknowledged {
			fmt.Fprintf(tw, "\tacknowledged per database: %d in each\n", lo.Acknowledged)
		} else if ok {
			fmt.Fprintf(tw, "\tacknowledged per database: %d (%s) to %d (%s)\n", lo.Acknowledged, lo.DB, hi.Acknowledged, hi.DB)
		}
	}
	return tw.Flush()
}

// spread finds the databases with the fewest and the most acknowledged
// writes, to show how evenly the load went over them.
func spread(totals []DBTotals) (lo, hi DBTotals, ok bool) {
	if len(totals) == 0 {
		return lo, hi, false
	}
	lo, hi = totals[0], totals[0]
	for _, t := range totals[1:] {
		if t.Acknowledged < lo.Acknowledged {
			lo = t
		}
		if t.Acknowledged > hi.Acknowledged {
			hi = t
		}
	}
	return lo, hi, true
}

// fmtMS prints a latency with a unit that keeps three significant digits.
func fmtMS(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(v/1000, 'f', 2, 64) + "s"
}

// counts prints "200: 10  412: 3", largest first.
func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, "  ")
}
