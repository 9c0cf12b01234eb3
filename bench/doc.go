// Package bench is the load generator behind cmd/kvbench: it drives a running
// kvd over HTTP with one scenario at a time and reports what it measured.
//
// Basics: a Scenario says what one operation is (a GET, an incr, a CAS
// round trip, ...); Run prepares the data untimed, then runs operations in a
// closed loop (c connections, each waits for its answer) or an open loop (a
// fixed rate, latency counted from each operation's intended start so a stall
// is not hidden by coordinated omission), and returns a Result: throughput,
// an HDR latency histogram, counts by status and errors, and throughput over
// time. Result writes itself as a table, as JSON, or as an SVG or PNG plot.
//
// Invariant: the client must never be the bottleneck, so the hot path reuses
// URLs and bodies built once per run and drains every response body to keep
// connections alive.
//
// Verification: for the counter scenarios (incr-hot, incr-spread, cas) every
// acknowledged (200) write is counted per key and the stored values are read
// back after the run; each acknowledged write must be there exactly once.
package bench
