package watch

import (
	"context"
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
	reads  int
}

func (h *history) commit(hub *Hub, keys ...string) {
	h.mu.Lock()
	var group []sqlitekv.Event
	for _, k := range keys {
		op := int64(len(h.writes) + 1)
		w := sqlitekv.Event{Table: "t", Key: k, Version: sqlitekv.Version{OpNumber: op, Op: "set", Recorded: true,
			Entry: sqlitekv.Entry{Value: []byte("v")}}}
		h.writes = append(h.writes, w)
		group = append(group, w)
	}
	h.mu.Unlock()
	hub.Publish(group)
}

func (h *history) ReadChanges(_ context.Context, req sqlitekv.ChangesRequest) (sqlitekv.ChangesPage, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads++
	p := sqlitekv.ChangesPage{Head: int64(len(h.writes)), Complete: true}
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
