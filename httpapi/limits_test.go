package httpapi_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

func TestMaxOpenDBs_LeastRecentlyUsedAreClosedAndStayReadable(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 databases")
	}
	const dbs, limit, workers = 2000, 100, 8
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		a.MaxOpen = limit
		a.Store.Sync = sqlitekv.SyncNormal
	})
	each := func(fn func(i int)) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < dbs; i += workers {
					fn(i)
				}
			}()
		}
		wg.Wait()
	}
	var mu sync.Mutex
	most := 0
	observe := func() {
		mu.Lock()
		most = max(most, ts.Registry.OpenCount())
		mu.Unlock()
	}
	each(func(i int) {
		r := ts.do(t, "PUT", kv("k", fmt.Sprintf("db=db%04d&create_db_if_missing=true", i)), fmt.Sprint(i))
		if r.Status != 200 {
			t.Errorf("put db%04d: %d %s", i, r.Status, r.Body)
		}
		observe()
	})
	each(func(i int) {
		r := ts.do(t, "GET", kv("k", fmt.Sprintf("db=db%04d", i)), "")
		if r.Status != 200 || string(r.Body) != fmt.Sprint(i) {
			t.Errorf("get db%04d: got %d %q, want %d", i, r.Status, r.Body, i)
		}
		observe()
	})
	if most > limit {
		t.Fatalf("open databases: peaked at %d, want at most %d", most, limit)
	}
}

func TestIdleTimeout_ClosesUnusedDatabasesAndReopensOnDemand(t *testing.T) {
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		a.IdleTimeout = time.Hour // CloseIdle runs on a ticker; the test calls it directly
	})
	ts.do(t, "PUT", kv("k", "db=idle&create_db_if_missing=true"), "v")
	ts.do(t, "PUT", kv("k", "db=busy&create_db_if_missing=true"), "v")
	ts.Clock.Advance(59 * time.Minute)
	ts.do(t, "GET", kv("k", "db=busy"), "")
	ts.Clock.Advance(2 * time.Minute)
	ts.Registry.CloseIdle()
	if n := ts.Registry.OpenCount(); n != 1 {
		t.Fatalf("open after an idle hour: got %d, want 1 (only busy)", n)
	}
	if got := ts.do(t, "GET", kv("k", "db=idle"), ""); string(got.Body) != "v" {
		t.Fatalf("reopened idle db: got %d %q, want v", got.Status, got.Body)
	}
	if n := ts.Registry.OpenCount(); n != 2 {
		t.Fatalf("open after reading idle again: got %d, want 2", n)
	}
}

// Bodies held in memory share one budget: while one large batch body is
// being received, another body that would overdraw the budget answers 503
// at once, and both succeed once memory is free again.
func TestBodyMemory_OverdrawAnswersOverloadedInsteadOfGrowing(t *testing.T) {
	const value = 256 << 10 // the budget holds one batch body: 4 values
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) {
		h.MaxValueBytes, h.MaxBodyMemory = value, 4*value
	})
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "x"), 200)
	items := make([]string, 4)
	for i := range items {
		items[i] = fmt.Sprintf(`{"key":"big%d","value":"%s"}`, i, strings.Repeat("a", value-1024))
	}
	batch := `{"items":[` + strings.Join(items, ",") + `]}`
	// A client sends all but 100 KiB of the batch, then stalls.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %sset?db=app HTTP/1.1\r\nHost: kvd\r\nContent-Length: %d\r\n\r\n", batchPath, len(batch))
	sent := len(batch) - 100<<10
	conn.Write([]byte(batch[:sent]))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		held := metricValue(t, string(ts.do(t, "GET", "/metrics", "").Body), "kvd_request_body_bytes")
		if held == float64(sent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kvd_request_body_bytes: got %v, want %d", held, sent)
		}
	}
	// A byte more just before the refusal: an upload that received
	// nothing for a second gives way once the budget is spent.
	conn.Write([]byte(batch[sent : sent+1]))
	second := strings.Repeat("b", 200<<10)
	wantError(t, ts.do(t, "PUT", kv("second", "db=app"), second), 503, "OVERLOADED")
	conn.Write([]byte(batch[sent+1:]))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("the stalled batch, once complete: got %q, %v; want 200", line, err)
	}
	wantStatus(t, ts.do(t, "PUT", kv("second", "db=app"), second), 200)
}

