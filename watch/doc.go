// Package watch follows a database's committed writes for its watchers
// (GET .../watch).
//
// Invariants: events reach a watcher in op_number order, each once, and
// only after their COMMIT. The database actor publishes each committed
// group once to the database's Hub, which never blocks on a watcher:
// each has a small bounded buffer, and one that overflows it reads
// history (sqlitekv.Store.ReadChanges, a read-only connection) until it
// has caught up. Memory per watcher is bounded by its buffer, and a
// watcher that is gone holds nothing once its request ends (Close).
package watch
