package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvd/kvd/client"
)

// The watch scenario: W watchers follow kvd's watch streams while the
// workers write. Each write's value starts with its sequence number, so a
// watcher knows which write an event is; the writer notes when each write
// was acknowledged, and the report says how long after that its event
// arrived at each watcher that should see it, how many such events never
// came (lost) and how many came twice (duplicated).
//
// The watchers are either all on the prefix the writes go under, or
// (WatchEach) one per key, the writes spread over those keys. With
// incr-hot, Watchers watchers follow the hot key and check that they see
// every increment, in order.

// DefaultWatchers is how many watchers the watch scenario runs.
const DefaultWatchers = 10

const watchPrefix = "kvbench/watch/"

// WatchReport is what the watchers saw.
type WatchReport struct {
	Watchers   int     `json:"watchers"`
	PerKey     bool    `json:"per_key"`           // each watcher on its own key; else all on the prefix
	HotKey     bool    `json:"hot_key,omitempty"` // incr-hot: on the hot key
	Expected   int64   `json:"expected"`
	Events     int64   `json:"events"` // events of acknowledged writes that arrived
	Lost       int64   `json:"lost"`
	Duplicated int64   `json:"duplicated"`
	OutOfOrder int64   `json:"out_of_order"`
	Gaps       int64   `json:"gaps"`
	Latency    Latency `json:"latency_ms"` // from the write's acknowledgement to the event's arrival
	Message    string  `json:"message"`
}

// OK says whether every watcher saw every write once, in order.
func (w *WatchReport) OK() bool {
	return w.Lost == 0 && w.Duplicated == 0 && w.OutOfOrder == 0 && w.Gaps == 0
}

// watchReporter is a scenario with watchers: after the load, they report.
type watchReporter interface {
	finishWatch(ctx context.Context, acked int64) *WatchReport
}

// writeLog notes, for each write of the watch scenario, its key and when
// it was acknowledged (0: not yet, or not 200).
type writeLog struct {
	mu  sync.Mutex
	key []int32
	ack []int64 // unix ns
}

func (l *writeLog) sent(seq int64, key int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for int64(len(l.key)) <= seq {
		l.key, l.ack = append(l.key, -1), append(l.ack, 0)
	}
	l.key[seq] = int32(key)
}

func (l *writeLog) acked(seq int64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ack[seq] = at.UnixNano()
}

// watchLoad writes values "<seq>:<padding>" to kvbench/watch/NNNNNN.
type watchLoad struct {
	c        *Client
	db       string
	keys     []string
	writes   []string
	pad      []byte
	seq      atomic.Int64
	log      writeLog
	watchers *watcherSet
}

func newWatchLoad(c *Client, cfg Config) *watchLoad {
	n := cfg.Watchers
	if n <= 0 {
		n = DefaultWatchers
	}
	keys := cfg.Keys
	if cfg.WatchEach {
		keys = n
	}
	s := &watchLoad{c: c, db: cfg.DB, keys: keyNames(watchPrefix, keys), pad: makeValue(cfg.ValueSize)}
	q := dbQuery(c, cfg.DB, true)
	for _, k := range s.keys {
		s.writes = append(s.writes, c.keyURL(k, "", q))
	}
	targets := make([]string, n)
	for i := range targets {
		rq := dbQuery(c, cfg.DB, false)
		if cfg.WatchEach {
			targets[i] = c.keyURL(s.keys[i], "watch", rq)
		} else {
			rq.Set("prefix", watchPrefix)
			targets[i] = c.url(client.APIPrefix+"/kv/watch", rq)
		}
	}
	s.watchers = newWatcherSet(c, targets, cfg.WatchEach)
	return s
}

// Prepare makes the database and starts the watchers, from now.
func (s *watchLoad) Prepare(ctx context.Context) error {
	if err := createDB(ctx, s.c, s.db); err != nil {
		return err
	}
	return s.watchers.start(ctx)
}

// createDB makes sure db exists (a watch of a missing one is a 404).
func createDB(ctx context.Context, c *Client, db string) error {
	a, err := c.do(ctx, http.MethodPut, c.keyURL("kvbench/watch-start", "", dbQuery(c, db, true)), []byte("0"), "", nil)
	if err == nil && a.status != http.StatusOK {
		err = fmt.Errorf("status %d", a.status)
	}
	if err != nil {
		return fmt.Errorf("create the database: %w", err)
	}
	return nil
}

