package httpapi_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

// withMaxValue sets --max-value-bytes, which reaches both the HTTP layer
// and directory mode's storage.
func withMaxValue(n int64) serverOption {
	return func(a *actors.Config, h *httpapi.Config) { a.Store.MaxValueBytes, h.MaxValueBytes = n, n }
}

// A file dropped into the folder that is larger than --max-value-bytes is
// neither served nor imported into the cache: reads answer 413, writes
// that would build on its value too; a PUT replaces it, a DELETE removes
// it, a rebuild skips it, and the writes around it go on.
func TestDirMode_AFileLargerThanTheValueLimitIsRefusedNotImported(t *testing.T) {
	const limit = 1024
	ts, root, q := dirServer(t, withMaxValue(limit))
	wantStatus(t, ts.do(t, "PUT", kv("replaced", q), "small at first"), 200)
	big := strings.Repeat("b", limit+1)
	for key, data := range map[string]string{"dropped": big, "replaced": big, "third": big, "edge": strings.Repeat("e", limit)} {
		if err := os.WriteFile(filepath.Join(root, "notes", key), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"dropped", "replaced"} {
		wantError(t, ts.do(t, "GET", kv(key, q), ""), 413, "PAYLOAD_TOO_LARGE")
		if r := ts.do(t, "HEAD", kv(key, q), ""); r.Status != 413 || r.Header.Get("X-Error-Code") != "PAYLOAD_TOO_LARGE" {
			t.Fatalf("HEAD %s: got %d %q, want 413 PAYLOAD_TOO_LARGE", key, r.Status, r.Header.Get("X-Error-Code"))
		}
		wantError(t, ts.do(t, "POST", batchPath+"get?"+q, `{"keys":["`+key+`"]}`), 413, "PAYLOAD_TOO_LARGE")
		// Writes that build on the value would start from nothing and throw the file away.
		wantError(t, ts.do(t, "POST", kv(key+"/incr", q), ""), 413, "PAYLOAD_TOO_LARGE")
		wantError(t, ts.do(t, "POST", kv(key+"/push", q), `1`), 413, "PAYLOAD_TOO_LARGE")
		wantError(t, ts.do(t, "PUT", kv(key, q+"&path=a"), `1`), 413, "PAYLOAD_TOO_LARGE")
		wantError(t, ts.do(t, "PUT", kv(key, q), "new", "If-None-Match", "*"), 413, "PAYLOAD_TOO_LARGE")
		if fileOf(t, root, key) != big {
			t.Fatalf("%s's file after refused writes: changed", key)
		}
	}
	if got := string(ts.do(t, "GET", kv("edge", q), "").Body); len(got) != limit {
		t.Fatalf("a file of exactly the limit: got %d bytes, want %d", len(got), limit)
	}
	// The cache never took the big files: a rebuild lists the rest, and
	// the value replaced by hand is unknown from then on, not made up.
	list := ts.do(t, "GET", "/api/v1/sqlite/kv?"+q+"&rebuild=true", "")
	wantStatus(t, list, 200)
	if got := fmt.Sprint(strs(list.JSON(t)["keys"])); got != "[edge]" {
		t.Fatalf("keys after a rebuild: got %s, want [edge]", got)
	}
	at := fmt.Sprint(ts.Clock.Now().Unix())
	wantError(t, ts.do(t, "GET", kv("replaced", q+"&at_timestamp="+at), ""), 409, "TIME_TRAVEL_GAP")
	for _, op := range ts.do(t, "GET", kv("replaced/history", q), "").JSON(t)["operations"].([]any) {
		if strings.Contains(fmt.Sprint(op), big) {
			t.Fatalf("the big file's bytes are in history: %v", op)
		}
	}
	// DELETE removes the file; PUT of a normal value replaces it.
	if r := ts.do(t, "DELETE", kv("dropped", q), ""); r.Status != 200 || r.JSON(t)["deleted"] != true {
		t.Fatalf("DELETE of the dropped file: %d %s", r.Status, r.Body)
	}
	if fileOf(t, root, "dropped") != "<missing>" {
		t.Fatal("the dropped file survived its DELETE")
	}
	wantError(t, ts.do(t, "DELETE", kv("dropped", q), ""), 404, "KEY_NOT_FOUND")
	wantStatus(t, ts.do(t, "PUT", kv("replaced", q), "normal again"), 200)
	if got := string(ts.do(t, "GET", kv("replaced", q), "").Body); got != "normal again" || fileOf(t, root, "replaced") != "normal again" {
		t.Fatalf("replaced after a PUT: got %q, file %q", got, fileOf(t, root, "replaced"))
	}
	// Writes sent alongside the refused ones (so, often in their group) all land.
	var wg sync.WaitGroup
	statuses := make([]int, 40)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0:
				statuses[i] = ts.do(t, "GET", kv("third", q), "").Status
			case 1:
				statuses[i] = ts.do(t, "POST", kv("third/incr", q), "").Status
			default:
				statuses[i] = ts.do(t, "PUT", kv(fmt.Sprintf("n%d", i), q), "v").Status
			}
		}()
	}
	wg.Wait()
	// The burst may have dialled connections it never used: the server's
	// Shutdown would wait seconds for them.
	ts.client.CloseIdleConnections()
	for i, status := range statuses {
		want := 200
		if i%4 < 2 {
			want = 413
		}
		if status != want {
			t.Fatalf("request %d beside the big file: got %d, want %d", i, status, want)
		}
	}
	// A batch delete removes such a file as well.
	if r := ts.do(t, "POST", batchPath+"delete?"+q, `{"keys":["third","n2"]}`); r.Status != 200 || r.JSON(t)["deleted"] != float64(2) {
		t.Fatalf("batch delete of the big file and another: %d %s", r.Status, r.Body)
	}
	if fileOf(t, root, "third") != "<missing>" {
		t.Fatal("the big file survived the batch delete")
	}
}
