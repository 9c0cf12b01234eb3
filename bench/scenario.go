package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kvd/kvd/client"
)

// Scenario is one kind of load. Prepare runs untimed before the load;
// NewWorker is called once per connection and its Worker is used by one
// goroutine only, so it may keep buffers and a random source of its own.
type Scenario interface {
	Prepare(ctx context.Context) error
	NewWorker(seed uint64) Worker
}

// Worker performs one timed operation per call.
type Worker interface {
	Do(ctx context.Context) Outcome
}

// Outcome is what one operation did.
type Outcome struct {
	Status int   // HTTP status of the request that decided it; 0 when Err is set
	Items  int   // items written (batch-set); 0 counts as 1
	Key    int   // counter index touched, for verification; -1 when none
	Err    error // transport error: no answer, so the outcome is unknown
}

// Scenarios lists the scenario names in the order the help shows them.
var Scenarios = []string{"noop", "get", "put", "mixed", "batch-set", "incr-hot", "incr-spread", "cas", "watch"}

// Defaults for a zero Config field.
const (
	DefaultKeys      = 1000
	DefaultCASKeys   = 8 // contention is the point of cas
	DefaultValueSize = 100
	DefaultReadRatio = 0.9
	DefaultBatchSize = 100
)

// NewScenario returns the named scenario, bound to c.
func NewScenario(name string, c *Client, cfg Config) (Scenario, error) {
	cfg.Scenario = name
	cfg = cfg.withDefaults()
	keys, value, dbs := cfg.Keys, makeValue(cfg.ValueSize), cfg.dbNames()
	switch name {
	case "noop":
		return &noop{c: c, u: c.url("/healthz", nil)}, nil
	case "get":
		return &mixed{data: newData(c, dbs, keys, value), readRatio: 1}, nil
	case "put":
		return &mixed{data: newData(c, dbs, keys, value), readRatio: 0}, nil
	case "mixed":
		return &mixed{data: newData(c, dbs, keys, value), readRatio: cfg.ReadRatio}, nil
	case "batch-set":
		return newBatchSet(c, dbs, keys, value, cfg.BatchSize)
	case "incr-hot":
		s := newIncr(c, dbs, []string{"kvbench/hot"}) // one hot key per database
		if cfg.Watchers > 0 {
			return newWatchedIncr(c, cfg, s), nil
		}
		return s, nil
	case "watch":
		return newWatchLoad(c, cfg), nil
	case "incr-spread":
		return newIncr(c, dbs, keyNames("kvbench/counter/", keys)), nil
	case "cas":
		return newCAS(c, dbs, keyNames("kvbench/cas/", keys), cfg.ETag), nil
	}
	return nil, fmt.Errorf("unknown scenario %q (one of %s)", name, strings.Join(Scenarios, ", "))
}

// dbQuery is c's query (see Client.query) aimed at one of the run's
// databases instead of the client's own.
func dbQuery(c *Client, db string, write bool) url.Values {
	q := c.query(write)
	q.Set("db", db)
	return q
}

// rotation picks the database of the next operation, shared by all the
// workers of a scenario: operation i of the run goes to database i mod n, so
// n databases get the same number of operations, to one, whichever worker
// sends them, for one atomic add and no allocation. It draws nothing from a
// worker's random source, so with one database the keys chosen are the same
// as before there were several.
type rotation struct {
	n   uint64
	seq atomic.Uint64
}

func newRotation(n int) *rotation { return &rotation{n: uint64(n)} }

func (r *rotation) pick() int {
	if r.n <= 1 {
		return 0
	}
	return int((r.seq.Add(1) - 1) % r.n)
}

func keyNames(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%06d", prefix, i)
	}
	return keys
}

// makeValue returns n printable bytes: text, so that kvd stores them as
// they are and batch-set can carry them in a JSON string unescaped.
func makeValue(n int) []byte {
	if n <= 0 {
		n = DefaultValueSize
	}
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]byte, n)
	for i := range v {
		v[i] = 'a' + byte(r.IntN(26))
	}
	return v
}

// noop asks for /healthz: the ceiling of HTTP on this machine.
type noop struct {
	c *Client
	u string
}

func (s *noop) Prepare(context.Context) error { return nil }
func (s *noop) NewWorker(uint64) Worker       { return s }

func (s *noop) Do(ctx context.Context) Outcome {
	a, err := s.c.do(ctx, http.MethodGet, s.u, nil, "", nil)
	return outcome(a, err, -1)
}

// outcome turns an answer or a transport error into an Outcome.
func outcome(a answer, err error, key int) Outcome {
	if err != nil {
		return Outcome{Key: key, Err: err}
	}
	return Outcome{Status: a.status, Key: key}
}

// data is K plain keys holding one value in each database, with their URLs
// built once: those of database d's key k at d*K+k.
type data struct {
	c      *Client
	dbs    []string
	keys   []string // the same names in every database
	value  []byte
	reads  []string
	writes []string
	rot    *rotation
}