// A large value costs a few times its size in allocations, not a dozen:
// its body read (io.ReadAll grows its buffer as it goes) and its frames
// passing through the writer's WAL buffer, which writes a megabyte at a
// time rather than growing to hold the commit (16 MiB once, when one 9 MiB
// PUT allocated 127 MB).
func TestLargeValue_AWriteAllocatesAFewTimesItsSize(t *testing.T) {
	const value = 8 << 20
	ts := newTestServer(t, withMaxValue(value))
	wantStatus(t, ts.do(t, "PUT", kv("small", "db=app&create_db_if_missing=true"), "s"), 200)
	body := strings.Repeat("v", value)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	wantStatus(t, ts.do(t, "PUT", kv("big", "db=app"), body), 200)
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 5*value {
		t.Fatalf("one PUT of %d MiB allocated %d MiB, want at most 5 times the value", value>>20, allocated>>20)
	}
}

// Uploads that stall a byte short of their end cannot hold the bodies'
// memory for long: once it is spent, those that received nothing for a
// second give way (their connections close, nothing of them is written),
// and a retry of another client's write is served. (One client holding
// 324 such uploads refused every other write until the read timeout.)
func TestBodyMemory_StalledUploadsGiveWayToOtherWrites(t *testing.T) {
	const value, stalls = 256 << 10, 4 // the budget holds four values (and one batch body)
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) {
		h.MaxValueBytes, h.MaxBodyMemory = value, stalls*value
	})
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "x"), 200)
	var stalled []net.Conn
	for i := range stalls {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: kvd\r\nContent-Length: %d\r\n\r\n%s", kv(fmt.Sprint("stalled", i), "db=app"), value, strings.Repeat("s", value-1))
		stalled = append(stalled, conn)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		held := metricValue(t, string(ts.do(t, "GET", "/metrics", "").Body), "kvd_request_body_bytes")
		if held == stalls*(value-1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kvd_request_body_bytes: got %v, want %d", held, stalls*(value-1))
		}
	}
	other := strings.Repeat("o", 100<<10)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := ts.do(t, "PUT", kv("other", "db=app"), other)
		if r.Status == 200 {
			break
		}
		wantError(t, r, 503, "OVERLOADED")
		if time.Now().After(deadline) {
			t.Fatal("a write still refused for want of body memory 10 s after the uploads stalled")
		}
	}
	for i, conn := range stalled {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("stalled upload %d: read %d bytes, %v; want its connection closed", i, n, err)
		}
		wantError(t, ts.do(t, "GET", kv(fmt.Sprint("stalled", i), "db=app"), ""), 404, "KEY_NOT_FOUND")
	}
}

// A burst of requests to more new databases than --max-open-dbs, all at
// once, opens no more than that: each request past it waits for another's
// lease to end (or answers 503 to retry), and every write answered 200 is
// there after. (8,000 at once used to open as many, took every file
// descriptor, and failed thousands with "too many open files".)
func TestMaxOpenDBs_ABurstOfNewDatabasesOpensNoMoreThanTheLimit(t *testing.T) {
	const limit, burst = 4, 64
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		a.MaxOpen = limit
		a.Store.Sync = sqlitekv.SyncNormal
	})
	stop, peaked := make(chan struct{}), make(chan int)
	go func() {
		most := 0
		for {
			select {
			case <-stop:
				peaked <- most
				return
			default:
				most = max(most, ts.Registry.OpenCount())
			}
		}
	}()
	statuses := make([]int, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.do(t, "PUT", kv("k", fmt.Sprintf("db=burst%02d&create_db_if_missing=true", i)), fmt.Sprint(i))
			if r.Status != 200 {
				wantError(t, r, 503, "OVERLOADED")
			}
			statuses[i] = r.Status
		}()
	}
	wg.Wait()
	close(stop)
	if most := <-peaked; most > limit {
		t.Fatalf("open databases in the burst: peaked at %d, want at most %d", most, limit)
	}
	served := 0
	for i, status := range statuses {
		if status == 200 {
			served++
			if r := ts.do(t, "GET", kv("k", fmt.Sprintf("db=burst%02d", i)), ""); string(r.Body) != fmt.Sprint(i) {
				t.Errorf("burst%02d after its 200: got %d %q", i, r.Status, r.Body)
			}
		}
	}
	if served == 0 {
		t.Fatal("no write of the burst was served")
	}
	t.Logf("%d of %d served, the others told to retry", served, burst)
}
