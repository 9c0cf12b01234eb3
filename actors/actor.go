package actors

import (
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/kvd/kvd/sqlitekv"
)

// dbActor owns one database's Writer.
type dbActor struct {
	db       *DB
	w        *sqlitekv.Writer
	log      *slog.Logger
	pending  []*writeMsg // applied in the open group, awaiting COMMIT
	results  []writeReply
	awaited  int // writes of the open group someone waits for
	stopTick func()
	watched  bool                 // the open group keeps its writes for the hub
	swept    sqlitekv.SweepResult // what the open group's sweeps removed

	lockedOut      int   // writes to refuse with lockedOutError, unbegun (shareLockout)
	lockedOutError error // another program's lock that a Begin waited out in vain
}

// maxGroup bounds how many writes one COMMIT may wait to gather.
const maxGroup = 256

func (a *dbActor) Receive(ctx actor.Context) {
	sqlitekv.CatchFaults() // the mailbox may run each message on another goroutine
	switch m := ctx.Message().(type) {
	case *writeMsg:
		a.apply(ctx, m)
	case pingMsg:
		close(m.answered)
	case lookForOthersMsg:
		if len(a.pending) == 0 { // else the group's Begin looked
			a.publishOthers()
		}
	case flushMsg:
		// Writes queued while this group was applied join it: one more
		// pass through the mailbox costs less than another fsync.
		waiting := a.db.queued.Load() - int64(a.awaited)
		if waiting == 0 && len(a.pending) < maxGroup {
			// Before paying for an fsync, let the handlers that are
			// about to send a write run: under load a group then
			// gathers a half more writes (kvbench incr-hot: 19 → 30),
			// and fewer fsyncs leave more CPU for HTTP. With nobody
			// else to run it costs a fraction of a microsecond.
			runtime.Gosched()
			waiting = a.db.queued.Load() - int64(a.awaited)
		}
		if waiting > 0 && len(a.pending) < maxGroup {
			ctx.Send(ctx.Self(), flushMsg{})
			return
		}
		a.flush()
		if a.db.queued.Load() == 0 {
			a.w.RenewIfGrown() // while no write waits for it (sqlitekv/renew.go)
		}
	case *actor.Started:
		a.stopTick = a.db.reg.sweeps.start(a.db.reg.cfg.SweepInterval, a.db.path, a.tickSweep)
	case *actor.Stopping:
		a.stopTick()
		a.flush()
	case *actor.Stopped:
		close(a.db.stopped)
	}
}

// apply runs one write inside the open group, opening the group (and
// scheduling its commit) if this is its first write.
func (a *dbActor) apply(ctx actor.Context, m *writeMsg) {
	if l, ok := m.op.(leaver); ok {
		l.leftMailbox(a) // before a failed Begin can refuse it unrun
	}
	if len(a.pending) == 0 {
		if a.lockedOut > 0 {
			if m.reply != nil {
				a.lockedOut--
			}
			a.reply(m, writeReply{err: a.lockedOutError})
			return
		}
		a.watched = a.db.hub.Active()
		a.w.WatchChanges(a.watched)
		if err := a.w.Begin(); err != nil {
			a.reply(m, writeReply{err: err})
			a.shareLockout(err)
			return
		}
		a.publishOthers()
		ctx.Send(ctx.Self(), flushMsg{})
	}
	result, err := a.run(m.op)
	a.pending = append(a.pending, m)
	a.results = append(a.results, writeReply{result: result, err: err})
	if m.reply != nil {
		a.awaited++
	}
}

// shareLockout, after a Begin that waited out SQLite's busy timeout on
// another program's lock, refuses the writes queued meanwhile with the same
// answer: each would wait out its own timeout after the one before, and
// the last of eight clients got its 500 after 40 s. A write sent later
// tries again.
func (a *dbActor) shareLockout(err error) {
	if sqlitekv.LockedElsewhere(err) {
		a.lockedOut, a.lockedOutError = int(a.db.queued.Load()), err
	}
}

// run imports the files op touches (directory mode), then applies it; a
// panic fails that write alone, unless it was a memory fault, which fails
// the group (Writer.Recovered).
func (a *dbActor) run(op queued) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = a.w.Recovered(p)
		}
	}()
	if err := a.importFiles(op); err != nil {
		return nil, err
	}
	return op.run(a)
}

// tickSweep queues a sweep unless one is queued already: ticks must not
// pile up behind a sweep slower than the interval.
func (a *dbActor) tickSweep() {
	if a.db.sweepQueued.CompareAndSwap(false, true) && !tell(a.db, sweepOp{}) {
		a.db.sweepQueued.Store(false)
	}
}

// flush commits the open group and only then answers its writes. If the
// commit fails, every write in the group failed; if only some files could
// not be put in place (directory mode), the writes that touched them.
func (a *dbActor) flush() {
	if len(a.pending) == 0 {
		return
	}
	start := time.Now()
	err := a.w.Commit()
	if a.w.Committed() {
		a.db.reg.cfg.Hooks.committed(len(a.pending), time.Since(start))
	}
	a.publish()
	if err != nil {
		a.log.Error("group commit failed", "db", a.db.path, "writes", len(a.pending), "err", err)
	}
	var files *sqlitekv.FileFailures
	errors.As(err, &files)
	if a.swept != (sqlitekv.SweepResult{}) && a.w.Committed() {
		a.db.reg.cfg.Hooks.swept(a.swept) // counted once committed: a failed group expired nothing
	}
	a.swept = sqlitekv.SweepResult{}
	for i, m := range a.pending {
		r := a.results[i]
		switch {
		case files != nil && r.err == nil:
			if failed := files.For(m.op.touches()); failed != nil {
				r = writeReply{err: failed}
			}
		case files == nil && err != nil:
			r = writeReply{err: err}
		}
		a.reply(m, r)
		a.pending[i], a.results[i] = nil, writeReply{}
	}
	a.pending, a.results, a.awaited = a.pending[:0], a.results[:0], 0
	a.w.CheckpointIfLarge() // after the answers: no write waits for it
}

// reply answers m, which its sender may reuse at once: m is not to be
// touched after.
func (a *dbActor) reply(m *writeMsg, r writeReply) {
	if m.reply != nil {
		a.db.queued.Add(-1)
		m.reply <- r
	}
}

// importFiles, in directory mode, first imports the files a write is
// about to touch, so it acts on what is on disk, not on a stale cache.
// Elsewhere it does not even ask op for its keys (a slice each).
func (a *dbActor) importFiles(op queued) error {
	if a.db.dir == nil {
		return nil
	}
	table, keys := op.touches()
	for _, key := range keys {
		if err := a.db.dir.Sync(table, key); err != nil {
			return err
		}
	}
	return nil
}
