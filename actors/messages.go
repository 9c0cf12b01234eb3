package actors

// writeMsg carries one write (an operation, see ops.go) to the database
// actor. The reply, when wanted, arrives on a channel with room for it, so
// the actor never blocks on a slow caller; a channel is also several
// allocations lighter than a protoactor future.
type writeMsg struct {
	op    queued
	reply chan writeReply // nil: nobody waits (expiry, sweep)
}

// writeReply is sent only after the group holding the write committed (or
// failed as a whole).
type writeReply struct {
	result any // the operation's result; call restores its type
	err    error
}

// flushMsg is the actor's note to itself to commit the open group. It is
// queued behind every write that arrived before the group began, so all of
// them commit together.
type flushMsg struct{}
