// Package cluster makes kvd one node of several, each serving the
// databases it owns, built from engines trusted for their part: HAProxy
// routes each request by its database, etcd says who owns what, and a
// Litestream sidecar per node streams each owned database to a replica
// store (README.md, "Beyond one machine").
//
// Ownership. A node holds an etcd lease (lease.go) and serves a database
// only while /kvd/owners/<db> is its own, under that lease. Every write is
// fenced: it commits only while the lease is surely alive, and the sidecar
// answers (Node.Fence, before and after each COMMIT).
//
// Epochs. /kvd/epochs/<db> names the node that owns, or last owned, a
// database and the epoch of its copy, a number that grows each time a
// node takes the database with a copy that is not its own newest. Each
// epoch replicates to its own path, <replica root>/<db>/<epoch>, so no
// two nodes ever write one lineage: a node that returns with a stale copy
// streams, if anything, into an epoch nobody restores from. Each node
// also keeps, beside its copies, the epoch each belongs to (localstate.go):
// a copy is the newest exactly when etcd's record names this node and
// that epoch.
//
// Changing hands (claim.go, handover.go). The router decides where a
// database is served; the node it sends a request to claims the database:
// from nobody, from its own previous life, or from a live peer, which it
// asks to release it (the peer finishes the queued writes, fences the
// database, has the sidecar sync it to the replica and deletes its owner
// key). A dead peer's databases are free once etcd expires its lease. A
// claim whose copy is not the newest restores the replica of the newest
// epoch first, and never one older than etcd says the replica store
// holds (replicated.go).
package cluster
