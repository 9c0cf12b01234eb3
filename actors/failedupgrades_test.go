package actors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

var diskFull = sqlitekv.Errorf(sqlitekv.CodeStorageFull, "Disk is full: table %q needs room", "kv_store")

func TestFailedUpgrades_EachDoublesTheWaitUpToAMinute(t *testing.T) {
	f, at := failedUpgrades{}, time.Unix(1_700_000_000, 0)
	var waits []time.Duration
	for range 8 {
		f.note("app.db", &failedUpgrade{err: diskFull}, at)
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
	if f.note("app.db", nil, at); len(f) != 0 {
		t.Fatal("an open that did not fail its upgrade left the failures before it")
	}
}

func TestFailedUpgrades_RefusedUntilTheWaitEndsTheDiskHasRoomOrTheFileIsAnother(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	writeFile(t, path, "old")
	f, at := failedUpgrades{}, time.Unix(1_700_000_000, 0)
	file, _ := os.Stat(path)
	f.note(path, &failedUpgrade{err: diskFull, room: 100, file: file}, at)
	last := f[path]
	same := func(string) uint64 { return 100 + moreRoom - 1 }

	err := last.refusal(path, at.Add(1500*time.Millisecond), same)
	if sqlitekv.CodeOf(err) != sqlitekv.CodeStorageFull ||
		!strings.HasSuffix(err.Error(), `table "kv_store" needs room (kvd tries again in 500ms, or as soon as the disk has more room)`) {
		t.Fatalf("within the wait: got %v, want the failure again and when it is tried", err)
	}
	if err := last.refusal(path, at.Add(time.Second), func(string) uint64 { return 100 + moreRoom }); err != nil {
		t.Fatalf("with more room on the disk: %v", err)
	}
	if err := last.refusal(path, at.Add(2*time.Second), same); err != nil {
		t.Fatalf("once the wait is over: %v", err)
	}
	os.Remove(path)
	if err := last.refusal(path, at, same); err != nil {
		t.Fatalf("the file gone: %v", err)
	}
	writeFile(t, path, "new")
	if err := last.refusal(path, at, same); err != nil {
		t.Fatalf("another file in its place: %v", err)
	}

	ioErr := failedUpgrade{err: sqlitekv.Errorf(sqlitekv.CodeDatabaseError, "Disk I/O error"), at: at, wait: time.Second, room: 100}
	if err := ioErr.refusal(filepath.Join(t.TempDir(), "gone.db"), at, same); err == nil || strings.Contains(err.Error(), "room") {
		t.Fatalf("a failure not for want of room: got %v, want it refused, room unmentioned", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
