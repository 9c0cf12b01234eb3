// Package client is a Go client for kvd, the key-value store served over
// HTTP on SQLite. It has one method per endpoint of kvd's HTTP API (the
// README's "Using it", and the OpenAPI document kvd serves at
// /api/v1/openapi.json) and speaks the same wire format as kvd's other
// clients.
//
// # Basics
//
// A Client is safe for concurrent use and reuses its connections; make one
// per kvd and share it. Config.DB and Config.Table name the database and
// table every call addresses; the DB and Table options override them for
// one call. Other options (TTL, Path, IfMatch, NoHistory, ...) map to the
// endpoint's query parameters and headers; a method refuses an option its
// endpoint does not take instead of silently dropping it.
//
// Values are bytes with a content type (Value). An empty content type lets
// kvd infer one: JSON when the bytes parse as JSON, else text/plain for
// UTF-8, else application/octet-stream. PutJSON and GetJSON marshal and
// unmarshal with encoding/json.
//
// Keys are sent percent-encoded like JavaScript's encodeURIComponent, so
// "users/alice" travels as users%2Falice and a key may end in a word such
// as "/incr" without naming an operation.
//
// # Errors
//
// A failed call returns a *Error carrying kvd's status and code. Match the
// code with errors.Is and the sentinels: errors.Is(err, client.ErrKeyNotFound).
// A call refused before sending (an option the method does not take, a bad
// option value, an empty key, a string of a JSON body that is not valid
// UTF-8) is a *ArgumentError. Transport failures (refused connection,
// cancelled context) come back as they are, wrapped with the method and
// path.
//
// # Caveats
//
// kvd never redirects. A redirect that net/http would follow by turning
// a write into a GET (301, 302 or 303 to a PUT, POST or DELETE: an
// http-to-https redirect in front of kvd) is not followed: the call
// returns an *Error with the redirect's status, and nothing was written.
//
// HEAD answers carry no body, so a failed Head has kvd's code (from the
// X-Error-Code header) but only the status text as its message. JSON values
// inside JSON answers (batch get, history, snapshots, diffs) are re-encoded
// by kvd and come back compacted, not byte for byte; Get returns the stored
// bytes exactly.
//
// Looks at a past time (ListAt, TableSnapshot, Diff) go over at most Limit
// keys with history per call, paged by key: pass the answer's NextAfter to
// After for the next page; it is empty on the last.
package client
