package watch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// history is a fake Source: the writes committed so far, in op order.
type history struct {
	mu     sync.Mutex
	writes []sqlitekv.Event
	pruned []int64 // ops retention removed from writes
	reads  int
	checks int    // reads that checked for a gap
	value  []byte // what each write stores ("v" if nil)
}

func (h *history) commit(hub *Hub, keys ...string) {
	h.mu.Lock()
	var group []sqlitekv.Event
	for _, k := range keys {
		op := int64(len(h.writes) + len(h.pruned) + 1)
		value := h.value
		if value == nil {
			value = []byte("v")
		}
		w := sqlitekv.Event{Table: "t", Key: k, Version: sqlitekv.Version{OpNumber: op, Op: "set", Recorded: true,
			Entry: sqlitekv.Entry{Value: value}}}
		h.writes = append(h.writes, w)
		group = append(group, w)
	}
	h.mu.Unlock()
	hub.Publish(group)
}

// prune removes op from history, as retention does.
func (h *history) prune(op int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes = slices.DeleteFunc(h.writes, func(w sqlitekv.Event) bool { return w.OpNumber == op })
	h.pruned = append(h.pruned, op)
}

func (h *history) ReadChanges(_ context.Context, req sqlitekv.ChangesRequest) (sqlitekv.ChangesPage, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads++
	p := sqlitekv.ChangesPage{Head: int64(len(h.writes) + len(h.pruned)), Complete: true, Prunes: uint64(len(h.pruned) + 1)}
	if req.CheckGap && req.GapAsOf != p.Prunes {
		h.checks++
		for _, op := range h.pruned {
			if op > req.After { // every key matches in these tests
				p.Gap = max(p.Gap, op+1)
			}
		}
	}
	for _, w := range h.writes {
		match := w.Key == req.Key || req.Key == "" && strings.HasPrefix(w.Key, req.Prefix)
		if w.OpNumber <= req.After || !match {
			continue
		}
		if len(p.Changes) == req.Limit {
			p.Complete = false
			break
		}
		p.Changes = append(p.Changes, w)
	}
	return p, nil
}

// next collects events until it has n (or fails after a while).
func next(t *testing.T, fl *Follower, n int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ops []int64
	for len(ops) < n {
		evs, err := fl.Next(ctx, time.Second)
		if err != nil {
			t.Fatalf("after %d events: %v", len(ops), err)
		}
		for _, e := range evs {
			ops = append(ops, e.Write.OpNumber)
		}
	}
	return ops
}

