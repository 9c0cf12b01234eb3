package cluster_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestHandOverCarriesCheckpointedWrites: a database written well past
// kvd's checkpoint thresholds (its WAL buffered, checkpointed in the
// background and by the writer, restarted many times) while Litestream
// streams it, is handed over to another node and read there whole. This
// is Litestream and kvd's checkpoints working together: a frame
// checkpointed away before Litestream copied it would be missing here.
func TestHandOverCarriesCheckpointedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd, two nodes and their sidecars")
	}
	c := startCluster(t, buildKVD(t), 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][32]byte{}
	batches := 300
	// 300 batches of 100 values of 3,000 bytes, each value written twice
	// (its row and its history row): some 45,000 pages through the WAL,
	// far past kvd's checkpoint thresholds (1,000 and 8,000 pages).
	for batch := range batches {
		var items []map[string]any
		for i := range 100 {
			key := fmt.Sprintf("k%03d", (batch*100+i)%2500) // later batches overwrite earlier keys
			raw := make([]byte, 3000)
			for j := range raw {
				raw[j] = byte('a' + rng.IntN(26))
			}
			value := string(raw)
			items = append(items, map[string]any{"key": key, "value": value})
			want[key] = sha256.Sum256([]byte(value))
		}
		body, _ := json.Marshal(map[string]any{"items": items})
		resp, err := http.Post(n1.url()+"/api/v1/sqlite/kv/batch/set?db=big&create_db_if_missing=true", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("batch %d: %s", batch, resp.Status)
		}
	}
	if got := c.owner("big.db"); got != n1.id {
		t.Fatalf("big.db owned by %q, want %s", got, n1.id)
	}
	// The WAL file keeps the largest size it reached; had no checkpoint
	// restarted it, it would hold every page written, each value twice
	// (its row, its history row). Litestream keeps a read transaction
	// open, and the WAL restarts only in the moments it lets go: it grows
	// to tens of MiB at full speed here, against a few with kvd alone.
	wal, err := os.Stat(filepath.Join(n1.dataDir, "big.db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	if written := int64(batches * 100 * 3000); wal.Size() > written*3/2 {
		t.Fatalf("WAL of %d bytes after %d bytes of values written twice: it never restarted", wal.Size(), written)
	}
	// n2 is asked: it takes the database over from n1 through the replica.
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for i := 0; i < len(keys); i += 100 {
		chunk := keys[i:min(i+100, len(keys))]
		body, _ := json.Marshal(map[string][]string{"keys": chunk})
		// The first read waits for the hand-over: 503 until it is done.
		var resp *http.Response
		for try := 0; ; try++ {
			var err error
			resp, err = drillHTTP.Post(n2.url()+"/api/v1/sqlite/kv/batch/get?db=big", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || try == 100 {
				break
			}
			resp.Body.Close()
			time.Sleep(300 * time.Millisecond)
		}
		var out struct {
			Values map[string]*struct{ Value string }
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("batch get from %s: %s %v", n2.id, resp.Status, err)
		}
		for _, k := range chunk {
			v := out.Values[k]
			if v == nil || sha256.Sum256([]byte(v.Value)) != want[k] {
				t.Errorf("%s on %s: not the value last written on %s", k, n2.id, n1.id)
			}
		}
	}
	if got := c.owner("big.db"); got != n2.id {
		t.Errorf("big.db owned by %q after the reads, want %s", got, n2.id)
	}
	m := scrape(t, n2.url()+"/metrics")
	if m["kvd_cluster_restores_total"] < 1 {
		t.Errorf("%s restored nothing: the database did not go through the replica", n2.id)
	}
	t.Logf("%d keys, %d MiB of values written on %s (its WAL file at most %d KiB), all read back on %s after the hand-over", len(want), batches*100*3000>>20, n1.id, wal.Size()>>10, n2.id)

}
