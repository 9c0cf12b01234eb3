package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// verifier is a Scenario whose writes can be checked after the run. The
// runner counts, per counter (one key in one database), the acknowledged
// writes and those whose fate it cannot know.
type verifier interface {
	Counters() int
	Verify(ctx context.Context, acked, unknown []int64) *Verification
}

// Verification is the result of reading the counters back.
type Verification struct {
	OK           bool       `json:"ok"`
	Keys         int        `json:"keys"`         // counters read back, over all databases
	Acknowledged int64      `json:"acknowledged"` // writes answered 200
	Unknown      int64      `json:"unknown"`      // writes with no answer or a 5xx other than 503
	Applied      int64      `json:"applied"`      // stored minus initial, over all keys
	Mismatches   []Mismatch `json:"mismatches,omitempty"`
	PerDB        []DBTotals `json:"per_db,omitempty"` // with more than one database
	Message      string     `json:"message"`
}

// DBTotals is what one database's counters add up to.
type DBTotals struct {
	DB           string `json:"db"`
	Acknowledged int64  `json:"acknowledged"`
	Unknown      int64  `json:"unknown"`
	Applied      int64  `json:"applied"`
	Mismatches   int    `json:"mismatches"`
}

// Mismatch is one counter whose stored value does not add up.
type Mismatch struct {
	DB           string `json:"db"`
	Key          string `json:"key"`
	Initial      int64  `json:"initial"`
	Stored       int64  `json:"stored"`
	Acknowledged int64  `json:"acknowledged"`
	Unknown      int64  `json:"unknown"`
}

// maxMismatches keeps a report readable when everything is wrong.
const maxMismatches = 10

// classify says what an outcome means for a counter. A 200 was applied; any
// other answer (4xx, 503 OVERLOADED) was refused before it was applied; no
// answer, or an unexpected 5xx, leaves the write's fate unknown.
func classify(o Outcome) (acked, unknown bool) {
	switch {
	case o.Err != nil:
		return false, true
	case o.Status == http.StatusOK:
		return true, false
	case o.Status >= 500 && o.Status != http.StatusServiceUnavailable:
		return false, true
	}
	return false, false
}

// verifyCounters reads each counter and checks that it moved by exactly the
// acknowledged writes: never fewer (an acknowledged write was lost) and never
// more (a write was applied twice, or applied without being acknowledged).
// Writes of unknown fate may or may not be there, so with any of them the
// check allows that many more. Each database's counters are read from that
// database, so a write that landed in the wrong one fails the check too.
func verifyCounters(ctx context.Context, cs *counters, acked, unknown []int64) *Verification {
	v := &Verification{Keys: cs.Counters()}
	totals := make([]DBTotals, len(cs.dbs))
	bad := 0
	values, err := cs.readAll(ctx)
	if err != nil {
		v.Message = err.Error()
		return v
	}
	for i, stored := range values {
		db, key := cs.name(i)
		t := &totals[i/len(cs.keys)]
		t.DB = db
		delta := stored - cs.initial[i]
		t.Acknowledged += acked[i]
		t.Unknown += unknown[i]
		t.Applied += delta
		if delta < acked[i] || delta > acked[i]+unknown[i] {
			bad++
			t.Mismatches++
			if len(v.Mismatches) < maxMismatches {
				v.Mismatches = append(v.Mismatches, Mismatch{db, key, cs.initial[i], stored, acked[i], unknown[i]})
			}
		}
	}
	for _, t := range totals {
		v.Acknowledged += t.Acknowledged
		v.Unknown += t.Unknown
		v.Applied += t.Applied
	}
	if len(cs.dbs) > 1 {
		v.PerDB = totals
	}
	v.OK = bad == 0
	keys := plural(cs.Counters(), "key")
	if len(cs.dbs) > 1 {
		keys += fmt.Sprintf(" (%d in each of %d databases)", len(cs.keys), len(cs.dbs))
	}
	switch {
	case !v.OK:
		v.Message = fmt.Sprintf("FAILED: %d of %s do not add up%s: %d acknowledged writes, %d applied",
			bad, keys, failedDBs(totals), v.Acknowledged, v.Applied)
	case v.Unknown > 0:
		v.Message = fmt.Sprintf("ok: %s, %d acknowledged writes all stored once; %d of %d writes of unknown fate applied",
			keys, v.Acknowledged, v.Applied-v.Acknowledged, v.Unknown)
	default:
		v.Message = fmt.Sprintf("ok: %s, %d acknowledged writes, each stored exactly once", keys, v.Acknowledged)
	}
	return v
}

// inDB names a counter's database in a message when there are several.
func inDB(db string, dbs int) string {
	if dbs == 1 {
		return ""
	}
	return " in database " + db
}

// failedDBs names the databases whose counters do not add up, when there
// are several databases, so that a failure says where to look.
func failedDBs(totals []DBTotals) string {
	if len(totals) == 1 {
		return ""
	}
	var names []string
	for _, t := range totals {
		if t.Mismatches > 0 {
			names = append(names, t.DB)
		}
	}
	n := len(names)
	if n > maxMismatches {
		names = append(names[:maxMismatches], "...")
	}
	return " in " + plural(n, "database") + " (" + strings.Join(names, ", ") + ")"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
