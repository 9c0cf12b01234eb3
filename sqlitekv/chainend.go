package sqlitekv

// recentChains remembers the end of the chains a writer appended to
// lately, so that linking a key's next version seldom reads the
// database. A new row jumps to its parent or to its parent's jump's jump,
// so what linking needs of a chain is its newest row and that row's path
// of jumps: O(log versions) op numbers per key. A row never changes once
// written and a chain grows only by an append, so what it holds stays
// true until a rollback, which can give op numbers to other rows: a
// rollback forgets it all. It forgets it all too when it fills, so its
// memory stays bounded whatever the number of keys.
type recentChains map[string]*chainEnd

// maxRecentChains bounds the keys a table remembers: kvbench's batch-set
// writes 1000.
const maxRecentChains = 4096

// chainEnd is the end of a key's chain.
type chainEnd struct {
	seq     int64 // the newest row's
	removed bool  // the newest row removed the key
	lends   bool  // the newest row is a gap marker holding the key's value (largevalues.go)
	// path holds the newest row last, before it the row it jumps to, and
	// so on; the oldest part may be missing.
	path []chainRow
	// pruned is the row retention last pruned the chain through, seq and
	// op: no older row of the key is left (0: not known).
	pruned hop
}

// chainRow is a row of a chain, as linking needs it.
type chainRow struct{ op, ts int64 }

func (e *chainEnd) head() chainRow { return e.path[len(e.path)-1] }

// next links a new row after e; false when the row it jumps to is older
// than the path holds.
func (e *chainEnd) next() (link, bool) {
	l := link{seq: e.seq + 1, prev: e.head(), removed: e.removed, prevLends: e.lends}
	switch n := len(e.path); {
	case jumpSeq(l.seq) == e.seq:
		l.jump = l.prev
	case n >= 3:
		l.jump = e.path[n-3]
	default:
		return link{}, false
	}
	return l, true
}

// appended moves key's chain end to its new row, linked by l.
func (r recentChains) appended(key string, row chainRow, l link, removed, lends bool) {
	e := r[key]
	if e == nil || e.head() != l.prev {
		if len(r) >= maxRecentChains {
			clear(r)
		}
		e = &chainEnd{}
		r[key] = e
	}
	switch n := len(e.path); {
	case l.prev.op == 0 || l.jump.op == 0: // a new chain, or a jump retention deleted
		e.path = e.path[:0]
	case l.jump == l.prev:
	case n >= 3 && e.path[n-3] == l.jump:
		e.path = e.path[:n-2]
	default: // the path did not reach the jump: start from it
		e.path = append(e.path[:0], l.jump)
	}
	e.path = append(e.path, row)
	e.seq, e.removed, e.lends = l.seq, removed, lends
}
