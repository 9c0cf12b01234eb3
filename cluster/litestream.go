package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// litestream drives the node's Litestream sidecar: through its control
// socket it starts and stops replicating each database this node owns
// (register, unregister) and pushes a database's last writes to the
// replica before a hand-over (sync with wait); its command line restores
// a database from the replica.
//
// The sidecar's configuration names no database: kvd registers each one
// with a replica path of its own ownership epoch (replicaURL), which a
// `dbs: - dir:` entry cannot express.
type litestream struct {
	bin    string // the litestream command, for restores
	socket string
	http   *http.Client
}

func newLitestream(bin, socket string) *litestream {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}
	return &litestream{bin: bin, socket: socket, http: &http.Client{Transport: &http.Transport{DialContext: dial}}}
}

// call posts body to the control socket's path (GET when body is nil).
func (l *litestream) call(ctx context.Context, path string, body, out any) error {
	method, reader := http.MethodGet, io.Reader(nil)
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		method, reader = http.MethodPost, bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://litestream"+path, reader)
	if err != nil {
		return err
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return fmt.Errorf("litestream control socket %s: %w", l.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("litestream %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// register starts replicating the database at path to replica.
// Registering a path twice keeps the first registration.
func (l *litestream) register(ctx context.Context, path, replica string) error {
	return l.call(ctx, "/register", map[string]any{"path": path, "replica_url": replica}, nil)
}

// unregister stops replicating path; a path not registered is no error.
func (l *litestream) unregister(ctx context.Context, path string) error {
	return l.call(ctx, "/unregister", map[string]any{"path": path, "timeout": 30}, nil)
}

// sync copies what the database at path committed to its replica and
// returns once the replica has it, or fails saying why (a replica that
// cannot be written: a full disk, say) after at most timeout.
func (l *litestream) sync(ctx context.Context, path string, timeout time.Duration) error {
	return l.call(ctx, "/sync", map[string]any{"path": path, "wait": true, "timeout": int(timeout / time.Second)}, nil)
}

// listing is what the sidecar says of one database it replicates.
type listing struct {
	Path   string `json:"path"`
	Status string `json:"status"` // "replicating" while it ships the database
	// LastSync is when the replica last took everything the sidecar had
	// to ship (zero before the first time): it moves every second or two
	// while the replica takes writes, and stops while it cannot (a full
	// disk, lost credentials), though the sidecar answers as before.
	LastSync time.Time `json:"last_sync_at"`
}

// registered lists the databases the sidecar replicates now, by path:
// after a restart of the sidecar it has none, and kvd registers its
// databases again.
func (l *litestream) registered(ctx context.Context) (map[string]listing, error) {
	var out struct {
		Databases []listing `json:"databases"`
	}
	if err := l.call(ctx, "/list", nil, &out); err != nil {
		return nil, err
	}
	dbs := make(map[string]listing, len(out.Databases))
	for _, db := range out.Databases {
		dbs[db.Path] = db
	}
	return dbs, nil
}

// errNoReplica is restore's answer when the replica holds no copy.
var errNoReplica = errors.New("no replica")

// restore writes the newest state of replica to path, which must not
// exist. Litestream writes to a temporary file beside it and renames
// it into place, so path never holds half a database.
func (l *litestream) restore(ctx context.Context, replica, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.bin, "restore", "-if-replica-exists", "-o", path, replica)
	dieWithKvd(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("litestream restore %s: %w: %s", replica, err, bytes.TrimSpace(out))
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return errNoReplica // -if-replica-exists: nothing to restore, exit 0
	} else if err != nil {
		return err
	}
	return nil
}

// shippedTXID is the newest transaction the replica holds (0: none).
// Litestream keeps the newest file of its level 0 through compaction and
// retention, so that level alone says it. A file:// replica is read
// directly: a restart asks this of every database the node serves, and
// the command costs a process each.
func (l *litestream) shippedTXID(ctx context.Context, replica string) (uint64, error) {
	if u, err := url.Parse(replica); err == nil && u.Scheme == "file" {
		return newestL0(u.Path)
	}
	return l.listedTXID(ctx, replica)
}

// listedTXID is shippedTXID as the replica's listing by `litestream ltx`
// says it.
func (l *litestream) listedTXID(ctx context.Context, replica string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.bin, "ltx", "-json", replica)
	dieWithKvd(cmd)
	out, err := cmd.Output()
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		return 0, fmt.Errorf("litestream ltx %s: %w: %s", replica, err, bytes.TrimSpace(exit.Stderr))
	} else if err != nil {
		return 0, fmt.Errorf("litestream ltx %s: %w", replica, err)
	}
	// Given a URL, it logs to its output too: the listing is what starts
	// at a line's first "[".
	if i := bytes.LastIndex(out, []byte("\n[")); !bytes.HasPrefix(out, []byte("[")) && i >= 0 {
		out = out[i+1:]
	}
	var files []struct {
		MaxTXID string `json:"max_txid"`
	}
	if err := json.Unmarshal(out, &files); err != nil {
		return 0, fmt.Errorf("litestream ltx %s: %w", replica, err)
	}
	var newest uint64
	for _, f := range files {
		txid, err := strconv.ParseUint(f.MaxTXID, 16, 64)
		if err != nil {
			return 0, fmt.Errorf("litestream ltx %s: TXID %q: %w", replica, f.MaxTXID, err)
		}
		newest = max(newest, txid)
	}
	return newest, nil
}

// remoteSchemes are the replica stores Litestream knows besides file://;
// each names its bucket, account or server as the URL's host.
var remoteSchemes = map[string]bool{"s3": true, "gs": true, "abs": true, "oss": true, "sftp": true, "webdav": true, "webdavs": true, "nats": true}

// CheckReplica tells whether root can be a replica root: Litestream takes
// a bad one when a database is registered and then ships it nowhere,
// while kvd acknowledges its writes. So a bad root stops kvd at start.
func CheckReplica(root string) error {
	u, err := url.Parse(root)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a replica root: %w", root, err)
	case u.Scheme == "file":
		if u.Host != "" || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.Trim(u.Path, "/") == "" {
			return fmt.Errorf("%q is not a replica root: want file:///absolute/path (a folder other than /)", root)
		}
	case remoteSchemes[u.Scheme]:
		if u.Host == "" {
			return fmt.Errorf("%q is not a replica root: it names no bucket or server (%s://bucket/prefix)", root, u.Scheme)
		}
	default:
		return fmt.Errorf("%q is not a replica root: want file:///path or s3://bucket/prefix (or Litestream's gs, abs, oss, sftp, webdav, nats)", root)
	}
	return nil
}

// replicaURL is where one ownership epoch of db replicates: a fresh path
// per epoch, so no two nodes ever write one lineage (see doc.go).
// The root's query (an S3 endpoint, say) stays at the end.
func replicaURL(root, db string, epoch int64) string {
	u, err := url.Parse(root)
	if err != nil { // CheckReplica'd at Start
		panic(err)
	}
	u.Path = fmt.Sprintf("%s/%s/%d", strings.TrimRight(u.Path, "/"), db, epoch)
	return u.String()
}
