package httpapi_test

import (
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func TestIncr_ConcurrentClientsLoseNothing(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("seed", "db=app&create_db_if_missing=true"), "x")
	const clients, perClient = 64, 500
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				if r := ts.do(t, "POST", kv("hits/incr", "db=app"), ""); r.Status != 200 {
					if failures.Add(1) == 1 {
						t.Errorf("incr: status %d %s", r.Status, r.Body)
					}
				}
			}
		}()
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("failed incrs: got %d, want 0", failures.Load())
	}
	if got := string(ts.do(t, "GET", kv("hits", "db=app"), "").Body); got != strconv.Itoa(clients*perClient) {
		t.Fatalf("counter: got %s, want %d", got, clients*perClient)
	}
}

func TestCAS_ConcurrentReadModifyWriteLosesNoUpdate(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("n", "db=app&create_db_if_missing=true"), "0")
	const clients, attempts = 32, 60
	var wg sync.WaitGroup
	var won atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range attempts {
				cur := string(ts.do(t, "GET", kv("n", "db=app"), "").Body)
				n, err := strconv.Atoi(cur)
				if err != nil {
					t.Errorf("read %q: %v", cur, err)
					return
				}
				r := ts.do(t, "PUT", kv("n", "db=app&if_match="+url.QueryEscape(cur)), strconv.Itoa(n+1))
				switch r.Status {
				case 200:
					won.Add(1)
				case 412:
				default:
					t.Errorf("CAS write: status %d %s", r.Status, r.Body)
				}
			}
		}()
	}
	wg.Wait()
	got := string(ts.do(t, "GET", kv("n", "db=app"), "").Body)
	if got != strconv.FormatInt(won.Load(), 10) || won.Load() == 0 {
		t.Fatalf("final value: got %s, want %d (the number of 200 answers)", got, won.Load())
	}
}
