package sqlitekv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

// kvdOnDisk is kvd as cmd/kvd wires it (resolver, registry, HTTP server on
// loopback) with its files on a simulated disk, and a lease on the test's
// database for reading it back directly.
type kvdOnDisk struct {
	url     string
	reg     *actors.Registry
	db      *actors.DB
	srv     *httpapi.Server
	served  chan error
	stopped bool
}

// startKVD starts kvd on dir, its files reached through the VFS named vfs.
func startKVD(tb testing.TB, dir, vfs string, mode sqlitekv.SyncMode) (*kvdOnDisk, error) {
	tb.Helper()
	resolver, err := sqlitekv.NewResolver(dir, nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	// Little history per key, so that writes prune it: frees pages and
	// keeps the file small.
	opts := sqlitekv.OnVFS(sqlitekv.Options{Sync: mode, Readers: 2, HistoryKeep: 20}, vfs)
	k := &kvdOnDisk{reg: actors.NewRegistry(actors.Config{Resolver: resolver, Store: opts, IdleTimeout: 15 * time.Millisecond, SweepInterval: 30 * time.Millisecond}), served: make(chan error, 1)}
	if k.db, err = k.reg.Open(context.Background(), "app", true, false); err != nil {
		k.reg.Close()
		return nil, err
	}
	k.srv = httpapi.New(httpapi.Config{Registry: k.reg, Metrics: httpapi.NewMetrics()})
	if err := k.srv.Listen("127.0.0.1:0"); err != nil {
		k.db.Release()
		k.reg.Close()
		tb.Fatal(err)
	}
	k.url = "http://" + k.srv.Addr().String() + "/api/v1/sqlite/kv/"
	go func() { k.served <- k.srv.Serve() }()
	return k, nil
}

// stop stops kvd, unless it is stopped, in its order: HTTP, then the
// database. With the power off the close fails, but closes every
// connection all the same. The client's idle connections go first: the
// server's Shutdown would wait 5 seconds for one the client dialed but
// never sent a request on.
func (k *kvdOnDisk) stop(client *http.Client) error {
	if k.stopped {
		return nil
	}
	k.stopped = true
	client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k.srv.Shutdown(ctx)
	<-k.served
	k.db.Release()
	return k.reg.Close()
}

// put and incr write over HTTP; a nil error is an acknowledgement.
func (k *kvdOnDisk) put(ctx context.Context, client *http.Client, key, value string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, k.url+key+"?db=app", strings.NewReader(value))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain")
	_, err = send(client, req)
	return err
}

func (k *kvdOnDisk) incr(ctx context.Context, client *http.Client, key string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url+key+"/incr?db=app", nil)
	if err != nil {
		return 0, err
	}
	body, err := send(client, req)
	if err != nil {
		return 0, err
	}
	var res struct{ Value int64 }
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("incr answer %q: %w", body, err)
	}
	return res.Value, nil
}

func send(client *http.Client, req *http.Request) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s %s", req.Method, req.URL.Path, resp.Status, body)
	}
	return body, nil
}
