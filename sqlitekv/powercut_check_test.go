package sqlitekv_test

import (
	"slices"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// check compares what the keys hold after a cut with the model of the
// cycle the cut ended. In either sync mode each client's surviving writes
// must be a prefix of its writes, and a write that survived must bring
// along every write acknowledged before it was sent: a WAL keeps a prefix
// of its commits. With full sync every acknowledged write must survive;
// with normal, the acknowledged writes missing are counted.
func (r *powerCutRun) check(db *actors.DB) {
	t := r.t
	horizon, lost, checkExtrasHorizon := r.checkExtras()
	kept := make([]int, len(r.owners))
	for g, o := range r.owners {
		k, ok := r.survivingPrefix(db, o)
		if !ok {
			return
		}
		kept[g] = k
		if k > 0 {
			horizon = max(horizon, o.ops[k-1].issued)
		}
		acked := o.acknowledged()
		r.report.checked += acked
		if k < acked {
			lost += acked - k
			if r.mode == sqlitekv.SyncFull {
				t.Errorf("cut %d: client %d kept %d of its %d acknowledged writes", r.cycle-1, g, k, acked)
			}
		}
	}
	for g, o := range r.owners {
		for j, op := range o.ops {
			if op.acked != 0 && op.acked <= horizon && j >= kept[g] {
				t.Errorf("cut %d: client %d's write %d is lost, though a write sent after it was acknowledged survived", r.cycle-1, g, j)
			}
		}
	}
	checkExtrasHorizon(horizon)
	for _, c := range r.shared {
		lost += r.checkShared(db, c)
	}
	r.report.lostSum += lost
	r.report.lostMax = max(r.report.lostMax, lost)
	if lost > 0 {
		r.report.cutsWithLoss++
	}
}

// survivingPrefix finds how many of o's writes survived the cut, and
// reports false when what its keys hold is no prefix of them.
func (r *powerCutRun) survivingPrefix(db *actors.DB, o *keyOwner) (int, bool) {
	t := r.t
	put, count := r.read(db, o.putKey), r.readCount(db, o.counterKey)
	lastPut := -1 // the surviving put's index in o.ops
	if put != o.putBase {
		for i, op := range o.ops {
			if !op.incr && op.value == put {
				lastPut = i
			}
		}
		if lastPut < 0 {
			t.Errorf("cut %d: %s holds %q, which no write wrote", r.cycle-1, o.putKey, put)
			return 0, false
		}
	}
	incrs := count - o.counterBase
	atPut, atIncrs := -1, int64(0) // what o.ops[:k] leaves, for k from 0 on
	for k := 0; ; k++ {
		if atPut == lastPut && atIncrs == incrs {
			return k, true
		}
		if k == len(o.ops) {
			break
		}
		if o.ops[k].incr {
			atIncrs++
		} else {
			atPut = k
		}
	}
	t.Errorf("cut %d: %s holds %q and %s %d more than before: no prefix of the client's writes %+v", r.cycle-1, o.putKey, put, o.counterKey, incrs, o.ops)
	return 0, false
}

func (o *keyOwner) acknowledged() int {
	n := 0
	for _, op := range o.ops {
		if op.acked != 0 {
			n++
		}
	}
	return n
}

// checkShared checks a counter all clients incremented, and returns how
// many acknowledged increments it lost.
func (r *powerCutRun) checkShared(db *actors.DB, c *sharedCounter) int {
	t := r.t
	v := r.readCount(db, c.key)
	if v < c.base || v > c.base+c.issued.Load() {
		t.Errorf("cut %d: %s holds %d, want %d..%d", r.cycle-1, c.key, v, c.base, c.base+c.issued.Load())
	}
	r.report.checked += len(c.acked)
	lost := 0
	for _, acked := range c.acked {
		if acked > v {
			lost++
		}
	}
	if lost > 0 && r.mode == sqlitekv.SyncFull {
		t.Errorf("cut %d: %s holds %d, but an increment to %d was acknowledged", r.cycle-1, c.key, v, slices.Max(c.acked))
	}
	return lost
}
