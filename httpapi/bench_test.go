package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// BenchmarkHTTPIncrHotKey is one incr over real HTTP on one key with
// --sync full, from 1 and from 64 concurrent keep-alive clients. The ratio
// of their incr/s is what group commit buys.
func BenchmarkHTTPIncrHotKey(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			ts := newTestServer(b, withStore(func(o *sqlitekv.Options) { o.Sync = sqlitekv.SyncFull; o.Now = nil }))
			url := ts.URL + kv("hot/incr", "db=bench&create_db_if_missing=true")
			b.ReportAllocs()
			b.ResetTimer()
			send := func() bool {
				res, err := ts.client.Post(url, "", nil)
				return drainOK(b, res, err)
			}
			if clients == 1 {
				for i := 0; i < b.N && send(); i++ {
				}
			} else {
				b.SetParallelism(clients / 2) // GOMAXPROCS=2 on the reference machine
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() && send() {
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incr/s")
		})
	}
}

// BenchmarkHTTPBatchSet100 is one batch/set of 100 items over HTTP (sync
// full); items/s is the figure to compare.
func BenchmarkHTTPBatchSet100(b *testing.B) {
	ts := newTestServer(b, withStore(func(o *sqlitekv.Options) { o.Sync = sqlitekv.SyncFull; o.Now = nil }))
	body := batchItems(100, func(i int) string { return `{"n":` + strconv.Itoa(i) + `,"name":"user"}` })
	url := ts.URL + "/api/v1/sqlite/kv/batch/set?db=bench&create_db_if_missing=true"
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := ts.client.Post(url, "application/json", strings.NewReader(body))
			if !drainOK(b, res, err) {
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkHotKeyHistory reads a key with 100,000 versions: its history
// page, time travel to random moments of it, the table's snapshot at
// those moments and the key's snapshot at random op numbers. Each is a
// search down the key's chain (O(log versions) row reads), so it should
// cost about what a plain GET costs.
func BenchmarkHotKeyHistory(b *testing.B) {
	ts := newTestServer(b, withStore(func(o *sqlitekv.Options) { o.Sync = sqlitekv.SyncNormal; o.HistoryKeep = -1 }))
	items := make([]string, 100)
	for i := range items {
		items[i] = `{"key":"hot","value":"v"}`
	}
	body := `{"items":[` + strings.Join(items, ",") + `]}`
	start := ts.Clock.Now().Unix()
	for range 1000 { // 1000 batches of 100 versions, one second apart
		ts.Clock.Advance(time.Second)
		if r := ts.do(b, "POST", "/api/v1/sqlite/kv/batch/set?db=bench&create_db_if_missing=true", body); r.Status != 200 {
			b.Fatalf("load: %d %s", r.Status, r.Body)
		}
	}
	// Reopened, the database reads from a fresh WAL, as after a restart:
	// else whether the load left the WAL long (reads then start a read
	// transaction each, snapshots.go) would decide the figures.
	ts.Registry.CloseDB(filepath.Join(ts.DataDir, "bench.db"))
	get := func(b *testing.B, path func(i int) string) {
		for i := 0; b.Loop(); i++ {
			res, err := ts.client.Get(ts.URL + path(i))
			if !drainOK(b, res, err) {
				b.FailNow()
			}
		}
	}
	b.Run("history", func(b *testing.B) {
		get(b, func(int) string { return kv("hot/history", "db=bench&limit=50") })
	})
	b.Run("at_timestamp", func(b *testing.B) {
		get(b, func(i int) string {
			return kv("hot", "db=bench&at_timestamp="+strconv.FormatInt(start+1+int64(i*7919%1000), 10))
		})
	})
	b.Run("table_snapshot", func(b *testing.B) {
		get(b, func(i int) string {
			return "/api/v1/sqlite/kv/snapshot?db=bench&timestamp=" + strconv.FormatInt(start+1+int64(i*7919%1000), 10)
		})
	})
	b.Run("key_snapshot", func(b *testing.B) {
		get(b, func(i int) string {
			return kv("hot/snapshot", "db=bench&op_number="+strconv.Itoa(1+i*7919%100_000))
		})
	})
	b.Run("plain_get", func(b *testing.B) {
		get(b, func(int) string { return kv("hot", "db=bench") })
	})
}

// BenchmarkHTTPGet reads 1000 preloaded keys uniformly from 64 clients,
// against GET /healthz as the ceiling of HTTP on the same machine.
func BenchmarkHTTPGet(b *testing.B) {
	ts := newTestServer(b, withStore(func(o *sqlitekv.Options) { o.Now = nil }))
	ts.do(b, "POST", "/api/v1/sqlite/kv/batch/set?db=bench&create_db_if_missing=true", batchItems(100, func(i int) string { return strings.Repeat("v", 100) }))
	for _, target := range []struct{ name, path string }{
		{"healthz", "/healthz"},
		{"get", kv("k%03d", "db=bench")},
	} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(32)
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					path := target.path
					if strings.Contains(path, "%03d") {
						path = fmt.Sprintf(path, n.Add(1)%100)
					}
					res, err := ts.client.Get(ts.URL + path)
					if !drainOK(b, res, err) {
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// drainOK reads and closes a benchmark request's answer, reporting
// whether it was a 200 (failures are logged as errors).
func drainOK(b *testing.B, res *http.Response, err error) bool {
	if err != nil {
		b.Error(err)
		return false
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Errorf("status %d", res.StatusCode)
		return false
	}
	return true
}

// BenchmarkHTTPLargeValues measures what large values cost: GETs of 100
// small keys that sort between ten 10 MiB values (one client, so each
// figure is a lookup's cost), and PUTs of a 10 MiB value (sync full).
func BenchmarkHTTPLargeValues(b *testing.B) {
	ts := newTestServer(b, withStore(func(o *sqlitekv.Options) { o.Sync = sqlitekv.SyncFull; o.Now = nil }))
	large := strings.Repeat("v", 10<<20)
	ts.do(b, "POST", "/api/v1/sqlite/kv/batch/set?db=bench&create_db_if_missing=true", batchItems(100, func(i int) string { return "small" }))
	for i := 0; i < 100; i += 10 {
		ts.do(b, "PUT", kv(fmt.Sprintf("k%03d-large", i), "db=bench"), large)
	}
	b.Run("get-small-beside-large", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			res, err := ts.client.Get(ts.URL + kv(fmt.Sprintf("k%03d", i%100), "db=bench"))
			if !drainOK(b, res, err) {
				return
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("put-10MiB", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			req, _ := http.NewRequest("PUT", ts.URL+kv("put-large", "db=bench"), strings.NewReader(large))
			res, err := ts.client.Do(req)
			if !drainOK(b, res, err) {
				return
			}
		}
		b.ReportMetric(float64(b.N*len(large))/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
	})
}
