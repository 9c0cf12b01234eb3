package actors

import (
	"testing"
	"time"
)

func TestShmFaults_EachWithinAMinuteDoublesTheWait(t *testing.T) {
	f, t0 := shmFaults{}, time.Unix(1_700_000_000, 0)
	waits := []time.Duration{}
	at := t0
	for range 10 {
		f.note("app.db", at)
		waits = append(waits, f["app.db"].wait)
		at = at.Add(10 * time.Second)
	}
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	last := at.Add(-10 * time.Second)
	if f.reopenRefused("app.db", last.Add(29*time.Second)) == nil || f.reopenRefused("other.db", last) != nil {
		t.Fatal("a reopen within the wait was not refused, or another database's was")
	}
	if f.reopenRefused("app.db", last.Add(30*time.Second)) != nil {
		t.Fatal("a reopen after the wait was refused")
	}
	if f.note("app.db", last.Add(2*time.Minute)); f["app.db"].wait != 0 {
		t.Fatalf("a fault a while after the last waits %v, want none", f["app.db"].wait)
	}
}
