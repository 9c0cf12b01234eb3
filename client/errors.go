package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is kvd's answer to a failed call: the HTTP status, kvd's code
// (KEY_NOT_FOUND, CAS_MISMATCH, ...) and message, and the request id kvd
// logged it under. errors.Is matches it against the sentinels by code.
type Error struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	// Keys are the keys concerned, when kvd names them (a table rollback
	// that history cannot answer for some keys: TIME_TRAVEL_GAP).
	Keys []string
	// RetryAfter is the answer's advice to wait this long, then retry:
	// kvd's on OVERLOADED, a proxy's on a 429 or 503 (in seconds or as a
	// date, at most a day).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = "HTTP"
	}
	return fmt.Sprintf("kvd: %s (%d): %s", code, e.StatusCode, e.Message)
}

// Is reports whether target is an *Error with the same code, so that a
// sentinel matches every answer carrying its code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// The codes of the contract. Only Code matters to errors.Is; the status is
// what kvd answers with the code.
var (
	ErrInvalidDBPath       = &Error{StatusCode: 400, Code: "INVALID_DB_PATH"}
	ErrInvalidParameters   = &Error{StatusCode: 400, Code: "INVALID_PARAMETERS"}
	ErrInvalidSQLiteHeader = &Error{StatusCode: 400, Code: "INVALID_SQLITE_HEADER"}
	ErrPathIsDirectory     = &Error{StatusCode: 400, Code: "PATH_IS_DIRECTORY"}
	ErrUnauthorized        = &Error{StatusCode: 401, Code: "UNAUTHORIZED"}
	ErrReadOnly            = &Error{StatusCode: 403, Code: "READ_ONLY"} // the database file, or its filesystem, is read-only: reads are served, writes refused
	ErrKeyNotFound         = &Error{StatusCode: 404, Code: "KEY_NOT_FOUND"}
	ErrDatabaseNotFound    = &Error{StatusCode: 404, Code: "DATABASE_NOT_FOUND"}
	ErrKeyExpired          = &Error{StatusCode: 404, Code: "KEY_EXPIRED"}
	ErrPathNotFound        = &Error{StatusCode: 404, Code: "PATH_NOT_FOUND"}
	ErrNotFound            = &Error{StatusCode: 404, Code: "NOT_FOUND"} // no such endpoint
	ErrMethodNotAllowed    = &Error{StatusCode: 405, Code: "METHOD_NOT_ALLOWED"}
	ErrRequestTimeout      = &Error{StatusCode: 408, Code: "REQUEST_TIMEOUT"} // the body did not arrive within kvd's --read-timeout
	ErrTimeTravelGap       = &Error{StatusCode: 409, Code: "TIME_TRAVEL_GAP"}
	ErrCASMismatch         = &Error{StatusCode: 412, Code: "CAS_MISMATCH"}
	ErrCASKeyMissing       = &Error{StatusCode: 412, Code: "CAS_KEY_MISSING"}
	ErrPayloadTooLarge     = &Error{StatusCode: 413, Code: "PAYLOAD_TOO_LARGE"}
	ErrDatabaseError       = &Error{StatusCode: 500, Code: "DATABASE_ERROR"}
	ErrFileSystemError     = &Error{StatusCode: 500, Code: "FILE_SYSTEM_ERROR"}
	ErrOverloaded          = &Error{StatusCode: 503, Code: "OVERLOADED"}
	ErrStorageFull         = &Error{StatusCode: 507, Code: "STORAGE_FULL"}

	// Requests kvd's HTTP server could not read: malformed on the way.
	ErrExpectationFailed       = &Error{StatusCode: 417, Code: "EXPECTATION_FAILED"}
	ErrHeadersTooLarge         = &Error{StatusCode: 431, Code: "REQUEST_HEADERS_TOO_LARGE"}
	ErrNotImplemented          = &Error{StatusCode: 501, Code: "NOT_IMPLEMENTED"}
	ErrHTTPVersionNotSupported = &Error{StatusCode: 505, Code: "HTTP_VERSION_NOT_SUPPORTED"}
)

// IsNotFound reports whether err says the data is not there: a missing or
// expired key, a missing JSON path or database. A 404 without a code (from
// a proxy, or a kvd that sent no X-Error-Code on HEAD) counts too. An
// unknown endpoint does not.
func IsNotFound(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case ErrKeyNotFound.Code, ErrKeyExpired.Code, ErrPathNotFound.Code, ErrDatabaseNotFound.Code:
		return true
	case "":
		return e.StatusCode == http.StatusNotFound
	}
	return false
}

// errorFrom reads a failed answer. kvd's errors are JSON, except on HEAD,
// which has no body: there the code comes in X-Error-Code. Anything else (a
// proxy's HTML page) keeps its status and a short text.
func errorFrom(resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var wire struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Keys    []string `json:"keys"`
	}
	if strings.Contains(resp.Header.Get("Content-Type"), "application/json") &&
		json.Unmarshal(body, &wire) == nil && wire.Code != "" {
		e.Code, e.Message, e.Keys = wire.Code, wire.Message, wire.Keys
		return e
	}
	e.Code = resp.Header.Get("X-Error-Code")
	e.Message = strings.TrimSpace(string(body))
	if loc, err := resp.Location(); resp.StatusCode/100 == 3 && err == nil {
		// A redirect not followed (see sameMethodRedirect): say where to,
		// without a password the URL may carry.
		e.Message = "redirected to " + loc.Redacted() + ", not followed: nothing was carried out"
	}
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "..."
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	const most = 24 * time.Hour
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(min(max(s, 0), int(most/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(at), 0), most)
	}
	return 0
}

// ArgumentError is a call the client refused before sending anything: an
// option its method does not take or with a bad value, an empty key, an
// item that kvd could not read. Nothing reached kvd; the mistake is the
// caller's.
type ArgumentError struct {
	Method string // Put, Diff, ...
	Err    error
}

func (e *ArgumentError) Error() string { return "client: " + e.Method + ": " + e.Err.Error() }

func (e *ArgumentError) Unwrap() error { return e.Err }

// argErrorf is an *ArgumentError of method.
func argErrorf(method, format string, args ...any) error {
	return &ArgumentError{Method: method, Err: fmt.Errorf(format, args...)}
}
