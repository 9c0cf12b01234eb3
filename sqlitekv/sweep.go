package sqlitekv

// sweepBatch bounds the work of one sweep per table, so a sweep never
// holds the writer long enough to stall the writes queued behind it.
const sweepBatch = 500

// SweepResult counts what one sweep removed.
type SweepResult struct {
	Expired int  // keys past their TTL
	Pruned  int  // history rows older than HistoryMaxAge
	More    bool // a table had more than a batch to remove: sweep again soon
}

// Sweep removes expired keys and over-age history, a bounded batch per
// table. The owner calls it periodically, inside a group like any write.
func (w *Writer) Sweep() (SweepResult, error) {
	var res SweepResult
	if err := w.writeHeld(); err != nil { // expiredKeys reads the values table
		return res, err
	}
	tables, err := w.listTables()
	if err != nil {
		return res, err
	}
	for _, name := range tables {
		t, err := w.table(name, false)
		switch {
		case CodeOf(err) == CodeInvalidParameters:
			continue // a table of the database's own that only looks like ours
		case err != nil:
			return res, err
		case t == nil:
			continue
		}
		n, err := w.expireBatch(t)
		res.Expired += n
		res.More = res.More || n == sweepBatch
		if err != nil {
			return res, err
		}
		if w.opts.HistoryMaxAge > 0 {
			cutoff := w.now() - w.opts.HistoryMaxAge.Milliseconds()
			n, more, err := w.pruneByAge(t, cutoff, sweepBatch)
			res.Pruned += n
			// A round that pruned nothing (each row its key's newest) waits
			// for the next interval: going on would only rescan.
			res.More = res.More || more && n > 0
			if err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func (w *Writer) expireBatch(t *writeTable) (int, error) {
	var keys []string
	stmt := t.expiredKeys
	if err := bindAll(stmt, w.now(), sweepBatch); err != nil {
		return 0, dbError(err)
	}
	for stmt.Step() {
		keys = append(keys, stmt.ColumnText(0))
	}
	if err := stmt.Reset(); err != nil {
		return 0, dbError(err)
	}
	removed := 0
	for _, key := range keys {
		err := w.atomically(func() error { return w.removeExpired(t, key) })
		switch {
		case CodeOf(err) == CodeInvalidParameters:
			// Directory mode will not remove this key's file (it became a
			// SQLite database): the key waits for a write, the others go on.
		case err != nil:
			return removed, err // the keys before it are removed, each in its own savepoint
		default:
			removed++
		}
	}
	return removed, nil
}
