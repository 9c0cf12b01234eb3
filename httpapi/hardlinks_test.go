package httpapi_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Two names of one file (a hard link) reach one writer, so increments
// sent through both all count: with an actor, and a log, for each name,
// half of them were lost. Both when one name was open before the other
// was first used, and when both are opened at once.
func TestHardLinks_TwoNamesOfOneFileShareItsWriter(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("n", "db=a&create_db_if_missing=true"), "0"), 200)
	if err := os.Link(filepath.Join(ts.DataDir, "a.db"), filepath.Join(ts.DataDir, "b.db")); err != nil {
		t.Fatal(err)
	}
	const clients, each = 8, 40
	for round := range 2 {
		if round == 1 {
			ts.Registry.CloseDB(filepath.Join(ts.DataDir, "a.db"))
		}
		var wg sync.WaitGroup
		failed := make(chan timedAnswer, clients*each)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					db := []string{"a", "b"}[(c+i)%2]
					if a := ts.timed("POST", kv("n/incr", "db="+db), ""); a.err != nil || a.status != 200 {
						failed <- a
					}
				}
			}()
		}
		wg.Wait()
		close(failed)
		for a := range failed {
			t.Fatalf("an incr: %d %s %v", a.status, a.body, a.err)
		}
	}
	for _, db := range []string{"a", "b"} {
		if got := string(ts.do(t, "GET", kv("n", "db="+db), "").Body); got != "640" {
			t.Errorf("n through %s: got %s, want 640 (2 rounds of %d incrs)", db, got, clients*each)
		}
	}
}
