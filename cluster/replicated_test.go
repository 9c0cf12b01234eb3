package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// TestRecord_CarriesTheNewestEpochTheReplicaHolds follows a database's
// record in etcd through a take-over, the sidecar's first sync of a copy
// the store then holds, a mark of unshipped writes and a hand-over: each
// keeps the newest epoch whose replica the store holds, and a take-over
// restores none older, refusing when the store lacks it.
func TestRecord_CarriesTheNewestEpochTheReplicaHolds(t *testing.T) {
	f := newFakeEtcd(t)
	fake := filepath.Join(t.TempDir(), "litestream")
	script := "#!/bin/sh\n# restore -if-replica-exists -o PATH REPLICA: the store holds epoch 2 only\ncase \"$5\" in */app.db/2) printf restored > \"$4\";; esac\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	n, sidecar := testNode(t, f, Config{Litestream: fake}, nil)
	path := n.path("app.db")
	record := func() epochRecord {
		t.Helper()
		value, _, _ := f.key(epochsKey("app.db"))
		var rec epochRecord
		if err := json.Unmarshal([]byte(value), &rec); err != nil {
			t.Fatalf("record %q: %v", value, err)
		}
		return rec
	}

	sidecar.idle.Store(true) // it syncs nothing yet
	f.put(epochsKey("app.db"), `{"node":"n2","epoch":3,"released":true,"replicated":2}`)
	if err := n.Acquire(path, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "restored" {
		t.Fatalf("copy after the take-over: %q, want the replica of epoch 2", got)
	}
	if rec := record(); rec != (epochRecord{Node: "n1", Epoch: 4, Replicated: 2}) {
		t.Fatalf("record after the take-over: %+v, want epoch 4 with the replica of epoch 2 kept", rec)
	}

	// The sidecar syncs, but the store holds nothing of epoch 4 yet (a
	// sync of the registration before): not noted.
	sidecar.idle.Store(false)
	time.Sleep(1500 * time.Millisecond) // three reconcile passes
	if rec := record(); rec.Replicated != 2 {
		t.Fatalf("record while the store holds nothing of epoch 4: %+v, want replicated 2", rec)
	}
	u, err := url.Parse(replicaURL(n.cfg.Replica, "app.db", 4))
	if err != nil {
		t.Fatal(err)
	}
	l0 := filepath.Join(u.Path, "ltx", "0")
	if err := os.MkdirAll(l0, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l0, "0000000000000001-0000000000000001.ltx"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); record().Replicated != 4; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("record once the store holds epoch 4: %+v, want it named replicated", record())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.mu.Lock()
	c := n.held["app.db"]
	n.mu.Unlock()
	if err := n.markUnshipped(ctx, "app.db", c); err != nil {
		t.Fatal(err)
	}
	if rec := record(); rec != (epochRecord{Node: "n1", Epoch: 4, Unshipped: true, Replicated: 4}) {
		t.Fatalf("record marked unshipped: %+v", rec)
	}

	if err := n.Release(ctx, path); err != nil {
		t.Fatal(err)
	}
	if rec := record(); rec != (epochRecord{Node: "n1", Epoch: 4, Released: true, Replicated: 4}) {
		t.Fatalf("record after the hand-over: %+v", rec)
	}

	// A peer shipped epoch 5, which this node's store does not hold.
	f.put(epochsKey("app.db"), `{"node":"n2","epoch":6,"released":true,"replicated":5}`)
	err = n.Acquire(path, false)
	if e := (*sqlitekv.Error)(nil); !errors.As(err, &e) || e.Code != sqlitekv.CodeOverloaded {
		t.Fatalf("take-over from a store without epoch 5: %v, want 503 OVERLOADED", err)
	}
	if got := n.counts.replicaMissing.Load(); got != 1 {
		t.Errorf("kvd_cluster_replica_missing_total %d, want 1", got)
	}
	if rec := record(); rec.Epoch != 6 || rec.Node != "n2" {
		t.Errorf("record after the refused take-over: %+v, want it untouched", rec)
	}
}
