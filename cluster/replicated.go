package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// A replica store that reads empty (a volume not mounted, a root
// misspelt on one node) looks like a database never shipped: a peer
// taking it over would serve it without every write it held. So once a
// database's replica holds an epoch, its record in etcd says so
// (epochRecord.Replicated), and take-overs restore from that epoch or a
// later one, or refuse (restoreNewest).

// replicatedOf is what c's record says of its replica.
func (n *Node) replicatedOf(c *claim) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return c.replicated
}

// noteReplicated records in etcd that the replica store holds c's epoch
// of name, once the sidecar has synced it and the store has it: a sync
// the sidecar reports may be of the registration before this claim's.
// When the store has nothing yet, or etcd does not answer, it gives up,
// to be tried again after the sidecar's next sync; when the record is
// not this claim's any more, for good (c.noting stays set).
func (n *Node) noteReplicated(name string, c *claim) {
	defer n.tasks.Done()
	ctx, cancel := context.WithTimeout(n.ctx, 3*time.Second)
	defer cancel()
	noted, err := n.writeReplicated(ctx, name, c)
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case errors.Is(err, errNotInStore):
		c.noting = false
	case err != nil:
		c.noting = false
		n.log.Warn("could not record in etcd that the replica holds this epoch: tried again", "db", name, "epoch", c.epoch, "err", err)
	case noted:
		c.replicated = c.epoch
	}
}

var errNotInStore = errors.New("the replica store holds nothing of this epoch yet")

// writeReplicated sets the record's Replicated to c's epoch, if the store
// holds it and the record and the owners key are still c's.
func (n *Node) writeReplicated(ctx context.Context, name string, c *claim) (bool, error) {
	if txid, err := n.ls.shippedTXID(ctx, replicaURL(n.cfg.Replica, name, c.epoch)); err != nil {
		return false, err
	} else if txid == 0 {
		return false, errNotInStore
	}
	rec, epochKV, err := n.record(ctx, name)
	if err != nil || rec == nil {
		return false, err
	}
	if rec.Node != n.cfg.Node || rec.Epoch != c.epoch || rec.Released || rec.Unshipped {
		return false, nil // not this claim's record
	}
	if rec.Replicated >= c.epoch {
		return true, nil
	}
	rec.Replicated = c.epoch
	value, _ := json.Marshal(rec)
	ok, _, err := n.etcd.txn(ctx, []cmp{{ownersKey(name), c.ownerRev}, {epochsKey(name), epochKV.ModRevision}},
		[]op{{key: epochsKey(name), value: value}})
	return ok, err
}
