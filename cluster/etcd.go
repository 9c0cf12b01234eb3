package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// etcd speaks to etcd's v3 API through its JSON gateway (/v3/...), which
// every etcd since 3.3 serves on its client port. Ownership needs five
// calls (grant, keep alive, range, txn, revoke); the gRPC client would add
// a module graph larger than kvd's for them.
type etcd struct {
	endpoints []string
	http      *http.Client

	mu        sync.Mutex
	preferred int // the endpoint that answered last, tried first
}

func newEtcd(endpoints []string) *etcd {
	return &etcd{endpoints: endpoints, http: &http.Client{}}
}

// endpointTimeout bounds how long a call waits for one endpoint.
const endpointTimeout = 3 * time.Second

// kv is one key as a range answers it.
type kv struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Lease          int64
}

// call posts body to path on the first endpoint that answers, starting
// with the one that answered last. An endpoint that does not answer gets
// its share of the time left to the call, so that a keep-alive, which has
// a third of a TTL, still reaches the endpoints after a dead one.
func (e *etcd) call(ctx context.Context, path string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	e.mu.Lock()
	first := e.preferred
	e.mu.Unlock()
	var errs []error
	for i := range e.endpoints {
		k := (first + i) % len(e.endpoints)
		timeout := endpointTimeout
		if deadline, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(deadline)/time.Duration(len(e.endpoints)-i))
		}
		err := e.post(ctx, timeout, e.endpoints[k]+path, raw, out)
		if err == nil {
			e.mu.Lock()
			e.preferred = k
			e.mu.Unlock()
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("etcd unreachable: %w", errors.Join(errs...))
}

// post sends one call to one endpoint, waiting at most timeout.
func (e *etcd) post(ctx context.Context, timeout time.Duration, url string, raw []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

// grant creates a lease of about ttl and returns its id and the TTL etcd
// granted: whole seconds, ttl's or more.
func (e *etcd) grant(ctx context.Context, ttl time.Duration) (int64, time.Duration, error) {
	var out struct{ ID, TTL string }
	if err := e.call(ctx, "/v3/lease/grant", map[string]any{"TTL": int64(ttl / time.Second)}, &out); err != nil {
		return 0, 0, err
	}
	id, err := strconv.ParseInt(out.ID, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("etcd lease grant: id %q: %w", out.ID, err)
	}
	granted, err := seconds(out.TTL)
	if err != nil {
		return 0, 0, fmt.Errorf("etcd lease grant: %w", err)
	}
	return id, granted, nil
}

// seconds reads a TTL as etcd answers it, a decimal count of seconds.
func seconds(ttl string) (time.Duration, error) {
	s, err := strconv.ParseInt(ttl, 10, 64)
	if err != nil || s <= 0 {
		return 0, fmt.Errorf("TTL %q: not a count of seconds", ttl)
	}
	return time.Duration(s) * time.Second, nil
}

// errLeaseGone is a keep-alive's answer for a lease that expired.
var errLeaseGone = errors.New("etcd lease expired")

// keepAlive renews lease for its whole TTL, which it returns.
func (e *etcd) keepAlive(ctx context.Context, lease int64) (time.Duration, error) {
	var out struct {
		Result struct{ TTL string }
	}
	if err := e.call(ctx, "/v3/lease/keepalive", map[string]any{"ID": strconv.FormatInt(lease, 10)}, &out); err != nil {
		return 0, err
	}
	ttl, err := seconds(out.Result.TTL)
	if err != nil {
		return 0, errLeaseGone // etcd answers no TTL, or 0, for a lease it no longer has
	}
	return ttl, nil
}

// revoke ends lease now, deleting every key attached to it.
func (e *etcd) revoke(ctx context.Context, lease int64) error {
	var out json.RawMessage
	return e.call(ctx, "/v3/lease/revoke", map[string]any{"ID": strconv.FormatInt(lease, 10)}, &out)
}

// get reads one key; nil when it does not exist.
func (e *etcd) get(ctx context.Context, key string) (*kv, error) {
	var out rangeAnswer
	if err := e.call(ctx, "/v3/kv/range", map[string]any{"key": b64(key)}, &out); err != nil {
		return nil, err
	}
	return out.first()
}

type rangeAnswer struct {
	Kvs []struct {
		Key            string `json:"key"`
		Value          string `json:"value"`
		CreateRevision string `json:"create_revision"`
		ModRevision    string `json:"mod_revision"`
		Lease          string `json:"lease"`
	} `json:"kvs"`
}

func (r rangeAnswer) first() (*kv, error) {
	if len(r.Kvs) == 0 {
		return nil, nil
	}
	k := r.Kvs[0]
	key, err := base64.StdEncoding.DecodeString(k.Key)
	if err != nil {
		return nil, err
	}
	value, err := base64.StdEncoding.DecodeString(k.Value)
	if err != nil {
		return nil, err
	}
	out := &kv{Key: string(key), Value: value}
	out.CreateRevision, _ = strconv.ParseInt(k.CreateRevision, 10, 64)
	out.ModRevision, _ = strconv.ParseInt(k.ModRevision, 10, 64)
	out.Lease, _ = strconv.ParseInt(k.Lease, 10, 64)
	return out, nil
}

// cmp is one comparison of a transaction: key's mod revision equals rev
// (0: the key does not exist).
type cmp struct {
	key string
	rev int64
}

// op is one write of a transaction: a put (attached to lease when it is
// not 0) or, with del set, a delete.
type op struct {
	key   string
	value []byte
	lease int64
	del   bool
}

// txn applies ops if every comparison holds, and tells whether they did
// and the revision they were written at.
func (e *etcd) txn(ctx context.Context, ifs []cmp, then []op) (ok bool, rev int64, err error) {
	compare := make([]map[string]any, len(ifs))
	for i, c := range ifs {
		compare[i] = map[string]any{"key": b64(c.key), "target": "MOD", "mod_revision": strconv.FormatInt(c.rev, 10)}
	}
	success := make([]map[string]any, len(then))
	for i, o := range then {
		if o.del {
			success[i] = map[string]any{"request_delete_range": map[string]any{"key": b64(o.key)}}
			continue
		}
		put := map[string]any{"key": b64(o.key), "value": base64.StdEncoding.EncodeToString(o.value)}
		if o.lease != 0 {
			put["lease"] = strconv.FormatInt(o.lease, 10)
		}
		success[i] = map[string]any{"request_put": put}
	}
	var out struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
		Succeeded bool `json:"succeeded"`
	}
	if err := e.call(ctx, "/v3/kv/txn", map[string]any{"compare": compare, "success": success}, &out); err != nil {
		return false, 0, err
	}
	rev, _ = strconv.ParseInt(out.Header.Revision, 10, 64)
	return out.Succeeded, rev, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
