package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/kvd/kvd/watch"
)

// A watch answers Server-Sent Events: one per committed write, in
// op_number order (id: the op number, so a client that reconnects with
// Last-Event-ID resumes where it stopped), or with wait=<duration> one
// long-poll JSON answer. It holds its connection (and a lease on its
// database) until the client leaves or kvd stops.

const (
	// DefaultWatchHeartbeat is how often an idle stream gets a comment
	// line, so that proxies and clients see it alive.
	DefaultWatchHeartbeat = 15 * time.Second
	maxWatchWait          = 60 * time.Second
	// watchWriteStall is how long one write to a watcher may wait for
	// its client to read: one that reads nothing loses its stream.
	watchWriteStall = 30 * time.Second
)

// watchRequest is what a watch asks for.
type watchRequest struct {
	filter   watch.Filter
	after    int64 // every write after this op; -1: from now
	since    int64 // with hasSince: from this time (Unix ms) instead
	hasSince bool
	wait     time.Duration // > 0: the long-poll form
}

func (s *Server) handleWatchKey(w http.ResponseWriter, r *http.Request, t target) {
	s.watch(w, r, t, watch.Filter{Key: t.key})
}

func (s *Server) handleWatchTable(w http.ResponseWriter, r *http.Request, t target) {
	s.watch(w, r, t, watch.Filter{Prefix: t.q.Get("prefix")})
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request, t target, f watch.Filter) {
	req, err := parseWatch(r, t, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	db, err := s.leaseDB(t.q.readDB())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fl, err := startWatch(r.Context(), db, req)
	if err != nil {
		db.Release()
		s.writeError(w, r, err)
		return
	}
	s.watches.Add(1)
	// The watch holds its lease on the database, and its place in the
	// hub, until it ends.
	end := func() {
		fl.Close()
		db.Release()
		s.watches.Add(-1)
	}
	if req.wait > 0 {
		defer end()
		ctx, cancel := s.watchContext(r.Context())
		defer cancel()
		if err := s.longPoll(ctx, w, fl, req.wait); err != nil {
			s.writeError(w, r, err)
		}
		return
	}
	id := w.Header().Get("X-Request-Id")
	conn, hijacked := s.hijackStream(w)
	if !hijacked { // HTTP/2, or a ResponseWriter that cannot: net/http streams it
		defer end()
		ctx, cancel := s.watchContext(r.Context())
		defer cancel()
		s.stream(ctx, flushSink{w, http.NewResponseController(w)}, fl, id)
		return
	}
	if conn == nil { // the client left before the headers went out
		end()
		return
	}
	s.streams.Add(1)
	go func() {
		defer s.streams.Done()
		defer end()
		defer conn.Close()
		ctx, cancel := s.watchContext(context.Background())
		defer cancel()
		s.stream(ctx, connSink{conn}, fl, id)
	}()
}

// startWatch places the watch: from a time, an op, or now.
func startWatch(ctx context.Context, db *actors.DB, req watchRequest) (*watch.Follower, error) {
	if req.hasSince {
		var err error
		if req.after, err = db.OpBefore(ctx, req.filter.Table, req.since); err != nil {
			return nil, err
		}
	}
	return db.Watch(ctx, req.filter, req.after)
}

// watchContext is parent, ended also when kvd stops.
func (s *Server) watchContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.stopping, cancel)
	return ctx, func() { stop(); cancel() }
}

// hijackStream takes the connection from net/http and writes the
// answer's head on it: a stream then costs one goroutine and no buffers
// of net/http's (which hold a reader goroutine and 10 KiB a connection,
// most of an idle watcher's memory). A client that leaves is noticed at
// the next heartbeat at the latest (eventSink.gone). The body runs until the
// connection closes. hijacked false: the caller streams through w.
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
type eventSink interface {
	send(b []byte) bool
	gone() bool // the client closed its end
}

// connSink writes to a hijacked connection; a client that reads nothing
// for watchWriteStall loses it.
type connSink struct{ c net.Conn }

func (k connSink) send(b []byte) bool {
	k.c.SetWriteDeadline(time.Now().Add(watchWriteStall))
	_, err := k.c.Write(b)
	return err == nil
}

// gone reads without waiting: a client closes its end when it leaves, and
// the first write after that would still succeed (only its answer, a
// reset, fails the second). Anything else a client sends is ignored.
func (k connSink) gone() bool {
	k.c.SetReadDeadline(time.Now())
	var b [1]byte
	_, err := k.c.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// flushSink writes through net/http, flushing each write.
type flushSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (k flushSink) gone() bool { return false } // net/http ends the request's context

func (k flushSink) send(b []byte) bool {
	k.rc.SetWriteDeadline(time.Now().Add(watchWriteStall))
	if _, err := k.w.Write(b); err != nil {
		return false
	}
	return k.rc.Flush() == nil
}

func parseWatch(r *http.Request, t target, f watch.Filter) (req watchRequest, err error) {
	req.filter, req.after = f, -1
	if req.filter.Table, err = t.q.table(); err != nil {
		return req, err
	}
	if t.q.has("after_op") && t.q.has("since") {
		return req, invalidParam("Give after_op or since, not both")
	}
	if t.q.has("after_op") {
		if req.after, err = strconv.ParseInt(t.q.Get("after_op"), 10, 64); err != nil || req.after < 0 {
			return req, invalidParam("after_op must be an op number (0: from the first write)")
		}
	}
	if t.q.has("since") {
		sec, err := strconv.ParseFloat(t.q.Get("since"), 64)
		if err != nil || math.IsNaN(sec) || sec < 0 || sec > 1e13 {
			return req, invalidParam("since must be Unix seconds")
		}
		req.since, req.hasSince = int64(math.Floor(sec*1000)), true
	}
	// An EventSource that reconnects sends the URL it began with and the
	// id of the last event it saw: that is where it resumes.
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if req.after, err = strconv.ParseInt(id, 10, 64); err != nil || req.after < 0 {
			return req, invalidParam("Last-Event-ID must be an op number")
		}
		req.hasSince = false
	}
	if t.q.has("wait") {
		if req.wait, err = parseWait(t.q.Get("wait")); err != nil {
			return req, err
		}
	}
	return req, nil
}

