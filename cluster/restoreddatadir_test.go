package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestart_OnADataDirPutBackFromABackup_LosesNoWriteSince: a node's
// data dir is copied while the node is down (a backup, a disk snapshot),
// the node then acknowledges more writes, and its data dir is put back
// from the copy. etcd still names the node and the epoch the copy holds,
// so by the epochs alone the copy is the newest; but the replica has the
// writes since, and the node restores them instead of serving the copy.
func TestRestart_OnADataDirPutBackFromABackup_LosesNoWriteSince(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd, a node and its sidecar")
	}
	c := startCluster(t, buildKVD(t), 1)
	n := c.nodes[0]
	const before, after = 40, 80
	put := func(from, to int) {
		for i := from; i < to; i++ {
			putNumbered(t, n, i)
		}
	}
	stop := func() { n.kvd.stop(t); n.litestream.stop(t) } // kvd ships its last writes first
	put(0, before)
	stop()
	backup := filepath.Join(c.dir, "backup")
	if out, err := exec.Command("cp", "-a", n.dataDir, backup).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	c.startNode(n)
	put(before, after)
	stop()
	if err := os.RemoveAll(n.dataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(backup, n.dataDir); err != nil {
		t.Fatal(err)
	}
	c.startNode(n)

	lost := 0
	for i := range after {
		if !readNumbered(t, n, i) {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost (%d written after the backup)", lost, after, after-before)
	}
	if m := scrape(t, n.url()+"/metrics"); m["kvd_cluster_restores_total"] < 1 {
		t.Errorf("the node restored nothing")
	}
	if _, err := os.Stat(filepath.Join(n.dataDir, ".kvd-cluster", "replaced", "app.db")); err != nil {
		t.Errorf("the copy put back was not kept aside: %v", err)
	}
}

// TestRestart_AfterACrashOfKvdAndSidecar_RestoresNothing: the check above
// must not take a node's own newest copy for a stale one. kvd and its
// sidecar are killed together under writes, and the node restarts on its
// disk: it serves the copy there, which may hold writes the replica never
// got, with every acknowledged write, and restores nothing.
func TestRestart_AfterACrashOfKvdAndSidecar_RestoresNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd, a node and its sidecar")
	}
	c := startCluster(t, buildKVD(t), 1)
	n := c.nodes[0]
	acked := 0
	deadline := time.Now().Add(3 * time.Second)
	for ; time.Now().Before(deadline); acked++ {
		putNumbered(t, n, acked)
	}
	n.kvd.kill()
	n.litestream.kill()
	c.startNode(n)
	for i := range acked {
		if !readNumbered(t, n, i) {
			t.Fatalf("k%05d was acknowledged before the crash", i)
		}
	}
	if m := scrape(t, n.url()+"/metrics"); m["kvd_cluster_restores_total"] != 0 {
		t.Errorf("the node restored its own newest copy (%v restores)", m["kvd_cluster_restores_total"])
	}
	t.Logf("%d acknowledged writes, all read back after the crash", acked)
}

// putNumbered writes "v<i>" to key k<i> of database app on n.
func putNumbered(t *testing.T, n *node, i int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/api/v1/sqlite/kv/k%05d?db=app&create_db_if_missing=true", n.url(), i), strings.NewReader(fmt.Sprintf(`"v%d"`, i)))
	resp, err := drillHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT k%05d: %s", i, resp.Status)
	}
}

// TestRestart_WithLitestreamsRecordDeleted_KeepsTheNewestCopy: without
// Litestream's record beside a copy there is nothing to compare, and the
// copy etcd names the newest is served. Litestream's own advice for a
// record it cannot read is to delete it; restoring then would set aside
// the writes the replica never got.
func TestRestart_WithLitestreamsRecordDeleted_KeepsTheNewestCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd, a node and its sidecar")
	}
	c := startCluster(t, buildKVD(t), 1)
	n := c.nodes[0]
	const shipped, unshipped = 40, 20
	for i := range shipped {
		putNumbered(t, n, i)
	}
	time.Sleep(3 * time.Second) // Litestream ships every second
	n.litestream.kill()         // kvd goes on acknowledging writes for a few seconds
	for i := shipped; i < shipped+unshipped; i++ {
		putNumbered(t, n, i)
	}
	n.kvd.kill()
	if err := os.RemoveAll(filepath.Join(n.dataDir, ".app.db-litestream")); err != nil {
		t.Fatal(err)
	}
	c.startNode(n)
	for i := range shipped + unshipped {
		readNumbered(t, n, i)
	}
	if m := scrape(t, n.url()+"/metrics"); m["kvd_cluster_restores_total"] != 0 {
		t.Errorf("the node restored its newest copy (%v restores)", m["kvd_cluster_restores_total"])
	}
}

// readNumbered reads key k<i> of database app on n, waiting out the 503s
// of a claim under way, and reports (as an error too) whether it holds
// "v<i>".
func readNumbered(t *testing.T, n *node, i int) bool {
	t.Helper()
	for try := 0; ; try++ {
		resp, err := drillHTTP.Get(fmt.Sprintf("%s/api/v1/sqlite/kv/k%05d?db=app", n.url(), i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && try < 100 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf(`"v%d"`, i)) {
			t.Errorf("k%05d: %s %s", i, resp.Status, body)
			return false
		}
		return true
	}
}
