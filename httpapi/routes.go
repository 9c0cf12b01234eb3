package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/kvd/kvd/sqlitekv"
)

const kvPrefix = "/api/v1/sqlite/kv/"

// keyOps are the operation words a raw trailing segment may name.
var keyOps = map[string]bool{
	"incr": true, "decr": true, "history": true, "snapshot": true,
	"rollback": true, "push": true, "pop": true, "remove": true,
}

// tableOps are the paths directly under /kv/ reserved for table-level
// endpoints.
var tableOps = map[string]bool{
	"batch/get": true, "batch/set": true, "batch/delete": true,
	"snapshot": true, "diff": true, "rollback": true,
}

// kvTarget is what a /kv/... request addresses: a key and the operation on
// it ("" for the key itself), or a table-level operation with no key; and
// its query parameters.
type kvTarget struct {
	key   string
	op    string
	table bool // a table-level operation: no key
	q     query
}

// parseKVPath decides from the escaped path, where "a%2Fincr" is a key and
// "a/incr" is the incr operation on key "a".
func parseKVPath(escaped string) (kvTarget, error) {
	rest := strings.TrimPrefix(escaped, kvPrefix)
	if tableOps[rest] {
		return kvTarget{op: rest, table: true}, nil
	}
	var t kvTarget
	if i := strings.LastIndexByte(rest, '/'); i >= 0 && keyOps[rest[i+1:]] {
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

type kvHandler func(http.ResponseWriter, *http.Request, kvTarget)

type kvRoute struct {
	method, op string
	table      bool
}

// label names the route in metrics: no key, and no method a client made
// up, so the series stay few.
func (k kvRoute) label() string {
	method := metricMethod(k.method)
	switch {
	case k.table:
		return method + " /kv/" + k.op
	case k.op != "":
		return method + " /kv/{key}/" + k.op
	}
	return method + " /kv/{key}"
}

// docPath is the route's path in the API document.
func (k kvRoute) docPath() string {
	switch {
	case k.table:
		return kvDoc + "/" + k.op
	case k.op != "":
		return kvDoc + "/{key}/" + k.op
	}
	return kvDoc + "/{key}"
}

// kvEndpoint is a route's handler, its label and the query parameters it
// takes (those its operation lists in the API document), made once.
type kvEndpoint struct {
	handle kvHandler
	label  string
	takes  paramSet
}

func (s *Server) kvEndpoints() map[kvRoute]kvEndpoint {
	takes := apiQueryParams()
	endpoints := map[kvRoute]kvEndpoint{}
	for route, h := range s.kvRoutes() {
		endpoints[route] = kvEndpoint{h, route.label(), takes[route.method+" "+route.docPath()]}
	}
	return endpoints
}

func (s *Server) kvRoutes() map[kvRoute]kvHandler {
	return map[kvRoute]kvHandler{
		{http.MethodGet, "", false}:             s.handleGetKey,
		{http.MethodHead, "", false}:            s.handleHeadKey,
		{http.MethodPut, "", false}:             s.handlePutKey,
		{http.MethodDelete, "", false}:          s.handleDeleteKey,
		{http.MethodPost, "incr", false}:        s.handleIncr,
		{http.MethodPost, "decr", false}:        s.handleDecr,
		{http.MethodPost, "batch/get", true}:    s.handleBatchGet,
		{http.MethodPost, "batch/set", true}:    s.handleBatchSet,
		{http.MethodPost, "batch/delete", true}: s.handleBatchDelete,

		{http.MethodGet, "history", false}:   s.handleHistory,
		{http.MethodGet, "snapshot", false}:  s.handleKeySnapshot,
		{http.MethodPost, "rollback", false}: s.handleRollbackKey,
		{http.MethodPost, "push", false}:     s.handlePush,
		{http.MethodPost, "pop", false}:      s.handlePop,
		{http.MethodPost, "remove", false}:   s.handleRemove,

		{http.MethodGet, "snapshot", true}:  s.handleTableSnapshot,
		{http.MethodGet, "diff", true}:      s.handleDiff,
		{http.MethodPost, "rollback", true}: s.handleRollbackTable,
	}
}

// routeKV dispatches every /kv/... request. httprouter cannot tell
// /kv/batch/get from a key, nor see %2F, so the escaped path decides here.
func (s *Server) routeKV(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	t, err := parseKVPath(r.URL.EscapedPath())
	route := kvRoute{r.Method, t.op, t.table}
	endpoint, known := s.kv[route]
	if !known {
		endpoint.label = route.label()
	}
	labelRoute(w, endpoint.label)
	if err == nil {
		t.q, err = parseQuery(r)
	}
	if err == nil && known {
		err = endpoint.takes.refuseOthers(t.q)
	}
	if err == nil && !t.table && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodDelete {
		err = sqlitekv.RefuseReservedKey(t.key) // a key named like a table endpoint may be read and deleted, not written
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if known {
		endpoint.handle(w, r, t)
		return
	}
	for route := range s.kv {
		if route.op == t.op && route.table == t.table {
			s.writeError(w, r, sqlitekv.Errorf(codeMethodNotAllowed, "%s is not allowed here", r.Method))
			return
		}
	}
	s.writeError(w, r, sqlitekv.Errorf(codeNotFound, "Unknown endpoint"))
}