func (s *watchLoad) NewWorker(seed uint64) Worker {
	return &watchWriter{s: s, rng: rand.New(rand.NewPCG(seed, 0x77617463))}
}

type watchWriter struct {
	s   *watchLoad
	rng *rand.Rand
	buf []byte
}

func (w *watchWriter) Do(ctx context.Context) Outcome {
	seq := w.s.seq.Add(1)
	k := w.rng.IntN(len(w.s.keys))
	w.s.log.sent(seq, k)
	w.buf = append(strconv.AppendInt(w.buf[:0], seq, 10), ':')
	w.buf = append(w.buf, w.s.pad...)
	a, err := w.s.c.do(ctx, http.MethodPut, w.s.writes[k], w.buf, "", nil)
	if err == nil && a.status == http.StatusOK {
		w.s.log.acked(seq, time.Now())
	}
	return outcome(a, err, -1)
}

func (s *watchLoad) finishWatch(ctx context.Context, _ int64) *WatchReport {
	s.log.mu.Lock()
	keys, acks := s.log.key, s.log.ack
	s.log.mu.Unlock()
	expected := func(w *watcher) int64 {
		n := int64(0)
		for seq, at := range acks {
			if at != 0 && (w.key < 0 || int(keys[seq]) == w.key) {
				n++
			}
		}
		return n
	}
	s.watchers.settle(ctx, expected)
	r := &WatchReport{Watchers: len(s.watchers.ws), PerKey: s.watchers.perKey}
	h := NewHistogram()
	for _, w := range s.watchers.ws {
		w.mu.Lock()
		r.Expected += expected(w)
		r.Duplicated += w.dups
		r.OutOfOrder += w.disorder
		r.Gaps += w.gaps
		for _, e := range w.arrivals {
			if e.seq >= int64(len(acks)) || acks[e.seq] == 0 {
				continue // its write was not acknowledged (or came after the log was read)
			}
			r.Events++
			h.Record(max(0, time.Duration(e.at-acks[e.seq])))
		}
		w.mu.Unlock()
	}
	r.Lost = max(0, r.Expected-r.Events)
	r.Latency = summarize(h)
	r.Message = fmt.Sprintf("%d events of %d expected: %d lost, %d duplicated, %d out of order, %d gaps", r.Events, r.Expected, r.Lost, r.Duplicated, r.OutOfOrder, r.Gaps)
	return r
}

// watchedIncr is incr-hot with watchers on the hot key: each must see
// every increment, in order (the values it reports go up by one).
type watchedIncr struct {
	*incr
	watchers *watcherSet
}

func newWatchedIncr(c *Client, cfg Config, s *incr) *watchedIncr {
	targets := make([]string, cfg.Watchers)
	for i := range targets {
		targets[i] = c.keyURL("kvbench/hot", "watch", dbQuery(c, cfg.dbNames()[0], false))
	}
	set := newWatcherSet(c, targets, false)
	for _, w := range set.ws {
		w.incr = true
	}
	return &watchedIncr{incr: s, watchers: set}
}

func (s *watchedIncr) Prepare(ctx context.Context) error {
	if err := createDB(ctx, s.c, s.dbs[0]); err != nil {
		return err
	}
	if err := s.incr.Prepare(ctx); err != nil {
		return err
	}
	return s.watchers.start(ctx)
}

func (s *watchedIncr) finishWatch(ctx context.Context, acked int64) *WatchReport {
	s.watchers.settle(ctx, func(*watcher) int64 { return acked })
	r := &WatchReport{Watchers: len(s.watchers.ws), HotKey: true}
	for _, w := range s.watchers.ws {
		w.mu.Lock()
		r.Expected += acked
		r.Events += int64(len(w.arrivals))
		r.Duplicated += w.dups
		r.OutOfOrder += w.disorder
		r.Gaps += w.gaps
		w.mu.Unlock()
	}
	// An increment whose answer was lost is seen but not acknowledged:
	// only missing values count as lost.
	r.Lost = r.Gaps
	r.Message = fmt.Sprintf("%d events for %d acknowledged increments a watcher: %d missing values, %d duplicated, %d out of order",
		r.Events, acked, r.Gaps, r.Duplicated, r.OutOfOrder)
	return r
}
