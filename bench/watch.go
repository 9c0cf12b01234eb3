package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
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
	PerKey     bool    `json:"per_key"` // each watcher on its own key; else all on the prefix
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
	r := &WatchReport{Watchers: len(s.watchers.ws)}
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

// watcherSet is the watchers of a run, each on a stream of its own.
type watcherSet struct {
	c      *Client
	http   *http.Client
	ws     []*watcher
	perKey bool
	cancel context.CancelFunc
	done   sync.WaitGroup
}

type watcher struct {
	url string
	key int // the key index it watches; -1: the prefix (every write)
	// incr: the values are counters, checked to go up by one; else each
	// value starts with its write's sequence number.
	incr bool

	mu       sync.Mutex
	arrivals []arrival
	seen     map[int64]bool
	lastOp   int64
	lastVal  int64
	dups     int64
	disorder int64
	gaps     int64
}

type arrival struct{ seq, at int64 }

func newWatcherSet(c *Client, targets []string, perKey bool) *watcherSet {
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	if c.tlsConfig != nil {
		tr.TLSClientConfig = c.tlsConfig.Clone()
	}
	set := &watcherSet{c: c, http: &http.Client{Transport: tr}, perKey: perKey}
	for i, t := range targets {
		key := -1
		if perKey {
			key = i
		}
		set.ws = append(set.ws, &watcher{url: t, key: key, seen: map[int64]bool{}})
	}
	return set
}

// start opens every stream and returns once each is in place.
func (s *watcherSet) start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	ready := make(chan error, len(s.ws))
	for _, w := range s.ws {
		s.done.Go(func() { w.run(wctx, s, ready) })
	}
	for range s.ws {
		select {
		case err := <-ready:
			if err != nil {
				cancel()
				return fmt.Errorf("start a watcher: %w", err)
			}
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		}
	}
	return nil
}

// settle waits until every watcher has what it should, or nothing more
// arrives for a second (10 s at most), then stops them.
func (s *watcherSet) settle(ctx context.Context, expected func(*watcher) int64) {
	want := make([]int64, len(s.ws))
	for i, w := range s.ws {
		want[i] = expected(w)
	}
	deadline := time.Now().Add(10 * time.Second)
	last, quiet := int64(-1), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		total, behind := int64(0), false
		for i, w := range s.ws {
			w.mu.Lock()
			n := int64(len(w.arrivals))
			w.mu.Unlock()
			total += n
			behind = behind || n < want[i]
		}
		if !behind {
			break
		}
		if total != last {
			last, quiet = total, time.Now()
		} else if time.Since(quiet) > time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cancel()
	s.done.Wait()
}

// run follows the stream, reconnecting after the last op it saw if it
// drops; ready hears once whether the first connection worked.
func (w *watcher) run(ctx context.Context, s *watcherSet, ready chan<- error) {
	first := true
	for ctx.Err() == nil {
		err := w.follow(ctx, s, func() {
			if first {
				first = false
				ready <- nil
			}
		})
		if first {
			ready <- err
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *watcher) follow(ctx context.Context, s *watcherSet, started func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return err
	}
	for _, line := range bytes.Split([]byte(s.c.head), []byte("\r\n")) {
		if name, value, ok := bytes.Cut(line, []byte(": ")); ok && string(name) != "Host" {
			req.Header.Set(string(name), string(value))
		}
	}
	req.URL.Scheme, req.URL.Host = "http", s.c.addr
	if s.c.tlsConfig != nil {
		req.URL.Scheme = "https"
	}
	if op := w.lastOpNow(); op > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(op, 10))
	}
	res, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("watch answered %s", res.Status)
	}
	started()
	r := bufio.NewReaderSize(res.Body, 16<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue // a value larger than the buffer: not this load's
			}
			return err
		}
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			w.event(data, time.Now().UnixNano())
		}
	}
}

func (w *watcher) lastOpNow() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOp
}

// event takes one data line, without decoding more JSON than it needs.
func (w *watcher) event(data []byte, at int64) {
	op := jsonInt(data, `"op_number":`)
	raw := jsonString(data, `"raw_value":"`)
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(data, []byte(`"code":"TIME_TRAVEL_GAP"`)) {
		w.gaps++
		return
	}
	if op <= w.lastOp {
		w.disorder++
		return
	}
	w.lastOp = op
	value, err := base64.StdEncoding.DecodeString(string(raw))
	if err != nil {
		return
	}
	if w.incr {
		n, _ := strconv.ParseInt(string(value), 10, 64)
		switch {
		case w.lastVal != 0 && n > w.lastVal+1:
			w.gaps += n - w.lastVal - 1
		case w.lastVal != 0 && n <= w.lastVal:
			w.dups++
		}
		w.lastVal = n
		w.arrivals = append(w.arrivals, arrival{seq: n, at: at})
		return
	}
	head, _, _ := bytes.Cut(value, []byte(":"))
	seq, err := strconv.ParseInt(string(head), 10, 64)
	if err != nil {
		return // not a write of this run (the start key)
	}
	if w.seen[seq] {
		w.dups++
		return
	}
	w.seen[seq] = true
	w.arrivals = append(w.arrivals, arrival{seq: seq, at: at})
}

func jsonInt(data []byte, field string) int64 {
	_, rest, ok := bytes.Cut(data, []byte(field))
	if !ok {
		return 0
	}
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n
}

func jsonString(data []byte, field string) []byte {
	_, rest, ok := bytes.Cut(data, []byte(field))
	if !ok {
		return nil
	}
	s, _, _ := bytes.Cut(rest, []byte(`"`))
	return s
}
