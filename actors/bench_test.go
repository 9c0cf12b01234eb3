package actors_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// BenchmarkIncr measures one incr through the actor (message, storage,
// group commit, reply) with --sync full. With 64 clients on one key, group
// commit shares each fsync among the writes queued behind it; compare the
// ns/op of clients=1 and clients=64.
func BenchmarkIncr(b *testing.B) {
	for _, mode := range []sqlitekv.SyncMode{sqlitekv.SyncFull, sqlitekv.SyncNormal} {
		for _, clients := range []int{1, 64} {
			b.Run(string(mode)+"/clients="+strconv.Itoa(clients), func(b *testing.B) {
				reg := newTestRegistry(b, mode, actors.Hooks{})
				db, err := reg.Open(context.Background(), "bench", true, false)
				if err != nil {
					b.Fatal(err)
				}
				req := sqlitekv.IncrRequest{Table: "kv_store", Key: "hot", Delta: 1}
				b.ReportAllocs()
				b.ResetTimer()
				if clients == 1 {
					for range b.N {
						if _, err := db.Incr(context.Background(), req); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism((clients + 1) / 2) // GOMAXPROCS=2 on the reference machine
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := db.Incr(context.Background(), req); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incr/s")
			})
		}
	}
}

// BenchmarkBatchSet is kvbench's batch-set without HTTP: 64 clients each
// storing batches of 100 of 1000 keys with --sync full. It is the
// storage side of the batch-set target (items/s).
func BenchmarkBatchSet(b *testing.B) {
	reg := newTestRegistry(b, sqlitekv.SyncFull, actors.Hooks{})
	db, err := reg.Open(context.Background(), "bench", true, false)
	if err != nil {
		b.Fatal(err)
	}
	value := []byte(`"` + strings.Repeat("v", 98) + `"`)
	batches := make([]sqlitekv.BatchSetRequest, 10)
	for i := range batches {
		items := make([]sqlitekv.BatchItem, sqlitekv.MaxBatch)
		for j := range items {
			items[j] = sqlitekv.BatchItem{Key: fmt.Sprintf("kvbench/%06d", i*len(items)+j), Value: value, ContentType: "application/json"}
		}
		batches[i] = sqlitekv.BatchSetRequest{Table: "kv_store", Items: items}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(32) // 64 clients with GOMAXPROCS=2
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := batches[next.Add(1)%int64(len(batches))]
			if _, err := db.BatchSet(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*sqlitekv.MaxBatch)/b.Elapsed().Seconds(), "items/s")
}
