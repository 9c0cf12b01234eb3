package cluster

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNames_LitestreamCannotOpenAreRefused: Litestream opens a database's
// path as a SQLite URI, where ?, # and % mean something: q?x.db would be
// replicated as q, and every write to it lost with the node. Such names
// are refused as a client's mistake, before anything is written.
func TestNames_LitestreamCannotOpenAreRefused(t *testing.T) {
	_, base := testServer(t, newFakeEtcd(t), Config{})
	for _, db := range []string{"q?x", "h#x", "p%41x", "p%x"} {
		status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?create_db_if_missing=true&db="+url.QueryEscape(db), "v")
		if msg, _ := body["message"].(string); status != 400 || body["code"] != "INVALID_DB_PATH" || !strings.Contains(msg, "%") {
			t.Errorf("db %q: got %d %v, want 400 INVALID_DB_PATH naming the characters refused", db, status, body)
		}
	}
	if status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?create_db_if_missing=true&db=plain", "v"); status != 200 {
		t.Fatalf("db plain: got %d %v, want 200", status, body)
	}
}

// TestClaim_EtcdFailingAnswers503: a claim that etcd fails (no quorum, a
// record kvd cannot read) is a moment's unavailability, answered 503
// with Retry-After, not a database error.
func TestClaim_EtcdFailingAnswers503(t *testing.T) {
	f := newFakeEtcd(t)
	_, base := testServer(t, f, Config{})
	f.put(epochsKey("garbled.db"), "{not json")
	if status, body := call(t, "GET", base+"/api/v1/sqlite/kv/a?db=garbled", ""); status != 503 || body["code"] != "OVERLOADED" {
		t.Errorf("a garbled epoch record: got %d %v, want 503 OVERLOADED", status, body)
	}
	f.failing("/v3/kv/txn", true)
	if status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?db=app&create_db_if_missing=true", "v"); status != 503 || body["code"] != "OVERLOADED" {
		t.Errorf("etcd failing the claim: got %d %v, want 503 OVERLOADED", status, body)
	}
	f.failing("/v3/kv/txn", false)
	if status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?db=app&create_db_if_missing=true", "v"); status != 200 {
		t.Errorf("etcd answering again: got %d %v, want 200", status, body)
	}
}

// TestNames_TooLongForLitestreamAreRefused: Litestream keeps
// .<name>-litestream beside each database, 12 bytes longer than its
// name, and a file name is at most 255 bytes: a longer database name is
// the client's mistake (400), not a node that cannot serve it (503).
func TestNames_TooLongForLitestreamAreRefused(t *testing.T) {
	_, base := testServer(t, newFakeEtcd(t), Config{})
	for _, size := range []int{243, 244, 247} {
		db := strings.Repeat("a", size-len(".db")) + ".db"
		status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?create_db_if_missing=true&db="+db, "v")
		want, code := 200, ""
		if size > 243 {
			want, code = 400, "INVALID_DB_PATH"
		}
		if status != want || code != "" && body["code"] != code {
			t.Errorf("a name of %d bytes: got %d %v, want %d %s", size, status, body, want, code)
		}
	}
}

// TestRelease_AHandOverWhoseAnswerIsLostIsNotServedAgain: etcd may apply
// a hand-over and its answer be lost (or come after the node gave up
// waiting). Then a peer may own the database already: the node serves it
// no more, neither writes nor reads, until etcd answers it, and then
// forgets it.
func TestRelease_AHandOverWhoseAnswerIsLostIsNotServedAgain(t *testing.T) {
	f := newFakeEtcd(t)
	n, base := testServer(t, f, Config{})
	kv := base + "/api/v1/sqlite/kv/a?db=app"
	if status, body := call(t, "PUT", kv+"&create_db_if_missing=true", "1"); status != 200 {
		t.Fatalf("first write: got %d %v", status, body)
	}
	f.losing("/v3/kv/txn", true)
	if status, body := call(t, "POST", base+ReleasePath+"?db=app", ""); status != 503 {
		t.Fatalf("a hand-over whose answer was lost: got %d %v, want 503", status, body)
	}
	if _, _, owned := f.key(ownersKey("app.db")); owned {
		t.Fatal("etcd did not carry the hand-over out")
	}
	for _, method := range []string{"PUT", "GET"} {
		if status, body := call(t, method, kv, "2"); status != 503 {
			t.Fatalf("%s after a hand-over etcd applied unseen: got %d %v, want 503 (a peer may own it)", method, status, body)
		}
	}
	f.losing("/v3/kv/txn", false)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n.mu.Lock()
		held := n.held["app.db"] != nil
		n.mu.Unlock()
		if !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node still holds the database once etcd answers")
		}
	}
}