func newData(c *Client, dbs []string, n int, value []byte) *data {
	d := &data{c: c, dbs: dbs, keys: keyNames("kvbench/", n), value: value, rot: newRotation(len(dbs))}
	for _, db := range dbs {
		rq, wq := dbQuery(c, db, false), dbQuery(c, db, true)
		for _, k := range d.keys {
			d.reads = append(d.reads, c.keyURL(k, "", rq))
			d.writes = append(d.writes, c.keyURL(k, "", wq))
		}
	}
	return d
}

// mixed reads with probability readRatio and writes otherwise, uniformly over
// the keys: get (ratio 1), put (ratio 0) and mixed.
type mixed struct {
	*data
	readRatio float64
}

// Prepare preloads every key of every database when anything is read, so a
// GET never meets a 404 and the timing measures reads of real values.
func (s *mixed) Prepare(ctx context.Context) error {
	if s.readRatio <= 0 {
		return nil
	}
	for _, db := range s.dbs {
		if err := preload(ctx, s.c, db, s.keys, s.value); err != nil {
			return err
		}
	}
	return nil
}

func (s *mixed) NewWorker(seed uint64) Worker {
	return &mixedWorker{s: s, rng: rand.New(rand.NewPCG(seed, 0x6b7664))}
}

type mixedWorker struct {
	s   *mixed
	rng *rand.Rand
}

func (w *mixedWorker) Do(ctx context.Context) Outcome {
	i := w.s.rot.pick()*len(w.s.keys) + w.rng.IntN(len(w.s.keys))
	var a answer
	var err error
	if w.s.readRatio >= 1 || w.rng.Float64() < w.s.readRatio {
		a, err = w.s.c.do(ctx, http.MethodGet, w.s.reads[i], nil, "", nil)
	} else {
		a, err = w.s.c.do(ctx, http.MethodPut, w.s.writes[i], w.s.value, "", nil)
	}
	return outcome(a, err, -1)
}

// batchSet posts prebuilt batches that together cover every key; every
// database gets the same bodies, at a URL of its own.
type batchSet struct {
	c      *Client
	urls   []string // per database
	rot    *rotation
	size   int
	bodies [][]byte
}

type batchItem struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func newBatchSet(c *Client, dbs []string, keys int, value []byte, size int) (*batchSet, error) {
	if size <= 0 {
		size = DefaultBatchSize
	}
	if size > 100 {
		return nil, fmt.Errorf("batch size %d: kvd takes 1..100 items", size)
	}
	s := &batchSet{c: c, size: size, rot: newRotation(len(dbs))}
	for _, db := range dbs {
		s.urls = append(s.urls, c.url(client.APIPrefix+"/kv/batch/set", dbQuery(c, db, true)))
	}
	names := keyNames("kvbench/", keys)
	// Enough bodies to cover every key at least once; a short last batch
	// wraps around, as duplicates are allowed.
	for start := 0; start < len(names); start += size {
		batch := make([]string, size)
		for i := range batch {
			batch[i] = names[(start+i)%len(names)]
		}
		s.bodies = append(s.bodies, batchBody(batch, value))
	}
	return s, nil
}

func batchBody(keys []string, value []byte) []byte {
	items := make([]batchItem, len(keys))
	for i, k := range keys {
		items[i] = batchItem{k, string(value)}
	}
	b, err := json.Marshal(struct {
		Items []batchItem `json:"items"`
	}{items})
	if err != nil {
		panic(err) // strings always marshal
	}
	return b
}

func (s *batchSet) Prepare(context.Context) error { return nil }

func (s *batchSet) NewWorker(seed uint64) Worker {
	return &batchWorker{s: s, rng: rand.New(rand.NewPCG(seed, 0x6b7664))}
}

type batchWorker struct {
	s   *batchSet
	rng *rand.Rand
}

func (w *batchWorker) Do(ctx context.Context) Outcome {
	u := w.s.urls[w.s.rot.pick()]
	body := w.s.bodies[w.rng.IntN(len(w.s.bodies))]
	a, err := w.s.c.do(ctx, http.MethodPost, u, body, "", nil)
	o := outcome(a, err, -1)
	o.Items = w.s.size
	return o
}

// preload writes value to every key of database db with batch/set, a few
// batches at a time, before the clock starts.
func preload(ctx context.Context, c *Client, db string, keys []string, value []byte) error {
	u := c.url(client.APIPrefix+"/kv/batch/set", dbQuery(c, db, true))
	batches := make(chan []string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range 4 {
		wg.Go(func() {
			for b := range batches {
				if err := c.expectOK(ctx, http.MethodPost, u, batchBody(b, value)); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("preload: %w", err)
					}
					mu.Unlock()
					cancel()
				}
			}
		})
	}
	for start := 0; start < len(keys) && ctx.Err() == nil; start += 100 {
		batches <- keys[start:min(start+100, len(keys))]
	}
	close(batches)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}
