package cluster_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTakeOver_FromAReplicaStoreThatReadsEmpty_Refuses: a node whose
// replica root reads empty (its volume not mounted, here an empty folder)
// must not take over a database whose replica etcd says is there: it
// answers 503, rather than serve the database without its writes, and the
// node whose copy holds them serves them all when it is back. Before, the
// peer found no replica, served an empty database, and answered 404 for
// every key written.
func TestTakeOver_FromAReplicaStoreThatReadsEmpty_Refuses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd, two nodes and their sidecars")
	}
	c := startCluster(t, buildKVD(t), 2)
	a, b := c.nodes[0], c.nodes[1]
	const written = 30
	for i := range written {
		putNumbered(t, a, i)
	}
	waitFor(t, "etcd records that the replica holds epoch 1", 10*time.Second, func() bool {
		return strings.Contains(c.etcdValue("/kvd/epochs/app.db"), `"replicated":1`)
	})

	b.kvd.stop(t)
	b.replica = filepath.Join(c.dir, "unmounted")
	if err := os.Mkdir(b.replica, 0o755); err != nil {
		t.Fatal(err)
	}
	c.startKVD(b)
	a.kvd.kill()

	// Past a's lease, a peer's grace for its sidecar and a restore: b
	// still refuses.
	for end := time.Now().Add(leaseTTL + replicationGrace + 2*time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		resp, err := drillHTTP.Get(fmt.Sprintf("%s/api/v1/sqlite/kv/k00000?db=app", b.url()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a node whose replica store reads empty served a database shipped there: %s, want 503", resp.Status)
		}
	}
	if m := scrape(t, b.url()+"/metrics"); m["kvd_cluster_replica_missing_total"] < 1 {
		t.Errorf("kvd_cluster_replica_missing_total = %v, want the refused take-overs counted", m["kvd_cluster_replica_missing_total"])
	}

	c.startKVD(a)
	lost := 0
	for i := range written {
		if !readNumbered(t, a, i) {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, written)
	}
}
