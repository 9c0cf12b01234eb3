package actors

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/kvd/kvd/watch"
)

// DB is the handle on one open database: reads go straight to the store,
// writes go to the database's actor.
type DB struct {
	reg    *Registry
	path   string
	store  *sqlitekv.Store
	dir    *sqlitekv.Dir // directory mode; store is then its cache
	pid    *actor.PID
	queued atomic.Int64 // writes sent and not yet answered
	// directory mode: how rebuild requests share folder scans (rescan.go)
	rescans     rescans
	sweepQueued atomic.Bool // a ticker's sweep waits in the mailbox
	hub         *watch.Hub  // the watchers of its writes (watch.go)

	mu      sync.RWMutex // held for reading while sending; for writing to close
	closing bool
	stopped chan struct{} // closed by the actor when it has stopped

	// Guarded by the registry's mutex.
	leases      int
	watchers    int           // leases held by watches (watch.go)
	stopLooking chan struct{} // ends lookForOthers while watched
	lastUsed    time.Time
}

func (d *DB) lease(now time.Time) {
	d.leases++
	d.lastUsed = now
}

// Release returns the lease Open handed out. Use the DB no more after it.
// Opens waiting for room past MaxOpen (room.go) may find it now.
func (d *DB) Release() {
	r := d.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	d.leases--
	d.lastUsed = r.cfg.Now()
	most := r.cfg.MaxOpen
	if r.roomWaiters > 0 {
		most-- // room for them (evictLocked wakes them)
	}
	r.evictDownToLocked(most)
}

// Path is the real path of the database file: the identity of its owner.
func (d *DB) Path() string { return d.path }

// Get reads a key. A key found expired is handed to the actor for removal;
// in directory mode, so is a file found changed behind kvd's back.
func (d *DB) Get(ctx context.Context, req sqlitekv.GetRequest) (e sqlitekv.Entry, err error) {
	stale := false
	if d.dir != nil {
		e, stale, err = d.dir.Get(ctx, req)
	} else {
		e, err = d.store.Get(ctx, req)
	}
	if req.At == nil {
		d.followUp(req.Table, req.Key, stale, err)
	}
	return e, err
}

// followUp hands what a read found to the actor: a key past its expiry to
// remove, a file changed behind kvd's back to import.
func (d *DB) followUp(table, key string, stale bool, err error) {
	if stale {
		tell(d, importFileOp{table: table, key: key})
	}
	if sqlitekv.CodeOf(err) == sqlitekv.CodeKeyExpired {
		tell(d, expireOp{table: table, key: key})
	}
}

func (d *DB) Put(ctx context.Context, req sqlitekv.PutRequest) (sqlitekv.PutResult, error) {
	return call(ctx, d, putOp(req))
}

func (d *DB) Delete(ctx context.Context, req sqlitekv.DeleteRequest) error {
	_, err := call(ctx, d, deleteOp(req))
	return err
}

func (d *DB) Incr(ctx context.Context, req sqlitekv.IncrRequest) (sqlitekv.IncrResult, error) {
	return call(ctx, d, incrOp(req))
}

// BatchSet stores all items or none; it returns the keys it created.
func (d *DB) BatchSet(ctx context.Context, req sqlitekv.BatchSetRequest) ([]string, error) {
	return call(ctx, d, batchSetOp(req))
}

// BatchDelete removes the keys that exist and counts them.
func (d *DB) BatchDelete(ctx context.Context, req sqlitekv.BatchDeleteRequest) (int, error) {
	return call(ctx, d, batchDeleteOp(req))
}

// BatchGet reads keys from one consistent snapshot (in directory mode, file
// by file: files have no transactions), each once, while budget lasts;
// rest are the keys it left unread. References are not followed.
func (d *DB) BatchGet(ctx context.Context, table string, keys []string, budget sqlitekv.Budget) (found map[string]sqlitekv.Entry, rest []string, err error) {
	if d.dir == nil {
		return d.store.BatchGet(ctx, table, keys, budget)
	}
	found = map[string]sqlitekv.Entry{}
	keys = sqlitekv.Distinct(keys)
	for i, key := range keys {
		e, stale, err := d.dir.Own(ctx, table, key)
		d.followUp(table, key, stale, err)
		var shown *sqlitekv.Entry
		switch sqlitekv.CodeOf(err) {
		case "":
			shown = &e
		case sqlitekv.CodeKeyNotFound, sqlitekv.CodeKeyExpired:
		default:
			return nil, nil, err
		}
		if !budget.Take(key, shown) {
			return found, keys[i:], nil
		}
		if shown != nil {
			found[key] = e
		}
	}
	return found, nil, nil
}

// List pages through live keys in byte order.
func (d *DB) List(ctx context.Context, req sqlitekv.ListRequest) ([]string, error) {
	return d.store.List(ctx, req)
}

// Array applies an atomic push, pop or remove on a JSON array.
func (d *DB) Array(ctx context.Context, req sqlitekv.ArrayRequest) (sqlitekv.ArrayResult, error) {
	return call(ctx, d, arrayOp(req))
}

// RollbackKey undoes a key's last writes as a new write.
func (d *DB) RollbackKey(ctx context.Context, req sqlitekv.RollbackKeyRequest) (*sqlitekv.Entry, error) {
	return call(ctx, d, rollbackKeyOp(req))
}

