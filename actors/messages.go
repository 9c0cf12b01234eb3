package actors

// writeMsg carries one write to the database actor. op is one of the
// sqlitekv request types (PutRequest, DeleteRequest, IncrRequest,
// BatchSetRequest, BatchDeleteRequest, ArrayRequest, RollbackKeyRequest,
// RollbackTableRequest) or an internal op below. The reply, when wanted, arrives on a
// channel with room for it, so the actor never blocks on a slow caller;
// a channel is also several allocations lighter than a protoactor future.
type writeMsg struct {
	op    any
	reply chan writeReply // nil: nobody waits (expiry, sweep)
}

// writeReply is sent only after the group holding the write committed (or
// failed as a whole).
type writeReply struct {
	result any // the sqlitekv method's result, or nil
	err    error
}

// flushMsg is the actor's note to itself to commit the open group. It is
// queued behind every write that arrived before the group began, so all of
// them commit together.
type flushMsg struct{}

// expireOp asks the actor to remove a key a read found expired.
type expireOp struct{ table, key string }

// sweepOp asks for one bounded round of TTL expiry and history pruning.
type sweepOp struct{}

// ensureTableOp creates a table if it does not exist.
type ensureTableOp struct{ table string }

// syncOp asks the actor to import a file changed behind kvd's back
// (directory mode).
type syncOp struct{ table, key string }

// rebuildOp asks the actor to rescan a table's folder (directory mode).
// seq numbers the request (DB.rebuilds), so a rescan that began after it
// was sent can answer it too.
type rebuildOp struct {
	table string
	seq   uint64
}
