package httpapi

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// A request Go's HTTP server cannot parse (a broken %-escape in its
// target, a head past 64 KiB, an unknown transfer coding, no Host) never
// reaches kvd: net/http answers it itself, in plain text, with one write
// straight to the connection, and closes it. trackedConn.Write sends
// kvd's JSON error in place of that write, so that every answer a client
// gets is one it can decode.
//
// The write is known by two things: it comes while no answer of kvd's is
// going out on the connection (trackedConn.answering: a value's bytes may
// reach the connection in a write of their own, behind their head), and
// its whole text is one of the few net/http writes (server.go,
// conn.serve and readRequest), listed here; or it is the 417 net/http
// answers an Expect header other than 100-continue with, through the
// answer's own path (with a Date), before any handler runs. A Go release
// that words one differently shows in TestMalformedRequests_AnsweredInJSON.
var goRefusals = func() map[string]goRefusal {
	const headers = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	refusals := map[string]goRefusal{}
	add := func(statusLine, body string, code sqlitekv.Code, message string) {
		refusals["HTTP/1.1 "+statusLine+headers+body] = goRefusal{code, message}
	}
	const malformed = "Malformed HTTP request: "
	add("400 Bad Request", "400 Bad Request", sqlitekv.CodeInvalidParameters,
		malformed+"the request line, Content-Length or a header could not be parsed (a raw space or a broken %-escape in the target, a negative length)")
	for _, why := range []string{"missing required Host header", "malformed Host header", "invalid header name", "invalid header value"} {
		add("400 Bad Request: "+why, "400 Bad Request: "+why, sqlitekv.CodeInvalidParameters, malformed+why)
	}
	add("431 Request Header Fields Too Large", "431 Request Header Fields Too Large", codeHeadersTooLarge,
		"The request line and headers exceed 64 KiB")
	add("501 Not Implemented", "Unsupported transfer encoding", codeNotImplemented,
		"Unsupported Transfer-Encoding: kvd reads chunked bodies only")
	add("505 HTTP Version Not Supported: unsupported protocol version", "505 HTTP Version Not Supported: unsupported protocol version",
		codeHTTPVersionNotSupported, "Unsupported HTTP version: kvd serves HTTP/1.1 and HTTP/1.0")
	return refusals
}()

// expectationFailed ends the status line net/http answers an Expect it
// does not know with, in the request's HTTP version.
const expectationFailed = " 417 Expectation Failed\r\n"

type goRefusal struct {
	code    sqlitekv.Code
	message string
}

// asJSONError returns kvd's answer, with request id id, in place of p
// when p is net/http's own refusal of a request.
func asJSONError(p []byte, id func() string) ([]byte, bool) {
	refusal, ok := goRefusals[string(p)]
	if !ok && (bytes.HasPrefix(p, []byte("HTTP/1.1"+expectationFailed)) || bytes.HasPrefix(p, []byte("HTTP/1.0"+expectationFailed))) {
		refusal, ok = goRefusal{codeExpectationFailed, "Unsupported Expect header: kvd knows only 100-continue"}, true
	}
	if !ok {
		return nil, false
	}
	status := statusOf[refusal.code]
	answer := encodeJSON(errorBody{StatusCode: status, Error: http.StatusText(status), Code: refusal.code, Message: refusal.message})
	defer answer.release()
	head := "HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) +
		"\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(answer.buf.Len()) +
		"\r\nContent-Type: application/json\r\nDate: " + time.Now().UTC().Format(http.TimeFormat) +
		"\r\nX-Request-Id: " + id() + "\r\n\r\n"
	return append([]byte(head), answer.buf.Bytes()...), true
}
