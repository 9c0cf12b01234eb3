package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/internal/kvdtest"
	"github.com/kvd/kvd/sqlitekv"
)

// TestTake_ClaimMadeUnderALeaseLostMeanwhileIsAbandoned: a take-over
// captures the node's lease, then waits (replicationGrace, a restore).
// Should the node lose that lease meanwhile and be granted another, the
// owners key it writes under the old one vanishes with it, and a peer
// takes the database too: the claim must not be served, and the key
// must not linger under the dead lease.
func TestTake_ClaimMadeUnderALeaseLostMeanwhileIsAbandoned(t *testing.T) {
	f := newFakeEtcd(t)
	n, _ := testNode(t, f, Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	old, err := n.ensureLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What keepAlive does when renewals fail for a TTL, and what the next
	// ensureLease does once etcd answers again; etcd keeps the old lease
	// a while yet.
	n.loseLease(old, "cut off from etcd")
	lease, err := n.ensureLease(ctx)
	if err != nil || lease == old {
		t.Fatalf("new lease: got %d, %v; want one other than %d", lease, err, old)
	}

	// A copy from before cluster mode, adopted as it is: no restore.
	path := n.path("app.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	done, err := n.take(ctx, "app.db", path, true, old, nil)
	if err != nil || done {
		t.Fatalf("take under the lost lease: got done=%v, %v; want not done (try again), no error", done, err)
	}
	if err := n.Fence(path); err == nil {
		t.Fatal("Fence lets writes commit to a database claimed under a lost lease")
	}
	if value, l, ok := f.key(ownersKey("app.db")); ok {
		t.Fatalf("owners key left as %q under lease %d (lost one %d)", value, l, old)
	}

	// The claim as requests make it goes on under the new lease.
	if err := n.Acquire(path, true); err != nil {
		t.Fatal(err)
	}
	if value, l, _ := f.key(ownersKey("app.db")); value != "n1" || l != lease {
		t.Fatalf("owners key: got %q under lease %d, want n1 under %d", value, l, lease)
	}
	if err := n.Fence(path); err != nil {
		t.Fatalf("Fence after the claim under the new lease: %v", err)
	}
}

// TestTake_KeepsTheCopyItReplacesAside: a node that takes a database
// over from the replica moves its own older copy (file and WAL) aside
// instead of deleting it: killed together with its sidecar, a node's copy
// may hold acknowledged writes the replica never got. Such a copy (of an
// epoch it never let go cleanly) is kept by its epoch and never
// overwritten, not even by another of that epoch; a copy whose every
// write was shipped takes the database's one other place.
func TestTake_KeepsTheCopyItReplacesAside(t *testing.T) {
	for _, tc := range []struct {
		shipped int64
		kept    bool // a copy of epoch 1 is kept already
		aside   string
	}{
		{0, false, "unshipped/1/app.db"},
		{0, true, "unshipped/1.1/app.db"},
		{1, false, "replaced/app.db"},
	} {
		n, _ := takeOverOwnOlderCopy(t, tc.shipped, tc.kept)
		path := n.path("app.db")
		aside := filepath.Join(n.cfg.DataDir, stateDir, tc.aside)
		want := map[string]string{path: "restored", path + "-wal": "<none>", aside: "old", aside + "-wal": "old wal"}
		if tc.kept {
			want[filepath.Join(n.cfg.DataDir, stateDir, "unshipped/1/app.db")] = "kept"
		}
		for file, want := range want {
			got, err := os.ReadFile(file)
			if err != nil {
				got = []byte("<none>")
			}
			if string(got) != want {
				t.Errorf("shipped %d: %s: %q, want %q", tc.shipped, file, got, want)
			}
		}
	}
}

// TestTake_SaysWhenTheCopyItSetsAsideMayHoldUnshippedWrites: a copy of an
// epoch this node never let go cleanly (kvd and its sidecar were gone
// past the lease, and a peer took the database over from the replica)
// may hold acknowledged writes the database served now lacks: an error
// in the log and a counter say so. A copy whose every write the node
// shipped before letting it go (a hand-over, a stop) is set aside quietly.
func TestTake_SaysWhenTheCopyItSetsAsideMayHoldUnshippedWrites(t *testing.T) {
	for _, tc := range []struct {
		shipped int64
		want    float64
	}{{0, 1}, {1, 0}} {
		n, logs := takeOverOwnOlderCopy(t, tc.shipped, false)
		said := strings.Contains(logs, "may hold writes this node acknowledged and never shipped")
		if got := n.counts.setAside.Load(); float64(got) != tc.want || said != (tc.want == 1) {
			t.Errorf("copy of epoch 1, shipped epoch %d: counted %d, said %v; want %v\n%s", tc.shipped, got, said, tc.want, logs)
		}
		if n.shippedEpoch("app.db") != 0 {
			t.Errorf("shipped epoch %d still recorded for a database served again", n.shippedEpoch("app.db"))
		}
	}
}

// takeOverOwnOlderCopy has a node whose copy of app.db is of its epoch 1,
// of which the replica took every write up to shipped's epoch, take the
// database over from the replica of epoch 2, a peer's; it returns the
// node and what it logged. With kept, a copy of epoch 1 set aside before
// is there already.
func takeOverOwnOlderCopy(t *testing.T, shipped int64, kept bool) (*Node, string) {
	t.Helper()
	f := newFakeEtcd(t)
	fake := filepath.Join(t.TempDir(), "litestream")
	script := "#!/bin/sh\n# restore -if-replica-exists -o PATH REPLICA\nprintf restored > \"$4\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs kvdtest.LogBuffer
	n, _ := testNode(t, f, Config{Litestream: fake, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := n.ensureLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := n.path("app.db")
	for suffix, data := range map[string]string{"": "old", "-wal": "old wal"} {
		if err := os.WriteFile(path+suffix, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.setLocalEpoch("app.db", 1); err != nil {
		t.Fatal(err)
	}
	if kept {
		earlier := filepath.Join(n.cfg.DataDir, stateDir, "unshipped", "1", "app.db")
		if err := os.MkdirAll(filepath.Dir(earlier), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(earlier, []byte("kept"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if shipped > 0 {
		if err := n.setShippedEpoch("app.db", shipped); err != nil {
			t.Fatal(err)
		}
	}
	f.put(epochsKey("app.db"), `{"node":"n2","epoch":2,"released":true}`)
	if done, err := n.take(ctx, "app.db", path, false, lease, nil); err != nil || !done {
		t.Fatalf("take: done=%v, %v", done, err)
	}
	return n, logs.String()
}

// TestTake_AsksANodeThatMarkedItsCopyUnshippedOnce: a peer answering the
// hand-over of a database it marked unshipped without changing its record
// (an older kvd) is asked once per claim, not again and again.
func TestTake_AsksANodeThatMarkedItsCopyUnshippedOnce(t *testing.T) {
	f := newFakeEtcd(t)
	var asked atomic.Int64
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Add(1) }))
	defer peer.Close()
	f.put(nodesKey("n2"), peer.URL)
	f.put(epochsKey("app.db"), `{"node":"n2","epoch":1,"unshipped":true}`)
	n, _ := testNode(t, f, Config{}, nil)
	err := n.Acquire(n.path("app.db"), false)
	if e := (*sqlitekv.Error)(nil); !errors.As(err, &e) || e.Code != sqlitekv.CodeOverloaded || !strings.Contains(fmt.Sprint(e.Cause), "stopped before its replica took its last writes") {
		t.Fatalf("claim of a database another node marked unshipped: %v, want 503 saying so", err)
	}
	if got := asked.Load(); got != 1 {
		t.Errorf("the node was asked to hand the database over %d times, want once", got)
	}
}