// TestFence_AReplicaThatTakesNothingStopsWrites: a sidecar that answers
// but cannot write the replica (its disk is full) ships nothing, and a
// node that died meanwhile would lose every write since. Writes stop
// once the replica is replicationTimeout behind, and go on once it
// takes them again.
func TestFence_AReplicaThatTakesNothingStopsWrites(t *testing.T) {
	n, base, sidecar := testServerAndSidecar(t, newFakeEtcd(t), Config{})
	kv := base + "/api/v1/sqlite/kv/a?db=app"
	if status, body := call(t, "PUT", kv+"&create_db_if_missing=true", "1"); status != 200 {
		t.Fatalf("first write: got %d %v", status, body)
	}
	sidecar.full.Store(true)
	until := func(want int, within time.Duration) {
		t.Helper()
		var status int
		var body map[string]any
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if status, body = call(t, "PUT", kv, "2"); status == want {
				return
			}
		}
		t.Fatalf("writes answer %d %v, want %d within %v", status, body, want, within)
	}
	until(503, replicationTimeout+2*time.Second)
	for deadline := time.Now().Add(2 * time.Second); n.counts.replicating.Load(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("kvd_cluster_replicating is 1 while the replica takes nothing")
		}
	}
	sidecar.full.Store(false)
	until(200, 3*time.Second)
}

// TestStart_ASecondKvdOfOneNodeNameIsRefused: two kvds started with one
// --cluster-node would each take the other's databases for its own and
// both serve them. A kvd whose node name is in etcd at another address,
// under a lease that stays alive, does not start; one at its own address
// starts at once once the lease of its previous life is gone, and that
// life, should it come back, does not serve again.
func TestStart_ASecondKvdOfOneNodeNameIsRefused(t *testing.T) {
	f := newFakeEtcd(t)
	first, _ := testNode(t, f, Config{LeaseTTL: 2 * time.Second}, nil)
	if _, err := Start(t.Context(), Config{Node: "n1", Advertise: "http://127.0.0.1:2", Etcd: []string{f.URL}, DataDir: t.TempDir(),
		Replica: "file:///replica", LeaseTTL: 2 * time.Second}, func(string) {}); err == nil || !strings.Contains(err.Error(), "another kvd serves as cluster node") {
		t.Fatalf("a second n1 at another address: got %v, want it refused", err)
	}

	first.mu.Lock()
	lease := first.lease
	first.mu.Unlock()
	f.expire(lease) // as if the first had died
	started := time.Now()
	testNode(t, f, Config{LeaseTTL: 2 * time.Second}, nil) // n1 again, at its own address
	if waited := time.Since(started); waited > time.Second {
		t.Errorf("n1 at its own address waited %v to start", waited)
	}
	time.Sleep(2 * time.Second) // three of the first's renewals, each asking for a lease again
	if first.Ready() == nil {
		t.Fatal("the first n1 took a lease again after a later one announced itself")
	}
}

// TestStart_OfTwoKvdsOfOneNameStartedAtOnceOneStarts: each announces its
// address only where it found none, compared in one transaction.
func TestStart_OfTwoKvdsOfOneNameStartedAtOnceOneStarts(t *testing.T) {
	f := newFakeEtcd(t)
	var wg sync.WaitGroup
	var started atomic.Int64
	for i := range 2 {
		wg.Go(func() {
			n, err := Start(t.Context(), Config{Node: "n1", Advertise: fmt.Sprintf("http://127.0.0.1:%d", 10+i), Etcd: []string{f.URL},
				DataDir: t.TempDir(), Replica: "file:///replica", LeaseTTL: 2 * time.Second}, func(string) {})
			if err == nil {
				started.Add(1)
				t.Cleanup(func() { n.Close() })
			}
		})
	}
	wg.Wait()
	if n := started.Load(); n != 1 {
		t.Fatalf("%d of two kvds named n1 started at once, want 1", n)
	}
}

// TestReconcile_SlowSyncsHoldNoHealthyDatabaseUp: what waits for the
// replica (unregistering a database given up, shipping one the sidecar
// is late with) runs beside the reconcile pass, so a sync that hangs, or
// many slow ones, neither keeps other databases from being seen shipped
// nor counts as a replica that refuses: their writes go on.
func TestReconcile_SlowSyncsHoldNoHealthyDatabaseUp(t *testing.T) {
	n, sidecar := testNode(t, newFakeEtcd(t), Config{}, nil)
	var paths []string
	for i := range 12 {
		path := n.path(fmt.Sprintf("d%02d.db", i))
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := n.Acquire(path, true); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	gone := n.path("gone.db") // given up: unregistered only once shipped, and its sync hangs
	sidecar.mu.Lock()
	sidecar.registered[gone], sidecar.hangs = "file:///replica/gone.db/1", gone
	sidecar.mu.Unlock()
	sidecar.listTakes.Store(int64(300 * time.Millisecond))
	check := func(d time.Duration) {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			for _, path := range paths {
				if err := n.Fence(path); err != nil {
					t.Fatalf("a database the replica takes is fenced: %v", err)
				}
			}
		}
	}
	check(7 * time.Second)
	sidecar.idle.Store(true) // ships only when asked, each sync 1.5 s
	sidecar.syncTakes.Store(int64(1500 * time.Millisecond))
	check(7 * time.Second)
}
