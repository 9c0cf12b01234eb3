package httpapi

import (
	"io"
	"net/http"
	"time"
)

// A request body must arrive within ReadTimeout of its handler starting: a
// client that stalls or trickles its body would otherwise hold its
// connection (and a handler) for good. Go's own ReadTimeout is not used:
// it stays on the connection while the handler works, and its expiry
// cancels the request's context even after the whole body was read.
//
// An answer sent before the body was read to its end (401, 413, a 400 on
// the query) closes the connection: net/http would otherwise read the
// rest of the body to keep the connection, waiting on a client that may
// never send it, before the answer even goes out.

// bodyWatch sets and lifts the body's deadline, and tells the connection
// limiter while the handler waits for the body.
type bodyWatch struct {
	io.ReadCloser
	rc   *http.ResponseController
	conn *trackedConn // nil when the listener is not kvd's
	done bool
}

// watchBody puts the body of r (a request meterBody copied) on the clock;
// a request without a body needs nothing and gets a nil watch.
func (s *Server) watchBody(w http.ResponseWriter, r *http.Request) *bodyWatch {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b := &bodyWatch{ReadCloser: r.Body, rc: http.NewResponseController(w), conn: connOf(r)}
	if b.conn != nil {
		b.conn.uploading.Store(true)
	}
	b.rc.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
	r.Body = b
	return b
}

// Read reads the body. A connection closed for a newcomer while its
// handler waited for the body (see startWork) aborts the handler: it must
// not go on with what it read, nor answer (an error would tell its client
// a valid request was wrong).
func (b *bodyWatch) Read(p []byte) (int, error) {
	if b.conn != nil && !b.done {
		b.conn.waitForBody()
		defer func() {
			if !b.conn.startWork() {
				panic(http.ErrAbortHandler)
			}
		}()
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		// Read in time: lift the deadline, or it would end the handler's
		// wait on the database.
		b.rc.SetReadDeadline(time.Time{})
		b.finish()
	}
	return n, err
}

// earlyAnswerGrace is how long, once an early answer has gone out, the
// rest of a small body is read before the connection closes (net/http
// reads up to 256 KiB of it). Closing on unread bytes would reset the
// connection, and a reset can destroy the answer in the client's buffers
// before the client reads it; a stalled client still loses its
// connection after this grace.
const earlyAnswerGrace = 500 * time.Millisecond

// beforeAnswer runs as the status is about to be written: an answer that
// comes before the body's end closes the connection, and the deadline
// moves to earlyAnswerGrace from now, so net/http, which reads what is
// left of the body after the answer, waits no longer for it.
func (b *bodyWatch) beforeAnswer(h http.Header) {
	if b == nil || b.done {
		return
	}
	h.Set("Connection", "close")
	b.rc.SetReadDeadline(time.Now().Add(earlyAnswerGrace))
	b.finish()
}

// finish: the handler no longer waits for the body.
func (b *bodyWatch) finish() {
	if b != nil {
		b.done = true
		if b.conn != nil {
			b.conn.uploading.Store(false)
		}
	}
}
