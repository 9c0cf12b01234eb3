package sqlitekv

import "time"

// The writer's clock: when a write happens, and the time its history
// rows take.

// now reads the clock (Options.Now) in Unix ms.
func (w *Writer) now() int64 { return w.opts.Now().UnixMilli() }

// writeNow is the clock as the write under way first read it: the time
// its expiry checks judge at and its TTLs start from, and the time its
// history rows take (writeTime) unless the clock went backwards. One
// reading for all three: a check at an earlier reading than the row's let
// an incr made at its key's expiry write a value expired from its start,
// and a batch record an expiry 25 ms before the TTL ran out. (Judged at
// the history's time instead, writes disagreed with reads once the clock
// stepped back: a key live to a GET was expired to an incr.)
func (w *Writer) writeNow() int64 {
	if w.instantDepth == 0 {
		return w.now()
	}
	if w.instant == 0 {
		w.instant = w.now()
	}
	return w.instant
}

// writeTime is the time of the write under way's history rows: its
// writeNow, or the newest time history holds if the clock went backwards,
// so ts order always equals op_number order. Within one write neither
// moves (each loads its table, which may raise lastTs, before it
// begins), so all its rows take one time.
func (w *Writer) writeTime() int64 {
	w.lastTs = max(w.lastTs, w.writeNow())
	return w.lastTs
}

// endInstant ends one write (checkedFirst, atomically), each of whose
// history rows took the same time: read at any instant, or rolled back
// to one, such a write (a batch, a table's rollback) shows whole or not
// at all. Stamped a row at a time, a batch whose rows straddled a
// millisecond showed half of it to a read at the first, and a table's
// rollback to it restored half the batch.
func (w *Writer) endInstant() {
	if w.instantDepth--; w.instantDepth == 0 {
		w.instant = 0
	}
}

// ttlExpiry turns a TTL into an absolute expiry in Unix ms (0: none).
func ttlExpiry(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now + ttl.Milliseconds()
}
