package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/kvd/kvd/sqlitekv"
)

const (
	apiPrefix = "/api/v1/sqlite"
	kvPrefix  = apiPrefix + "/kv/"
)

// handler serves one route. t is what the path and query address: for a
// /kv/ route its key or table operation; for every API route the query,
// checked against what the route takes.
type handler func(s *Server, w http.ResponseWriter, r *http.Request, t target)

// route is one endpoint: its method, its path as the API document writes
// it, and its handler.
type route struct {
	method, path string
	handle       handler
}

// routes is every endpoint kvd serves: the one table the router, the query
// parameters each route takes (its line in apiOps), the metrics labels and
// the words reserved under /kv/ all come from.
var routes = withHEAD([]route{
	{get, "/healthz", (*Server).handleHealthz},
	{get, "/readyz", (*Server).handleReadyz},
	{get, "/metrics", (*Server).handleMetrics},
	{get, "/api/v1/openapi.json", (*Server).handleAPIDoc},
	{get, apiPrefix + "/db/backup", (*Server).handleBackup},
	{post, apiPrefix + "/db/create", (*Server).handleCreateDB},
	{post, apiPrefix + "/db/release", (*Server).handleReleaseDB},
	{get, apiPrefix + "/kv", (*Server).handleListKeys},

	{get, kvPrefix + "{key}", (*Server).handleGetKey},
	{head, kvPrefix + "{key}", (*Server).handleHeadKey},
	{put, kvPrefix + "{key}", (*Server).handlePutKey},
	{del, kvPrefix + "{key}", (*Server).handleDeleteKey},
	{post, kvPrefix + "{key}/incr", (*Server).handleIncr},
	{post, kvPrefix + "{key}/decr", (*Server).handleDecr},
	{get, kvPrefix + "{key}/history", (*Server).handleHistory},
	{get, kvPrefix + "{key}/snapshot", (*Server).handleKeySnapshot},
	{post, kvPrefix + "{key}/rollback", (*Server).handleRollbackKey},
	{post, kvPrefix + "{key}/push", (*Server).handlePush},
	{post, kvPrefix + "{key}/pop", (*Server).handlePop},
	{post, kvPrefix + "{key}/remove", (*Server).handleRemove},
	{get, kvPrefix + "{key}/watch", (*Server).handleWatchKey},

	{post, kvPrefix + "batch/get", (*Server).handleBatchGet},
	{post, kvPrefix + "batch/set", (*Server).handleBatchSet},
	{post, kvPrefix + "batch/delete", (*Server).handleBatchDelete},
	{get, kvPrefix + "snapshot", (*Server).handleTableSnapshot},
	{get, kvPrefix + "diff", (*Server).handleDiff},
	{post, kvPrefix + "rollback", (*Server).handleRollbackTable},
	{get, kvPrefix + "watch", (*Server).handleWatchTable},
})

// streams are the GET routes whose answer is a stream: a watch follows
// writes until its client leaves, a backup copies a whole database. HEAD
// of one would start that work for no body, so they take GET alone (a
// HEAD is answered 405, Allow: GET, OPTIONS).
var streams = map[string]bool{
	apiPrefix + "/db/backup": true,
	kvPrefix + "{key}/watch": true,
	kvPrefix + "watch":       true,
}

// withHEAD adds a HEAD route beside each GET route that does not stream
// and has no HEAD of its own, served by the GET's handler: a server must
// answer HEAD wherever it answers GET (RFC 9110 §9.1; uptime monitors send
// HEAD /healthz), with the same status and headers, and net/http drops
// the body. Its label is its own ("HEAD /healthz"), as HEAD of a key's is.
func withHEAD(rs []route) []route {
	for _, r := range rs {
		hasHEAD := slices.ContainsFunc(rs, func(o route) bool { return o.method == head && o.path == r.path })
		if r.method == get && !streams[r.path] && !hasHEAD {
			rs = append(rs, route{head, r.path, r.handle})
		}
	}
	return rs
}

const (
	get, head, put, post, del = http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete
)

// label names a route in metrics: its path without the API prefix, and no
// method a client made up, so the series stay few.
func label(method, path string) string {
	return metricMethod(method) + " " + strings.TrimPrefix(path, apiPrefix)
}

// endpoint is a route made ready to serve: its label, the query
// parameters it takes (nil: any, for probes and scrapers), and whether an
// API route takes no body.
type endpoint struct {
	handle handler
	label  string
	takes  paramSet
	noBody bool
}

