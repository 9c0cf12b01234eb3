package sqlitekv

import (
	"sync/atomic"
	"time"
)

// A read-only connection keeps its read transaction open from one read to
// the next, as long as the writer has not committed since it began. Every
// read transaction takes and releases a lock in the WAL's shared memory, a
// pair of fcntl calls each: a tenth of kvd's CPU under a load of GETs. A
// transaction kept open costs them once per commit instead of once per read.
//
// Reads still see every acknowledged write. The writer counts its commits
// in its WAL hook, which SQLite calls once the commit is visible to
// readers and before the owner answers the group's writes. A reader loads
// the count first and begins its transaction after it; when its open
// transaction began at the same count, no commit came in between, so its
// snapshot holds everything acknowledged so far.
//
// An open read transaction holds the WAL back: no checkpoint copies past
// the oldest snapshot, and the WAL starts over only when no reader has one
// open (under constant reads and writes it grew by 250 MB in 8 s). So a
// reader goes back to the pool with its transaction open only while no
// commit has come since it began and the WAL is short (below the first
// background checkpoint): under a load of writes, reads cost what they
// always did. The transactions that idle readers still hold are ended
// before each background checkpoint (endIdleSnapshots).

// Another program may write the file too (kvd does not expect it, but
// SQLite allows it), and its commits do not go through the WAL hook. So a
// transaction is also kept for at most snapshotMaxAge: such a change shows
// in reads within that time.
const snapshotMaxAge = time.Second

// walProgress is what the writer's commits tell the readers.
type walProgress struct {
	commits atomic.Uint64 // commits so far
	pages   atomic.Int64  // pages in the WAL after the last one
	// prunes counts the transactions that deleted history rows
	// (retention), each once its commit is visible, after commits counts
	// it (or once it rolled back); pruning counts them before their first
	// delete. A reader that loads prunes before its transaction begins has
	// a snapshot with every prune prunes counts; when pruning, loaded once
	// the snapshot holds, is the same, it holds no other. In between, a
	// prune is visible but not counted (SQLite shows a commit before the
	// WAL hook runs), or counted while its rows still show: a page read
	// then cannot tell what it checked. (Counted once, as the rows went or
	// after the commit, one such page or the next skipped pruned writes
	// without a gap.)
	prunes, pruning atomic.Uint64
}

// committed counts a commit that left pages in the WAL (the WAL hook),
// and says how many there were before it.
func (p *walProgress) committed(pages int) (before int) {
	before = int(p.pages.Swap(int64(pages)))
	p.commits.Add(1)
	return before
}

// keepSnapshot reports whether a reader may keep open a transaction that
// began after commits commits.
func (p *walProgress) keepSnapshot(commits uint64) bool {
	return p.commits.Load() == commits && p.pages.Load() < int64(backgroundCheckpointPages)
}

// snapshot makes r read in a transaction that began when the writer had
// made commits commits, and at most snapshotMaxAge before now.
func (r *reader) snapshot(commits uint64, now time.Time) error {
	if r.inTransaction() && r.commits == commits && now.Sub(r.began) < snapshotMaxAge {
		return nil
	}
	r.endSnapshot()
	if err := r.begin.Exec(); err != nil {
		return dbError(err)
	}
	r.commits, r.began = commits, now
	return nil
}

// endSnapshot ends r's read transaction, if one is open.
func (r *reader) endSnapshot() {
	if r.inTransaction() {
		r.commit.Exec() // a read transaction has nothing to lose
	}
}

// inTransaction reports whether r's read transaction is open: SQLite
// knows, including when an error ended it.
func (r *reader) inTransaction() bool { return !r.conn.GetAutocommit() }

// endIdleSnapshots ends the read transactions of the idle readers. The
// readers in use go on; they end theirs when they come back.
func (s *Store) endIdleSnapshots() {
	var idle []*reader
	defer func() {
		for _, r := range idle {
			s.readers <- r
		}
	}()
	for {
		select {
		case r := <-s.readers:
			if faulted, _ := guarded(r.conn, func() error { r.endSnapshot(); return nil }); faulted {
				s.retired(r)
				continue
			}
			idle = append(idle, r)
		default:
			return
		}
	}
}
