package httpapi

import (
	"context"
	"errors"
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
	resumed  bool          // after comes from Last-Event-ID: since only excuses writes pruned from before it
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
	if err := s.takeWatchSlot(); err != nil {
		s.writeError(w, r, err)
		return
	}
	db, err := s.leaseDB(r, t.q.readDB())
	if err != nil {
		s.watches.Add(-1)
		s.writeError(w, r, err)
		return
	}
	if err := db.StartWatching(); err != nil {
		db.Release()
		s.watches.Add(-1)
		s.writeError(w, r, err)
		return
	}
	fl, err := startWatch(r.Context(), db, req)
	if err != nil {
		db.StopWatching()
		db.Release()
		s.watches.Add(-1)
		s.writeError(w, r, err)
		return
	}
	// The watch holds its lease on the database, and its place in the
	// hub, until it ends.
	end := func() {
		fl.Close()
		db.StopWatching()
		db.Release()
		s.watches.Add(-1)
	}
	if req.wait > 0 {
		defer end()
		ctx, cancel := s.watchContext(r.Context())
		defer cancel()
		if err := s.longPoll(ctx, w, r, fl, req.wait); err != nil {
			s.writeError(w, r, err)
		}
		return
	}
	id, allowed := w.Header().Get("X-Request-Id"), s.cfg.Tokens.stillAllows(r.Header.Get("Authorization"))
	conn, hijacked := s.hijackStream(w)
	if !hijacked { // HTTP/2, or a ResponseWriter that cannot: net/http streams it
		defer end()
		ctx, cancel := s.watchContext(r.Context())
		defer cancel()
		s.stream(ctx, flushSink{w, http.NewResponseController(w)}, fl, id, allowed)
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
		go endWhenClosed(conn, cancel)
		s.stream(ctx, connSink{conn}, fl, id, allowed)
	}()
}

// takeWatchSlot counts a watch in, unless watches hold as many
// connections as they may: all but an eighth of --max-connections. A
// watch is in service for as long as it lasts, so it is never closed
// for a newcomer; 10,050 idle watches of one client had every other
// request, /healthz too, refused at the cap.
func (s *Server) takeWatchSlot() error {
	if s.watches.Add(1) > int64(s.maxWatches) {
		s.watches.Add(-1)
		return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Too many watches are open (%d): an eighth of --max-connections is kept for other requests; retry later", s.maxWatches)
	}
	return nil
}

// startWatch places the watch: from a time, an op, or now. From a time,
// it starts after the newest op kept before it, and tells the time too:
// the writes pruned after that op may have been made before it, and are
// then no gap. So does a watch from a time that resumes after an op
// (an EventSource sends its first URL again, with Last-Event-ID). A time
// still to come is now: every write after the watch's start is asked
// for, and one pruned is a gap (kept as the time, it excused every write
// pruned before it, and a watch resumed with Last-Event-ID lost them
// without one).
func startWatch(ctx context.Context, db *actors.DB, req watchRequest) (*watch.Follower, error) {
	var since int64
	if req.hasSince {
		if !req.resumed {
			var err error
			if req.after, err = db.OpBefore(ctx, req.filter.Table, req.since); err != nil {
				return nil, err
			}
		}
		if req.since <= db.Now() {
			since = req.since
		}
	}
	return db.Watch(ctx, req.filter, req.after, since)
}

// watchContext is parent, ended also when kvd stops.
func (s *Server) watchContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.stopping, cancel)
	return ctx, func() { stop(); cancel() }
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
		var ok bool
		if req.since, _, ok = unixMillis(t.q.Get("since")); !ok {
			return req, invalidParam("since must be Unix seconds")
		}
		req.hasSince = true
	}
	// An EventSource that reconnects sends the URL it began with and the
	// id of the last event it saw: that is where it resumes.
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if req.after, err = strconv.ParseInt(id, 10, 64); err != nil || req.after < 0 {
			return req, invalidParam("Last-Event-ID must be an op number")
		}
		req.resumed = true
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
		if n < 1 || n > int(maxWatchWait/time.Second) {
			n = 0 // refused below; in seconds, a larger n could wrap into range
		}
		d, err = time.Duration(n)*time.Second, nerr
	}
	if err != nil || d < time.Millisecond || d > maxWatchWait {
		return 0, invalidParam("wait must be a duration from 1ms to 60s (30s, 500ms, or whole seconds)")
	}
	return d, nil
}

// longPoll answers the events there are, waiting up to wait for one.
func (s *Server) longPoll(ctx context.Context, w http.ResponseWriter, r *http.Request, fl *watch.Follower, wait time.Duration) error {
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
	s.writeAnswer(w, r, res)
	return nil
}
