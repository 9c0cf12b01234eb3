package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// claimWait bounds how long a request waits for its database to be taken
// over (handed over by a peer, freed by a dead peer's lease, restored)
// before it is answered 503 with Retry-After. The take-over goes on.
const claimWait = 3 * time.Second

// claimDeadline bounds a whole take-over, restore included.
const claimDeadline = 5 * time.Minute

// replicationGrace is how long a take-over from a node that did not hand
// the database over waits, once that node's lease ran out, before it
// restores: for the sidecar of a node that lives but lost its lease (cut
// off from etcd) to ship what the node acknowledged. That node committed
// until a fifth of its TTL before its lease ran out, while its replica was
// at most replicationTimeout behind (Fence): a sidecar that stalled for
// less than that, which kvd takes for alive, may have been stalled since
// the last of those writes, so the grace covers the stall and two of
// Litestream's sync intervals (1 s) after it, less a fifth of the
// shortest TTL a node may hold (its own TTL may differ from the last
// owner's, and etcd grants whole seconds). (A fixed 2 s lost up to 199
// writes a cut-off node acknowledged when its sidecar paused 4 s.)
const replicationGrace = replicationTimeout + 2*time.Second - minLeaseTTL/5

// maxRestores is how many restores, and listings of a replica
// (behindReplica), run at once: a node taking over a dead peer's hundreds
// of databases, or restarting with its own, works through them a few at a
// time rather than starving every one, and its lease, of CPU and disk.
const maxRestores = 4

// claimCall is one take-over under way, shared by the requests waiting
// for it.
type claimCall struct {
	create bool
	done   chan struct{}
	err    error
}

// Acquire makes this node the owner of the database at path, with a copy
// that is the newest, before the registry opens it. A database that does
// not exist anywhere is claimed only when create is set.
func (n *Node) Acquire(path string, create bool) error {
	name, err := n.name(path)
	if err != nil {
		return err
	}
	wait := time.NewTimer(claimWait)
	defer wait.Stop()
	for {
		n.mu.Lock()
		if c := n.held[name]; c != nil && time.Now().Before(n.validUntil) {
			releasing := c.releasing
			n.mu.Unlock()
			if releasing {
				return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Database %q is moving to another node; retry", name)
			}
			return nil
		}
		call := n.claiming[name]
		if call == nil {
			if n.ctx.Err() != nil {
				n.mu.Unlock()
				return notOwner(name) // leaving the cluster
			}
			call = &claimCall{create: create, done: make(chan struct{})}
			n.claiming[name] = call
			n.tasks.Add(1)
			go n.runClaim(name, path, call)
		}
		n.mu.Unlock()
		select {
		case <-call.done:
			var missing *sqlitekv.Error
			if errors.As(call.err, &missing) && missing.Code == sqlitekv.CodeDatabaseNotFound && create && !call.create {
				continue // that claim would not create it; this one may
			}
			if call.err != nil {
				return call.err
			}
		case <-wait.C:
			return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Database %q is being taken over by this node; retry", name)
		}
	}
}

func (n *Node) runClaim(name, path string, call *claimCall) {
	defer n.tasks.Done()
	ctx, cancel := context.WithTimeout(n.ctx, claimDeadline)
	err := n.claim(ctx, name, path, call.create)
	cancel()
	n.mu.Lock()
	delete(n.claiming, name)
	call.err = err
	n.mu.Unlock()
	close(call.done)
}

