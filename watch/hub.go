package watch

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kvd/kvd/sqlitekv"
)

// Hub hands a database's committed writes to its watchers. Its owner (the
// database actor) publishes each group once, after COMMIT; Publish never
// blocks on a watcher.
type Hub struct {
	mu       sync.Mutex
	byKey    map[tableKey]map[*Sub]struct{}
	byPrefix map[string]map[*Sub]struct{} // table → watchers of a prefix (or the whole table)
	subs     atomic.Int64
	shut     atomic.Bool // the database closed: nothing more will be published
}

type tableKey struct{ table, key string }

// NewHub returns a hub without watchers.
func NewHub() *Hub {
	return &Hub{byKey: map[tableKey]map[*Sub]struct{}{}, byPrefix: map[string]map[*Sub]struct{}{}}
}

// Filter is what a watcher follows: one key of a table, or, with Key
// empty, the keys of the table under Prefix ("" for all).
type Filter struct {
	Table, Key, Prefix string
}

// matches tells whether a prefix watcher follows key (Publish finds a
// key's own watchers by the key).
func (f Filter) matches(key string) bool { return strings.HasPrefix(key, f.Prefix) }

// Buffer is how many live events a watcher may have waiting, and
// BufferBytes how many bytes of values and keys: past either, it reads
// history instead (Sub.lagged). As many events as one group of single-key
// writes commits at most (the actor's maxGroup), so that a watcher of a
// hot key that keeps up does not fall behind by one full group of values
// up to 1 KiB (larger ones fill the bytes first); an idle watcher costs
// 2 KiB for them. The bytes bound what a stalled watcher holds, whose
// stream cannot send: at 256 events of values up to
// sqlitekv.MaxCarriedValue it held 2 MiB (40 stalled watchers took kvd
// from 61 to 293 MB); now at most about as much as its socket's buffer.
const (
	Buffer      = 256
	BufferBytes = 256 << 10
)

// Sub is one watcher's place in the hub.
type Sub struct {
	hub    *Hub
	filter Filter
	events chan *Event
	held   atomic.Int64 // the bytes of the events waiting in events
	// lagged: the watcher missed live events (its buffer was full, an
	// event was too large to carry, or a group was published without its
	// events); it reads history until it has caught up. wake tells it.
	lagged atomic.Bool
	wake   chan struct{}
}

// Active reports whether anyone watches: the owner keeps a group's
// events only then.
func (h *Hub) Active() bool { return h.subs.Load() > 0 }

// Subscribe adds a watcher; Close removes it.
func (h *Hub) Subscribe(f Filter) *Sub {
	s := &Sub{hub: h, filter: f, events: make(chan *Event, Buffer), wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.byPrefix[f.Table]
	if f.Key != "" {
		set = h.byKey[tableKey{f.Table, f.Key}]
	}
	if set == nil {
		set = map[*Sub]struct{}{}
		if f.Key != "" {
			h.byKey[tableKey{f.Table, f.Key}] = set
		} else {
			h.byPrefix[f.Table] = set
		}
	}
	set[s] = struct{}{}
	h.subs.Add(1)
	return s
}

// Close removes the watcher from its hub.
func (s *Sub) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.filter.Key != "" {
		k := tableKey{s.filter.Table, s.filter.Key}
		if set := h.byKey[k]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(h.byKey, k)
			}
		}
	} else if set := h.byPrefix[s.filter.Table]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.byPrefix, s.filter.Table)
		}
	}
	h.subs.Add(-1)
}

// Publish hands a committed group's writes, in op_number order, to the
// watchers they match. Each event is made once and shared, so that its
// wire form is rendered once however many watch it.
func (h *Hub) Publish(writes []sqlitekv.Event) {
	if !h.Active() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range writes {
		w := &writes[i]
		var ev *Event
		deliver := func(s *Sub) {
			if ev == nil {
				ev = &Event{Write: *w}
			}
			s.deliver(ev)
		}
		for s := range h.byKey[tableKey{w.Table, w.Key}] {
			deliver(s)
		}
		for s := range h.byPrefix[w.Table] {
			if s.filter.matches(w.Key) {
				deliver(s)
			}
		}
	}
}

// Shut tells every watcher that the database closed (its file was
// replaced, say): nothing more will come through this hub, and their
// streams end (a client reconnects and opens the database afresh).
func (h *Hub) Shut() {
	h.shut.Store(true)
	h.Missed()
}

// Missed tells every watcher that a group committed whose events were
// not kept (it began before anyone watched): they read history.
func (h *Hub) Missed() {
	if !h.Active() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.byKey {
		for s := range set {
			s.fallBehind()
		}
	}
	for _, set := range h.byPrefix {
		for s := range set {
			s.fallBehind()
		}
	}
}

func (s *Sub) deliver(ev *Event) {
	if s.lagged.Load() {
		return // it reads history: this event is there
	}
	size := ev.size()
	if ev.Write.Large || s.held.Load()+size > BufferBytes {
		s.fallBehind()
		return
	}
	s.held.Add(size)
	select {
	case s.events <- ev:
	default:
		s.held.Add(-size)
		s.fallBehind()
	}
}

// take receives a waiting event, if there is one.
func (s *Sub) take() (*Event, bool) {
	select {
	case ev := <-s.events:
		s.held.Add(-ev.size())
		return ev, true
	default:
		return nil, false
	}
}

// size is what an event holds in a watcher's buffer, as BufferBytes counts.
func (e *Event) size() int64 { return int64(len(e.Write.Key) + len(e.Write.Entry.Value)) }

func (s *Sub) fallBehind() {
	s.lagged.Store(true)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
