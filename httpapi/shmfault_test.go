package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A database's -shm truncated by another program while kvd reads and
// writes it (a script of the same user, `: > app.db-shm`) made the kernel
// answer SQLite's next access to its map with SIGBUS, which killed kvd
// and every database it served. Now the connection that met the fault is
// retired, its request answers 503 (nothing done; for a commit, that
// whether it was kept is unknown), the database opens afresh at the next
// request, every write answered 200 is there after, and another database
// is served all along.
func TestShmFault_ATruncatedShmKillsNothing(t *testing.T) {
	ts := newTestServer(t)
	shm := filepath.Join(ts.DataDir, "app.db-shm")
	load := startShmLoad(t, ts)
	for range 6 {
		time.Sleep(150 * time.Millisecond)
		if err := os.Truncate(shm, 0); err != nil {
			t.Fatal(err)
		}
	}
	load.stopAndCheck(t, ts)
}

// So for a -shm made immutable (chattr +i) under steady writes with
// --sync full: kvd looks for it before each commit, but SQLite writes the
// -shm after the commit's fsync, and a chattr landing in between killed
// kvd (6 of 14 flips under 8 incr clients). Such a database is served
// read-only while its -shm is immutable (403 for writes) and read-write
// again after.
func TestShmFault_AnImmutableShmKillsNothing(t *testing.T) {
	ts := newTestServer(t)
	shm := filepath.Join(ts.DataDir, "app.db-shm")
	load := startShmLoad(t, ts)
	t.Cleanup(func() { exec.Command("chattr", "-i", shm).Run() })
	for range 8 {
		time.Sleep(100 * time.Millisecond)
		if out, err := exec.Command("chattr", "+i", shm).CombinedOutput(); err != nil {
			load.stop()
			t.Skipf("cannot make the -shm immutable (%v: %s)", err, out)
		}
		time.Sleep(100 * time.Millisecond)
		if out, err := exec.Command("chattr", "-i", shm).CombinedOutput(); err != nil {
			t.Fatalf("chattr -i: %v: %s", err, out)
		}
	}
	load.stopAndCheck(t, ts)
}

// shmLoad writes distinct keys to databases app and other from several
// clients, and reads one key back, until stopped, keeping every answer.
type shmLoad struct {
	client  *http.Client
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   map[string]string // db/key → value, for each write answered 200
	answers map[string]int    // "db status code" → how many
	odd     []string          // answers neither 200, 403 READ_ONLY nor 503
	shmLost int               // 503s that said the -shm changed
}

func startShmLoad(t *testing.T, ts *testServer) *shmLoad {
	for _, db := range []string{"app", "other"} {
		wantStatus(t, ts.do(t, "PUT", kv("seed", "db="+db+"&create_db_if_missing=true"), "v"), 200)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	l := &shmLoad{client: client, done: make(chan struct{}), acked: map[string]string{}, answers: map[string]int{}}
	for w, db := range []string{"app", "app", "app", "app", "other"} {
		l.wg.Add(2)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stopped(); i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				l.note(db, key, send(client, "PUT", ts.URL+kv(key, "db="+db), key))
			}
		}()
		go func() { // reads, on the readers' connections
			defer l.wg.Done()
			for !l.stopped() {
				l.note(db, "", send(client, "GET", ts.URL+kv("seed", "db="+db), ""))
			}
		}()
	}
	return l
}

func (l *shmLoad) stopped() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *shmLoad) stop() {
	close(l.done)
	l.wg.Wait()
	// A connection dialled for a request another one took would keep
	// the server's shutdown waiting for its first request.
	l.client.CloseIdleConnections()
}

// note counts one answer; key is a PUT's ("" for a read).
func (l *shmLoad) note(db, key string, r response) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var body struct{ Code string }
	json.Unmarshal(r.Body, &body)
	code := body.Code
	l.answers[fmt.Sprintf("%s %d %s", db, r.Status, code)]++
	switch {
	case r.Status == 200 && key != "":
		l.acked[db+"/"+key] = key
	case r.Status == 200, r.Status == 403 && code == "READ_ONLY":
	case r.Status == 503 && code == "OVERLOADED":
		if strings.Contains(string(r.Body), "-shm file was changed underneath kvd") {
			l.shmLost++
		}
	default:
		l.odd = append(l.odd, fmt.Sprintf("%s %s: %d %s", db, key, r.Status, r.Body))
	}
}