// claim takes name over, retrying until ctx ends: from nobody, from this
// node's previous life, or from a live peer that is asked to hand it over.
func (n *Node) claim(ctx context.Context, name, path string, create bool) error {
	backoff := 100 * time.Millisecond
	for {
		lease, err := n.ensureLease(ctx)
		if err != nil {
			return unavailable(name, err)
		}
		owner, err := n.etcd.get(ctx, ownersKey(name))
		if err != nil {
			return unavailable(name, err)
		}
		if owner != nil && string(owner.Value) != n.cfg.Node {
			// A peer owns it: ask it to hand the database over, then look
			// again. A dead peer does not answer; its lease expiring
			// frees the database.
			if err := n.askRelease(ctx, string(owner.Value), name); err != nil {
				n.log.Debug("hand-over refused", "db", name, "owner", string(owner.Value), "err", err)
				if errors.As(err, new(refusal)) {
					// The peer will not take this request, ever (a token
					// or a name it refuses): asking again changes nothing.
					return unavailable(name, err)
				}
				if !sleep(ctx, backoff) {
					return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Database %q is owned by node %s, which has not handed it over; retry", name, owner.Value)
				}
				backoff = min(2*backoff, 2*time.Second)
			}
			continue
		}
		done, err := n.take(ctx, name, path, create, lease, owner)
		if err != nil || done {
			return err
		}
		// A peer changed the keys between our read and our write, or the
		// lease changed: again.
	}
}

