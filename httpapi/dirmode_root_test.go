package httpapi_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A link out, swapped in and out again as a key's folder while that key
// is written, never gets a file outside: the link may come between the
// write's check and its rename at the commit, but the rename goes through
// the directory's root, which does not follow a link out of it.
func TestDirMode_LinkSwappedInWhileWritingLeavesNothingOutside(t *testing.T) {
	ts, root, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("ok", q), "v"), 200) // the table's folder exists
	outside := t.TempDir()

	var current atomic.Int64 // the folder f<current> is being written
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			link := filepath.Join(root, "notes", fmt.Sprintf("f%d", current.Load()))
			if os.Symlink(outside, link) == nil {
				time.Sleep(time.Duration(i%4) * 100 * time.Microsecond)
				os.Remove(link) // only the link: a folder that holds the key's file stays
			}
			time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
		}
	}()
	answers := map[int]int{}
	for i := range 100 {
		current.Store(int64(i))
		r := ts.do(t, "PUT", kv(fmt.Sprintf("f%d%%2Fk", i), q), "v")
		switch r.Status {
		case 200:
		case 400:
			wantError(t, r, 400, "INVALID_PARAMETERS") // the link was there at the check
		case 500:
			wantError(t, r, 500, "FILE_SYSTEM_ERROR") // the link came after it
		default:
			t.Errorf("put f%d/k: got %d %s", i, r.Status, r.Body)
		}
		answers[r.Status]++
	}
	close(stop)
	wg.Wait()
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("files written outside the directory: %d (answers %v)", len(entries), answers)
	}
	t.Logf("answers: %v", answers)
}
