package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// The drill's writers put unique keys and increment counters over many
// databases through HAProxy, and the ledger remembers every write kvd
// acknowledged, with when: a check then reads them all back.

var drillHTTP = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

type ack struct {
	value int64
	at    time.Time
}

type ledger struct {
	mu       sync.Mutex
	puts     map[string]map[string]ack   // db → key → the value put
	counters map[string]map[string][]ack // db → counter → its acknowledged values, oldest first
	acked    int
	refused  int // answers other than 200 (503 while a database moves), and timeouts
}

func newLedger() *ledger {
	return &ledger{puts: map[string]map[string]ack{}, counters: map[string]map[string][]ack{}}
}

// writers runs n writers over dbs, through the router, until stop is
// called.
func (c *cluster) writers(l *ledger, dbs []string, n int) (stop func()) {
	return c.writersTo(c.front, l, dbs, n)
}

// writersTo runs n writers over dbs at base until stop is called.
func (c *cluster) writersTo(base string, l *ledger, dbs []string, n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for seq := 0; ctx.Err() == nil; seq++ {
				db := dbs[rng.IntN(len(dbs))]
				if seq%2 == 0 {
					c.incr(ctx, base, l, db, fmt.Sprintf("c-w%d", w))
				} else {
					c.put(ctx, base, l, db, fmt.Sprintf("p-w%d-%d", w, seq), int64(seq))
				}
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

func (c *cluster) incr(ctx context.Context, base string, l *ledger, db, key string) {
	var out struct{ Value int64 }
	if !c.write(ctx, l, http.MethodPost, base+"/api/v1/sqlite/kv/"+key+"/incr?create_db_if_missing=true&db="+url.QueryEscape(db), nil, &out) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counters[db] == nil {
		l.counters[db] = map[string][]ack{}
	}
	l.counters[db][key] = append(l.counters[db][key], ack{out.Value, time.Now()})
}

func (c *cluster) put(ctx context.Context, base string, l *ledger, db, key string, value int64) {
	body := []byte(strconv.FormatInt(value, 10))
	if !c.write(ctx, l, http.MethodPut, base+"/api/v1/sqlite/kv/"+key+"?create_db_if_missing=true&db="+url.QueryEscape(db), body, nil) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.puts[db] == nil {
		l.puts[db] = map[string]ack{}
	}
	l.puts[db][key] = ack{value, time.Now()}
}

// write sends one write and tells whether kvd acknowledged it (200).
func (c *cluster) write(ctx context.Context, l *ledger, method, target string, body []byte, out any) bool {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := drillHTTP.Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK && (out == nil || json.NewDecoder(resp.Body).Decode(out) == nil) {
			l.mu.Lock()
			l.acked++
			l.mu.Unlock()
			return true
		}
		io.Copy(io.Discard, resp.Body)
	}
	if ctx.Err() == nil {
		l.mu.Lock()
		l.refused++
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // a database moving: as a client would, back off a little
	}
	return false
}

// checkResult is what one check found.
type checkResult struct {
	checked int   // acknowledged writes read back
	lost    []ack // acknowledged writes not found, with when they were acknowledged
}

// check reads back every acknowledged write, with the writers stopped.
// A write found lost is counted in the step that lost it, with when it
// was acknowledged, even if an earlier check saw it: a write a check read
// may still be within the replication lag when a disk dies. It is then
// forgotten, for a counter that went back hands out its values again.
func (c *cluster) check(l *ledger) checkResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	var res checkResult
	dbs := map[string]bool{}
	for db := range l.puts {
		dbs[db] = true
	}
	for db := range l.counters {
		dbs[db] = true
	}
	for db := range dbs {
		var keys []string
		for k := range l.puts[db] {
			keys = append(keys, k)
		}
		for k := range l.counters[db] {
			keys = append(keys, k)
		}
		for i := 0; i < len(keys); i += 100 {
			chunk := keys[i:min(i+100, len(keys))]
			values := c.batchGet(db, chunk)
			for _, k := range chunk {
				got, present := values[k]
				if a, isPut := l.puts[db][k]; isPut {
					res.checked++
					if !present || got != a.value {
						res.lost = append(res.lost, a)
						delete(l.puts[db], k)
					}
					continue
				}
				kept := l.counters[db][k][:0]
				for _, a := range l.counters[db][k] {
					res.checked++
					if a.value > got {
						res.lost = append(res.lost, a)
					} else {
						kept = append(kept, a)
					}
				}
				l.counters[db][k] = kept
			}
		}
	}
	return res
}

// batchGet reads keys of db, retrying while the database moves.
func (c *cluster) batchGet(db string, keys []string) map[string]int64 {
	t := c.t
	body, _ := json.Marshal(map[string][]string{"keys": keys})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := drillHTTP.Post(c.front+"/api/v1/sqlite/kv/batch/get?db="+url.QueryEscape(db), "application/json", bytes.NewReader(body))
		if err == nil {
			var out struct {
				Values map[string]*struct{ Value json.RawMessage }
			}
			ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&out) == nil
			resp.Body.Close()
			if ok {
				values := map[string]int64{}
				for k, v := range out.Values {
					if v != nil {
						raw := string(v.Value)
						if unquoted, err := strconv.Unquote(raw); err == nil {
							raw = unquoted // a counter reads back as text
						}
						n, err := strconv.ParseInt(raw, 10, 64)
						if err != nil {
							t.Errorf("db %s key %s holds %s", db, k, v.Value)
						}
						values[k] = n
					}
				}
				return values
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("db %s unreadable for 60s (logs in %s)", db, logDir(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
