package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// Config is one node's place in the cluster.
type Config struct {
	Node       string        // this node's name, stable for its data dir
	Advertise  string        // base URL at which peers reach this node's API
	Etcd       []string      // etcd client URLs
	Replica    string        // replica root: file:///... or s3://bucket/prefix?...
	LeaseTTL   time.Duration // 0 means 10s
	Litestream string        // the litestream command; "" means "litestream"
	Socket     string        // Litestream's control socket
	DataDir    string        // the real data dir (sqlitekv.Resolver.DataDir)
	Token      string        // bearer token for hand-over requests to peers ("" without auth)
	Logger     *slog.Logger
}

// Node serves, of all the cluster's databases, those it owns. Acquire
// makes it the owner of one (handing over from a peer, or taking over from
// a dead one, restoring from the replica when its own copy is not the
// newest); Release gives one up; Fence, checked before every COMMIT, stops
// writes the moment its lease may have run out.
type Node struct {
	cfg  Config
	etcd *etcd
	ls   *litestream
	log  *slog.Logger
	lock *os.File // the data dir's lock: one kvd per node

	// closeDB closes a database in the registry, after its queued writes
	// commit, and returns once it is closed (actors.Registry.CloseDB).
	closeDB func(path string)

	granting sync.Mutex // held while a lease is granted (ensureLease)
	nodeRev  int64      // the revision of this node's address as it last wrote it (announce; under granting)
	counts   counts

	mu            sync.Mutex
	lease         int64
	ttl           time.Duration     // the lease's, as etcd granted it
	validUntil    time.Time         // the lease is surely ours until then
	held          map[string]*claim // by database name (its file in the data dir)
	claiming      map[string]*claimCall
	unregistering map[string]chan struct{} // paths stopReplicating is at: nil while it syncs, closed once unregistered
	restores      chan struct{}            // room for the restores (and replica listings) that may run at once
	// checked holds the databases whose copy was compared with the replica
	// since kvd started (behindReplica): the data dir is locked while kvd
	// runs, so it cannot be put back from a backup meanwhile.
	checked map[string]bool

	ctx    context.Context // ends with Close: take-overs under way stop
	cancel context.CancelFunc
	tasks  sync.WaitGroup // take-overs, hand-overs and syncs under way; they end with ctx
	// loops ends the keep-alive and reconcile loops (done), and what
	// each is waiting for: Close ends them last, after the hand-overs.
	loops     context.Context
	stopLoops context.CancelFunc
	done      sync.WaitGroup
}

// claim is one database this node owns.
type claim struct {
	epoch     int64
	ownerRev  int64 // mod revision of its owners key, as this node wrote it
	releasing bool  // being handed over: no new request gets it
	fenced    bool  // handed over as far as the replica goes: nothing more commits
	// shipped is when the replica was last seen to take all of it, on
	// this node's clock (reconcile.go); lastSync is the sidecar's time of
	// that, as it said it. refused: since then, the sidecar said the
	// replica does not take it. shipping: kvd asked it to ship it, and
	// waits for the answer.
	shipped, lastSync time.Time
	refused, shipping bool
	// replicated is the newest epoch the replica store is known to hold
	// a copy of (epochRecord.Replicated); noting: this node is writing
	// its own epoch there, or found the record no longer its to write;
	// noteTried: the sidecar's sync the last try followed.
	replicated int64
	noting     bool
	noteTried  time.Time
}

// epochRecord is /kvd/epochs/<db>: which node holds the newest copy of a
// database, and in which of its replica paths.
type epochRecord struct {
	Node  string `json:"node"`
	Epoch int64  `json:"epoch"`
	// Released: the node handed the database over, its replica complete.
	// Otherwise the node died or was cut off, and its sidecar may still
	// be shipping its last writes (see replicationGrace).
	Released bool `json:"released,omitempty"`
	// Unshipped: the node stopped with writes its replica never took (a
	// full or failing replica store), so only its copy holds them. Peers
	// do not take the database over from the replica, which would lose
	// them; the node serves it again when it comes back.
	Unshipped bool `json:"unshipped,omitempty"`
	// Replicated is the newest epoch whose replica the store was seen to
	// hold (its owner's sidecar synced it). A peer restores from that
	// epoch or a later one, never an older: finding none, it refuses
	// rather than serve a database without those writes, as it would from
	// a replica store that reads empty (a volume not mounted, a wrong
	// root). Each record carries it on; 0: not known.
	Replicated int64 `json:"replicated,omitempty"`
}

