package actors

import (
	"github.com/kvd/kvd/sqlitekv"
)

// operation is one write the database actor applies inside its open
// group: it carries its own work (apply, on the actor's Writer) and names
// the keys it touches, so that directory mode imports their files first
// and blames a file it could not put in place on the writes that touched
// it. R is the result its caller gets back, through call.
//
// Adding a write: a type here with its two methods, one method on DB that
// calls it, one handler.
type operation[R any] interface {
	apply(a *dbActor) (R, error)
	touches() (table string, keys []string)
}

// anyTable is what touches returns for a write whose files are not known
// up front (a table rollback, a sweep): nothing is imported before it, and
// any file the group failed to put in place fails it. An operation that
// changes no file (a rescan, a dry run) names its table and no keys
// instead: another write's file is none of its business, and its caller
// (a read, say) must not answer that write's failure.
const anyTable = ""

// queued is an operation as the mailbox carries it, its result type
// erased; call is the only place it is restored.
type queued interface {
	run(a *dbActor) (any, error)
	touches() (table string, keys []string)
}

// typed erases an operation's result type for the mailbox.
type typed[R any] struct{ op operation[R] }

func (t typed[R]) run(a *dbActor) (any, error) { return t.op.apply(a) }
func (t typed[R]) touches() (string, []string) { return t.op.touches() }

// leaver is an operation that must know when the actor takes it from the
// mailbox, whether or not it then runs.
type leaver interface{ leftMailbox(a *dbActor) }

func (t typed[R]) leftMailbox(a *dbActor) {
	if l, ok := t.op.(leaver); ok {
		l.leftMailbox(a)
	}
}

// none is the result of a write that answers only with its error.
type none = struct{}

type putOp sqlitekv.PutRequest

func (o putOp) apply(a *dbActor) (sqlitekv.PutResult, error) {
	return a.w.Put(sqlitekv.PutRequest(o))
}
func (o putOp) touches() (string, []string) { return o.Table, []string{o.Key} }

type deleteOp sqlitekv.DeleteRequest

func (o deleteOp) apply(a *dbActor) (none, error) {
	return none{}, a.w.Delete(sqlitekv.DeleteRequest(o))
}
func (o deleteOp) touches() (string, []string) { return o.Table, []string{o.Key} }

type incrOp sqlitekv.IncrRequest

func (o incrOp) apply(a *dbActor) (sqlitekv.IncrResult, error) {
	return a.w.Incr(sqlitekv.IncrRequest(o))
}
func (o incrOp) touches() (string, []string) { return o.Table, []string{o.Key} }

type arrayOp sqlitekv.ArrayRequest

func (o arrayOp) apply(a *dbActor) (sqlitekv.ArrayResult, error) {
	return a.w.Array(sqlitekv.ArrayRequest(o))
}
func (o arrayOp) touches() (string, []string) { return o.Table, []string{o.Key} }

// batchSetOp's result is the keys it created.
type batchSetOp sqlitekv.BatchSetRequest

func (o batchSetOp) apply(a *dbActor) ([]string, error) {
	return a.w.BatchSet(sqlitekv.BatchSetRequest(o))
}
func (o batchSetOp) touches() (string, []string) {
	keys := make([]string, len(o.Items))
	for i, item := range o.Items {
		keys[i] = item.Key
	}
	return o.Table, keys
}

// batchDeleteOp's result is how many of its keys existed.
type batchDeleteOp sqlitekv.BatchDeleteRequest

func (o batchDeleteOp) apply(a *dbActor) (int, error) {
	return a.w.BatchDelete(sqlitekv.BatchDeleteRequest(o))
}
func (o batchDeleteOp) touches() (string, []string) { return o.Table, o.Keys }

type rollbackKeyOp sqlitekv.RollbackKeyRequest

func (o rollbackKeyOp) apply(a *dbActor) (*sqlitekv.Entry, error) {
	return a.w.RollbackKey(sqlitekv.RollbackKeyRequest(o))
}
func (o rollbackKeyOp) touches() (string, []string) { return o.Table, []string{o.Key} }

// rollbackTableOp, in directory mode, follows a rescan of the folder
// (DB.RollbackTable): it acts on every file, so it must see every file as
// it was when it was asked for.
type rollbackTableOp sqlitekv.RollbackTableRequest

func (o rollbackTableOp) apply(a *dbActor) (sqlitekv.RollbackTableResult, error) {
	return a.w.RollbackTable(sqlitekv.RollbackTableRequest(o))
}
func (o rollbackTableOp) touches() (string, []string) { return anyTable, nil }

// ensureTableOp creates a table if it does not exist.
type ensureTableOp struct{ table string }

func (o ensureTableOp) apply(a *dbActor) (none, error) { return none{}, a.w.EnsureTable(o.table) }
func (o ensureTableOp) touches() (string, []string)    { return o.table, nil }

// expireOp removes a key a read found expired.
type expireOp struct{ table, key string }

func (o expireOp) apply(a *dbActor) (none, error) { return none{}, a.w.Expire(o.table, o.key) }
func (o expireOp) touches() (string, []string)    { return anyTable, nil }

// importFileOp imports a file a read found changed behind kvd's back
// (directory mode).
type importFileOp struct{ table, key string }

func (o importFileOp) apply(a *dbActor) (none, error) { return none{}, a.db.dir.Sync(o.table, o.key) }
func (o importFileOp) touches() (string, []string)    { return o.table, nil }

// rebuildOp brings into the cache a turn's worth of what a rescan of a
// table's folder found changed, and answers with the rest (directory
// mode, rescan.go).
type rebuildOp struct{ found sqlitekv.Rescan }

func (o rebuildOp) apply(a *dbActor) (sqlitekv.Rescan, error) { return a.db.dir.ApplyRescan(o.found) }
func (o rebuildOp) touches() (string, []string)               { return o.found.Table(), nil }

// sweepOp runs one bounded round of TTL expiry and history pruning. What
// it removed is counted once its group commits (a failed group removed
// nothing); if there is more, another round queues behind the writes
// that arrived meanwhile.
type sweepOp struct{}

// leftMailbox lets the ticker queue the next sweep: one that a failed
// Begin refused must not stop sweeps for good.
func (sweepOp) leftMailbox(a *dbActor) { a.db.sweepQueued.Store(false) }

func (sweepOp) apply(a *dbActor) (sqlitekv.SweepResult, error) {
	res, err := a.w.Sweep()
	if err == nil {
		a.swept.Expired += res.Expired
		a.swept.Pruned += res.Pruned
	}
	if res.More {
		tell(a.db, sweepOp{})
	}
	return res, err
}
func (sweepOp) touches() (string, []string) { return anyTable, nil }
