package cluster_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestStop_WithItsReplicaRefusingWrites_PeersWaitForTheNode: a node is
// stopped (SIGTERM) while its replica takes no writes (a full disk; here
// the replica made immutable), so its last acknowledged writes are in its
// own copy only. A peer must not take the database over from the replica,
// which lacks them: it answers 503 until the node is back, which then
// hands it over when the peer asks (before, the peer went on answering
// 503 while the node was back), and every acknowledged write is served
// on either node. Before that, the peer restored the replica
// once the node's lease ran out, and the node, back, had its newer copy
// replaced: about 4.5 s of acknowledged writes lost.
func TestStop_WithItsReplicaRefusingWrites_PeersWaitForTheNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd, two nodes and their sidecars")
	}
	c := startCluster(t, buildKVD(t), 2)
	a, b := c.nodes[0], c.nodes[1]
	const shipped, unshipped = 40, 20
	for i := range shipped {
		putNumbered(t, a, i)
	}
	for deadline := time.Now().Add(10 * time.Second); !shippedSome(c.replica); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing shipped to the replica in 10 s")
		}
	}
	if out, err := exec.Command("chattr", "-R", "+i", c.replica).CombinedOutput(); err != nil {
		t.Skipf("cannot make the replica immutable (chattr: %v: %s)", err, out)
	}
	writable := func() { exec.Command("chattr", "-R", "-i", c.replica).Run() }
	t.Cleanup(writable)
	for i := shipped; i < shipped+unshipped; i++ {
		putNumbered(t, a, i)
	}
	a.kvd.stop(t)

	// Past a's lease and a peer's grace for its sidecar: b still waits.
	for end := time.Now().Add(leaseTTL + replicationGrace + 2*time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		resp, err := drillHTTP.Get(fmt.Sprintf("%s/api/v1/sqlite/kv/k%05d?db=app", b.url(), shipped))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a peer asked for a database whose last writes only the stopped node holds: %s, want 503 until that node is back", resp.Status)
		}
	}

	writable()
	c.startKVD(a)
	// The peer asked first: it has the node, back, hand the database over.
	if !readNumbered(t, b, 0) {
		t.Fatalf("%s still refuses the database with %s back", b.id, a.id)
	}
	for _, n := range []*node{b, a} {
		lost := 0
		for i := range shipped + unshipped {
			if !readNumbered(t, n, i) {
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("%s: %d of %d acknowledged writes lost (%d not shipped when the node stopped)", n.id, lost, shipped+unshipped, unshipped)
		}
	}
}

// shippedSome reports whether the replica folder holds a file yet.
func shippedSome(replica string) bool {
	found := false
	filepath.WalkDir(replica, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}
