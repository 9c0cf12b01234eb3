package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kvd/kvd/sqlitekv"
	"golang.org/x/sys/unix"
)

// What a node keeps about the cluster on its own disk, in .kvd-cluster/
// of its data dir: a lock, its name, and for each database the ownership
// epoch its copy belongs to. A copy is the newest exactly when etcd's
// epoch record names this node and that epoch; otherwise a peer wrote the
// database since, and the copy is replaced from the replica before it is
// served. The data dir going (a dead disk) takes these with it, and every
// copy counts as stale.

const stateDir = ".kvd-cluster"

// lockDataDir makes sure one kvd at a time serves as node in dataDir, so
// that a node restarting on its disk may take over what its previous life
// owned: that life is surely over.
func lockDataDir(dataDir, node string) (*os.File, error) {
	dir := filepath.Join(dataDir, stateDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another kvd: %w", dataDir, err)
	}
	nameFile := filepath.Join(dir, "node")
	switch was, err := os.ReadFile(nameFile); {
	case err == nil && strings.TrimSpace(string(was)) != node:
		f.Close()
		return nil, fmt.Errorf("data dir %s belongs to cluster node %q, not %q", dataDir, strings.TrimSpace(string(was)), node)
	case errors.Is(err, os.ErrNotExist):
		if err := writeFileSynced(nameFile, node+"\n"); err != nil {
			f.Close()
			return nil, err
		}
	case err != nil:
		f.Close()
		return nil, err
	}
	return f, nil
}

// restorePath is where a restore writes before the copy goes in place:
// among the cluster's own files, where no client's database can be.
func (n *Node) restorePath(name string) string {
	return filepath.Join(n.cfg.DataDir, stateDir, "restoring", name)
}

// keepAside moves the copy at path (the file and its WAL) to aside, in
// place of any kept there before, rather than delete it. The cluster
// counts it older than the replica, and it is; but it may hold writes the
// node acknowledged and its sidecar never shipped (both killed at once),
// which a person can then still read. Such a copy has a place of its own,
// .kvd-cluster/unshipped/<epoch>/<db> (unusedAside), so that no later
// one overwrites it; any other goes to .kvd-cluster/replaced/<db>, one a
// database.
func keepAside(path, aside string) error {
	if err := os.MkdirAll(filepath.Dir(aside), 0o750); err != nil {
		return err
	}
	if err := sqlitekv.RemoveDatabase(aside); err != nil {
		return err
	}
	for _, suffix := range []string{"", "-wal"} {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := sqlitekv.RemoveDatabase(path); err != nil { // the -shm, a -journal
		return err
	}
	return syncDir(filepath.Dir(aside))
}

// unusedAside is dir/name, or dir.1/name, dir.2/name and so on, the
// first where no copy (file or WAL) is kept: a take that failed after
// setting a copy aside and is tried again sets aside what it put in its
// place, under the same epoch.
func unusedAside(dir, name string) string {
	try := filepath.Join(dir, name)
	for i := 1; fileExists(try) || fileExists(try+"-wal"); i++ {
		try = filepath.Join(dir+"."+strconv.Itoa(i), name)
	}
	return try
}

// litestreamMeta is where Litestream keeps its record of what it shipped
// from the database at path.
func litestreamMeta(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"-litestream")
}

// recordedTXID is the newest transaction Litestream's record beside the
// database at path says it took from it. 0 when there is no record.
func recordedTXID(path string) (uint64, error) { return newestL0(litestreamMeta(path)) }

// newestL0 is the newest transaction among the level-0 files under root,
// in Litestream's layout both for its record beside a database and for a
// file:// replica: root/ltx/0/<min TXID>-<max TXID>.ltx, in hex. 0 when
// there are none.
func newestL0(root string) (uint64, error) {
	entries, err := os.ReadDir(filepath.Join(root, "ltx", "0"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	var newest uint64
	for _, e := range entries {
		span, isLTX := strings.CutSuffix(e.Name(), ".ltx")
		_, maxHex, _ := strings.Cut(span, "-")
		if txid, err := strconv.ParseUint(maxHex, 16, 64); isLTX && err == nil {
			newest = max(newest, txid)
		} // else a temporary file
	}
	return newest, nil
}

func (n *Node) epochFile(name string) string { return n.stateFile("epochs", name) }

// stateFile is where the node keeps kind's epoch of database name.
func (n *Node) stateFile(kind, name string) string {
	return filepath.Join(n.cfg.DataDir, stateDir, kind, filepath.FromSlash(name))
}

// localEpoch is the epoch of this node's copy of name; 0 when it has none
// it knows of.
func (n *Node) localEpoch(name string) int64 { return readEpoch(n.epochFile(name)) }

func (n *Node) setLocalEpoch(name string, epoch int64) error {
	return writeEpoch(n.epochFile(name), epoch)
}

// shippedEpoch is the last epoch of name whose every write the replica
// confirmed before this node let the database go (a hand-over, a stop);
// 0 when none. A copy of any other epoch of this node's may hold writes it
// acknowledged and never shipped.
func (n *Node) shippedEpoch(name string) int64 { return readEpoch(n.stateFile("shipped", name)) }

func (n *Node) setShippedEpoch(name string, epoch int64) error {
	return writeEpoch(n.stateFile("shipped", name), epoch)
}

// forgetShipped drops name's shippedEpoch when the node serves it again.
func (n *Node) forgetShipped(name string) error {
	path := n.stateFile("shipped", name)
	if err := os.Remove(path); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func readEpoch(path string) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	epoch, _ := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	return epoch
}

func writeEpoch(path string, epoch int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return writeFileSynced(path, strconv.FormatInt(epoch, 10)+"\n")
}

// writeFileSynced replaces path with data, durably: a power cut leaves the
// old content or the new, never a torn one.
func writeFileSynced(path, data string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
