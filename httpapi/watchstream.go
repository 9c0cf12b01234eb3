package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/kvd/kvd/sqlitekv"
	"github.com/kvd/kvd/watch"
)

// hijackStream takes the connection from net/http and writes the
// answer's head on it: a stream then costs two goroutines (its own and
// endWhenClosed's) and no buffers of net/http's (10 KiB a connection,
// most of an idle watcher's memory). The body runs until the connection
// closes. hijacked false: the caller streams through w.
func (s *Server) hijackStream(w http.ResponseWriter) (conn net.Conn, hijacked bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h.Write(&head)
	head.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\nConnection: close\r\n\r\n")
	if !(connSink{c}).send(head.Bytes()) {
		c.Close()
		return nil, true
	}
	return c, true
}

// eventSink is where a stream's bytes go.
type eventSink interface{ send(b []byte) bool }

// connSink writes to a hijacked connection; a client that reads nothing
// for watchWriteStall loses it.
type connSink struct{ c net.Conn }

func (k connSink) send(b []byte) bool {
	k.c.SetWriteDeadline(time.Now().Add(watchWriteStall))
	_, err := k.c.Write(b)
	return err == nil
}

// endWhenClosed calls end when c's client closes its end, or the stream
// closes c: a watcher that left gives back its connection slot and its
// watched database at once, not at the next heartbeat (until then a
// thousand watches opened and dropped in a second locked every other
// client out). A client sends nothing after its request; anything it
// does send is dropped.
func endWhenClosed(c net.Conn, end context.CancelFunc) {
	defer end()
	c.SetReadDeadline(time.Time{}) // net/http's, left on a hijacked connection
	var b [64]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

// flushSink writes through net/http, flushing each write.
type flushSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (k flushSink) send(b []byte) bool {
	k.rc.SetWriteDeadline(time.Now().Add(watchWriteStall))
	if _, err := k.w.Write(b); err != nil {
		return false
	}
	return k.rc.Flush() == nil
}

// stream sends events until the client leaves, kvd stops, a write to
// the client stalls, or the token it was opened with is no longer
// allowed (looked at before each send). Its answer has begun: failures
// end it, silently.
//
// What a stream sends at once (a page of history: up to a mebibyte of
// values, more once rendered; or a burst of live writes) waits in memory
// for as long as its client does not read it, as a read's answer does:
// so it holds its size of the answer memory while it is sent
// (answermemory.go), and is dropped once sent. Four hundred watchers that
// read nothing held 1.8 GB before. When the answer memory is spent, the
// stream ends with a comment saying why; the client reconnects with
// Last-Event-ID and loses nothing.
func (s *Server) stream(ctx context.Context, out eventSink, fl *watch.Follower, requestID string, allowed func() bool) {
	send := func(b []byte) bool {
		if !allowed() {
			out.send([]byte(": the watch ended: its token is no longer accepted\n\n"))
			return false
		}
		return out.send(b)
	}
	// The first line says the watch is in place: every write committed
	// from now on will be sent.
	if !send([]byte(": watching after op " + strconv.FormatInt(fl.Last(), 10) + "\n\n")) {
		return
	}
	var small []byte // reused for what is too small to count
	for {
		evs, err := fl.Next(ctx, s.cfg.WatchHeartbeat)
		if err != nil {
			if ctx.Err() != nil {
				return // the client left, or kvd stops
			}
			why := "the database closed"
			switch {
			case errors.Is(err, watch.ErrClosed):
			case sqlitekv.CodeOf(err) == sqlitekv.CodeOverloaded: // closing under it (a replaced file, a hand-over): the client retries
				why = "the database is closing"
			default:
				why = "history could not be read"
				s.log.Error("watch ended", "request_id", requestID, "err", err)
			}
			send([]byte(": the watch ended: " + why + "; reconnect with Last-Event-ID\n\n"))
			return
		}
		if len(evs) == 0 {
			if !send([]byte(": keep-alive\n\n")) {
				return
			}
			continue
		}
		size := 0
		for _, ev := range evs {
			size += len(ev.Wire(sseEvent))
		}
		release, err := s.holdAnswer(size)
		if err != nil {
			send([]byte(": the watch ended: too many large answers are waiting for their clients to read them; reconnect with Last-Event-ID\n\n"))
			return
		}
		b := small[:0]
		if size >= heldAnswerMin {
			b = make([]byte, 0, size)
		}
		for _, ev := range evs {
			b = append(b, ev.Wire(sseEvent)...)
		}
		if size < heldAnswerMin {
			small = b
		}
		sent := send(b)
		release()
		if !sent {
			return
		}
	}
}
