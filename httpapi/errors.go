package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// Codes of the HTTP layer itself, beyond the storage codes.
const (
	codeUnauthorized     sqlitekv.Code = "UNAUTHORIZED"
	codeNotFound         sqlitekv.Code = "NOT_FOUND"
	codeMethodNotAllowed sqlitekv.Code = "METHOD_NOT_ALLOWED"
	codeRequestTimeout   sqlitekv.Code = "REQUEST_TIMEOUT"

	// Refusals of requests HTTP itself cannot read (goerrors.go).
	codeHeadersTooLarge         sqlitekv.Code = "REQUEST_HEADERS_TOO_LARGE"
	codeExpectationFailed       sqlitekv.Code = "EXPECTATION_FAILED"
	codeNotImplemented          sqlitekv.Code = "NOT_IMPLEMENTED"
	codeHTTPVersionNotSupported sqlitekv.Code = "HTTP_VERSION_NOT_SUPPORTED"
)

// statusOf is the one table from error code to HTTP status, and the one
// list of codes: every code storage declares (sqlitekv.Codes) and every
// code above has its line, which errors_test.go checks; the OpenAPI
// document's list of codes is read from it, and the client's tests check
// their sentinels against that document.
var statusOf = map[sqlitekv.Code]int{
	sqlitekv.CodeInvalidDBPath:       http.StatusBadRequest,
	sqlitekv.CodeInvalidParameters:   http.StatusBadRequest,
	sqlitekv.CodeInvalidSQLiteHeader: http.StatusBadRequest,
	sqlitekv.CodePathIsDirectory:     http.StatusBadRequest,
	codeUnauthorized:                 http.StatusUnauthorized,
	sqlitekv.CodeReadOnly:            http.StatusForbidden,
	sqlitekv.CodeKeyNotFound:         http.StatusNotFound,
	sqlitekv.CodeDatabaseNotFound:    http.StatusNotFound,
	sqlitekv.CodeKeyExpired:          http.StatusNotFound,
	sqlitekv.CodePathNotFound:        http.StatusNotFound,
	codeNotFound:                     http.StatusNotFound,
	codeMethodNotAllowed:             http.StatusMethodNotAllowed,
	codeRequestTimeout:               http.StatusRequestTimeout,
	codeHeadersTooLarge:              http.StatusRequestHeaderFieldsTooLarge,
	sqlitekv.CodeTimeTravelGap:       http.StatusConflict,
	sqlitekv.CodeCASMismatch:         http.StatusPreconditionFailed,
	sqlitekv.CodeCASKeyMissing:       http.StatusPreconditionFailed,
	codeExpectationFailed:            http.StatusExpectationFailed,
	sqlitekv.CodePayloadTooLarge:     http.StatusRequestEntityTooLarge,
	sqlitekv.CodeDatabaseError:       http.StatusInternalServerError,
	sqlitekv.CodeFileSystemError:     http.StatusInternalServerError,
	sqlitekv.CodeOverloaded:          http.StatusServiceUnavailable,
	sqlitekv.CodeStorageFull:         http.StatusInsufficientStorage,
	codeNotImplemented:               http.StatusNotImplemented,
	codeHTTPVersionNotSupported:      http.StatusHTTPVersionNotSupported,
}

type errorBody struct {
	StatusCode int           `json:"statusCode"`
	Error      string        `json:"error"`
	Code       sqlitekv.Code `json:"code"`
	Message    string        `json:"message"`
	Keys       []string      `json:"keys,omitempty"`
}

