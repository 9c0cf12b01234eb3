package sqlitekv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

// More writers beside the puts and incrs of the power-cut test: each one
// owns some keys (of one table of one database) and writes them one write
// at a time, with a write path of its own: large values through CAS puts
// (the writer's and readers' connections then renewed), deletes, batch
// sets and deletes, TTL writes that the sweep expires, key rollbacks,
// table rollbacks, and writes to a second database that the idle timeout
// closes between them. After a cut, what its keys hold must be what some
// prefix of its writes left, all the keys of a batch or a table rollback
// together; with --sync full that prefix holds every acknowledged write.

// keyState is one key's state in a model: absent, or a value, with its
// expiry between expLo and expHi (ms) when it has a TTL.
type keyState struct {
	present      bool
	value        string
	expLo, expHi int64 // 0: no TTL; expHi 0 with expLo set: unbounded
}

// matches reports whether what a read found at now (ms) may be s.
func (s keyState) matches(found bool, value string, now int64) bool {
	const slack = 20
	if !found {
		return !s.present || (s.expLo != 0 && now+slack >= s.expLo)
	}
	if !s.present || s.value != value {
		return false
	}
	return s.expLo == 0 || s.expHi == 0 || now-slack < s.expHi
}

// extraOp is one write of an extra client: the state of every one of its
// keys after it. wild: the state is unknown (a table rollback whose
// result was not read), any whole state the keys held before will do.
type extraOp struct {
	kind          string
	issued, acked int64
	after         []keyState
	wild          bool
}

type extraClient struct {
	name   string
	kind   string // big, batch, ttl, rbkey, rbtable, idle
	db     string // "app" or "idle"
	table  string
	keys   []string
	base   []keyState
	ops    []extraOp
	etag   string // big: the key's ETag, "" when absent
	seen   map[string]bool
	failed atomic.Bool
}

func (c *extraClient) current() []keyState {
	if len(c.ops) == 0 {
		return c.base
	}
	return c.ops[len(c.ops)-1].after
}

func (r *powerCutRun) initExtras() {
	add := func(name, kind, db, table string, keys ...string) {
		r.extras = append(r.extras, &extraClient{name: name, kind: kind, db: db, table: table, keys: keys, seen: map[string]bool{}})
	}
	add("big", "big", "app", sqlitekv.DefaultTable, "big-0")
	add("batch", "batch", "app", sqlitekv.DefaultTable, "batch-0", "batch-1", "batch-2")
	add("ttl", "ttl", "app", sqlitekv.DefaultTable, "ttl-0")
	add("rbkey", "rbkey", "app", sqlitekv.DefaultTable, "rbkey-0")
	add("rbtable", "rbtable", "app", "rb", "rb-0", "rb-1", "rb-2", "rb-3")
	add("idle", "idle", "idle", sqlitekv.DefaultTable, "idle-0", "idle-1")
}

// withDB gives fn a lease on the client's database, or nil when the file
// is not there.
func (r *powerCutRun) withExtraDB(c *extraClient, fn func(db *actors.DB)) {
	if c.db == "app" {
		fn(r.live.db)
		return
	}
	db, err := r.live.reg.Open(context.Background(), c.db, false, false)
	if sqlitekv.CodeOf(err) == sqlitekv.CodeDatabaseNotFound {
		fn(nil)
		return
	}
	if err != nil {
		r.t.Fatalf("cut %d: open %s: %v", r.cycle, c.db, err)
	}
	defer db.Release()
	fn(db)
}

// readExtra reads c's keys; for each found key its newest history entry
// must be its value. etag is the first key's ETag.
func (r *powerCutRun) readExtra(c *extraClient) (found []bool, values []string, etag string) {
	found, values, etag, _ = r.readExtraSoft(c, false)
	return found, values, etag
}

// expiries reads when c's keys expire (0: never, or absent).
func (r *powerCutRun) expiries(c *extraClient) []int64 {
	exp := make([]int64, len(c.keys))
	r.withExtraDB(c, func(db *actors.DB) {
		if db == nil {
			return
		}
		for i, key := range c.keys {
			if e, err := db.Get(context.Background(), sqlitekv.GetRequest{Table: c.table, Key: key}); err == nil {
				exp[i] = e.ExpireAt
			}
		}
	})
	return exp
}

