package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

func TestFailedUpgrades_EachDoublesTheWaitUpToAMinute(t *testing.T) {
	f, at := failedUpgrades{}, time.Unix(1_700_000_000, 0)
	full := sqlitekv.Errorf(sqlitekv.CodeStorageFull, "Disk is full: table %q needs room", "kv_store")
	var waits []time.Duration
	for range 8 {
		f.note("app.db", full, at, 100)
		waits = append(waits, f["app.db"].wait)
		at = at.Add(f["app.db"].wait)
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute, time.Minute}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}

func TestFailedUpgrades_RefusedUntilTheWaitEndsOrTheDiskHasRoom(t *testing.T) {
	f, at := failedUpgrades{}, time.Unix(1_700_000_000, 0)
	full := sqlitekv.Errorf(sqlitekv.CodeStorageFull, "Disk is full: table %q needs room", "kv_store")
	f.note("app.db", full, at, 100)
	same := func() uint64 { return 100 + moreRoom - 1 }

	err := f.retryRefused("app.db", at.Add(1500*time.Millisecond), same)
	if sqlitekv.CodeOf(err) != sqlitekv.CodeStorageFull || !strings.Contains(err.Error(), `table "kv_store" needs room (kvd tries again in 500ms`) {
		t.Fatalf("within the wait: got %v, want the failure again and when it is tried", err)
	}
	if err := f.retryRefused("other.db", at, same); err != nil {
		t.Fatalf("another database: %v", err)
	}
	if err := f.retryRefused("app.db", at.Add(time.Second), func() uint64 { return 100 + moreRoom }); err != nil {
		t.Fatalf("with more room on the disk: %v", err)
	}
	if err := f.retryRefused("app.db", at.Add(2*time.Second), same); err != nil {
		t.Fatalf("once the wait is over: %v", err)
	}
}
