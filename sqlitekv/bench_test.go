package sqlitekv

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkWriter_BatchSet100 is one group holding a batch set of 100
// fresh keys (sync normal, so the figure is CPU, not fsync): the storage
// cost of an item, without HTTP or the actor.
func BenchmarkWriter_BatchSet100(b *testing.B) {
	s, _ := mustOpenStore(b, Options{Sync: SyncNormal})
	w := s.Writer()
	items := make([]BatchItem, 100)
	value := []byte(`{"n":42,"name":"user"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for j := range items {
			items[j] = BatchItem{Key: "k" + strconv.Itoa(i*100+j), Value: value, ContentType: "application/json"}
		}
		groupOf(b, w, func() error {
			_, err := w.BatchSet(BatchSetRequest{Table: DefaultTable, Items: items})
			return err
		})
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkWriter_BatchSetGroups is kvbench's batch-set in storage alone:
// batches of 100 of 1000 keys, with `batches` of them per group. Every
// write appends to its key's range of the history index, so a group
// dirties (and its commit writes) about one index page per key it
// touches: the fewer batches share a commit, the more each item costs.
func BenchmarkWriter_BatchSetGroups(b *testing.B) {
	for _, batches := range []int{1, 8, 64, 512} {
		b.Run("batches="+strconv.Itoa(batches), func(b *testing.B) {
			s, _ := mustOpenStore(b, Options{Sync: SyncNormal})
			w := s.Writer()
			value := []byte(`"` + strings.Repeat("v", 98) + `"`)
			requests := make([]BatchSetRequest, 10)
			for i := range requests {
				items := make([]BatchItem, MaxBatch)
				for j := range items {
					items[j] = BatchItem{Key: fmt.Sprintf("kvbench/%06d", i*MaxBatch+j), Value: value, ContentType: "application/json"}
				}
				requests[i] = BatchSetRequest{Table: DefaultTable, Items: items}
			}
			b.ResetTimer()
			for n := 0; n < b.N; n += batches {
				groupOf(b, w, func() error {
					for i := n; i < min(n+batches, b.N); i++ {
						if _, err := w.BatchSet(requests[i*7%len(requests)]); err != nil {
							return err
						}
					}
					return nil
				})
			}
			b.ReportMetric(float64(b.N*MaxBatch)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// BenchmarkWriter_BatchSetPastKeep is kvbench's batch-set once every key
// has more versions than it keeps: each item appends a row and retention
// deletes one, in laps (prunelaps.go), which is where sustained writes
// over many keys spend what the first seconds' did not.
func BenchmarkWriter_BatchSetPastKeep(b *testing.B) {
	const keys, keep, batchesPerGroup = 1000, 100, 10
	s, _ := mustOpenStore(b, Options{Sync: SyncNormal, HistoryKeep: keep})
	w := s.Writer()
	value := []byte(`"` + strings.Repeat("v", 98) + `"`)
	requests := make([]BatchSetRequest, keys/MaxBatch)
	for i := range requests {
		items := make([]BatchItem, MaxBatch)
		for j := range items {
			items[j] = BatchItem{Key: fmt.Sprintf("kvbench/%06d", (i*MaxBatch+j)*7919%keys), Value: value, ContentType: "application/json"}
		}
		requests[i] = BatchSetRequest{Table: DefaultTable, Items: items}
	}
	batches := 0
	group := func() {
		groupOf(b, w, func() error {
			for range batchesPerGroup {
				batches++
				if _, err := w.BatchSet(requests[batches*7%len(requests)]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for range 3 * keep {
		group() // every key past its keep, and laps under way
	}
	b.ResetTimer()
	for range b.N {
		group()
	}
	b.ReportMetric(float64(b.N*batchesPerGroup*MaxBatch)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkWriter_Incr is groups of 30 incrs (kvbench's group size at 64
// connections): of one key (hot), or each of another of 1000 keys
// (spread): a group commit's storage cost per write.
func BenchmarkWriter_Incr(b *testing.B) {
	for _, spread := range []bool{false, true} {
		name := map[bool]string{false: "hot", true: "spread"}[spread]
		b.Run(name, func(b *testing.B) {
			s, _ := mustOpenStore(b, Options{Sync: SyncNormal})
			w := s.Writer()
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprintf("counter-%d", i)
			}
			next := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				groupOf(b, w, func() error {
					for range 30 {
						key := "hot"
						if spread {
							key, next = keys[next], (next+1)%len(keys)
						}
						if _, err := w.Incr(IncrRequest{Table: DefaultTable, Key: key, Delta: 1}); err != nil {
							return err
						}
					}
					return nil
				})
			}
			b.ReportMetric(float64(b.N*30)/b.Elapsed().Seconds(), "incr/s")
		})
	}
}

func groupOf(b *testing.B, w *Writer, fn func() error) {
	b.Helper()
	if err := w.Begin(); err != nil {
		b.Fatal(err)
	}
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStore_Get reads 1000 keys round-robin from several goroutines
// at once, as HTTP handlers do: one read transaction each, or none while
// nothing commits (snapshots.go).
func BenchmarkStore_Get(b *testing.B) {
	s, _ := mustOpenStore(b, Options{})
	w := s.Writer()
	value := []byte(`"` + strings.Repeat("v", 98) + `"`)
	keys := make([]string, 1000)
	for i := 0; i < len(keys); i += MaxBatch {
		items := make([]BatchItem, MaxBatch)
		for j := range items {
			keys[i+j] = fmt.Sprintf("kvbench/%06d", i+j)
			items[j] = BatchItem{Key: keys[i+j], Value: value, ContentType: "application/json"}
		}
		if _, err := w.BatchSet(BatchSetRequest{Table: DefaultTable, Items: items}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := s.Get(b.Context(), GetRequest{Table: DefaultTable, Key: keys[i%len(keys)]}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkArrayRemoveByValue is remove's scan of an array of 200,000
// numbers for one that is not there: what it holds the writer for.
func BenchmarkArrayRemoveByValue(b *testing.B) {
	doc := numbersArray(200_000)
	for b.Loop() {
		arr, err := loadArray(doc, true, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, removed, err := removeFrom(arr, ArrayRequest{Value: []byte("-1")}); err != nil || removed != 0 {
			b.Fatal(removed, err)
		}
	}
}

// BenchmarkReadChanges_GapCheckPastPrunedKeys is one page of a watch
// that looks for pruned writes (as every page does while retention
// prunes) past 20,000 keys that lost writes before its position.
func BenchmarkReadChanges_GapCheckPastPrunedKeys(b *testing.B) {
	const keys = 20_000
	s, _ := mustOpenStore(b, Options{HistoryKeep: 2, Sync: SyncNormal})
	w := s.Writer()
	for range 3 { // each key loses its first write
		must(b, w.Begin())
		for i := range keys {
			put(b, s, fmt.Sprintf("k%06d", i), "v")
		}
		must(b, w.Commit())
	}
	req := ChangesRequest{Table: DefaultTable, After: 3 * keys, CheckGap: true, Limit: 256}
	for b.Loop() {
		if p, err := s.ReadChanges(context.Background(), req); err != nil || p.Gap != 0 {
			b.Fatal(p.Gap, err)
		}
	}
}

// BenchmarkArrayPop is a pop's walk of an array of 200,000 numbers.
func BenchmarkArrayPop(b *testing.B) {
	doc := numbersArray(200_000)
	for b.Loop() {
		if _, last, length := withoutLast(doc); string(last) != "199999" || length != 199_999 {
			b.Fatal(string(last), length)
		}
	}
}

// numbersArray is the JSON array of the numbers 0 to n-1.
func numbersArray(n int) []byte {
	doc := []byte("[")
	for i := range n {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = strconv.AppendInt(doc, int64(i), 10)
	}
	return append(doc, ']')
}

// BenchmarkJSONIncr_InAMebibyteDocument is an incr under a path in a
// document of a mebibyte: what the document's reads cost it.
func BenchmarkJSONIncr_InAMebibyteDocument(b *testing.B) {
	doc := []byte(`{"n":1,"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	p, err := ParseJSONPath("n")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, _, err := jsonIncr(doc, p, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONSet_PastADeepDocument is a set at a 64-segment path whose
// last segment is missing, in a document nested 63 deep around 1 MiB:
// the search for the deepest node that is there.
func BenchmarkJSONSet_PastADeepDocument(b *testing.B) {
	doc := strings.Repeat(`{"a":`, 63) + `"` + strings.Repeat("x", 1<<20) + `"` + strings.Repeat("}", 63)
	p, err := ParseJSONPath(strings.TrimSuffix(strings.Repeat("a.", 64), "."))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := jsonSet([]byte(doc), p, []byte("1")); err == nil {
			b.Fatal("set below a string: no error")
		}
	}
}

// BenchmarkIfMatch_PastADeepDocument is an if_match under a path that
// fails at the bottom of a document nested 1,000 deep around 1 MB: a
// compare that split each level before comparing it read the document
// once per level.
func BenchmarkIfMatch_PastADeepDocument(b *testing.B) {
	const depth = 1000
	doc := []byte(strings.Repeat("[", depth) + "[" + strings.Repeat("0,", 1<<19) + "0]" + strings.Repeat("]", depth))
	want := []byte(strings.Repeat("[", depth+1) + strings.Repeat("]", depth+1))
	whole, err := ParseJSONPath("$")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if valueMatches(doc, whole, want) {
			b.Fatal("an empty array matched a million zeros")
		}
	}
}

// BenchmarkWriter_SweepMovePass is the sweep's pass that moves an older
// kvd's large values to history (largevalues.go), over 100,000 small
// keys with none to move: the cost a database pays once per open, in
// rounds of inlinePage keys (sync normal).
func BenchmarkWriter_SweepMovePass(b *testing.B) {
	s, _ := mustOpenStore(b, Options{Sync: SyncNormal})
	w := s.Writer()
	for g := range 100 {
		must(b, w.Begin())
		for i := range 1000 {
			put(b, s, fmt.Sprintf("key-%06d", g*1000+i), "small value")
		}
		must(b, w.Commit())
	}
	b.ResetTimer()
	rounds := 0
	for range b.N {
		clear(w.inline)
		for more := true; more; rounds++ {
			must(b, w.Begin())
			res, err := w.Sweep()
			must(b, err)
			must(b, w.Commit())
			more = res.More
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(rounds), "µs/round")
}