// stopAndCheck stops the load and checks what it saw: no answer but 200,
// 403 READ_ONLY and 503 OVERLOADED, none but 200 from database other, at
// least one fault met, app writable again, and every write answered 200
// there.
func (l *shmLoad) stopAndCheck(t *testing.T, ts *testServer) {
	t.Helper()
	l.stop()
	t.Logf("answers: %v; %d said the -shm changed", l.answers, l.shmLost)
	if len(l.odd) > 0 {
		t.Fatalf("%d answers neither 200, 403 READ_ONLY nor 503 OVERLOADED, the first: %s", len(l.odd), l.odd[0])
	}
	for answer, n := range l.answers {
		if strings.HasPrefix(answer, "other ") && answer != "other 200 " {
			t.Errorf("database other answered %q %d times: a fault on app's -shm reached it", answer, n)
		}
	}
	if l.shmLost == 0 {
		t.Fatalf("no answer said the -shm changed underneath: the test met no fault")
	}
	var last response
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if last = ts.do(t, "PUT", kv("after", "db=app"), "x"); last.Status == 200 {
			break
		}
	}
	wantStatus(t, last, 200)
	for dbKey, want := range l.acked {
		db, key, _ := strings.Cut(dbKey, "/")
		if r := ts.do(t, "GET", kv(key, "db="+db), ""); r.Status != 200 || string(r.Body) != want {
			t.Fatalf("%s answered 200 to its PUT; now GET: %d %s", dbKey, r.Status, r.Body)
		}
	}
}

// send sends one request; a failure to get an answer is status 0.
func send(client *http.Client, method, url, body string) response {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return response{Body: []byte(err.Error())}
	}
	res, err := client.Do(req)
	if err != nil {
		return response{Body: []byte(err.Error())}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return response{Body: []byte(err.Error())}
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: data}
}

// A truncation landing while the database opens again after a fault
// (the writer's PRAGMAs, the checkpointer's, the upgrade's look at the
// tables, a new reader's statements) met SQLite on the request's
// goroutine outside any guard: on a connection that had not read yet,
// SIGBUS killed kvd; on one that had, the panic answered 500 and left the
// open unfinished, so every later request for the database waited for it
// for good. Truncations every 2 ms for 3 s: kvd died, or answered 500 and
// hung, within seconds.
func TestShmFault_ATruncationWhileTheDatabaseOpensKillsNothing(t *testing.T) {
	ts := newTestServer(t)
	shm := filepath.Join(ts.DataDir, "app.db-shm")
	load := startShmLoad(t, ts)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		os.Truncate(shm, 0)
	}
	load.stopAndCheck(t, ts)
}

// Each fault leaves the memory of the connections it retired behind, so
// a database whose -shm keeps being changed is opened again less and
// less often: a fault alone reopens at once, the next within a minute
// after 250 ms, and so on, doubling; meanwhile its requests are asked to
// retry (a tester's kvd grew by 700 MB in 10 s of a truncation loop).
func TestShmFault_AgainAndAgainReopensLessOften(t *testing.T) {
	ts := newTestServer(t)
	shm := filepath.Join(ts.DataDir, "app.db-shm")
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	fault := func() {
		t.Helper()
		if err := os.Truncate(shm, 0); err != nil {
			t.Fatal(err)
		}
		r := ts.do(t, "PUT", kv("k", "db=app"), "w")
		wantError(t, r, 503, "OVERLOADED")
		if !strings.Contains(string(r.Body), "changed underneath kvd") {
			t.Fatalf("the write after a truncation: %s, want it to say the -shm changed", r.Body)
		}
	}
	fault()
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "x"), 200) // a fault alone: reopened at once
	fault()
	r := ts.do(t, "PUT", kv("k", "db=app"), "y")
	wantError(t, r, 503, "OVERLOADED")
	if !strings.Contains(string(r.Body), "keeps being changed underneath kvd: it is opened again in") {
		t.Fatalf("the write right after a second fault: %s, want it to wait for the reopen", r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "z"), 200)
	if r := ts.do(t, "GET", kv("k", "db=app"), ""); string(r.Body) != "z" {
		t.Fatalf("GET: %d %s, want z", r.Status, r.Body)
	}
}
