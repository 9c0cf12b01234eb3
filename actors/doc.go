// Package actors gives every open database exactly one owner: a
// protoactor-go actor that alone holds the database's write connection.
//
// Invariants: only the database actor writes. Writes are messages; the
// actor applies the ones that queue together inside one transaction (group
// commit), so that a refused write leaves its neighbours alone (a savepoint
// each, or, for writes that can make every check before their first change,
// single-key writes and batch sets, no savepoint; see sqlitekv.Writer's
// checkedFirst), and replies to each only after COMMIT.
// After each COMMIT, before answering, the actor hands what the group
// wrote to the database's watchers (watch.Hub), never waiting on one.
// Reads bypass the actor and use the store's read-only connections, so they
// never wait behind writes and see every acknowledged write.
package actors