// take claims name, unowned or owned by this node's previous life, then
// puts the newest copy in place. done is false when a peer changed the
// keys meanwhile, or the node lost the lease it was made under.
//
// A copy that is not the newest is replaced by a restore, made before
// the claim (nobody writes the database then: its owner is gone) and
// discarded if the claim loses a race: so a failed restore claims
// nothing and leaves the epochs as they were.
func (n *Node) take(ctx context.Context, name, path string, create bool, lease int64, owner *kv) (done bool, err error) {
	rec, epochKV, err := n.record(ctx, name)
	if err != nil {
		return true, unavailable(name, err)
	}
	if rec != nil && rec.Unshipped && rec.Node != n.cfg.Node {
		// Only that node's copy holds the last writes: it hands the
		// database over once it is back and its replica takes them.
		if n.askRelease(ctx, rec.Node, name) == nil && n.recordChanged(ctx, name, epochKV) {
			return false, nil // released: look again
		}
		return true, unavailable(name, fmt.Errorf("node %s stopped before its replica took its last writes, which only its copy holds: the database is served again when %s is back", rec.Node, rec.Node))
	}
	exists := fileExists(path)
	epoch, current := int64(1), false
	switch {
	case rec == nil && exists:
		current = true // from before cluster mode (or etcd's data was lost): adopted as it is
	case rec == nil && !create:
		return true, sqlitekv.Errorf(sqlitekv.CodeDatabaseNotFound, "Database file does not exist")
	case rec == nil:
		// a new database, the cluster's first copy
	case rec.Node == n.cfg.Node && rec.Epoch == n.localEpoch(name) && exists:
		epoch, current = rec.Epoch, true
	default:
		epoch = rec.Epoch + 1
	}
	n.mu.Lock()
	checked := n.checked[name]
	n.mu.Unlock()
	behind := false
	if current && rec != nil && !checked {
		b, err := n.behindReplica(ctx, name, path, rec.Epoch)
		if err != nil {
			return true, unavailable(name, err)
		}
		if behind = b; behind {
			n.log.Warn("copy is older than what it shipped to its replica (its data dir was put back from a backup?): restoring", "db", name, "epoch", rec.Epoch)
			epoch, current = rec.Epoch+1, false
		}
	}
	restore := !current && rec != nil // the copy here is older than a replica's
	restored := n.restorePath(name)
	if restore && !rec.Released {
		// Its owner's lease ran out: the owner stopped committing a fifth
		// of a TTL before that, but its sidecar, if it lives, may still be
		// shipping the last of what it acknowledged.
		if !sleep(ctx, replicationGrace) {
			return true, unavailable(name, ctx.Err())
		}
	}
	if restore {
		if err := n.restoreNewest(ctx, name, rec.Epoch, rec.Replicated, restored); err != nil {
			return true, unavailable(name, err)
		}
	}
	defer os.Remove(restored) // moved into place, or not wanted

	replicated := int64(0)
	if rec != nil {
		replicated = rec.Replicated
	}
	ifs := []cmp{{ownersKey(name), revOf(owner)}, {epochsKey(name), revOf(epochKV)}}
	then := []op{{key: ownersKey(name), value: []byte(n.cfg.Node), lease: lease}}
	if rec == nil || rec.Epoch != epoch || rec.Node != n.cfg.Node || rec.Unshipped {
		value, _ := json.Marshal(epochRecord{Node: n.cfg.Node, Epoch: epoch, Replicated: replicated})
		then = append(then, op{key: epochsKey(name), value: value})
	}
	ok, rev, err := n.etcd.txn(ctx, ifs, then)
	if err != nil {
		return true, unavailable(name, err)
	}
	if !ok {
		return false, nil
	}
	if !current {
		// A copy of this node's whose epoch it never let go cleanly: it
		// was gone (kvd and its sidecar both) past its lease.
		its := n.localEpoch(name)
		aside := filepath.Join(n.cfg.DataDir, stateDir, "replaced", name)
		mayHoldUnshipped := exists && !behind && its > 0 && its != n.shippedEpoch(name)
		if mayHoldUnshipped { // kept apart, never overwritten
			aside = unusedAside(filepath.Join(n.cfg.DataDir, stateDir, "unshipped", strconv.FormatInt(its, 10)), name)
		}
		if err := n.replaceLocalCopy(ctx, path, restored, aside); err != nil {
			n.dropOwnership(name, rev)
			return true, unavailable(name, err)
		}
		if mayHoldUnshipped {
			n.counts.setAside.Add(1)
			n.log.Error("a peer took this database over while this node was gone past its lease without letting it go: the copy set aside may hold writes this node acknowledged and never shipped, which the database served now lacks (none if its sidecar outlived kvd and shipped them)",
				"db", name, "its_epoch", its, "set_aside_in", aside)
		}
	}
	if err := n.forgetShipped(name); err != nil { // it takes writes again
		n.dropOwnership(name, rev)
		return true, unavailable(name, err)
	}
	if err := n.setLocalEpoch(name, epoch); err != nil {
		n.dropOwnership(name, rev)
		return true, unavailable(name, err)
	}
	// Registered before any request gets the database (Acquire serves it
	// as soon as it is held), even when its file is not there yet (a new
	// database, created by its first open): the sidecar picks the file up
	// once it exists. Registered only by the next reconcile pass, a new
	// database's first writes could be acknowledged before the sidecar
	// knew of it, and a kvd killed then (its sidecar alive) had them
	// shipped by nobody. A claim abandoned below leaves the registration
	// to the pass, which unregisters what this node does not hold.
	if err := n.awaitUnregister(ctx, path); err != nil {
		n.dropOwnership(name, rev)
		return true, unavailable(name, err)
	}
	n.replicate(ctx, name, path, epoch)
	n.mu.Lock()
	if n.lease != lease {
		// The lease this claim was made under was lost while it waited
		// (replicationGrace, a restore): the owners key goes with that
		// lease, after which a peer may take the database, so serving it
		// here would make two servers. Claim again under the lease held now.
		n.mu.Unlock()
		n.log.Info("claim abandoned: the lease it was made under was lost meanwhile", "db", name, "lease", lease)
		n.dropOwnership(name, rev)
		return false, nil
	}
	n.held[name] = &claim{epoch: epoch, ownerRev: rev, shipped: time.Now(), replicated: replicated} // the replica holds all of it, or it is new
	n.checked[name] = true
	n.mu.Unlock()
	exists = fileExists(path) // restored, maybe; a new database is created by its first open
	n.counts.claimed.Add(1)
	if restore && exists {
		n.counts.restored.Add(1)
	}
	n.log.Info("serving database", "db", name, "epoch", epoch, "restored", restore)
	return true, nil
}

