package cluster_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The drill runs the real thing on loopback: one etcd, HAProxy in front,
// and per node a kvd and its Litestream sidecar, each a process of its own
// that the test starts, kills and restarts.

// tools finds etcd, haproxy and litestream. Missing ones skip the drill,
// unless KVD_CLUSTER_DRILL=require (CI), where they fail it.
func tools(t *testing.T) map[string]string {
	paths := map[string]string{}
	var missing []string
	for _, name := range []string{"etcd", "haproxy", "litestream"} {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		paths[name] = p
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("cluster drill needs %v on PATH (.ci/run installs them)", missing)
		if os.Getenv("KVD_CLUSTER_DRILL") == "require" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return paths
}

// buildKVD builds kvd for the test's processes.
func buildKVD(t *testing.T) string {
	tools(t)
	bin := filepath.Join(t.TempDir(), "kvd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/kvd").CombinedOutput(); err != nil {
		t.Fatalf("build kvd: %v\n%s", err, out)
	}
	return bin
}

// proc is a process the drill started; stopped by the test's cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

func start(t *testing.T, name string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(logDir(t), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill ends the process at once, as a crash would.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// signal sends sig to the process (SIGSTOP freezes it, SIGCONT wakes it).
func (p *proc) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// running is ok, unless p has ended: then the test fails at once with how
// it ended, where a wait for ok would only time out.
func (p *proc) running(t *testing.T, ok func() bool) func() bool {
	return func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s ended: %v (logs in %s)", p.name, p.cmd.ProcessState, logDir(t))
		default:
		}
		return ok()
	}
}

// stop asks the process to end (SIGTERM) and waits up to a bound.
func (p *proc) stop(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	start := time.Now()
	select {
	case <-p.done:
		t.Logf("%s stopped on SIGTERM in %v", p.name, time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop on SIGTERM within 30s", p.name)
		p.kill()
	}
}

// logDirs holds each test's folder of process logs.
var logDirs sync.Map // *testing.T → string

// logDir is where the processes a test starts write their logs: a folder
// of its own, which a failed test keeps (its failures say where) and a
// passing one removes.
func logDir(t *testing.T) string {
	if dir, ok := logDirs.Load(t); ok {
		return dir.(string)
	}
	dir, err := os.MkdirTemp("", "kvd-drill-logs-")
	if err != nil {
		t.Fatal(err)
	}
	logDirs.Store(t, dir)
	t.Cleanup(func() { // registered first, so it runs after the processes are stopped
		logDirs.Delete(t)
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	return dir
}

// freePort picks a free port for a process the drill starts, below the
// kernel's ephemeral range where there is room: a port from that range,
// free when picked, may become the local port of an outgoing connection
// (HAProxy's health checks, a node's etcd client) before the process binds
// it, or before a killed kvd is restarted on it.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := listenBelowEphemeral()
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// listenBelowEphemeral listens on a random free port from 10000 up to
// where the kernel's ephemeral ports begin.
func listenBelowEphemeral() (net.Listener, error) {
	const lowest = 10000 // above the well-known services' ports
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return nil, err
	}
	ephemeral, _ := strconv.Atoi(strings.Fields(string(b) + " 0")[0])
	if ephemeral < lowest+1000 {
		return nil, fmt.Errorf("ephemeral ports begin at %d", ephemeral)
	}
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lowest+rand.IntN(ephemeral-lowest))); err == nil {
			return ln, nil
		}
	}
	return nil, err
}

// waitFor fails the test unless ok holds within the bound.
func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	if !eventually(within, ok) {
		t.Fatalf("%s: not within %v (logs in %s)", what, within, logDir(t))
	}
}