func (e endpoint) serve(s *Server, w http.ResponseWriter, r *http.Request, t target) {
	labelRoute(w, e.label)
	if e.takes != nil {
		var err error
		if t.q, err = parseQuery(r); err == nil {
			err = e.takes.refuseOthers(t.q)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if e.noBody {
		if err := refuseBody(r, e.label); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if r.Method != get && r.Method != head {
		var err error
		if t.versions, err = writeConditions(r, t); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	e.handle(s, w, r, t)
}

// router dispatches by the route table: httprouter for fixed paths, and
// for /kv/... the escaped path decides (httprouter cannot tell
// /kv/batch/get from a key, nor see %2F), so it also says which methods a
// /kv/ path takes (Allow).
type router struct {
	fixed    *httprouter.Router
	kv       map[kvRoute]endpoint
	keyOps   map[string]bool // operation words a raw trailing segment may name
	tableOps map[string]bool // paths directly under /kv/ of table-level endpoints
	paths    map[string]bool // the fixed paths, for labels of refused requests
}

// kvRoute is a /kv/ route's place in router.kv.
type kvRoute struct {
	method, op string
	table      bool
}

func (s *Server) newRouter() *router {
	rt := &router{fixed: httprouter.New(), kv: map[kvRoute]endpoint{},
		keyOps: map[string]bool{}, tableOps: map[string]bool{}, paths: map[string]bool{}}
	// A path that does not match is a JSON 404, not a redirect to a guess.
	rt.fixed.RedirectTrailingSlash, rt.fixed.RedirectFixedPath = false, false
	rt.fixed.NotFound = http.HandlerFunc(s.notFound)
	rt.fixed.MethodNotAllowed = http.HandlerFunc(s.notAllowed)
	rt.fixed.PanicHandler = s.panicked
	inputs := apiInputs()
	for _, r := range routes {
		e := endpoint{handle: r.handle, label: label(r.method, r.path)}
		if strings.HasPrefix(r.path, apiPrefix) {
			in := inputs[r.method+" "+r.path]
			e.takes = in.params
			// A GET's or HEAD's body has no meaning in HTTP, and what one
			// could carry (a prefix, say) changes no data: left alone.
			e.noBody = !in.body && r.method != get && r.method != head
		}
		rest, underKV := strings.CutPrefix(r.path, kvPrefix)
		if !underKV {
			rt.fixed.Handle(r.method, r.path, func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
				e.serve(s, w, req, target{})
			})
			rt.paths[r.path] = true
			continue
		}
		k := kvRoute{method: r.method}
		if op, isKey := strings.CutPrefix(rest, "{key}"); isKey {
			k.op = strings.TrimPrefix(op, "/")
			if k.op != "" {
				rt.keyOps[k.op] = true
			}
		} else {
			k.op, k.table = rest, true
			rt.tableOps[rest] = true
		}
		rt.kv[k] = e
	}
	return rt
}

// dispatch serves r by the route table: a path under /kv/, whatever its
// method, goes to routeKV, which alone knows what the path addresses and
// so which methods it takes (httprouter would answer OPTIONS and 405 with
// those of every /kv/ route); any other to httprouter. Panics are
// answered alike.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, kvPrefix) {
		s.router.fixed.ServeHTTP(w, r)
		return
	}
	defer func() {
		if p := recover(); p == http.ErrAbortHandler {
			panic(p) // no answer at all (bodyWatch.Read)
		} else if p != nil {
			s.panicked(w, r, p)
		}
	}()
	s.routeKV(w, r)
}

// panicked answers a request whose handler panicked.
func (s *Server) panicked(w http.ResponseWriter, r *http.Request, p any) {
	s.writeError(w, r, fmt.Errorf("panic: %v", p))
}

// ReservedKeys are the one-word paths of table-level endpoints directly
// under /kv/ (snapshot, diff, rollback, watch): encodeURIComponent leaves them as
// they are, so a client could never address a key named so, and no write
// may create one. Directory mode is told them too (sqlitekv.Options), so
// it imports no file of those names.
func ReservedKeys() []string {
	var words []string
	for _, r := range routes {
		if word, ok := strings.CutPrefix(r.path, kvPrefix); ok && !strings.ContainsAny(word, "/{") {
			words = append(words, word)
		}
	}
	return words
}

// validateNewKey is sqlitekv.ValidateKey for a key a write may create.
func (s *Server) validateNewKey(key string) error {
	if s.reserved[key] {
		return sqlitekv.Errorf(sqlitekv.CodeInvalidParameters, "Key %q is reserved for the table-level endpoint of that name", key)
	}
	return sqlitekv.ValidateKey(key)
}

// target is what a request addresses: for /kv/... a key and the operation
// on it ("" for the key itself), or a table-level operation with no key;
// and its query parameters.
type target struct {
	key      string
	op       string
	table    bool // a table-level operation: no key
	q        *query
	versions sqlitekv.Versions // a write's If-Match and If-None-Match
}

// parseKVPath decides from the escaped path, where "a%2Fincr" is a key and
// "a/incr" is the incr operation on key "a".
func (rt *router) parseKVPath(escaped string) (target, error) {
	rest, ok := strings.CutPrefix(escaped, kvPrefix)
	if !ok {
		// The prefix itself came escaped ("kv%2Fa", "%6Bv/a"): no /kv/
		// route takes it, rather than a key named by the whole path.
		return target{}, sqlitekv.Errorf(codeNotFound, "Unknown endpoint")
	}
	if rt.tableOps[rest] {
		return target{op: rest, table: true}, nil
	}
	var t target
	if i := strings.LastIndexByte(rest, '/'); i >= 0 && rt.keyOps[rest[i+1:]] {
		rest, t.op = rest[:i], rest[i+1:]
	}
	key, err := url.PathUnescape(rest)
	if err != nil {
		return t, invalidParam("Key is not a valid percent-encoded path")
	}
	if err := sqlitekv.ValidateKey(key); err != nil {
		return t, err
	}
	t.key = key
	return t, nil
}

// escapedPath is the path as the client sent it: the parser keeps it in
// RawPath whenever escaping Path would not give it back. URL.EscapedPath
// is not that. It unescapes RawPath again to check it (a quarter of a
// microsecond on every request whose key has an escaped slash), and when
// the path holds a byte that should have been escaped (UTF-8 sent raw)
// it escapes Path afresh, which turns an escaped slash into a real one:
// the key "café/incr" became an incr of "café".
func escapedPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.EscapedPath()
}