// readExtraSoft is readExtra; with soft, a failed read (kvd shutting
// down, the power off) returns ok false instead of failing the test.
func (r *powerCutRun) readExtraSoft(c *extraClient, soft bool) (found []bool, values []string, etag string, ok bool) {
	ok = true
	found, values = make([]bool, len(c.keys)), make([]string, len(c.keys))
	r.withExtraDB(c, func(db *actors.DB) {
		if db == nil {
			return
		}
		for i, key := range c.keys {
			e, err := db.Get(context.Background(), sqlitekv.GetRequest{Table: c.table, Key: key})
			switch code := sqlitekv.CodeOf(err); {
			case code == sqlitekv.CodeKeyNotFound || code == sqlitekv.CodeKeyExpired:
				continue
			case err != nil && soft:
				ok = false
				return
			case err != nil:
				r.t.Fatalf("cut %d: read %s/%s: %v", r.cycle, c.table, key, err)
			}
			found[i], values[i] = true, string(e.Value)
			if i == 0 {
				etag = `"` + strconv.FormatInt(e.Version, 10) + `"`
			}
			page, err := db.HistoryPage(context.Background(), sqlitekv.HistoryRequest{Table: c.table, Key: key, Limit: 1})
			if err != nil && soft {
				ok = false
				return
			}
			if err != nil {
				r.t.Fatalf("cut %d: history of %s/%s: %v", r.cycle, c.table, key, err)
			}
			if len(page.Versions) == 0 || string(page.Versions[0].Entry.Value) != string(e.Value) {
				r.t.Errorf("cut %d: %s/%s holds %.60q but its newest version is %.200v", r.cycle, c.table, key, e.Value, page.Versions)
			}
		}
	})
	return found, values, etag, ok
}

// startExtras takes what the keys hold now as each model's base.
func (r *powerCutRun) startExtras() {
	now := time.Now().UnixMilli()
	for _, c := range r.extras {
		found, values, etag := r.readExtra(c)
		exp := r.expiries(c)
		c.base, c.ops, c.etag = make([]keyState, len(c.keys)), nil, ""
		c.failed.Store(false)
		for i := range c.keys {
			if found[i] {
				c.base[i] = keyState{present: true, value: values[i], expLo: exp[i], expHi: exp[i]}
			}
		}
		if found[0] {
			c.etag = etag
			c.seen[values[0]] = true
		}
		if c.kind == "rbtable" {
			if !wholeTable(found, values) {
				r.t.Errorf("cut %d: table rb holds %v %v: not one state", r.cycle, found, values)
			}
		}
		_ = now
	}
}

func wholeTable(found []bool, values []string) bool {
	for i := range found {
		if found[i] != found[0] || values[i] != values[0] {
			return false
		}
	}
	return true
}

// checkExtras compares each extra client's keys with its model after a
// cut (r.cycle-1's). It returns the horizon of the app database's clients
// (the latest issue time of a write that survived: every write
// acknowledged before it must have survived too), the acknowledged writes
// lost, and a function that checks the horizon once it is known in full.
func (r *powerCutRun) checkExtras() (horizon int64, lost int, checkHorizon func(int64)) {
	t := r.t
	type kept struct{ lo, hi int }
	keptBy := make([]kept, len(r.extras))
	for ci, c := range r.extras {
		found, values, _ := r.readExtra(c)
		now := time.Now().UnixMilli()
		if c.kind == "rbtable" && !wholeTable(found, values) {
			t.Errorf("cut %d: table rb holds %v %v after the cut: a table rollback or batch left half", r.cycle-1, found, values)
		}
		lo, hi := -1, -1
		for k := 0; k <= len(c.ops); k++ {
			var st []keyState
			if k == 0 {
				st = c.base
			} else if c.ops[k-1].wild {
				// any whole state a table of this client held: found in seen
				if wholeTable(found, values) && (!found[0] || c.seen[values[0]]) {
					if lo < 0 {
						lo = k
					}
					hi = k
				}
				continue
			} else {
				st = c.ops[k-1].after
			}
			ok := true
			for i := range c.keys {
				if !st[i].matches(found[i], values[i], now) {
					ok = false
					break
				}
			}
			if ok {
				if lo < 0 {
					lo = k
				}
				hi = k
			}
		}
		if lo < 0 {
			short := make([]string, len(values))
			for i, v := range values {
				short[i] = fmt.Sprintf("%v:%.40q", found[i], v)
			}
			t.Errorf("cut %d: %s's keys hold %v, which no prefix of its %d writes left (%s)", r.cycle-1, c.name, short, len(c.ops), c.describe())
			continue
		}
		keptBy[ci] = kept{lo, hi}
		acked := 0
		for _, op := range c.ops {
			if op.acked != 0 {
				acked++
			}
		}
		r.report.checked += acked
		r.report.extraChecked += acked
		if hi < acked {
			lost += acked - hi
			if r.mode == sqlitekv.SyncFull {
				t.Errorf("cut %d: %s kept at most %d of its %d acknowledged writes (%s)", r.cycle-1, c.name, hi, acked, c.describe())
			}
		}
		if c.db == "app" && lo > 0 {
			horizon = max(horizon, c.ops[lo-1].issued)
		}
	}
	return horizon, lost, func(horizon int64) {
		for ci, c := range r.extras {
			if c.db != "app" {
				continue // another database's log: no order with the app's
			}
			for j, op := range c.ops {
				if op.acked != 0 && op.acked <= horizon && j >= keptBy[ci].hi {
					t.Errorf("cut %d: %s's write %d (%s) is lost, though a write sent after it was acknowledged survived", r.cycle-1, c.name, j, op.kind)
				}
			}
		}
	}
}

