package httpapi

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/kvd/kvd/sqlitekv"
)

// A request Go's HTTP server cannot parse (a broken %-escape in its
// target, a head past 64 KiB, an unknown transfer coding, no Host) never
// reaches kvd: net/http answers it itself, in plain text, with one write
// straight to the connection, and closes it. trackedConn.Write sees that
// write and sends kvd's JSON error in its place, so that every answer a
// client gets is one it can decode.
//
// The write is recognised by its whole text, which net/http builds as
// "HTTP/1.1 " + status + goErrorHeaders + body (server.go, conn.serve):
// nothing else kvd sends matches it. An answer's head has a Date line
// before any Content-Type, and the bytes of a stored value reach the
// connection only behind their answer's head or a chunk's size.
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// maxGoErrorWrite bounds what is looked at: net/http's longest such write
// is about 200 bytes.
const maxGoErrorWrite = 512

// asJSONError returns kvd's answer in place of p when p is net/http's own
// plain-text refusal of a request.
func asJSONError(p []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !ok || len(p) > maxGoErrorWrite {
		return nil, false
	}
	end := bytes.IndexByte(rest, '\r')
	if end < 4 || rest[3] != ' ' || !bytes.HasPrefix(rest[end:], []byte(goErrorHeaders)) {
		return nil, false // the first look fails for every answer of kvd's, in a few nanoseconds
	}
	statusLine, body := rest[:end], rest[end+len(goErrorHeaders):]
	status, err := strconv.Atoi(string(statusLine[:3]))
	if err != nil {
		return nil, false
	}
	var message string
	code := sqlitekv.CodeInvalidParameters
	switch {
	case status == http.StatusNotImplemented && string(body) == "Unsupported transfer encoding":
		message = "Unsupported Transfer-Encoding: kvd reads chunked bodies only"
	case !bytes.Equal(statusLine, body):
		return nil, false // not net/http's refusal
	case status == http.StatusRequestHeaderFieldsTooLarge:
		code, message = sqlitekv.CodePayloadTooLarge, "The request line and headers exceed 64 KiB"
	case status == http.StatusHTTPVersionNotSupported:
		message = "Unsupported HTTP version: kvd serves HTTP/1.1 and HTTP/1.0"
	case status == http.StatusBadRequest:
		message = "Malformed HTTP request: the request line or a header could not be parsed (a target with a raw space or a broken %-escape, a bad header line)"
		if detail, ok := bytes.CutPrefix(statusLine, []byte("400 Bad Request: ")); ok {
			message = "Malformed HTTP request: " + string(detail)
		}
	default:
		return nil, false
	}
	reason := http.StatusText(status)
	answer := encodeJSON(errorBody{StatusCode: status, Error: reason, Code: code, Message: message})
	defer answer.release()
	head := "HTTP/1.1 " + strconv.Itoa(status) + " " + reason +
		"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(answer.buf.Len()) + "\r\n\r\n"
	return append([]byte(head), answer.buf.Bytes()...), true
}
