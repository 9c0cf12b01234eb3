package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKV implements the few kvd endpoints the scenarios use over a
// mutex-protected map, with faults a test can switch on.
type fakeKV struct {
	token string // when set, /api/ requests need "Bearer <token>"

	// Faults, counted in calls of that kind from 1; 0 is off.
	dropIncr   int64         // answer 200 to this incr without applying it
	dropIncrDB string        // with dropIncr: count only the incrs of this database
	doubleIncr int64         // apply this incr twice
	dropCAS    int64         // answer 200 to this successful CAS without storing it
	stallAt    int64         // this /healthz call sleeps for stall
	stall      time.Duration //

	healthz, incrs, casWrites atomic.Int64
	gets, puts                atomic.Int64

	mu      sync.Mutex
	dbs     map[string]bool
	ops     map[string]int64  // requests to each database
	dbIncrs map[string]int64  // incrs of each database
	values  map[string][]byte // db + "\x00" + key
	version map[string]int64
}

func newFake(tb testing.TB, f *fakeKV) (*fakeKV, string) {
	tb.Helper()
	if f == nil {
		f = &fakeKV{}
	}
	f.dbs, f.values, f.version = map[string]bool{}, map[string][]byte{}, map[string]int64{}
	f.ops, f.dbIncrs = map[string]int64{}, map[string]int64{}
	srv := httptest.NewServer(f) // binds 127.0.0.1
	tb.Cleanup(srv.Close)
	return f, srv.URL
}

// value reads a stored value directly, for assertions.
func (f *fakeKV) value(db, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.values[db+"\x00"+key]
	return v, ok
}

func (f *fakeKV) set(db, key string, v []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dbs[db] = true
	f.values[db+"\x00"+key] = v
	f.version[db+"\x00"+key]++
}

func (f *fakeKV) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.values)
}

// databases returns the databases that exist and how many requests each
// database name got, for assertions.
func (f *fakeKV) databases() (exist map[string]bool, ops map[string]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.dbs), maps.Clone(f.ops)
}

// keysIn counts the keys database db holds.
func (f *fakeKV) keysIn(db string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id := range f.values {
		if strings.HasPrefix(id, db+"\x00") {
			n++
		}
	}
	return n
}

const kvPath = "/api/v1/sqlite/kv/"

func (f *fakeKV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		if n := f.healthz.Add(1); n == f.stallAt {
			time.Sleep(f.stall)
		}
		w.Write([]byte("ok"))
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		fail(w, 401, "UNAUTHORIZED")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), kvPath)
	q := r.URL.Query()
	db := q.Get("db")
	if !ok || db == "" {
		fail(w, 400, "INVALID_PARAMETERS")
		return
	}
	create := q.Get("create_db_if_missing") == "true"
	f.mu.Lock()
	f.ops[db]++
	f.mu.Unlock()
	switch {
	case rest == "batch/set" && r.Method == http.MethodPost:
		f.batchSet(w, r, db, create)
	case rest == "batch/get" && r.Method == http.MethodPost:
		f.batchGet(w, r, db)
	case strings.HasSuffix(rest, "/incr") && r.Method == http.MethodPost:
		f.incr(w, r, db, unescape(strings.TrimSuffix(rest, "/incr")), create)
	case r.Method == http.MethodGet:
		f.get(w, db, unescape(rest))
	case r.Method == http.MethodPut:
		f.put(w, r, db, unescape(rest), create)
	default:
		fail(w, 405, "METHOD_NOT_ALLOWED")
	}
}

func unescape(s string) string {
	k, err := url.PathUnescape(s)
	if err != nil || strings.Contains(s, "/") {
		return "\x00bad key " + s // an unescaped slash would be an operation
	}
	return k
}

func fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"statusCode":%d,"error":%q,"code":%q,"message":"fake"}`, status, http.StatusText(status), code)
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeKV) get(w http.ResponseWriter, db, key string) {
	f.gets.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dbs[db] {
		fail(w, 404, "DATABASE_NOT_FOUND")
		return
	}
	v, ok := f.values[db+"\x00"+key]
	if !ok {
		fail(w, 404, "KEY_NOT_FOUND")
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(f.version[db+"\x00"+key], 10)))
	w.Write(v)
}

// batchGet answers as kvd does: each stored value as a JSON string.
func (f *fakeKV) batchGet(w http.ResponseWriter, r *http.Request, db string) {
	var body struct{ Keys []string }
	if json.NewDecoder(r.Body).Decode(&body) != nil {
		fail(w, 400, "INVALID_PARAMETERS")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dbs[db] {
		fail(w, 404, "DATABASE_NOT_FOUND")
		return
	}
	values := map[string]any{}
	for _, k := range body.Keys {
		values[k] = nil
		if v, ok := f.values[db+"\x00"+k]; ok {
			values[k] = map[string]string{"value": string(v), "content_type": "text/plain"}
		}
	}
	reply(w, map[string]any{"values": values})
}

func (f *fakeKV) put(w http.ResponseWriter, r *http.Request, db, key string, create bool) {
	f.puts.Add(1)
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dbs[db] && !create {
		fail(w, 404, "DATABASE_NOT_FOUND")
		return
	}
	id := db + "\x00" + key
	cur, exists := f.values[id]
	isCAS := r.URL.Query().Has("if_match") || r.Header.Get("If-Match") != ""
	if r.URL.Query().Has("if_match") && (!exists || string(cur) != r.URL.Query().Get("if_match")) ||
		r.Header.Get("If-Match") != "" && (!exists || r.Header.Get("If-Match") != strconv.Quote(strconv.FormatInt(f.version[id], 10))) {
		code := "CAS_MISMATCH"
		if !exists {
			code = "CAS_KEY_MISSING"
		}
		fail(w, 412, code)
		return
	}
	if !isCAS || f.casWrites.Add(1) != f.dropCAS {
		f.dbs[db] = true
		f.values[id] = body
		f.version[id]++
	}
	reply(w, map[string]any{"status": "ok", "success": true, "key": key, "created": !exists})
}

func (f *fakeKV) incr(w http.ResponseWriter, r *http.Request, db, key string, create bool) {
	delta := int64(1)
	if d := r.URL.Query().Get("delta"); d != "" {
		delta, _ = strconv.ParseInt(d, 10, 64)
	}
	n := f.incrs.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dbIncrs[db]++
	if f.dropIncrDB != "" {
		n = f.dbIncrs[db]
		if db != f.dropIncrDB {
			n = -1 // no fault counts this one
		}
	}
	if !f.dbs[db] && !create {
		fail(w, 404, "DATABASE_NOT_FOUND")
		return
	}
	id := db + "\x00" + key
	prev, _ := strconv.ParseInt(string(f.values[id]), 10, 64)
	next := prev + delta
	switch n {
	case f.dropIncr:
		// acknowledged, never stored
	case f.doubleIncr:
		f.values[id] = strconv.AppendInt(nil, next+delta, 10)
	default:
		f.values[id] = strconv.AppendInt(nil, next, 10)
	}
	f.dbs[db] = true
	f.version[id]++
	reply(w, map[string]any{"key": key, "value": next, "previous": prev})
}

func (f *fakeKV) batchSet(w http.ResponseWriter, r *http.Request, db string, create bool) {
	var req struct {
		Items []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"items"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Items) < 1 || len(req.Items) > 100 {
		fail(w, 400, "INVALID_PARAMETERS")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dbs[db] && !create {
		fail(w, 404, "DATABASE_NOT_FOUND")
		return
	}
	f.dbs[db] = true
	var created []string
	for _, it := range req.Items {
		id := db + "\x00" + it.Key
		if _, ok := f.values[id]; !ok {
			created = append(created, it.Key)
		}
		f.values[id] = []byte(it.Value)
		f.version[id]++
	}
	reply(w, map[string]any{"status": "ok", "success": true, "count": len(req.Items), "created": created})
}
