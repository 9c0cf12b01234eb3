package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"time"
)

// A database changes hands when the router sends its requests to another
// node: that node asks the owner to release it (askRelease → Release),
// which finishes the writes queued for it, pushes them to the replica,
// and deletes its owners key; the new owner then restores the replica
// (take). Requests meanwhile wait, or get 503 with Retry-After.

// ReleasePath is the peer endpoint, as httpapi routes it.
const ReleasePath = "/api/v1/sqlite/db/release"

// Release hands the database at path over: once it returns nil, this
// node no longer owns it and the replica holds every write it
// acknowledged. A database this node does not own is released already.
func (n *Node) Release(ctx context.Context, path string) error {
	name, err := n.name(path)
	if err != nil {
		return err
	}
	n.mu.Lock()
	c := n.held[name]
	if c == nil {
		n.mu.Unlock()
		// Owned by this node's previous life, whose copy is on this
		// disk, or marked unshipped by it (peers wait for this node)?
		// Then claim it (no restore) to release it properly.
		if mine, err := n.lastHeldHere(ctx, name); err != nil {
			return unavailable(name, err)
		} else if !mine {
			return nil
		}
		if err := n.Acquire(path, false); err != nil {
			return err
		}
		return n.Release(ctx, path)
	}
	if c.releasing {
		n.mu.Unlock()
		return unavailable(name, fmt.Errorf("already being released"))
	}
	c.releasing = true
	n.mu.Unlock()

	n.closeDB(path) // its queued writes commit first
	// Nothing commits from here on: a request that got the database just
	// before releasing was set may open it again, but its write would
	// miss the replica the next owner restores.
	n.mu.Lock()
	c.fenced = true
	n.mu.Unlock()
	if err := n.pushToReplica(ctx, name, path, c); err != nil {
		n.mu.Lock()
		c.releasing, c.fenced = false, false // still ours (its owners key untouched), and served again
		n.mu.Unlock()
		return unavailable(name, err)
	}
	if err := n.handOver(ctx, name, c); err != nil {
		// etcd may have applied the hand-over and its answer been lost
		// or late: a peer may own the database already. So it is not
		// served here again, and the hand-over is retried until etcd
		// says (finishHandOver).
		n.tasks.Add(1)
		go n.finishHandOver(name, c)
		return unavailable(name, err)
	}
	n.dropClaim(name, c)
	return nil
}

// finishHandOver retries a hand-over whose outcome is not known until
// etcd answers, or the node leaves the cluster (or loses its lease,
// which frees the database too). The database stays fenced meanwhile.
func (n *Node) finishHandOver(name string, c *claim) {
	defer n.tasks.Done()
	for {
		ctx, cancel := context.WithTimeout(n.ctx, 3*time.Second)
		err := n.handOver(ctx, name, c)
		cancel()
		if err == nil {
			n.dropClaim(name, c)
			return
		}
		n.log.Warn("database hand-over not confirmed: not serving it until etcd answers", "db", name, "err", err)
		if !sleep(n.ctx, 200*time.Millisecond) {
			return
		}
	}
}

// lastHeldHere tells whether this node's previous life held name and
// did not hand it over: its owners key names this node, or its record
// says its last writes are in this node's copy only (a stop while the
// replica took no writes), for which peers wait.
func (n *Node) lastHeldHere(ctx context.Context, name string) (bool, error) {
	owner, err := n.etcd.get(ctx, ownersKey(name))
	if err != nil || owner != nil {
		return owner != nil && string(owner.Value) == n.cfg.Node, err
	}
	rec, _, err := n.record(ctx, name)
	return rec != nil && rec.Unshipped && rec.Node == n.cfg.Node, err
}

// dropClaim forgets a database handed over.
func (n *Node) dropClaim(name string, c *claim) {
	n.mu.Lock()
	if n.held[name] == c {
		delete(n.held, name)
	}
	n.mu.Unlock()
	n.counts.released.Add(1)
	n.log.Info("database handed over", "db", name, "epoch", c.epoch)
}

// pushToReplica makes the replica hold everything committed to path, then
// stops replicating it: the next owner restores from there.
func (n *Node) pushToReplica(ctx context.Context, name, path string, c *claim) error {
	if !fileExists(path) {
		return nil // claimed, never created
	}
	epoch := c.epoch
	if err := n.ls.register(ctx, path, replicaURL(n.cfg.Replica, name, epoch)); err != nil {
		return err
	}
	if err := n.ls.sync(ctx, path, 30*time.Second); err != nil {
		return err
	}
	if err := n.ls.unregister(ctx, path); err != nil {
		return err
	}
	n.mu.Lock()
	c.replicated = epoch
	n.mu.Unlock()
	// The replica holds it all: the note of that only tells a later
	// take-over what its copy set aside holds, so it fails nothing.
	if err := n.setShippedEpoch(name, epoch); err != nil {
		n.log.Warn("could not note that the replica took every write of this epoch: a later take-over will say this copy may hold unshipped writes", "db", name, "epoch", epoch, "err", err)
	}
	return nil
}

// handOver gives up name's owners key, and marks its epoch released: the
// next owner may restore at once. Once etcd has answered, the database is
// not this node's, whether the transaction applied or found the owners
// key changed: by an earlier try of the same hand-over whose answer was
// lost, or by the lease running out (then its epoch stays unreleased).
func (n *Node) handOver(ctx context.Context, name string, c *claim) error {
	value, _ := json.Marshal(epochRecord{Node: n.cfg.Node, Epoch: c.epoch, Released: true, Replicated: n.replicatedOf(c)})
	ok, _, err := n.etcd.txn(ctx, []cmp{{ownersKey(name), c.ownerRev}},
		[]op{{key: ownersKey(name), del: true}, {key: epochsKey(name), value: value}})
	if err == nil && !ok {
		n.log.Info("owners key changed before the hand-over: this node owned the database no more", "db", name)
	}
	return err
}

// markUnshipped records that name's last writes are in this node's copy
// only (epochRecord.Unshipped), while the owners key still names it.
func (n *Node) markUnshipped(ctx context.Context, name string, c *claim) error {
	value, _ := json.Marshal(epochRecord{Node: n.cfg.Node, Epoch: c.epoch, Unshipped: true, Replicated: n.replicatedOf(c)})
	ok, _, err := n.etcd.txn(ctx, []cmp{{ownersKey(name), c.ownerRev}}, []op{{key: epochsKey(name), value: value}})
	if err == nil && !ok {
		return fmt.Errorf("this node owned the database no more")
	}
	return err
}

// askRelease asks node, which owns name, to hand it over.
func (n *Node) askRelease(ctx context.Context, node, name string) error {
	addr, err := n.etcd.get(ctx, nodesKey(node))
	if err != nil {
		return err
	}
	if addr == nil {
		return fmt.Errorf("node %s has no address: its lease is ending", node)
	}
	u := string(addr.Value) + ReleasePath + "?db=" + url.QueryEscape(name)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a sync to a slow replica
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	if n.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode < 500:
		return refusal{fmt.Sprintf("%s: %s: %s", u, resp.Status, body)}
	default:
		return fmt.Errorf("%s: %s: %s", u, resp.Status, body)
	}
}

// refusal is a peer's 4xx to a hand-over request: asking again would get
// the same (a wrong token, say), unlike a 503 while it finishes writes.
type refusal struct{ msg string }

func (r refusal) Error() string { return r.msg }

// path is where name lives in this node's data dir.
func (n *Node) path(name string) string {
	return filepath.Join(n.cfg.DataDir, filepath.FromSlash(name))
}
