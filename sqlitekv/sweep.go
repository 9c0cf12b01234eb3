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
// table, and moves large values an older kvd kept in their values rows to
// history (largevalues.go). The owner calls it periodically, inside a
// group like any write.
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
		_, prepared := w.tables[name]
		t, err := w.table(name, false)
		switch {
		case CodeOf(err) == CodeInvalidParameters:
			continue // a table of the database's own that only looks like ours
		case err != nil:
			return res, err
		case t == nil:
			continue
		}
		if err := w.sweepTable(t, &res); err != nil {
			return res, err
		}
		// A database of more tables than a connection keeps prepared
		// would otherwise have them all prepared at once here.
		if !prepared && len(w.tables) > maxPreparedTables {
			w.forgetTable(name)
		}
	}
	return res, nil
}

// sweepTable adds one table's round to res.
func (w *Writer) sweepTable(t *writeTable, res *SweepResult) error {
	n, err := w.expireBatch(t)
	res.Expired += n
	res.More = res.More || n == sweepBatch
	if err != nil {
		return err
	}
	if w.opts.HistoryMaxAge > 0 {
		cutoff := w.now() - w.opts.HistoryMaxAge.Milliseconds()
		n, more, err := w.pruneByAge(t, cutoff, sweepBatch)
		res.Pruned += n
		// A round that pruned nothing (each row its key's newest) waits
		// for the next interval: going on would only rescan.
		res.More = res.More || more && n > 0
		if err != nil {
			return err
		}
	}
	more, err := w.moveInlineValues(t)
	res.More = res.More || more
	return err
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
		expired, err := w.expireKey(t, key)
		switch {
		case CodeOf(err) == CodeInvalidParameters, CodeOf(err) == CodeFileSystemError:
			// Directory mode will not remove this key's file (it became a
			// SQLite database) or could not compare it with the cache: the
			// key waits for a write, the others go on.
		case err != nil:
			return removed, err // the keys before it are removed, each in its own savepoint
		case expired:
			removed++
		}
	}
	return removed, nil
}

// expireKey removes key if it is past its expiry, and reports whether it
// did. In directory mode the key's file is imported first (mirror): a file
// changed behind kvd's back is a new value, without the old one's TTL, and
// is no longer expired; only a file that still holds the expired value (or
// is gone) is expired.
func (w *Writer) expireKey(t *writeTable, key string) (expired bool, err error) {
	if w.mirror != nil {
		if err := w.mirror.Sync(t.name.name, key); err != nil {
			return false, err
		}
	}
	err = w.atomically(func() error {
		_, _, expired, err = t.current(key, w.writeNow())
		if err == nil {
			err = w.expireIf(t, key, expired)
		}
		return err
	})
	return expired && err == nil, err
}