// parseWait reads a Go duration ("30s", "500ms") or whole seconds.
func parseWait(raw string) (time.Duration, error) {
	d, err := time.ParseDuration(raw)
	if err != nil {
		n, nerr := strconv.Atoi(raw)
		d, err = time.Duration(n)*time.Second, nerr
	}
	if err != nil || d <= 0 || d > maxWatchWait {
		return 0, invalidParam("wait must be a duration from 1ms to 60s (30s, 500ms, or whole seconds)")
	}
	return d, nil
}

// stream sends events until the client leaves, kvd stops, or a write to
// the client stalls. Its answer has begun: failures end it, silently.
func (s *Server) stream(ctx context.Context, out eventSink, fl *watch.Follower, requestID string) {
	send := out.send
	// The first line says the watch is in place: every write committed
	// from now on will be sent.
	if !send([]byte(": watching after op " + strconv.FormatInt(fl.Last(), 10) + "\n\n")) {
		return
	}
	var buf bytes.Buffer
	for {
		evs, err := fl.Next(ctx, s.cfg.WatchHeartbeat)
		if err != nil {
			if ctx.Err() != nil {
				return // the client left, or kvd stops
			}
			why := "the database closed"
			if !errors.Is(err, watch.ErrClosed) {
				why = "history could not be read"
				s.log.Error("watch ended", "request_id", requestID, "err", err)
			}
			send([]byte(": the watch ended: " + why + "; reconnect with Last-Event-ID\n\n"))
			return
		}
		buf.Reset()
		if len(evs) == 0 {
			if out.gone() {
				return
			}
			buf.WriteString(": keep-alive\n\n")
		}
		for _, ev := range evs {
			buf.Write(ev.Wire(sseEvent))
		}
		if !send(buf.Bytes()) {
			return
		}
	}
}

// longPoll answers the events there are, waiting up to wait for one.
func (s *Server) longPoll(ctx context.Context, w http.ResponseWriter, fl *watch.Follower, wait time.Duration) error {
	evs, err := fl.Next(ctx, wait)
	switch {
	case errors.Is(err, watch.ErrClosed):
		return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "The database closed while waiting; retry shortly")
	case err != nil && ctx.Err() == nil:
		return err
	}
	res := watchPollResponse{Events: make([]watchEventData, 0, len(evs)), NextOp: fl.Last()}
	for _, ev := range evs {
		res.Events = append(res.Events, eventData(ev))
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

type watchPollResponse struct {
	Events []watchEventData `json:"events"`
	NextOp int64            `json:"next_op"` // pass it as after_op to go on
}

// watchEventData is an event's data line: a write, with its value as
// history shows it, or a gap (Code and ResumeOp).
type watchEventData struct {
	Key         string          `json:"key,omitempty"`
	Op          string          `json:"op,omitempty"`
	OpNumber    int64           `json:"op_number,omitempty"`
	Timestamp   float64         `json:"timestamp,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	RawValue    *string         `json:"raw_value,omitempty"` // a pointer: "" is an empty value
	ContentType string          `json:"content_type,omitempty"`
	Code        sqlitekv.Code   `json:"code,omitempty"`
	ResumeOp    int64           `json:"resume_op,omitempty"`
}

// eventData shows ev. A write made with history=false is a gap too: its
// value was never kept, so history cannot show it, and the stream shows
// what history does.
func eventData(ev *watch.Event) watchEventData {
	if ev.Gap > 0 {
		return watchEventData{Code: sqlitekv.CodeTimeTravelGap, ResumeOp: ev.Gap}
	}
	v := ev.Write
	d := watchEventData{Key: v.Key, Op: v.Op, OpNumber: v.OpNumber, Timestamp: unixSeconds(v.Ts)}
	switch {
	case !v.Recorded:
		d.Code, d.ResumeOp = sqlitekv.CodeTimeTravelGap, v.OpNumber+1
	case !v.Removes():
		d.Value, d.RawValue = historyValue(v.Entry)
		d.ContentType = v.Entry.ContentType
	}
	return d
}

// sseEvent renders ev as one Server-Sent Event. A pruned gap carries no
// id: a client that reconnects resumes after the last write it saw.
func sseEvent(ev *watch.Event) []byte {
	d := eventData(ev)
	var b bytes.Buffer
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	enc.SetEscapeHTML(false) // values as they were stored, "<p>" and all
	enc.Encode(d)            // plain fields and valid JSON values: cannot fail; one line (RawMessage is compacted)
	if d.OpNumber > 0 {
		b.WriteString("id: " + strconv.FormatInt(d.OpNumber, 10) + "\n")
	}
	name := d.Op
	if d.Code != "" {
		name = "gap"
	}
	b.WriteString("event: " + name + "\ndata: ")
	b.Write(data.Bytes()) // Encode's newline ends the line
	b.WriteString("\n")
	return b.Bytes()
}