// RollbackTable brings a table back to a time in one transaction (or, dry,
// only says what that would do, read without the actor). In directory
// mode the folder is rescanned first, without the actor, so that it acts
// on every change made by hand before it was asked for; the actor then
// reads again only the files it changes (sqlitekv.Writer.importFirst).
func (d *DB) RollbackTable(ctx context.Context, req sqlitekv.RollbackTableRequest) (sqlitekv.RollbackTableResult, error) {
	if err := d.Rebuild(ctx, req.Table); err != nil {
		return sqlitekv.RollbackTableResult{}, err
	}
	if !req.DryRun {
		return call(ctx, d, rollbackTableOp(req))
	}
	return d.store.PlanRollback(ctx, req)
}

// EnsureTable creates a table if it does not exist. One that exists needs
// no write, so a database kvd cannot write answers for it as any other.
func (d *DB) EnsureTable(ctx context.Context, table string) error {
	if d.store.ReadOnly() != nil {
		if found, err := d.store.HasTable(ctx, table); err != nil || found {
			return err
		}
	}
	_, err := call(ctx, d, ensureTableOp{table: table})
	return err
}

// HistoryPage, SnapshotAt, TableAt, KeysAt and Diff read history without
// the actor.
func (d *DB) HistoryPage(ctx context.Context, req sqlitekv.HistoryRequest) (sqlitekv.HistoryPage, error) {
	return d.store.HistoryPage(ctx, req)
}

func (d *DB) SnapshotAt(ctx context.Context, table, key string, op int64) (sqlitekv.Entry, error) {
	return d.store.SnapshotAt(ctx, table, key, op)
}

func (d *DB) TableAt(ctx context.Context, table string, at int64, c sqlitekv.Candidates) (sqlitekv.AsOf, error) {
	return d.store.TableAt(ctx, table, at, c)
}

func (d *DB) KeysAt(ctx context.Context, table string, at int64, c sqlitekv.Candidates) (sqlitekv.AsOf, error) {
	return d.store.KeysAt(ctx, table, at, c)
}

func (d *DB) Diff(ctx context.Context, table string, from, to int64, keys []string, c sqlitekv.Candidates) (sqlitekv.Diff, error) {
	return d.store.Diff(ctx, table, from, to, keys, c)
}

// Backup makes a consistent copy of the database and returns it open,
// already unlinked (sqlitekv.Store.Backup).
func (d *DB) Backup(ctx context.Context) (*os.File, error) {
	return d.store.Backup(ctx)
}

// call sends op to the actor and waits for its committed answer: the one
// place an answer's result gets its type back. A full queue is refused up
// front: memory stays bounded under overload; so is every write to a
// database kvd cannot write (it has no writer).
func call[R any](ctx context.Context, d *DB, op operation[R]) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil { // the client has gone: nothing to apply it for
		return zero, sqlitekv.Cancelled(err)
	}
	if err := d.store.ReadOnly(); err != nil {
		return zero, err
	}
	if d.queued.Add(1) > int64(d.reg.cfg.MaxQueue) {
		d.queued.Add(-1)
		return zero, sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Too many writes queued for this database; retry shortly")
	}
	m := awaitedWrites.Get().(*writeMsg)
	m.op = typed[R]{op}
	defer func() {
		m.op = nil
		awaitedWrites.Put(m)
	}()
	if !d.send(m) {
		d.queued.Add(-1)
		return zero, sqlitekv.ErrClosing()
	}
	// Once queued, a write is applied whether or not its client is still
	// there, so the caller waits for it even when ctx ends: the request's
	// body (and its share of the server's body budget) lives until the
	// actor is done with it.
	r := <-m.reply
	res, ok := r.result.(R)
	if !ok && r.err == nil { // only a failed write comes back without its R
		return zero, fmt.Errorf("actors: %T answered %T", op, r.result)
	}
	return res, r.err
}

// tell sends op to the actor without waiting for it (an expiry, an import
// or a sweep a read or a ticker asked for); false if the database is
// closing, or read-only.
func tell[R any](d *DB, op operation[R]) bool {
	if d.store.ReadOnly() != nil {
		return false // an expiry or import a read found is a write, and the file takes none
	}
	return d.send(&writeMsg{op: typed[R]{op}})
}

// awaitedWrites are messages with their reply channel, reused: the caller
// always waits for the reply, after which the actor holds the message no
// more, so it is free again (three allocations a write saved).
var awaitedWrites = sync.Pool{New: func() any { return &writeMsg{reply: make(chan writeReply, 1)} }}

// send delivers m unless the database is closing.
func (d *DB) send(m *writeMsg) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closing {
		return false
	}
	d.reg.system.Root.Send(d.pid, m)
	return true
}

// close stops the actor after every write already sent (its poison pill
// queues behind them), then closes the store, checkpointing the WAL.
func (d *DB) close() error {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	d.reg.system.Root.Poison(d.pid)
	<-d.stopped
	d.hub.Shut() // after the last group: its writes were published
	return d.closeFiles()
}

// closeFiles closes the store, or in directory mode the cache and the
// directory's root.
func (d *DB) closeFiles() error {
	if d.dir != nil {
		return d.dir.Close()
	}
	return d.store.Close()
}

// Sweep runs one round of TTL expiry and history pruning now, through the
// actor like any write (the periodic ticker does the same).
func (d *DB) Sweep(ctx context.Context) (sqlitekv.SweepResult, error) {
	return call(ctx, d, sweepOp{})
}
