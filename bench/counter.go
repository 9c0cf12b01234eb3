package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/kvd/kvd/client"
)

// counters are integer keys whose every acknowledged write adds exactly one,
// so the runner can count acknowledgements per key and verify checks that
// the stored values moved by exactly that much. Each database holds the same
// keys; a counter is one (database, key), database d's key k at index
// d*len(keys)+k, and its URLs sit at that index.
type counters struct {
	c       *Client
	dbs     []string
	keys    []string
	batches []string // each database's batch/get URL
	initial []int64
	rot     *rotation
}

func newCounters(c *Client, dbs, keys []string) counters {
	cs := counters{c: c, dbs: dbs, keys: keys, rot: newRotation(len(dbs))}
	for _, db := range dbs {
		cs.batches = append(cs.batches, c.url(client.APIPrefix+"/kv/batch/get", dbQuery(c, db, false)))
	}
	return cs
}

// Counters is how many (database, key) pairs the runner tracks
// acknowledgements for.
func (cs *counters) Counters() int { return len(cs.dbs) * len(cs.keys) }

// readAll reads every counter, 100 to a request (batch/get): a cluster's
// hundreds of databases hold hundreds of thousands of counters, too many
// to read one by one within the verification's time.
func (cs *counters) readAll(ctx context.Context) ([]int64, error) {
	values := make([]int64, 0, cs.Counters())
	for d, u := range cs.batches {
		for start := 0; start < len(cs.keys); start += client.MaxBatch {
			keys := cs.keys[start:min(start+client.MaxBatch, len(cs.keys))]
			got, err := cs.c.readInts(ctx, u, keys)
			if err != nil {
				return nil, fmt.Errorf("read back counters of %s: %w", cs.dbs[d], err)
			}
			values = append(values, got...)
		}
	}
	return values, nil
}

// name returns counter i's database and key.
func (cs *counters) name(i int) (db, key string) {
	return cs.dbs[i/len(cs.keys)], cs.keys[i%len(cs.keys)]
}

// pick draws the counter of a worker's next operation: the database in
// turn, the key at random within it (always the one key of incr-hot).
func (cs *counters) pick(rng *rand.Rand) int {
	i := 0
	if len(cs.keys) > 1 {
		i = rng.IntN(len(cs.keys))
	}
	return cs.rot.pick()*len(cs.keys) + i
}

// Verify reads every counter back; see verifyCounters.
func (cs *counters) Verify(ctx context.Context, acked, unknown []int64) *Verification {
	return verifyCounters(ctx, cs, acked, unknown)
}

// incr posts incr (delta 1) to a key drawn uniformly from its keys: one key
// is incr-hot, where every write to a database contends for the same row;
// many keys is incr-spread.
type incr struct {
	counters
	ops []string
}

func newIncr(c *Client, dbs, keys []string) *incr {
	s := &incr{counters: newCounters(c, dbs, keys)}
	for _, db := range dbs {
		q := dbQuery(c, db, true)
		for _, k := range keys {
			s.ops = append(s.ops, c.keyURL(k, "incr", q))
		}
	}
	return s
}

// Prepare reads where each counter starts: the database may be reused from
// an earlier run.
func (s *incr) Prepare(ctx context.Context) error {
	var err error
	s.initial, err = s.readAll(ctx)
	return err
}

func (s *incr) NewWorker(seed uint64) Worker {
	return &incrWorker{s: s, rng: rand.New(rand.NewPCG(seed, 0x696e6372))}
}

type incrWorker struct {
	s   *incr
	rng *rand.Rand
}

func (w *incrWorker) Do(ctx context.Context) Outcome {
	i := w.s.pick(w.rng)
	a, err := w.s.c.do(ctx, http.MethodPost, w.s.ops[i], nil, "", nil)
	return outcome(a, err, i)
}

// cas is a contended read-modify-write: GET the value N, then PUT N+1 only
// if the value is still N (if_match=N, or If-Match with the ETag). A 412
// means another worker won the race; the next operation simply tries again.
type cas struct {
	counters
	writes []string // also where the attempt reads the value
	inits  []string
	etag   bool
}

func newCAS(c *Client, dbs, keys []string, etag bool) *cas {
	s := &cas{counters: newCounters(c, dbs, keys), etag: etag}
	for _, db := range dbs {
		wq, iq := dbQuery(c, db, false), dbQuery(c, db, true)
		for _, k := range keys {
			s.writes = append(s.writes, c.keyURL(k, "", wq))
			s.inits = append(s.inits, c.keyURL(k, "", iq))
		}
	}
	return s
}

// Prepare sets every key of every database to 0: CAS needs the key to exist
// and to hold an integer, whatever an earlier run left there.
func (s *cas) Prepare(ctx context.Context) error {
	s.initial = make([]int64, s.Counters())
	for _, u := range s.inits {
		if err := s.c.expectOK(ctx, http.MethodPut, u, []byte("0")); err != nil {
			return fmt.Errorf("reset cas key: %w", err)
		}
	}
	return nil
}

func (s *cas) NewWorker(seed uint64) Worker {
	return &casWorker{s: s, rng: rand.New(rand.NewPCG(seed, 0x636173))}
}

type casWorker struct {
	s   *cas
	rng *rand.Rand
	buf bytes.Buffer
}

// Do is one attempt. Its Key is -1 until the PUT is sent, because only a
// PUT can change a counter.
func (w *casWorker) Do(ctx context.Context) Outcome {
	i := w.s.rot.pick()*len(w.s.keys) + w.rng.IntN(len(w.s.keys))
	a, err := w.s.c.do(ctx, http.MethodGet, w.s.writes[i], nil, "", &w.buf)
	if err != nil || a.status != http.StatusOK {
		return outcome(a, err, -1)
	}
	cur := w.buf.String()
	n, err := strconv.ParseInt(strings.TrimSpace(cur), 10, 64)
	if err != nil {
		return Outcome{Key: -1, Err: fmt.Errorf("cas key holds %q, not an integer", truncate(cur, 40))}
	}
	next := strconv.AppendInt(nil, n+1, 10)
	u, h := w.s.writes[i], ""
	if w.s.etag {
		h = "If-Match: " + a.etag + "\r\n"
	} else {
		u = withQuery(u, "if_match="+url.QueryEscape(cur))
	}
	a, err = w.s.c.do(ctx, http.MethodPut, u, next, h, nil)
	return outcome(a, err, i)
}
