// Package httpapi is kvd's HTTP surface: routes, request parsing and
// validation, the one error-to-status table, and response encoding.
//
// Every handler has the same shape: parse, make one call (a read of the
// store or a message to the database's actor), map the error, encode.
// Parsing is pure: it names the database (a dbRef) but never opens it;
// the call leases it through leaseDB, the one place a database is opened
// (withDB for a request's length, or a watch's own for its stream's).
// Query getters and body decoders live in params.go and params_body.go.
// Keys are decided from the escaped path, so a client can use an operation
// word such as "incr" as a key segment by sending its slashes as %2F.
package httpapi
