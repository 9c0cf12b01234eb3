package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/kvdtest"
)

// fakeEtcd serves, in memory, the part of etcd's JSON gateway a node
// calls (lease grant, keep-alive and revoke, range, txn), so that
// ownership is tested without an etcd and without waiting: a lease ends
// only when the test expires it.
type fakeEtcd struct {
	URL string

	mu       sync.Mutex
	rev      int64
	keys     map[string]fakeKey
	leases   map[int64]int64 // id → TTL in seconds
	last     int64           // the last lease granted
	fail     map[string]bool // paths answered 503, as by an etcd without quorum
	lose     map[string]bool // paths carried out, then answered 503: an answer lost
	renewals int
}

type fakeKey struct {
	value []byte
	mod   int64
	lease int64
}

func newFakeEtcd(t *testing.T) *fakeEtcd {
	f := &fakeEtcd{keys: map[string]fakeKey{}, leases: map[int64]int64{}, fail: map[string]bool{}, lose: map[string]bool{}, last: 7000}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeEtcd) serve(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TTL     int64
		ID      string
		Key     string `json:"key"`
		Compare []struct {
			Key string `json:"key"`
			Rev string `json:"mod_revision"`
		} `json:"compare"`
		Success []struct {
			Put *struct {
				Key, Value, Lease string
			} `json:"request_put"`
			Delete *struct{ Key string } `json:"request_delete_range"`
		} `json:"success"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[r.URL.Path] {
		http.Error(w, `{"error":"etcdserver: request timed out"}`, http.StatusServiceUnavailable)
		return
	}
	id, _ := strconv.ParseInt(in.ID, 10, 64)
	var out any
	switch r.URL.Path {
	case "/v3/lease/grant":
		f.last++
		f.leases[f.last] = in.TTL
		out = map[string]string{"ID": strconv.FormatInt(f.last, 10), "TTL": strconv.FormatInt(in.TTL, 10)}
	case "/v3/lease/keepalive":
		f.renewals++
		result := map[string]string{"ID": in.ID}
		if ttl, ok := f.leases[id]; ok {
			result["TTL"] = strconv.FormatInt(ttl, 10)
		}
		out = map[string]any{"result": result}
	case "/v3/lease/revoke":
		f.expireLocked(id)
		out = map[string]string{}
	case "/v3/kv/range":
		var kvs []map[string]string
		if k, ok := f.keys[unb64(in.Key)]; ok {
			kvs = append(kvs, map[string]string{"key": in.Key, "value": base64.StdEncoding.EncodeToString(k.value),
				"mod_revision": strconv.FormatInt(k.mod, 10), "lease": strconv.FormatInt(k.lease, 10)})
		}
		out = map[string]any{"kvs": kvs}
	case "/v3/kv/txn":
		ok := true
		for _, c := range in.Compare {
			rev, _ := strconv.ParseInt(c.Rev, 10, 64)
			ok = ok && f.keys[unb64(c.Key)].mod == rev
		}
		if ok {
			for _, s := range in.Success {
				if s.Put != nil && s.Put.Lease != "" {
					if lease, _ := strconv.ParseInt(s.Put.Lease, 10, 64); f.leases[lease] == 0 {
						http.Error(w, `{"error":"etcdserver: requested lease not found","code":5}`, http.StatusNotFound)
						return
					}
				}
			}
			f.rev++
			for _, s := range in.Success {
				switch {
				case s.Put != nil:
					lease, _ := strconv.ParseInt(s.Put.Lease, 10, 64)
					value, _ := base64.StdEncoding.DecodeString(s.Put.Value)
					f.keys[unb64(s.Put.Key)] = fakeKey{value: value, mod: f.rev, lease: lease}
				case s.Delete != nil:
					delete(f.keys, unb64(s.Delete.Key))
				}
			}
		}
		out = map[string]any{"header": map[string]string{"revision": strconv.FormatInt(f.rev, 10)}, "succeeded": ok}
	default:
		http.NotFound(w, r)
		return
	}
	if f.lose[r.URL.Path] {
		http.Error(w, `{"error":"etcdserver: request timed out"}`, http.StatusServiceUnavailable)
		return
	}
	json.NewEncoder(w).Encode(out)
}

// expire ends lease, as etcd does when its TTL runs out: its keys go.
func (f *fakeEtcd) expire(lease int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(lease)
}

func (f *fakeEtcd) expireLocked(lease int64) {
	delete(f.leases, lease)
	for k, v := range f.keys {
		if v.lease == lease {
			delete(f.keys, k)
		}
	}
}

// key returns key's value and lease; ok is false when it does not exist.
func (f *fakeEtcd) key(key string) (value string, lease int64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[key]
	return string(k.value), k.lease, ok
}

func (f *fakeEtcd) renewed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renewals
}

func (f *fakeEtcd) put(key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev++
	f.keys[key] = fakeKey{value: []byte(value), mod: f.rev}
}

// failing makes etcd answer 503 to every call to path.
func (f *fakeEtcd) failing(path string, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[path] = fail
}

// losing makes etcd carry out every call to path but answer 503, as when
// its answer is lost or comes after the caller gave up.
func (f *fakeEtcd) losing(path string, lose bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose[path] = lose
}

func unb64(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	return string(b)
}

// fakeSidecar answers on a control socket as Litestream's does, keeping
// the registrations in memory; refuse, when set, fails a registration.
type fakeSidecar struct {
	socket string

	mu         sync.Mutex
	registered map[string]string // path → replica URL
	refuse     func(replica string) error
	syncTakes  atomic.Int64 // how long a sync takes, in nanoseconds
	full       atomic.Bool  // the replica takes nothing: syncs fail, and the last one stays the last
	idle       atomic.Bool  // the sidecar ships nothing by itself (backed off): the last sync stays the last
	listTakes  atomic.Int64 // how long /list takes, in nanoseconds
	regTakes   atomic.Int64 // how long /register takes, in nanoseconds
	hangs      string       // a path whose sync hangs until the caller gives up
	lastSync   time.Time
}

func (s *fakeSidecar) hanging() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hangs
}

func newFakeSidecar(t *testing.T) *fakeSidecar {
	s := &fakeSidecar{socket: filepath.Join(t.TempDir(), "litestream.sock"), registered: map[string]string{}}
	ln, err := net.Listen("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve)}}
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

func (s *fakeSidecar) serve(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Path    string `json:"path"`
		Replica string `json:"replica_url"`
	}
	if r.Method == http.MethodPost {
		json.NewDecoder(r.Body).Decode(&in)
	}
	switch {
	case r.URL.Path == "/sync" && in.Path != "" && in.Path == s.hanging():
		<-r.Context().Done()
		return
	case r.URL.Path == "/sync":
		time.Sleep(time.Duration(s.syncTakes.Load()))
	case r.URL.Path == "/list":
		time.Sleep(time.Duration(s.listTakes.Load()))
	case r.URL.Path == "/register":
		time.Sleep(time.Duration(s.regTakes.Load()))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/register":
		if s.refuse != nil {
			if err := s.refuse(in.Replica); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		if _, ok := s.registered[in.Path]; !ok {
			s.registered[in.Path] = in.Replica
		}
	case "/unregister":
		delete(s.registered, in.Path)
	case "/sync":
		if _, err := os.Stat(in.Path); err != nil { // as Litestream answers for a file registered before it exists
			http.Error(w, `{"error":"sync database: replica sync: no position, waiting for data"}`, http.StatusInternalServerError)
			return
		}
		if s.full.Load() {
			http.Error(w, `{"error":"sync database: replica sync: write ltx file: no space left on device"}`, http.StatusInternalServerError)
			return
		}
		s.lastSync = time.Now()
	case "/list":
		if !s.full.Load() && !s.idle.Load() {
			s.lastSync = time.Now() // as the sidecar's own syncs, every second or two
		}
		var dbs []map[string]any
		for p := range s.registered {
			dbs = append(dbs, map[string]any{"path": p, "status": "replicating", "last_sync_at": s.lastSync})
		}
		json.NewEncoder(w).Encode(map[string]any{"databases": dbs})
		return
	default:
		http.NotFound(w, r)
		return
	}
	fmt.Fprintln(w, "{}")
}

// testNode starts a node of a cluster whose etcd is f, with a sidecar of
// its own; its databases are closed by closeDB, when set.
func testNode(t *testing.T, f *fakeEtcd, cfg Config, closeDB func(path string)) (*Node, *fakeSidecar) {
	t.Helper()
	sidecar := newFakeSidecar(t)
	if cfg.Node == "" {
		cfg.Node = "n1"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Etcd == nil {
		cfg.Etcd = []string{f.URL}
	}
	if cfg.Advertise == "" {
		cfg.Advertise = "http://127.0.0.1:1"
	}
	cfg.Replica = "file://" + filepath.Join(t.TempDir(), "replica")
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	cfg.Socket = sidecar.socket
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if closeDB == nil {
		closeDB = func(string) {}
	}
	n, err := Start(ctx, cfg, closeDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, sidecar
}

// testServer serves over HTTP a kvd that is a node of the cluster whose
// etcd is f, wired as cmd/kvd wires it, and returns its URL.
func testServer(t *testing.T, f *fakeEtcd, cfg Config) (*Node, string) {
	n, url, _ := testServerAndSidecar(t, f, cfg)
	return n, url
}

func testServerAndSidecar(t *testing.T, f *fakeEtcd, cfg Config) (*Node, string, *fakeSidecar) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir()) // as the resolver names it
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	var registry *actors.Registry
	n, sidecar := testNode(t, f, cfg, func(path string) { registry.CloseDB(path) })
	srv, err := kvdtest.Start(dir, func(a *actors.Config, h *httpapi.Config) {
		a.Owner, a.Store.Fence, h.Cluster = n, n.Fence, n
	})
	if err != nil {
		t.Fatal(err)
	}
	registry = srv.Registry
	t.Cleanup(func() { // before the node leaves: registered after it
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return n, srv.URL, sidecar
}

// call sends one request and returns its status and decoded JSON body.
func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s %s: 503 without Retry-After", method, url)
	}
	return resp.StatusCode, out
}
