package sqlitekv

import (
	"context"
	"strings"
	"testing"
)

// A page of history prices each write with its old value as the rows come
// and stops reading at the first that does not fit: it does not read the
// key's whole history to trim it afterwards.
func TestHistoryPage_StopsReadingAtTheBudget(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	for i := range 10 {
		put(t, s, "k", strings.Repeat(string(rune('a'+i)), 1000))
	}
	measured := 0
	budget := Budget{Max: 2500, Measure: func(key string, e *Entry) int {
		measured++
		if e == nil {
			return 0
		}
		return len(e.Value)
	}}
	page, err := s.HistoryPage(context.Background(), HistoryRequest{Table: DefaultTable, Key: "k", Limit: 1000, Budget: budget})
	must(t, err)
	// The newest write and its old value (2000 bytes) fit; the next one
	// would make 4000.
	if page.Listed != 1 || len(page.Versions) != 2 || !page.Cut || page.Next == nil {
		t.Fatalf("got %d listed of %d versions, cut %v, next %v; want 1 of 2, cut, a next cursor", page.Listed, len(page.Versions), page.Cut, page.Next)
	}
	if measured > 4 {
		t.Fatalf("measured %d values for a page of one write, want at most 4: the page read on past the budget", measured)
	}
	if newest := page.Versions[0]; page.Next.Op != newest.OpNumber || page.Next.Ts != newest.Ts {
		t.Fatalf("next cursor %+v, want the listed write's (op %d, ts %d)", *page.Next, newest.OpNumber, newest.Ts)
	}
	var seen []int64
	for before := (HistoryCursor{}); ; {
		page, err := s.HistoryPage(context.Background(), HistoryRequest{Table: DefaultTable, Key: "k", Limit: 3, Before: before, Budget: Budget{Max: 2500}})
		must(t, err)
		for _, v := range page.Versions[:page.Listed] {
			seen = append(seen, v.OpNumber)
		}
		if page.Next == nil {
			break
		}
		before = *page.Next
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("op numbers over all pages %v: want each once, newest first", seen)
		}
	}
	if len(seen) != 10 {
		t.Fatalf("op numbers over all pages %v: want all 10 writes", seen)
	}
}