// eventually polls ok until it holds or within has passed, and says
// whether it held.
func eventually(within time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// probe asks whether a process answers: a hung one fails the probe
// rather than holding up the test.
var probe = &http.Client{Timeout: 2 * time.Second}

func answers(url string) bool {
	resp, err := probe.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// cluster is the drill's running system.
type cluster struct {
	t        *testing.T
	bin      map[string]string
	dir      string
	etcdURL  string
	replica  string
	front    string // HAProxy's frontend URL
	adminSck string // HAProxy's runtime API
	mapFile  string
	nodes    []*node
}

// node is one kvd and its Litestream sidecar.
type node struct {
	id, dataDir, socket string
	replica             string // its replica root, when not the cluster's
	port                int
	kvd, litestream     *proc
	etcd                *link // its path to etcd, which the drill may cut
}

func (n *node) url() string { return fmt.Sprintf("http://127.0.0.1:%d", n.port) }

// leaseTTL is short, so a dead node's databases come back quickly.
const leaseTTL = 3 * time.Second

func startCluster(t *testing.T, kvdBin string, nodes int) *cluster {
	c := &cluster{t: t, bin: tools(t), dir: t.TempDir()}
	c.bin["kvd"] = kvdBin
	c.replica = filepath.Join(c.dir, "replica")
	clientPort, peerPort := freePort(t), freePort(t)
	c.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	etcd := start(t, "etcd", c.bin["etcd"], "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", c.etcdURL, "--advertise-client-urls", c.etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", peerPort))
	waitFor(t, "etcd answers", 20*time.Second, etcd.running(t, func() bool { return answers(c.etcdURL + "/health") }))
	for i := range nodes {
		n := &node{id: fmt.Sprintf("n%d", i+1), port: freePort(t)}
		n.dataDir = filepath.Join(c.dir, n.id)
		n.socket = filepath.Join(c.dir, n.id+"-litestream.sock")
		n.etcd = newLink(t, strings.TrimPrefix(c.etcdURL, "http://"))
		c.nodes = append(c.nodes, n)
		c.startNode(n)
	}
	c.startHAProxy()
	return c
}

// startNode starts n's sidecar, then its kvd, on n's data dir as it is.
func (c *cluster) startNode(n *node) {
	c.startSidecar(n)
	c.startKVD(n)
}

func (c *cluster) startSidecar(n *node) {
	t := c.t
	conf := filepath.Join(c.dir, n.id+"-litestream.yml")
	os.WriteFile(conf, fmt.Appendf(nil, "socket:\n  enabled: true\n  path: %s\ndbs: []\n", n.socket), 0o644)
	os.Remove(n.socket)
	n.litestream = start(t, n.id+"-litestream", c.bin["litestream"], "replicate", "-config", conf)
	waitFor(t, n.id+" litestream socket", 10*time.Second, n.litestream.running(t, func() bool { _, err := os.Stat(n.socket); return err == nil }))
}

func (c *cluster) startKVD(n *node) {
	replica := cmp.Or(n.replica, c.replica)
	n.kvd = start(c.t, n.id+"-kvd", c.bin["kvd"], "--listen", fmt.Sprintf("127.0.0.1:%d", n.port),
		"--data-dir", n.dataDir, "--cluster-node", n.id, "--cluster-etcd", n.etcd.url(),
		"--cluster-replica", "file://"+replica, "--cluster-lease-ttl", leaseTTL.String(),
		"--litestream", c.bin["litestream"], "--litestream-socket", n.socket)
	waitFor(c.t, n.id+" ready", 20*time.Second, n.kvd.running(c.t, func() bool { return answers(n.url() + "/readyz") }))
}

// startHAProxy runs the router as deploy/cluster/local/haproxy.cfg
// configures it, moved to the drill's ports and files, in the foreground.
func (c *cluster) startHAProxy() {
	t := c.t
	shipped, err := os.ReadFile("../deploy/cluster/local/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	c.adminSck = filepath.Join(c.dir, "haproxy.sock")
	c.mapFile = filepath.Join(c.dir, "placement.map")
	os.WriteFile(c.mapFile, nil, 0o644)
	port := freePort(t)
	moves := []string{
		"/run/haproxy/admin.sock", c.adminSck,
		"/etc/haproxy/kvd-placement.map", c.mapFile,
		"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", port),
	}
	for i, n := range c.nodes {
		moves = append(moves, fmt.Sprintf("127.0.0.1:%d", 8081+i), fmt.Sprintf("127.0.0.1:%d", n.port))
	}
	var conf strings.Builder
	for line := range strings.Lines(strings.NewReplacer(moves...).Replace(string(shipped))) {
		switch strings.Fields(line + " x")[0] {
		case "chroot", "user", "group", "daemon", "log": // a system service's, not a test's
			continue
		}
		conf.WriteString(line)
	}
	path := filepath.Join(c.dir, "haproxy.cfg")
	os.WriteFile(path, []byte(conf.String()), 0o644)
	haproxy := start(t, "haproxy", c.bin["haproxy"], "-db", "-f", path)
	c.front = fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, "haproxy serves", 10*time.Second, haproxy.running(t, func() bool { return answers(c.front + "/readyz") }))
}

// pin routes db to node from now on, through HAProxy's runtime API.
func (c *cluster) pin(db string, n *node) {
	conn, err := net.Dial("unix", c.adminSck)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "add map %s %s kvd_%s\n", c.mapFile, db, n.id)
	var out [512]byte
	k, _ := conn.Read(out[:])
	if s := strings.TrimSpace(string(out[:k])); s != "" {
		c.t.Fatalf("haproxy add map: %s", s)
	}
}

// owner asks etcd which node owns db (its name below the data dir).
func (c *cluster) owner(db string) string { return c.etcdValue("/kvd/owners/" + db) }

// etcdValue is key's value in etcd ("" when it has none, or etcd does not
// answer).
func (c *cluster) etcdValue(key string) string {
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.etcdURL+"/v3/kv/range", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out struct{ Kvs []struct{ Value string } }
	json.NewDecoder(resp.Body).Decode(&out)
	if len(out.Kvs) == 0 {
		return ""
	}
	v, _ := base64.StdEncoding.DecodeString(out.Kvs[0].Value)
	return string(v)
}

// ownedByOthers counts the dbs that a node other than id owns now.
func (c *cluster) ownedByOthers(dbs []string, id string) int {
	n := 0
	for _, db := range dbs {
		if o := c.owner(db + ".db"); o != "" && o != id {
			n++
		}
	}
	return n
}