// routeKV dispatches a /kv/... request.
func (s *Server) routeKV(w http.ResponseWriter, r *http.Request) {
	t, err := s.router.parseKVPath(escapedPath(r.URL))
	e, known := s.router.kv[kvRoute{r.Method, t.op, t.table}]
	switch {
	case err != nil:
		labelRoute(w, s.router.kvLabel(r.Method, t))
		s.writeError(w, r, err)
	case r.Method == http.MethodOptions:
		// As httprouter answers it for a fixed path: 200, Allow, no body.
		labelRoute(w, s.router.kvLabel(r.Method, t))
		w.Header().Set("Allow", s.router.allowed(t))
	case !known:
		s.notFoundOrNotAllowed(w, r, t)
	case !t.table && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodDelete && s.reserved[t.key]:
		// A key named like a table endpoint may be read and deleted, not written.
		labelRoute(w, e.label)
		s.writeError(w, r, s.validateNewKey(t.key))
	default:
		e.serve(s, w, r, t)
	}
}

// notFoundOrNotAllowed answers a /kv/ request no route takes: 405 when
// its path names an endpoint another method serves (with Allow, which a
// 405 must carry: RFC 9110 §15.5.6), else 404.
func (s *Server) notFoundOrNotAllowed(w http.ResponseWriter, r *http.Request, t target) {
	labelRoute(w, s.router.kvLabel(r.Method, t))
	if allow := s.router.allowed(t); allow != "" {
		w.Header().Set("Allow", allow)
		s.notAllowed(w, r)
		return
	}
	s.notFound(w, r)
}

// allowed lists the methods the /kv/ routes of t's operation take, and
// OPTIONS, sorted, as httprouter lists a fixed path's; "" when none does.
func (rt *router) allowed(t target) string {
	var methods []string
	for k := range rt.kv {
		if k.op == t.op && k.table == t.table {
			methods = append(methods, k.method)
		}
	}
	if len(methods) == 0 {
		return ""
	}
	methods = append(methods, http.MethodOptions)
	slices.Sort(methods)
	return strings.Join(methods, ", ")
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, sqlitekv.Errorf(codeNotFound, "Unknown endpoint"))
}

// notAllowed answers 405; the caller has set Allow (httprouter does for a
// fixed path).
func (s *Server) notAllowed(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, sqlitekv.Errorf(codeMethodNotAllowed, "%s is not allowed here", r.Method))
}

// kvLabel is the label of the /kv/ route t would be under method.
func (rt *router) kvLabel(method string, t target) string {
	switch {
	case t.table:
		return label(method, kvPrefix+t.op)
	case t.op != "":
		return label(method, kvPrefix+"{key}/"+t.op)
	}
	return label(method, kvPrefix+"{key}")
}

// labelOf names the route of a request no handler labelled (one refused
// before routing: a missing token, say), without its variable parts.
func (rt *router) labelOf(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, kvPrefix) {
		t, _ := rt.parseKVPath(escapedPath(r.URL))
		return rt.kvLabel(r.Method, t)
	}
	if rt.paths[r.URL.Path] {
		return label(r.Method, r.URL.Path)
	}
	return "other"
}