// record reads db's epoch record and its key (nil when there is none).
func (n *Node) record(ctx context.Context, db string) (*epochRecord, *kv, error) {
	epochKV, err := n.etcd.get(ctx, epochsKey(db))
	if err != nil || epochKV == nil {
		return nil, nil, err
	}
	rec := new(epochRecord)
	if err := json.Unmarshal(epochKV.Value, rec); err != nil {
		return nil, nil, fmt.Errorf("etcd %s: %w", epochsKey(db), err)
	}
	return rec, epochKV, nil
}

func ownersKey(db string) string  { return "/kvd/owners/" + db }
func epochsKey(db string) string  { return "/kvd/epochs/" + db }
func nodesKey(node string) string { return "/kvd/nodes/" + node }

// Start joins the cluster: it takes the data dir's lock, obtains a lease
// and announces where peers reach this node. closeDB is the registry's.
func Start(ctx context.Context, cfg Config, closeDB func(path string)) (*Node, error) {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.LeaseTTL < minLeaseTTL {
		return nil, fmt.Errorf("cluster lease TTL %v: at least %v", cfg.LeaseTTL, minLeaseTTL)
	}
	if cfg.Litestream == "" {
		cfg.Litestream = "litestream"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckReplica(cfg.Replica); err != nil {
		return nil, fmt.Errorf("cluster replica: %w", err)
	}
	n := &Node{
		cfg: cfg, etcd: newEtcd(cfg.Etcd), ls: newLitestream(cfg.Litestream, cfg.Socket),
		log: cfg.Logger.With("node", cfg.Node), closeDB: closeDB,
		held: map[string]*claim{}, claiming: map[string]*claimCall{}, unregistering: map[string]chan struct{}{},
		restores: make(chan struct{}, maxRestores),
		checked:  map[string]bool{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.loops, n.stopLoops = context.WithCancel(context.Background())
	lock, err := lockDataDir(cfg.DataDir, cfg.Node)
	if err != nil {
		return nil, err
	}
	n.lock = lock
	if err := n.awaitOwnName(ctx); err != nil {
		lock.Close()
		return nil, err
	}
	if _, err := n.ensureLease(ctx); err != nil {
		lock.Close()
		return nil, err
	}
	n.done.Add(2)
	go n.keepAlive()
	go n.reconcileReplication()
	return n, nil
}

// awaitOwnName makes sure that no other live kvd serves as this node:
// two of one name would both serve its databases, each taking the other
// for itself. A node's address in etcd (/kvd/nodes/<name>) that is not
// this kvd's must vanish with the lease it was written under (a life of
// this node that just ended, at another address) within two of this
// kvd's TTLs; one that stays is renewed by a twin that lives. (A twin
// that announces itself meanwhile is refused by announce.)
func (n *Node) awaitOwnName(ctx context.Context) error {
	deadline := time.Now().Add(2*n.cfg.LeaseTTL + time.Second)
	for {
		addr, err := n.etcd.get(ctx, nodesKey(n.cfg.Node))
		switch {
		case err != nil:
			return err
		case n.mayAnnounceOver(addr):
			return nil
		case time.Now().After(deadline):
			return n.twin(addr)
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// Ready is nil while this node holds its lease: /readyz answers 503
// otherwise, so that the router stops sending it requests.
func (n *Node) Ready() error {
	if _, ok := n.validLease(); !ok {
		return errors.New("no cluster lease")
	}
	return nil
}

// Holds tells, without waiting, whether this node serves path now.
func (n *Node) Holds(path string) bool {
	name, err := n.name(path)
	if err != nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.held[name]
	return c != nil && !c.releasing && time.Now().Before(n.validUntil)
}

// Fence is checked before each COMMIT, and again after it: a write
// commits, and is acknowledged, only while this node owns its database
// under a lease that has surely not expired in etcd, so once a peer may
// have taken the database over, nothing more is acknowledged here. It
// also holds writes back while the Litestream sidecar does not answer:
// the replication lag, which bounds what a dead node loses, must stay
// bounded.
func (n *Node) Fence(path string) error {
	name, err := n.name(path)
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.held[name]
	switch {
	case err != nil || c == nil || c.fenced || time.Now().After(n.validUntil):
		return notOwner(name)
	case c.refused:
		return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Database %q is not being replicated (this node's Litestream sidecar cannot write the replica); retry", name)
	case time.Since(c.shipped) > replicationTimeout:
		return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Database %q is not being replicated (the replica has taken none of its writes for %v: this node's Litestream sidecar does not answer); retry", name, replicationTimeout)
	}
	return nil
}

// minLeaseTTL is the shortest lease a node may ask for.
const minLeaseTTL = 2 * time.Second

// replicationTimeout is how long writes go on while the replica takes
// none of them: a few of the sidecar's sync intervals. It bounds the
// writes a node that dies meanwhile loses.
const replicationTimeout = 5 * time.Second

var (
	errNotClusterName = sqlitekv.Errorf(sqlitekv.CodeInvalidDBPath, "In cluster mode a database is a file of the data dir, named by a bare name not starting with a dot")
	errURIName        = sqlitekv.Errorf(sqlitekv.CodeInvalidDBPath, "In cluster mode a database name may not contain ?, # or %%: Litestream opens the file by a SQLite URI, where they mean something else")
	errLongName       = sqlitekv.Errorf(sqlitekv.CodeInvalidDBPath, "In cluster mode a database file name is at most %d bytes, so that Litestream's .<name>-litestream fits the filesystem's 255", maxNameBytes)
)

// maxNameBytes is the longest file name of a database in cluster mode:
// beside it Litestream keeps .<name>-litestream, and a name is at most
// 255 bytes on Linux's filesystems.
const maxNameBytes = 255 - len(".-litestream")

func notOwner(name string) error {
	return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "This node no longer serves database %q (it moved or the node lost its cluster lease); retry", name)
}

// name is path's name in the cluster: its file name in the data dir.
// Cluster mode takes databases there and nowhere deeper (bare names,
// the same on every node), and none whose name starts with a dot: those
// are the cluster's own (.kvd-cluster, Litestream's .<db>-litestream).
// Nor any that Litestream would replicate as another file (errURIName),
// or whose side files it could not name (errLongName).
func (n *Node) name(path string) (string, error) {
	rel, err := filepath.Rel(n.cfg.DataDir, path)
	switch {
	case err != nil || strings.ContainsRune(rel, filepath.Separator) || strings.HasPrefix(rel, "."):
		return "", errNotClusterName
	case strings.ContainsAny(rel, "?#%"):
		return "", errURIName
	case len(rel) > maxNameBytes:
		return "", errLongName
	}
	return rel, nil
}

// replicate has the sidecar stream path to this epoch's replica. A
// failure is logged; reconcileReplication tries again.
func (n *Node) replicate(ctx context.Context, name, path string, epoch int64) error {
	err := n.ls.register(ctx, path, replicaURL(n.cfg.Replica, name, epoch))
	if err != nil {
		n.log.Warn("replication not started yet", "db", name, "err", err)
	}
	return err
}

// dropOwnership deletes name's owners key if it is still the one this
// node wrote at rev.
func (n *Node) dropOwnership(name string, rev int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, _, err := n.etcd.txn(ctx, []cmp{{ownersKey(name), rev}}, []op{{key: ownersKey(name), del: true}}); err != nil {
		n.log.Warn("could not give up ownership; it ends with the lease", "db", name, "err", err)
	}
}

func revOf(k *kv) int64 {
	if k == nil {
		return 0
	}
	return k.ModRevision
}

func unavailable(name string, err error) error {
	return &sqlitekv.Error{Code: sqlitekv.CodeOverloaded, Message: fmt.Sprintf("Database %q cannot be served by this node right now; retry", name), Cause: err}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
