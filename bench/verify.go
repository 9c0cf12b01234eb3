package bench

import (
	"context"
	"fmt"
	"net/http"
)

// verifier is a Scenario whose writes can be checked after the run. The
// runner counts, per counter, the acknowledged writes and those whose fate
// it cannot know.
type verifier interface {
	Counters() int
	Verify(ctx context.Context, acked, unknown []int64) *Verification
}

// Verification is the result of reading the counters back.
type Verification struct {
	OK           bool       `json:"ok"`
	Keys         int        `json:"keys"`
	Acknowledged int64      `json:"acknowledged"` // writes answered 200
	Unknown      int64      `json:"unknown"`      // writes with no answer or a 5xx other than 503
	Applied      int64      `json:"applied"`      // stored minus initial, over all keys
	Mismatches   []Mismatch `json:"mismatches,omitempty"`
	Message      string     `json:"message"`
}

// Mismatch is one counter whose stored value does not add up.
type Mismatch struct {
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
// check allows that many more.
func verifyCounters(ctx context.Context, c *Client, keys []string, reads []string, initial, acked, unknown []int64) *Verification {
	v := &Verification{Keys: len(keys)}
	bad := 0
	for i, u := range reads {
		stored, err := c.readInt(ctx, u)
		if err != nil {
			v.Message = fmt.Sprintf("read back %s: %v", keys[i], err)
			return v
		}
		v.Acknowledged += acked[i]
		v.Unknown += unknown[i]
		delta := stored - initial[i]
		v.Applied += delta
		if delta < acked[i] || delta > acked[i]+unknown[i] {
			bad++
			if len(v.Mismatches) < maxMismatches {
				v.Mismatches = append(v.Mismatches, Mismatch{keys[i], initial[i], stored, acked[i], unknown[i]})
			}
		}
	}
	v.OK = bad == 0
	switch {
	case !v.OK:
		v.Message = fmt.Sprintf("FAILED: %d of %s do not add up: %d acknowledged writes, %d applied",
			bad, plural(len(keys), "key"), v.Acknowledged, v.Applied)
	case v.Unknown > 0:
		v.Message = fmt.Sprintf("ok: %s, %d acknowledged writes all stored once; %d of %d writes of unknown fate applied",
			plural(len(keys), "key"), v.Acknowledged, v.Applied-v.Acknowledged, v.Unknown)
	default:
		v.Message = fmt.Sprintf("ok: %s, %d acknowledged writes, each stored exactly once", plural(len(keys), "key"), v.Acknowledged)
	}
	return v
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