// writeError answers err as the JSON error body. Errors that are not
// *sqlitekv.Error are internal by definition. Only 5xx answers are logged,
// with the request id the client also receives.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *sqlitekv.Error
	if !errors.As(err, &e) {
		e = &sqlitekv.Error{Code: sqlitekv.CodeDatabaseError, Message: "Database operation failed", Cause: err}
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	switch {
	case r.Context().Err() != nil:
		// The client hung up; nobody reads this answer and nothing failed.
		s.log.Debug("client gone", "request_id", w.Header().Get("X-Request-Id"), "method", r.Method, "path", r.URL.Path)
	case status == http.StatusServiceUnavailable:
		// A refusal to retry (an overload, a database closing) is seldom
		// alone: under an overload every refused request is one, and a line
		// each would flood the log it should be found in.
		if held, ok := s.refusals.allow(time.Now()); ok {
			s.log.Warn("request refused", "request_id", w.Header().Get("X-Request-Id"),
				"method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err, "refusals_not_logged", held)
		}
	case status >= 500:
		s.log.Error("request failed", "request_id", w.Header().Get("X-Request-Id"),
			"method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if r.Method == http.MethodHead {
		// net/http drops the body, so the code travels in a header; the
		// answer is otherwise GET's (Content-Type, Content-Length).
		w.Header().Set("X-Error-Code", string(e.Code))
	}
	writeJSON(w, status, errorBody{StatusCode: status, Error: http.StatusText(status), Code: e.Code, Message: e.Message, Keys: e.Keys})
}

// writeJSON encodes body without HTML escaping: values go back to the
// client as they were stored, "<p>" and all.
func writeJSON(w http.ResponseWriter, status int, body any) {
	jw := encodeJSON(body)
	defer jw.release()
	jw.writeTo(w, status)
}

// writeAnswer is writeJSON for a read's answer that shows values, which
// may be megabytes: it holds their size of answer memory while its client
// reads them, or answers 503 when too much is held (answermemory.go). Never
// for a write's answer: a 503 says nothing was done, and a client would
// do it again.
func (s *Server) writeAnswer(w http.ResponseWriter, r *http.Request, body any) {
	jw := encodeJSON(body)
	defer jw.release()
	release, err := s.holdAnswer(jw.buf.Len())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()
	jw.writeTo(w, http.StatusOK)
}

func encodeJSON(body any) *jsonWriter {
	jw := jsonWriters.Get().(*jsonWriter)
	if a, ok := body.(jsonAppender); ok {
		jw.buf.Write(append(a.appendJSON(jw.buf.AvailableBuffer()), '\n')) // as Encode ends
	} else if err := jw.enc.Encode(body); err != nil {
		// Only our own response structs get here; failing is a bug.
		slog.Error("encode response", "err", err)
		jw.buf.Reset()
		jw.failed = true
	}
	return jw
}

func (jw *jsonWriter) writeTo(w http.ResponseWriter, status int) {
	data := jw.buf.Bytes()
	if jw.failed {
		status, data = http.StatusInternalServerError, []byte(`{"statusCode":500,"error":"Internal Server Error","code":"DATABASE_ERROR","message":"Response encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}

func invalidParam(format string, args ...any) error {
	return sqlitekv.Errorf(sqlitekv.CodeInvalidParameters, format, args...)
}

// jsonAppender is an answer that writes its own JSON, the same bytes
// encoding/json writes for it: the answers of the hot writes (incr, put,
// delete), where reflection cost more than the rest of the handler.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// jsonWriter is an encoder with its buffer, reused across responses: made
// afresh they were several allocations per request on the hot paths.
type jsonWriter struct {
	buf    bytes.Buffer
	enc    *json.Encoder
	failed bool // the encoder failed: a bug, answered 500
}

// maxPooledJSON is the largest buffer kept for reuse, so one big answer
// (a history page, say) does not stay in memory for good.
const maxPooledJSON = 64 << 10

var jsonWriters = sync.Pool{New: func() any {
	jw := &jsonWriter{}
	jw.enc = json.NewEncoder(&jw.buf)
	jw.enc.SetEscapeHTML(false)
	return jw
}}

func (jw *jsonWriter) release() {
	if jw.buf.Cap() <= maxPooledJSON {
		jw.buf.Reset()
		jw.failed = false
		jsonWriters.Put(jw)
	}
}

// throttle lets one event a second through, counting those it holds back.
type throttle struct {
	mu   sync.Mutex
	next time.Time
	held int
}

// allow reports whether an event at now may be logged, and how many were
// held back since the last one that was.
func (t *throttle) allow(now time.Time) (held int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.next) {
		t.held++
		return 0, false
	}
	held, t.held, t.next = t.held, 0, now.Add(time.Second)
	return held, true
}
