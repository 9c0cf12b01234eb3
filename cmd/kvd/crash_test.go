package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var crashCycles = flag.Int("cycles", 3, "kill -9 cycles per sync mode in TestCrash (a soak: -cycles 50)")

// crashLedger records what the daemon acknowledged, and what it was asked
// but never answered (those may or may not have been applied).
type crashLedger struct {
	mu                  sync.Mutex
	incrAcked, incrLost int64
	casAcked, casLost   int64
	keys                []string   // acknowledged PUTs
	batches             [][]string // acknowledged batch/set key groups
	lostBatches         [][]string // unanswered batch/set groups: all or nothing
}

func TestCrash_KillNineLosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles run without -short (soak: -cycles 50)")
	}
	for _, mode := range []string{"full", "normal"} {
		t.Run("sync="+mode, func(t *testing.T) {
			dataDir := t.TempDir()
			ledger := &crashLedger{}
			for cycle := range *crashCycles {
				d := startDaemon(t, dataDir, "--sync", mode)
				verifyLedger(t, d.url, ledger, cycle)
				load(d.url, ledger, cycle, func() {
					time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
					d.cmd.Process.Kill() // SIGKILL: no shutdown, no checkpoint
					d.cmd.Wait()
				})
			}
			d := startDaemon(t, dataDir, "--sync", mode)
			verifyLedger(t, d.url, ledger, *crashCycles)
			if code := d.stop(t); code != 0 {
				t.Fatalf("clean stop after the crashes: exit %d\n%s", code, d.logs)
			}
			t.Logf("sync=%s: %d cycles; verified %d incr, %d CAS, %d keys, %d batches acknowledged",
				mode, *crashCycles, ledger.incrAcked, ledger.casAcked, len(ledger.keys), len(ledger.batches))
		})
	}
}

// load runs 32 writers until kill has killed the daemon.
func load(base string, l *crashLedger, cycle int, kill func()) {
	api := base + "/api/v1/sqlite/kv/"
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	send := func(method, url, body string) (int, string, bool) {
		req, _ := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
		res, err := client.Do(req)
		if err != nil {
			return 0, "", false
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), err == nil
	}
	if cycle == 0 {
		send("PUT", api+"cas?db=crash&create_db_if_missing=true", "0") // before any CAS writer starts
	}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				var ok bool
				switch w % 4 {
				case 0:
					code, _, answered := send("POST", api+"counter/incr?db=crash&create_db_if_missing=true", "")
					ok = answered && code == 200
					l.mu.Lock()
					if ok {
						l.incrAcked++
					} else {
						l.incrLost++
					}
					l.mu.Unlock()
				case 1:
					key := fmt.Sprintf("k-%d-%d-%d", cycle, w, i)
					code, _, answered := send("PUT", api+key+"?db=crash&create_db_if_missing=true", key)
					if ok = answered && code == 200; ok {
						l.mu.Lock()
						l.keys = append(l.keys, key)
						l.mu.Unlock()
					}
				case 2:
					code, cur, answered := send("GET", api+"cas?db=crash", "")
					if !answered || code != 200 {
						break
					}
					n, _ := strconv.Atoi(cur)
					code, _, answered = send("PUT", api+"cas?db=crash&if_match="+url.QueryEscape(cur), strconv.Itoa(n+1))
					l.mu.Lock()
					switch {
					case answered && code == 200:
						l.casAcked++
						ok = true
					case !answered:
						l.casLost++
					default:
						ok = code == 412
					}
					l.mu.Unlock()
				case 3:
					keys := make([]string, 10)
					items := make([]string, 10)
					for j := range keys {
						keys[j] = fmt.Sprintf("b-%d-%d-%d-%d", cycle, w, i, j)
						items[j] = fmt.Sprintf(`{"key":%q,"value":"x"}`, keys[j])
					}
					code, _, answered := send("POST", api+"batch/set?db=crash&create_db_if_missing=true", `{"items":[`+strings.Join(items, ",")+`]}`)
					ok = answered && code == 200
					l.mu.Lock()
					if ok {
						l.batches = append(l.batches, keys)
					} else {
						l.lostBatches = append(l.lostBatches, keys)
					}
					l.mu.Unlock()
				}
				if !ok {
					return // the daemon is gone (or refused): this writer is done
				}
			}
		}()
	}
	kill()
	wg.Wait()
}

// verifyLedger checks the restarted daemon against everything acknowledged.
func verifyLedger(t *testing.T, base string, l *crashLedger, cycle int) {
	t.Helper()
	api := base + "/api/v1/sqlite/kv/"
	get := func(key string) (int, string) {
		res, err := http.Get(api + url.PathEscape(key) + "?db=crash")
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if cycle == 0 {
		return
	}
	between := func(name string, got string, acked, lost int64) {
		n, _ := strconv.ParseInt(got, 10, 64)
		if n < acked || n > acked+lost {
			t.Fatalf("cycle %d: %s = %s, want %d acknowledged (+ at most %d unanswered)", cycle, name, got, acked, lost)
		}
	}
	_, counter := get("counter")
	between("counter", counter, l.incrAcked, l.incrLost)
	if code, cas := get("cas"); code == 200 {
		between("cas", cas, l.casAcked, l.casLost)
	} else if l.casAcked > 0 {
		t.Fatalf("cycle %d: cas key missing after %d acknowledged CAS writes", cycle, l.casAcked)
	}
	stored := storedValues(t, api, l.keys)
	for _, key := range l.keys {
		if value, ok := stored[key]; !ok || value != key {
			t.Fatalf("cycle %d: acknowledged key %s: got %q (stored: %v)", cycle, key, value, ok)
		}
	}
	stored = storedValues(t, api, slices.Concat(l.batches...))
	for _, batch := range l.batches {
		for _, key := range batch {
			if _, ok := stored[key]; !ok {
				t.Fatalf("cycle %d: key %s of an acknowledged batch is missing", cycle, key)
			}
		}
	}
	stored = storedValues(t, api, slices.Concat(l.lostBatches...))
	for _, batch := range l.lostBatches { // unanswered: all of it or none of it
		present := 0
		for _, key := range batch {
			if _, ok := stored[key]; ok {
				present++
			}
		}
		if present != 0 && present != len(batch) {
			t.Fatalf("cycle %d: an unanswered batch is half there: %d of %d keys", cycle, present, len(batch))
		}
	}
}

// storedValues reads keys by batch/get, 100 a request (one GET each made
// a 50-cycle soak's checks, of every key acknowledged so far, take most
// of its 26 minutes): the text value of each key stored.
func storedValues(t *testing.T, api string, keys []string) map[string]string {
	t.Helper()
	stored := map[string]string{}
	for chunk := range slices.Chunk(keys, 100) {
		for len(chunk) > 0 {
			body, _ := json.Marshal(map[string][]string{"keys": chunk})
			res, err := http.Post(api+"batch/get?db=crash", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatalf("batch/get: %v", err)
			}
			var got struct {
				Values   map[string]*struct{ Value any }
				NextKeys []string `json:"next_keys"`
			}
			err = json.NewDecoder(res.Body).Decode(&got)
			res.Body.Close()
			if res.StatusCode != 200 || err != nil {
				t.Fatalf("batch/get: status %d, %v", res.StatusCode, err)
			}
			for key, v := range got.Values {
				if v != nil {
					stored[key] = fmt.Sprint(v.Value)
				}
			}
			chunk = got.NextKeys // those the answer's byte bound left out
		}
	}
	return stored
}