func (c *extraClient) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "base %s;", statesString(c.base))
	from := max(0, len(c.ops)-6)
	for j, op := range c.ops[from:] {
		fmt.Fprintf(&b, " #%d %s acked=%v wild=%v -> %s;", from+j, op.kind, op.acked != 0, op.wild, statesString(op.after))
	}
	return b.String()
}

func statesString(st []keyState) string {
	parts := make([]string, len(st))
	for i, s := range st {
		if !s.present {
			parts[i] = "absent"
		} else {
			parts[i] = fmt.Sprintf("%.30q(len %d,exp %d..%d)", s.value, len(s.value), s.expLo, s.expHi)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// runExtra runs one extra client until the power goes or the clock
// reaches stopAt.
func (r *powerCutRun) runExtra(k *kvdOnDisk, c *extraClient, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; r.stopAt == 0 || r.clock.Load() < r.stopAt; i++ {
		if r.disk.powerOff() {
			return
		}
		if i == 2000 {
			return
		}
		var err error
		switch c.kind {
		case "big":
			err = r.bigOp(ctx, k, c, rng)
		case "batch":
			err = r.batchOp(ctx, k, c, rng)
		case "ttl":
			err = r.ttlOp(ctx, k, c, rng)
		case "rbkey":
			err = r.rbKeyOp(ctx, k, c, rng)
		case "rbtable":
			err = r.rbTableOp(ctx, k, c, rng)
			time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		case "idle":
			err = r.idleOp(ctx, k, c, rng)
		}
		if err != nil {
			if !r.disk.powerOff() && !r.shuttingDown.Load() {
				r.t.Errorf("cut %d: %s's write failed with the power on: %v", r.cycle, c.name, err)
				r.disk.cutNow()
			}
			return
		}
	}
}

type answer struct {
	status int
	body   []byte
	header http.Header
}

func (k *kvdOnDisk) do(ctx context.Context, client *http.Client, method, rawURL string, body []byte, header map[string]string) (answer, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return answer{}, err
	}
	for h, v := range header {
		req.Header.Set(h, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{resp.StatusCode, b, resp.Header}, nil
}

// write sends a write and records it in c's model: after is the state it
// leaves. A 2xx answer acknowledges it; any other fails the client (an
// error with the power on).
func (r *powerCutRun) write(ctx context.Context, k *kvdOnDisk, c *extraClient, kind, method, rawURL string, body []byte, header map[string]string, after []keyState, wild bool) (answer, error) {
	op := extraOp{kind: kind, issued: r.clock.Load(), after: after, wild: wild}
	defer func() { r.tally(c.ops[len(c.ops)-1]) }()
	a, err := k.do(ctx, r.http, method, rawURL, body, header)
	if err == nil && (a.status < 200 || a.status > 299) {
		err = fmt.Errorf("%s %s: %d %.300s", method, rawURL, a.status, a.body)
	}
	if err == nil {
		op.acked = r.clock.Add(1)
	}
	c.ops = append(c.ops, op)
	return a, err
}

func (k *kvdOnDisk) base() string { return strings.TrimSuffix(k.url, "kv/") }

func (k *kvdOnDisk) keyURL(c *extraClient, key, query string) string {
	op := ""
	if i := strings.Index(key, "/"); i >= 0 {
		key, op = key[:i], key[i:]
	}
	u := k.url + url.PathEscape(key) + op + "?db=" + c.db + "&create_db_if_missing=true"
	if c.table != sqlitekv.DefaultTable {
		u += "&table=" + c.table
	}
	if query != "" {
		u += "&" + query
	}
	return u
}

func (r *powerCutRun) uniqueValue(c *extraClient, size int) string {
	head := fmt.Sprintf("%s cut %d op %d ", c.name, r.cycle, len(c.ops))
	if size <= len(head) {
		return head
	}
	return head + strings.Repeat("b", size-len(head))
}

func with(st []keyState, i int, s keyState) []keyState {
	out := append([]keyState(nil), st...)
	out[i] = s
	return out
}

// bigOp: CAS puts of values of 1 MiB and more (and small ones), and CAS
// deletes, on one key.
func (r *powerCutRun) bigOp(ctx context.Context, k *kvdOnDisk, c *extraClient, rng *rand.Rand) error {
	cur := c.current()
	hdr := map[string]string{"Content-Type": "application/octet-stream"}
	if c.etag == "" {
		hdr["If-None-Match"] = "*"
	} else {
		hdr["If-Match"] = c.etag
	}
	if cur[0].present && rng.IntN(4) == 0 {
		_, err := r.write(ctx, k, c, "cas-delete", http.MethodDelete, k.keyURL(c, c.keys[0], ""), nil, hdr, with(cur, 0, keyState{}), false)
		if err == nil {
			c.etag = ""
		}
		return err
	}
	size := 100 + rng.IntN(3000)
	kind := "cas-put-small"
	if rng.IntN(2) == 0 {
		size, kind = 1<<20+rng.IntN(512<<10), "cas-put-large"
	}
	v := r.uniqueValue(c, size)
	a, err := r.write(ctx, k, c, kind, http.MethodPut, k.keyURL(c, c.keys[0], ""), []byte(v), hdr, with(cur, 0, keyState{present: true, value: v}), false)
	if err == nil {
		c.etag = a.header.Get("ETag")
	}
	return err
}

// batchOp: batch sets of all the keys, or of some, and batch deletes.
func (r *powerCutRun) batchOp(ctx context.Context, k *kvdOnDisk, c *extraClient, rng *rand.Rand) error {
	cur := c.current()
	u := k.url + "batch/"
	q := "?db=" + c.db + "&create_db_if_missing=true"
	if rng.IntN(4) == 0 {
		var keys []string
		after := append([]keyState(nil), cur...)
		for i, key := range c.keys {
			if rng.IntN(2) == 0 {
				keys = append(keys, key)
				after[i] = keyState{}
			}
		}
		if len(keys) == 0 {
			keys, after = c.keys, make([]keyState, len(c.keys))
		}
		body, _ := json.Marshal(map[string]any{"keys": keys})
		_, err := r.write(ctx, k, c, "batch-delete", http.MethodPost, u+"delete"+q, body, map[string]string{"Content-Type": "application/json"}, after, false)
		return err
	}
	type item struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	var items []item
	after := append([]keyState(nil), cur...)
	for i, key := range c.keys {
		if i == 0 || rng.IntN(3) != 0 {
			size := rng.IntN(100)
			if rng.IntN(4) == 0 {
				size = 4096 + rng.IntN(8192) // kept in history (largevalues.go)
			}
			v := r.uniqueValue(c, size) + key
			items = append(items, item{key, v})
			after[i] = keyState{present: true, value: v}
		}
	}
	body, _ := json.Marshal(map[string]any{"items": items})
	_, err := r.write(ctx, k, c, "batch-set", http.MethodPost, u+"set"+q, body, map[string]string{"Content-Type": "application/json"}, after, false)
	return err
}

// ttlOp: puts with a TTL of a second (which the sweep expires), puts
// without, deletes.
func (r *powerCutRun) ttlOp(ctx context.Context, k *kvdOnDisk, c *extraClient, rng *rand.Rand) error {
	cur := c.current()
	now := time.Now().UnixMilli()
	if cur[0].present && !(cur[0].expLo != 0 && now >= cur[0].expLo-50) && rng.IntN(5) == 0 {
		_, err := r.write(ctx, k, c, "delete", http.MethodDelete, k.keyURL(c, c.keys[0], ""), nil, nil, with(cur, 0, keyState{}), false)
		return err
	}
	if cur[0].present && cur[0].expLo != 0 && now < cur[0].expHi+50 && now >= cur[0].expLo-50 {
		time.Sleep(60 * time.Millisecond) // let it expire one way or the other before writing again
	}
	v := r.uniqueValue(c, rng.IntN(200))
	hdr := map[string]string{"Content-Type": "text/plain"}
	if rng.IntN(3) == 0 {
		_, err := r.write(ctx, k, c, "put", http.MethodPut, k.keyURL(c, c.keys[0], ""), []byte(v), hdr, with(cur, 0, keyState{present: true, value: v}), false)
		return err
	}
	issued := time.Now().UnixMilli()
	op := len(c.ops)
	_, err := r.write(ctx, k, c, "put-ttl", http.MethodPut, k.keyURL(c, c.keys[0], "ttl=1"), []byte(v), hdr, with(cur, 0, keyState{present: true, value: v, expLo: issued + 1000}), false)
	if err == nil {
		c.ops[op].after[0].expHi = time.Now().UnixMilli() + 1000
	}
	return err
}

// rbKeyOp: puts, deletes and rollbacks of one step of one key.
func (r *powerCutRun) rbKeyOp(ctx context.Context, k *kvdOnDisk, c *extraClient, rng *rand.Rand) error {
	cur := c.current()
	// The states the key went through (as history has them), this cycle.
	var states []keyState
	states = append(states, c.base[0])
	for _, op := range c.ops {
		if op.after[0] != states[len(states)-1] {
			states = append(states, op.after[0])
		}
	}
	switch roll := rng.IntN(10); {
	case roll < 4 && len(states) >= 2:
		target := states[len(states)-2]
		a, err := r.write(ctx, k, c, "rollback-key", http.MethodPost, k.keyURL(c, c.keys[0]+"/rollback", "steps=1"), nil, nil, []keyState{target}, false)
		if err == nil && target.present && !strings.Contains(string(a.body), strings.Fields(target.value)[0]) {
			r.t.Errorf("cut %d: rollback of %s answered %.200s, want %.60q", r.cycle, c.keys[0], a.body, target.value)
		}
		return err
	case roll < 6 && cur[0].present:
		_, err := r.write(ctx, k, c, "delete", http.MethodDelete, k.keyURL(c, c.keys[0], ""), nil, nil, []keyState{{}}, false)
		return err
	default:
		size := rng.IntN(100)
		if rng.IntN(3) == 0 {
			size = 4096 + rng.IntN(10000)
		}
		v := r.uniqueValue(c, size)
		_, err := r.write(ctx, k, c, "put", http.MethodPut, k.keyURL(c, c.keys[0], ""), []byte(v), map[string]string{"Content-Type": "text/plain"}, []keyState{{present: true, value: v}}, false)
		return err
	}
}

// rbTableOp: batch sets of every key of table rb to one value, and
// rollbacks of the whole table to an instant a little before. The keys
// always hold one value together, or none: a rollback or a batch that
// survived in part would show.
func (r *powerCutRun) rbTableOp(ctx context.Context, k *kvdOnDisk, c *extraClient, rng *rand.Rand) error {
	cur := c.current()
	q := "?db=" + c.db + "&create_db_if_missing=true&table=" + c.table
	if rng.IntN(3) == 0 {
		at := time.Now().Add(-time.Duration(rng.IntN(300)+1) * time.Millisecond)
		ts := fmt.Sprintf("%d.%03d", at.Unix(), at.Nanosecond()/1e6)
		body := []byte(`{}`)
		a, err := r.write(ctx, k, c, "rollback-table", http.MethodPost, k.base()+"kv/rollback"+q+"&confirm=yes&to_timestamp="+ts, body, map[string]string{"Content-Type": "application/json"}, nil, true)
		if err != nil && a.status == http.StatusConflict || err != nil && strings.Contains(string(a.body), "TIME_TRAVEL_GAP") {
			// history cannot tell: nothing was written
			c.ops[len(c.ops)-1].after, c.ops[len(c.ops)-1].wild = cur, false
			c.ops[len(c.ops)-1].kind = "rollback-table-gap"
			return nil
		}
		if err != nil {
			return err
		}
		// What did it leave? Read it back (the client is the table's only writer).
		found, values, _, ok := r.readExtraSoft(c, true)
		if !ok {
			return nil // acknowledged, but what it left is not known: the op stays wild
		}
		if !wholeTable(found, values) {
			r.t.Errorf("cut %d: table rb holds %v %.200v after an acknowledged rollback to %s (power off: %v), answer %.300s: not one state\n%s", r.cycle, found, values, ts, r.disk.powerOff(), a.body, r.dumpRB(c))
		}
		after := make([]keyState, len(c.keys))
		for i := range after {
			after[i] = keyState{present: found[i], value: values[i]}
		}
		if found[0] && !c.seen[values[0]] && !(cur[0].present && cur[0].value == values[0]) && !(c.base[0].present && c.base[0].value == values[0]) {
			// a state of a cycle before: fine, but mark it seen
		}
		if found[0] {
			c.seen[values[0]] = true
		}
		op := &c.ops[len(c.ops)-1]
		op.after, op.wild = after, false
		return nil
	}
	v := r.uniqueValue(c, rng.IntN(100))
	if rng.IntN(4) == 0 {
		v = r.uniqueValue(c, 4096+rng.IntN(4096))
	}
	type item struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	var items []item
	after := make([]keyState, len(c.keys))
	for i, key := range c.keys {
		items = append(items, item{key, v})
		after[i] = keyState{present: true, value: v}
	}
	c.seen[v] = true
	body, _ := json.Marshal(map[string]any{"items": items})
	_, err := r.write(ctx, k, c, "batch-set", http.MethodPost, k.url+"batch/set"+q, body, map[string]string{"Content-Type": "application/json"}, after, false)
	return err
}

// idleOp: puts and deletes on a second database, with pauses longer than
// the idle timeout, so that it is closed (checkpointed, its log deleted)
// and opened again between them.
func (r *powerCutRun) idleOp(ctx context.Context, k *kvdOnDisk, c *extraClient, rng *rand.Rand) error {
	time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
	open := false
	for _, s := range k.reg.Stats() {
		open = open || strings.HasSuffix(s.Path, "idle.db")
	}
	if !open {
		r.tallyKind("idle db closed before a write")
	}
	cur := c.current()
	i := rng.IntN(len(c.keys))
	if cur[i].present && rng.IntN(4) == 0 {
		_, err := r.write(ctx, k, c, "delete", http.MethodDelete, k.keyURL(c, c.keys[i], ""), nil, nil, with(cur, i, keyState{}), false)
		return err
	}
	size := rng.IntN(200)
	if rng.IntN(5) == 0 {
		size = 4096 + rng.IntN(8192)
	}
	v := r.uniqueValue(c, size)
	_, err := r.write(ctx, k, c, "put", http.MethodPut, k.keyURL(c, c.keys[i], ""), []byte(v), map[string]string{"Content-Type": "text/plain"}, with(cur, i, keyState{present: true, value: v}), false)
	return err
}

var tallyMu sync.Mutex

func (r *powerCutRun) tallyKind(kind string) {
	tallyMu.Lock()
	defer tallyMu.Unlock()
	if r.report.kinds == nil {
		r.report.kinds = map[string]int{}
	}
	r.report.kinds[kind]++
}

func (r *powerCutRun) tally(op extraOp) {
	if op.acked != 0 {
		r.tallyKind(op.kind + " acked")
	} else {
		r.tallyKind(op.kind + " unacked")
	}
}

// dumpRB shows what the file holds of table rb, read by a connection of
// its own (the OS's view: every write, synced or not).
func (r *powerCutRun) dumpRB(c *extraClient) string {
	conn, err := sqlite3.OpenFlags(r.dbPath(), sqlite3.OPEN_READONLY)
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	var b strings.Builder
	for _, q := range []string{
		`SELECT key, version, updated_at, substr(CAST(value AS TEXT),1,30) FROM "rb" ORDER BY key`,
		`SELECT op_number, key, op, ts, recorded, seq, substr(CAST(value AS TEXT),1,30) FROM "rb:history" ORDER BY op_number DESC LIMIT 40`,
		`SELECT key, first_ts, lost_op, lost_ts, first_op FROM "rb:horizon"`,
		`SELECT key, head FROM "rb:removed"`,
	} {
		stmt, _, err := conn.Prepare(q)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", q, err)
			continue
		}
		fmt.Fprintf(&b, "%s\n", q)
		for stmt.Step() {
			for i := range stmt.ColumnCount() {
				fmt.Fprintf(&b, " %s", stmt.ColumnText(i))
			}
			b.WriteString("\n")
		}
		stmt.Close()
	}
	fmt.Fprintf(&b, "model: %s\n", c.describe())
	return b.String()
}