// A watcher that reads nothing while far more than its buffer is
// published holds Publish up not at all, and then gets every write, in
// order, from history.
func TestFollower_OverflowFallsBackToHistoryAndMissesNothing(t *testing.T) {
	hub, h := NewHub(), &history{}
	fl, err := Follow(context.Background(), hub, h, Filter{Table: "t", Prefix: "a"}, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	for range 10 * Buffer {
		h.commit(hub, "a1", "b1", "a2") // returns at once: nobody reads yet
	}
	if !fl.sub.lagged.Load() {
		t.Fatal("the watcher's buffer overflowed without it being told to read history")
	}
	ops := next(t, fl, 20*Buffer)
	for i := 1; i < len(ops); i++ {
		if ops[i] <= ops[i-1] {
			t.Fatalf("out of order or doubled: %v", ops)
		}
	}
	if len(ops) != 20*Buffer || h.reads == 0 {
		t.Fatalf("got %d events after %d reads of history, want %d", len(ops), h.reads, 20*Buffer)
	}
	h.commit(hub, "a3") // and live again
	if got := next(t, fl, 1); got[0] != int64(30*Buffer+1) {
		t.Fatalf("live after catching up: got %v", got)
	}
}

// A start in the past races writes committed while it reads history:
// each comes once, from one or the other.
func TestFollower_ReplaySeamSendsEachOpOnce(t *testing.T) {
	hub, h := NewHub(), &history{}
	for range 5 {
		h.commit(hub, "k")
	}
	fl, err := Follow(context.Background(), hub, h, Filter{Table: "t", Key: "k"}, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	h.commit(hub, "k", "other", "k") // published to the subscription and in history too
	if got := next(t, fl, 5); len(got) != 5 || got[3] != 6 || got[4] != 8 {
		t.Fatalf("got %v, want ops 3 4 5 6 8", got)
	}
	h.commit(hub, "k") // the buffered 6 and 8 are not sent again
	if got := next(t, fl, 1); len(got) != 1 || got[0] != 9 {
		t.Fatalf("got %v, want op 9 alone", got)
	}
}

func TestHub_CloseForgetsTheWatcherAndMissedWakesEveryOne(t *testing.T) {
	hub, h := NewHub(), &history{}
	fl, _ := Follow(context.Background(), hub, h, Filter{Table: "t", Key: "k"}, -1, 0)
	other, _ := Follow(context.Background(), hub, h, Filter{Table: "t", Prefix: ""}, -1, 0)
	hub.Missed()
	if !fl.sub.lagged.Load() || !other.sub.lagged.Load() {
		t.Fatal("Missed did not send every watcher to history")
	}
	fl.Close()
	other.Close()
	if hub.Active() || len(hub.byKey) != 0 || len(hub.byPrefix) != 0 {
		t.Fatalf("after Close: active %v, %d key sets, %d prefix sets", hub.Active(), len(hub.byKey), len(hub.byPrefix))
	}
}

func TestFollower_EndsWhenTheDatabaseCloses(t *testing.T) {
	hub, h := NewHub(), &history{}
	fl, _ := Follow(context.Background(), hub, h, Filter{Table: "t", Key: "k"}, -1, 0)
	defer fl.Close()
	hub.Shut()
	if _, err := fl.Next(context.Background(), time.Second); err != ErrClosed {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

// Retention may prune a write while a watcher is between two pages of
// history: the next page says so with a gap, instead of skipping it, and
// the pages after it do not say it again. Only pages read after history
// was pruned look for what it lost (a look at every pruned key).
func TestFollower_APageReadAfterAPruneChecksForPrunedWrites(t *testing.T) {
	hub, h := NewHub(), &history{}
	for range 3 * pageLimit {
		h.commit(hub, "k")
	}
	fl, err := Follow(context.Background(), hub, h, Filter{Table: "t", Prefix: ""}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if got := next(t, fl, pageLimit); len(got) != pageLimit {
		t.Fatalf("first page: %d events, want %d", len(got), pageLimit)
	}
	const pruned = int64(2*pageLimit + 10) // in the third page
	h.prune(pruned)
	var gaps []int64
	var ops []int64
	for len(ops) < 2*pageLimit-1 {
		evs, err := fl.Next(context.Background(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Gap > 0 {
				gaps = append(gaps, e.Gap)
			} else {
				ops = append(ops, e.Write.OpNumber)
			}
		}
		if len(evs) == 0 {
			break
		}
	}
	if fmt.Sprint(gaps) != fmt.Sprint([]int64{pruned + 1}) || slices.Contains(ops, pruned) {
		t.Fatalf("after op %d was pruned between pages: gaps %v, want one at %d (%d writes sent)", pruned, gaps, pruned+1, len(ops))
	}
	if h.checks != 2 {
		t.Errorf("%d pages checked for pruned writes, want 2: the first, and the first after history was pruned", h.checks)
	}
}

// A stalled watcher, whose stream sends nothing, keeps at most
// BufferBytes of values waiting; past them it reads history, and misses
// nothing.
func TestSub_AStalledWatcherHoldsAtMostBufferBytes(t *testing.T) {
	hub, h := NewHub(), &history{value: []byte(strings.Repeat("x", sqlitekv.MaxCarriedValue))}
	fl, err := Follow(context.Background(), hub, h, Filter{Table: "t", Key: "k"}, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	const writes = 100 // 800 KiB of values, fewer events than Buffer
	for range writes {
		h.commit(hub, "k")
	}
	if held := fl.sub.held.Load(); held > BufferBytes || !fl.sub.lagged.Load() {
		t.Fatalf("a stalled watcher holds %d bytes (lagged %v), want at most %d and history next", held, fl.sub.lagged.Load(), BufferBytes)
	}
	got := next(t, fl, writes)
	if len(got) != writes || got[0] != 1 || got[writes-1] != writes {
		t.Fatalf("got %d events from %d to %d, want 1 to %d", len(got), got[0], got[len(got)-1], writes)
	}
	if held := fl.sub.held.Load(); held != 0 {
		t.Fatalf("%d bytes held after the watcher caught up, want 0", held)
	}
}
