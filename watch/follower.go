package watch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// Event is what a watcher is sent: one committed write, or a gap (Gap
// not 0) where history that was needed is gone.
type Event struct {
	Write sqlitekv.Event
	// Gap: writes of the watched keys were pruned from history; the
	// stream is complete again from op Gap on.
	Gap int64

	once sync.Once
	wire []byte
}

// Wire returns the event rendered by render, rendering it only once
// however many watchers send it.
func (e *Event) Wire(render func(*Event) []byte) []byte {
	e.once.Do(func() { e.wire = render(e) })
	return e.wire
}

// ErrClosed ends a watch whose database closed.
var ErrClosed = errors.New("watch: the database closed")

// Source reads a table's history: the database's read-only connections.
type Source interface {
	ReadChanges(ctx context.Context, req sqlitekv.ChangesRequest) (sqlitekv.ChangesPage, error)
}

// pageLimit is how many writes one read of history takes.
const pageLimit = 256

// Follower yields a watcher's events in op_number order: first from
// history (a start in the past, or after falling behind), then live from
// the hub, each op once. It subscribes before it reads history, so a
// write that commits meanwhile is in one or the other (in both, it is
// sent once: nothing at or below the last op sent is sent again).
//
// Why history as the fallback rather than bigger buffers: history holds
// every committed write already, in order, on disk; a watcher that falls
// behind costs reads on its own connection, not memory in kvd or time in
// the writer.
type Follower struct {
	sub  *Sub
	src  Source
	last int64 // the newest op sent or known not to match (every op up to it is settled)
	// reading: events may be in history that the live buffer lacks.
	reading bool
	since   int64  // the time the watch starts from (Unix ms), until its first read; 0: none
	gapTold int64  // the newest gap sent: the pages after it find that loss again
	gapAsOf uint64 // the Prunes of the last page whose gap was checked without since (ChangesRequest.GapAsOf)
}

// Follow subscribes f and starts after op after (every write after it is
// sent); after < 0 means from now: from the table's newest op. A watch
// from a time gives it as since (Unix ms; else 0), with after the newest
// op kept before it: writes pruned from before it are then no gap.
func Follow(ctx context.Context, h *Hub, src Source, f Filter, after, since int64) (*Follower, error) {
	fl := &Follower{sub: h.Subscribe(f), src: src, last: after, reading: true, since: since}
	if after < 0 {
		p, err := src.ReadChanges(ctx, sqlitekv.ChangesRequest{Table: f.Table, Key: f.Key, Prefix: f.Prefix, After: 1<<63 - 1})
		if err != nil {
			fl.Close()
			return nil, err
		}
		fl.last, fl.reading = p.Head, false
	}
	return fl, nil
}

// Close unsubscribes.
func (fl *Follower) Close() { fl.sub.Close() }

// Last is the op every write up to which has been sent (or did not
// match): where a watcher resumes.
func (fl *Follower) Last() int64 { return fl.last }

// Next returns the next events, waiting for at least one until ctx ends
// or idle passes (then none and no error: time for a heartbeat).
func (fl *Follower) Next(ctx context.Context, idle time.Duration) ([]*Event, error) {
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		if fl.sub.hub.shut.Load() {
			return nil, ErrClosed
		}
		if fl.sub.lagged.Load() {
			fl.catchUp()
		}
		if fl.reading {
			evs, err := fl.readHistory(ctx)
			if err != nil || len(evs) > 0 {
				return evs, err
			}
			continue
		}
		select {
		case ev := <-fl.sub.events:
			fl.sub.held.Add(-ev.size())
			if evs := fl.live(ev); len(evs) > 0 {
				return evs, nil
			}
		case <-fl.sub.wake:
		case <-timer.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// catchUp starts reading history: the live buffer missed events.
func (fl *Follower) catchUp() {
	fl.sub.lagged.Store(false) // events published from now on are buffered again
	for range len(fl.sub.events) {
		fl.sub.take() // all in history, which is read next
	}
	fl.reading = true
}

// live takes ev and whatever else is buffered, leaving out what was sent.
func (fl *Follower) live(ev *Event) []*Event {
	var out []*Event
	for ok := true; ok; ev, ok = fl.sub.take() {
		if op := ev.Write.OpNumber; op > fl.last {
			out = append(out, ev)
			fl.last = op
		}
	}
	return out
}

// readHistory reads the next page of history; once it has read all of
// it, live events take over. Every page checks for writes pruned after
// the last op sent: retention may run between two pages, as between the
// watcher falling behind and its first page.
func (fl *Follower) readHistory(ctx context.Context) ([]*Event, error) {
	f := fl.sub.filter
	p, err := fl.src.ReadChanges(ctx, sqlitekv.ChangesRequest{Table: f.Table, Key: f.Key, Prefix: f.Prefix,
		After: fl.last, Limit: pageLimit, CheckGap: true, GapAsOf: fl.gapAsOf, Since: fl.since})
	if err != nil {
		return nil, err
	}
	if fl.since == 0 { // since spares some keys the check; later pages count them again
		fl.gapAsOf = p.Prunes
	}
	fl.since = 0 // later reads go on after ops sent: a write pruned after them is lost
	var out []*Event
	tell := func(gap int64) {
		if gap > fl.gapTold {
			out = append(out, &Event{Gap: gap})
			fl.gapTold = gap
		}
	}
	if p.Head < fl.last {
		// The watcher counted ops this table never reached: another
		// lineage of it (the database recreated, or restored from a
		// replica that lacks its last writes). Every write from Head+1
		// on is new to it; skipping those up to its count would lose them.
		fl.last, fl.gapTold, fl.gapAsOf = p.Head, 0, 0
		tell(p.Head + 1)
	}
	tell(p.Gap)
	for _, w := range p.Changes {
		out = append(out, &Event{Write: w})
		fl.last = w.OpNumber
	}
	if p.Complete {
		fl.last = max(fl.last, p.Head) // every matching write up to Head was in the page
		fl.reading = false
	}
	return out, nil
}
