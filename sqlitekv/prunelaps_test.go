package sqlitekv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// Keys written at random among many, in groups of batches, far past
// their keep: a lap takes each row that is keep versions old by the time
// it gets there, so a key holds a little more than keep versions, never
// fewer. With the bounds retention found alone (on one write in keep/4),
// laps kept half the rows they read, and keys held about half a keep more.
func TestLaps_TakeEveryRowThatIsKeepOldWhenTheyReachIt(t *testing.T) {
	const keep, keys, groups, batchesPerGroup = 100, 500, 700, 3
	s, _ := mustOpenStore(t, Options{HistoryKeep: keep})
	w := s.Writer()
	rng := rand.New(rand.NewPCG(1, 2))
	for range groups {
		inGroup(t, w, func() {
			for range batchesPerGroup {
				b := BatchSetRequest{Table: DefaultTable}
				for _, k := range rng.Perm(keys)[:MaxBatch] {
					b.Items = append(b.Items, BatchItem{Key: fmt.Sprintf("k%03d", k), Value: []byte(`"v"`), ContentType: "application/json"})
				}
				if _, err := w.BatchSet(b); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	total := 0
	for k := range keys {
		versions, err := s.history(context.Background(), DefaultTable, fmt.Sprintf("k%03d", k), 10*keep)
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) < keep {
			t.Fatalf("k%03d kept %d versions, want at least %d", k, len(versions), keep)
		}
		total += len(versions)
	}
	if avg := float64(total) / keys; avg > 1.25*keep {
		t.Errorf("versions a key: %.1f on average, want at most %.0f (keep %d and what laps have yet to take)", avg, 1.25*keep, keep)
	}
	// Watchers learn from the count of prunes when to look for a gap.
	if p, err := s.ReadChanges(context.Background(), ChangesRequest{Table: DefaultTable, Limit: 1}); err != nil || p.Prunes < 2 {
		t.Errorf("laps pruned, yet a page says prunes %d (%v)", p.Prunes, err)
	}
}

// A bound moves with its key's writes, and a chain that begins (seq 1)
// drops the key's bounds: they counted another chain's rows.
func TestLaps_ABoundMovesWithItsChainAndNoFurther(t *testing.T) {
	const keep = 100
	var p pruneLaps
	p.pruneLater("k", hop{op: 500, seq: 40})
	p.appended("k", 200, keep)
	if b := p.bounds["k"]; b == nil || *b != (lapBound{key: "k", op: 500, seq: 200 - keep}) {
		t.Fatalf("bound after seq 200: %+v, want op 500, seq %d", b, 200-keep)
	}
	p.lapping, p.bounds["k"].kept = true, true
	p.pruneLater("k", hop{op: 900, seq: 150}) // kept in this lap: the next one's
	p.appended("k", 1, keep)
	if len(p.bounds)+len(p.next) != 0 {
		t.Fatalf("bounds after a chain began: %v and next %v, want none", p.bounds, p.next)
	}
}
