// Package sqlitekv is kvd's storage: one SQLite file holds any number of KV
// tables, each with a companion history table that records every write.
//
// Basics: a Store is one open database file. Its Writer (one connection) is
// owned by exactly one goroutine at a time — the database's actor — and
// applies writes inside a transaction that the owner commits per group. Reads
// go through a small pool of read-only WAL connections and so never wait
// behind a write, and always see every committed write.
//
// Caveats: the package knows nothing of HTTP or actors. Every error it
// returns is an *Error carrying a Code; SQLite failures become
// DATABASE_ERROR with the cause kept for the log only. Time comes from
// Options.Now so TTL and history are testable without sleeping.
package sqlitekv