// recordChanged tells whether name's record in etcd is no longer was: a
// node that answers a hand-over of a database it marked unshipped but
// leaves the record as it was (an older kvd) would otherwise be asked
// again and again.
func (n *Node) recordChanged(ctx context.Context, name string, was *kv) bool {
	now, err := n.etcd.get(ctx, epochsKey(name))
	return err == nil && revOf(now) != revOf(was)
}

// behindReplica tells whether the replica of epoch holds writes that the
// copy at path lacks, though etcd's record says the copy is the newest:
// a data dir put back from a backup, or a disk snapshot, with the node's
// epochs in it. Litestream's record of what it shipped from this copy
// (localstate.go) went back with it, and falls short of the replica's.
// Litestream would otherwise take the older copy for the newest and ship
// it over the writes it lacks. A copy without a record tells nothing:
// Litestream's own advice for a record it cannot read is to delete it,
// and restoring then would set aside the writes the replica lacks.
//
// The replica is asked first: the sidecar writes a transaction's local
// record before it ships it, so a sidecar still shipping this copy's last
// writes cannot make it look behind. A replica that cannot be asked
// fails the claim, to be tried again: serving the copy meanwhile would
// let the sidecar ship it over the newer writes once the replica is back.
func (n *Node) behindReplica(ctx context.Context, name, path string, epoch int64) (bool, error) {
	select {
	case n.restores <- struct{}{}: // a restart asks for all its databases at once
		defer func() { <-n.restores }()
	case <-ctx.Done():
		return false, ctx.Err()
	}
	shipped, err := n.ls.shippedTXID(ctx, replicaURL(n.cfg.Replica, name, epoch))
	if err != nil || shipped == 0 {
		return false, err
	}
	recorded, err := recordedTXID(path)
	if err != nil || recorded == 0 {
		return false, err
	}
	return recorded < shipped, nil
}

// restoreNewest restores name into to from the newest epoch, from epoch
// down to floor (epochRecord.Replicated), that has a replica. An epoch
// whose owner died before Litestream's first sync of it left none: its
// writes are lost within the replication lag, like any last write. With
// no replica at all, to is left absent: a database never shipped. With
// none from floor on, the replica store is not the one the cluster
// shipped to, and serving what it lacks would lose acknowledged writes.
func (n *Node) restoreNewest(ctx context.Context, name string, epoch, floor int64, to string) error {
	select {
	case n.restores <- struct{}{}:
		defer func() { <-n.restores }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := sqlitekv.RemoveDatabase(to); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		return err
	}
	for e := epoch; e >= max(floor, 1); e-- {
		err := n.ls.restore(ctx, replicaURL(n.cfg.Replica, name, e), to)
		if !errors.Is(err, errNoReplica) {
			return err
		}
	}
	if floor > 0 {
		n.counts.replicaMissing.Add(1)
		n.log.Error("the replica store holds no copy of this database that etcd says was shipped to it: not serving it (is the store mounted, and the root the cluster's?)",
			"db", name, "replica", replicaURL(n.cfg.Replica, name, floor), "epoch", epoch)
		return fmt.Errorf("the replica store %s holds no copy of epoch %d or later, which was shipped to it", n.cfg.Replica, floor)
	}
	n.log.Warn("database had no replica to restore from", "db", name, "epoch", epoch)
	return nil
}

// replaceLocalCopy puts the restored copy (if any) at path, in place of
// whatever was there: an older copy, moved to aside (keepAside).
func (n *Node) replaceLocalCopy(ctx context.Context, path, restored, aside string) error {
	// Litestream must stop reading the old file before it goes.
	if err := n.ls.unregister(ctx, path); err != nil {
		return err
	}
	if err := keepAside(path, aside); err != nil {
		return err
	}
	// Litestream's own record of what it shipped from the old file.
	if err := os.RemoveAll(litestreamMeta(path)); err != nil {
		return err
	}
	if !fileExists(restored) {
		return nil
	}
	if err := os.Rename(restored, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
