package httpapi

import (
	"encoding/json"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kvd/kvd/sqlitekv"
)

// The OpenAPI 3 document is built from the tables below, and a test checks
// them against the route table both ways, so it cannot drift.

// apiParam is a parameter shared by many operations.
type apiParam struct {
	in, typ, desc string
	required      bool
}

var apiParams = map[string]apiParam{
	"key":                  {"path", "string", "The key, percent-encoded (encodeURIComponent: a `/` in the key is sent as %2F). A raw trailing /incr, /decr, /history, /snapshot, /rollback, /push, /pop, /remove or /watch names an operation.", true},
	"db":                   {"query", "string", "Database: a bare name (`app` → <data-dir>/app.db) or an absolute path inside an allowed root. A directory with `table` given is directory mode.", true},
	"table":                {"query", "string", "Table, `^[A-Za-z_][A-Za-z0-9_]{0,62}$` (default kv_store); in directory mode, the subfolder.", false},
	"path":                 {"query", "string", "JSON path inside the value, e.g. `prefs.theme`, `items[2].price`, `$.a`; `$[0].a` on a value that is an array; `$`, the whole document.", false},
	"ttl":                  {"query", "integer", "Time to live in whole seconds (> 0). A PUT without ttl clears an earlier one.", false},
	"if_match":             {"query", "string", "Compare-and-swap: the stored value, byte for byte (with `path`, the JSON at the path).", false},
	"history":              {"query", "boolean", "Record this write in the key's history (default true); false leaves a gap.", false},
	"create_db_if_missing": {"query", "boolean", "Create the database file if it is missing (default false).", false},
	"auto_create":          {"query", "boolean", "Alias of create_db_if_missing; both given and different is a 400.", false},
	"at_timestamp":         {"query", "number", "Time travel: Unix seconds; a whole second means the end of that second, a fraction (even .000, as kvd writes its times) that instant.", false},
	"rebuild":              {"query", "boolean", "Directory mode: rescan the folder before reading.", false},
	"delta":                {"query", "integer", "Positive amount (default 1).", false},
	"ref":                  {"query", "boolean", "Store a reference: the body is the key of another key of the table.", false},
	"prefix":               {"query", "string", "Only keys starting with this.", false},
	"limit":                {"query", "integer", "At most this many (default 100, max 1000; history: default 50).", false},
	"offset":               {"query", "integer", "Skip this many keys (listing without at_timestamp).", false},
	"after":                {"query", "string", "Start after this key: the previous page's next_after (listing, also at a time; snapshot; diff, also of named keys). A listing of now pages with it or with offset; after misses no key when earlier ones expire or are deleted.", false},
	"cursor":               {"query", "string", "History: continue after the previous page (its next_cursor).", false},
	"steps":                {"query", "integer", "How many of the key's last writes to undo (default 1).", false},
	"op_number":            {"query", "integer", "An op number from the key's history.", true},
	"timestamp":            {"query", "number", "Unix seconds.", true},
	"from":                 {"query", "number", "Unix seconds.", true},
	"to":                   {"query", "number", "Unix seconds.", true},
	"keys":                 {"query", "string", "Comma-separated keys to compare (default: every key with history).", false},
	"to_timestamp":         {"query", "number", "Unix seconds to roll back to.", true},
	"dry_run":              {"query", "boolean", "Only report (also the case without confirm=yes).", false},
	"confirm":              {"query", "string", "`yes` applies the rollback.", false},
	"index":                {"query", "integer", "remove: the index of the element to remove (else the body is matched).", false},
	"new_db":               {"query", "string", "The database to create, named like `db`.", true},
	"after_op":             {"query", "integer", "Watch: send every write after this op number (0: from the first kept). The Last-Event-ID header, when sent, takes its place.", false},
	"since":                {"query", "number", "Watch: send every write from this time on (Unix seconds; a whole second from its beginning).", false},
	"wait":                 {"query", "string", "Watch, long-poll form: answer JSON as soon as there is an event, or empty after this long (a duration such as 30s, from 1ms to 60s).", false},
}

// apiOp is one operation of the document.
type apiOp struct {
	method, path, summary string
	params                []string
	body                  string // "", "raw", "value" (one JSON value), or a schema name
	ok                    string // schema name, or "raw", "none", "headers" (GET's, no body), "text", "sqlite"
	errors                []int
}

const kvDoc = "/api/v1/sqlite/kv"

var (
	dbParams    = []string{"db", "table"}
	writeParams = []string{"db", "table", "history", "create_db_if_missing", "auto_create"}
	readErrors  = []int{400, 401, 403, 404, 413, 500, 503}           // 403: a read-only database whose -wal holds writes not in its file; 413: a directory-mode file over --max-value-bytes; 503: a database file deleted or replaced while open, too many open files, too many databases watched or in use at once
	writeErrors = []int{400, 401, 403, 404, 408, 413, 500, 503, 507} // 403: the database (or its folder) is read-only; 408: a body that did not arrive within --read-timeout
	// framingErrors is what any request may get, even a probe's: a 400
	// for carrying both Content-Length and Transfer-Encoding (framing.go).
	framingErrors = []int{400}
)

func withParams(base []string, more ...string) []string {
	return append(append([]string{}, base...), more...)
}

var apiOps = withHEADOps([]apiOp{
	{"GET", "/healthz", "Liveness", nil, "", "Status", framingErrors},
	{"GET", "/readyz", "Readiness (503 during kvd's --drain-delay after SIGTERM, and while the data directory is gone)", nil, "", "Status", append(framingErrors, 503)},
	{"GET", "/metrics", "Prometheus metrics", nil, "", "text", framingErrors},
	{"GET", "/api/v1/openapi.json", "This document", nil, "", "json", framingErrors},
	{"GET", kvDoc, "List keys in byte order, or as of a time", withParams(dbParams, "prefix", "limit", "offset", "at_timestamp", "after", "rebuild"), "", "KeyList", readErrors},
	{"GET", kvDoc + "/{key}", "Read a value (raw bytes, its Content-Type and metadata headers)", withParams(dbParams, "key", "path", "at_timestamp", "rebuild"), "", "raw", []int{304, 400, 401, 403, 404, 409, 412, 413, 500, 503}},
	{"HEAD", kvDoc + "/{key}", "Does the key exist (headers only)", withParams(dbParams, "key", "rebuild"), "", "none", append(readErrors, 304, 412)},
	{"PUT", kvDoc + "/{key}", "Store a value (the raw body)", withParams(writeParams, "key", "path", "ttl", "if_match", "ref"), "raw", "PutResult", append(writeErrors, 412)},
	{"DELETE", kvDoc + "/{key}", "Delete a key", withParams(writeParams, "key"), "", "DeleteResult", append(writeErrors, 412)},
	{"POST", kvDoc + "/{key}/incr", "Atomically add delta", withParams(writeParams, "key", "delta", "path"), "", "IncrResult", append(writeErrors, 412)},
	{"POST", kvDoc + "/{key}/decr", "Atomically subtract delta", withParams(writeParams, "key", "delta", "path"), "", "IncrResult", append(writeErrors, 412)},
	{"GET", kvDoc + "/{key}/history", "The key's writes, newest first, a page at a time", withParams(dbParams, "key", "limit", "cursor"), "", "History", readErrors},
	{"GET", kvDoc + "/{key}/snapshot", "The key's value right after an op number", withParams(dbParams, "key", "op_number"), "", "KeyValue", append(readErrors, 409)},
	{"POST", kvDoc + "/{key}/rollback", "Undo the key's last writes, as a new write", withParams(writeParams, "key", "steps"), "", "KeyValue", append(writeErrors, 409, 412)},
	{"POST", kvDoc + "/{key}/push", "Append to a JSON array", withParams(writeParams, "key", "path"), "value", "ArrayResult", append(writeErrors, 412)},
	{"POST", kvDoc + "/{key}/pop", "Take the last element of a JSON array", withParams(writeParams, "key", "path"), "", "ArrayResult", append(writeErrors, 412)},
	{"POST", kvDoc + "/{key}/remove", "Remove an element (by index, or every element equal to the body)", withParams(writeParams, "key", "path", "index"), "value", "ArrayResult", append(writeErrors, 412)},
	{"POST", kvDoc + "/batch/get", "Read up to 100 keys from one snapshot", dbParams, "BatchKeys", "BatchGetResult", append(readErrors, 413)},
	{"POST", kvDoc + "/batch/set", "Write up to 100 items in one transaction, all or nothing", writeParams, "BatchSet", "BatchSetResult", writeErrors},
	{"POST", kvDoc + "/batch/delete", "Delete up to 100 keys in one transaction", writeParams, "BatchKeys", "BatchDeleteResult", writeErrors},
	{"GET", kvDoc + "/snapshot", "Every key's value at a time", withParams(dbParams, "timestamp", "prefix", "limit", "after"), "", "TableSnapshot", readErrors},
	{"GET", kvDoc + "/diff", "What changed between two times", withParams(dbParams, "from", "to", "keys", "prefix", "limit", "after"), "", "Diff", readErrors},
	{"POST", kvDoc + "/rollback", "Bring the table (or chosen keys) back to a time, in one transaction", withParams(writeParams, "to_timestamp", "dry_run", "confirm"), "RollbackBody", "RollbackResult", append(writeErrors, 409)},
	{"GET", kvDoc + "/{key}/watch", "Follow the key's writes as they commit (Server-Sent Events; with wait, one long-poll JSON answer)", withParams(dbParams, "key", "after_op", "since", "wait"), "", "Watch", readErrors},
	{"GET", kvDoc + "/watch", "Follow the writes of the table, or of the keys under prefix, as they commit (Server-Sent Events; with wait, one long-poll JSON answer)", withParams(dbParams, "prefix", "after_op", "since", "wait"), "", "Watch", readErrors},
	{"POST", "/api/v1/sqlite/db/create", "Create an empty database with its KV table", []string{"new_db", "table"}, "", "CreateResult", []int{400, 401, 403, 404, 408, 500, 503}},
	{"POST", "/api/v1/sqlite/db/release", "Cluster mode: hand a database over to the node that asks (peers call it when the router sends them the database)", []string{"db"}, "", "Status", []int{400, 401, 408, 503}},
	{"GET", "/api/v1/sqlite/db/backup", "Stream a consistent online copy of a database", dbParams, "", "sqlite", append(readErrors, 507)}, // 507: no room for the copy
})

// withHEADOps documents the HEAD that withHEAD serves beside a GET: the
// same parameters and statuses, the headers only.
func withHEADOps(ops []apiOp) []apiOp {
	for _, op := range ops {
		hasHEAD := slices.ContainsFunc(ops, func(o apiOp) bool { return o.method == http.MethodHead && o.path == op.path })
		if op.method == http.MethodGet && !streams[op.path] && !hasHEAD {
			h := op
			h.method, h.summary, h.ok = http.MethodHead, op.summary+" (HEAD: GET's status and headers, no body)", "headers"
			ops = append(ops, h)
		}
	}
	return ops
}

// wireName is a parameter's name in the query: new_db documents
// db/create's path, which names the database to create.
func wireName(param string) string {
	if param == "new_db" {
		return "path"
	}
	return param
}

// apiInput is what an operation of the document takes: its query
// parameters, and whether a request body.
type apiInput struct {
	params paramSet
	body   bool
}

// apiInputs is, for each operation of the document ("METHOD path"), what
// it takes. The server refuses any other parameter, and a body where an
// operation takes none, so the document lists exactly what kvd accepts:
// a new parameter is one more name in its operation's line above (and in
// apiParams).
func apiInputs() map[string]apiInput {
	inputs := map[string]apiInput{}
	for _, op := range apiOps {
		set := paramSet{}
		for _, name := range op.params {
			if apiParams[name].in == "query" {
				set[wireName(name)] = true
			}
		}
		inputs[op.method+" "+op.path] = apiInput{params: set, body: op.body != ""}
	}
	return inputs
}

// errorCodes lists every code an error body may carry, sorted: the codes
// of the status table (errors.go), which is the one list.
func errorCodes() []string {
	codes := make([]string, 0, len(statusOf))
	for code := range statusOf {
		codes = append(codes, string(code))
	}
	slices.Sort(codes)
	return codes
}

var (
	apiDocOnce sync.Once
	apiDocJSON []byte
)

func (s *Server) handleAPIDoc(w http.ResponseWriter, r *http.Request, _ target) {
	apiDocOnce.Do(func() { apiDocJSON, _ = json.Marshal(apiDocument()) })
	w.Header().Set("Content-Type", "application/json")
	w.Write(apiDocJSON)
}

type obj = map[string]any

func apiDocument() obj {
	paths := obj{}
	for _, op := range apiOps {
		item, _ := paths[op.path].(obj)
		if item == nil {
			item = obj{}
			paths[op.path] = item
		}
		item[strings.ToLower(op.method)] = apiOperation(op)
	}
	return obj{
		"openapi": "3.0.3",
		"info": obj{"title": "kvd", "version": "1",
			"description": "A key-value store over HTTP kept in SQLite files: TTL, CAS, JSON paths, history and time travel, batches, directory mode. " +
				"An API operation takes exactly the query parameters listed here: any other, or one given twice, is a 400 INVALID_PARAMETERS naming it.",
			"license": obj{"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}},
		"servers": []any{obj{"url": "http://{listen}", "description": "kvd's --listen address.",
			"variables": obj{"listen": obj{"default": "127.0.0.1:8080", "description": "host:port"}}}},
		// Every operation needs the token unless it says otherwise: the
		// open ones carry an empty security list (apiOperation).
		"security": []any{obj{"bearer": []any{}}},
		"paths":    paths,
		"components": obj{
			"schemas": apiSchemas(),
			"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer",
				"description": "Only when kvd runs with --auth-token-file (one token a line); without it no operation needs a token."}},
		},
	}
}

func apiOperation(op apiOp) obj {
	o := obj{"operationId": operationID(op), "summary": op.summary, "responses": apiResponses(op)}
	var params []any
	for _, name := range op.params {
		p := apiParams[name]
		params = append(params, obj{"name": wireName(name), "in": p.in, "required": p.required, "description": p.desc, "schema": obj{"type": p.typ}})
	}
	if len(params) > 0 {
		o["parameters"] = params
	}
	switch op.body {
	case "":
	case "raw":
		o["requestBody"] = obj{"description": "The value, stored byte for byte; its Content-Type is kept (JSON only when valid). JSON nested deeper than " + strconv.Itoa(sqlitekv.MaxJSONDepth) + " levels, sent as JSON or without a Content-Type, is a 400.",
			"content": obj{"*/*": obj{"schema": obj{"type": "string", "format": "binary"}}}}
	case "value":
		o["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": obj{"description": "One JSON value."}}}}
	default:
		o["requestBody"] = obj{"required": op.body != "RollbackBody", "content": obj{"application/json": obj{"schema": ref(op.body)}}}
	}
	if !needsToken(op.path) {
		o["security"] = []any{} // open even with --auth-token-file: probes, metrics, this document
	}
	return o
}

// operationID names an operation after its route: the action (a POST's
// word, else the method) and what it acts on, in camelCase. Clients
// generated from the document call it by this name, so a rename breaks
// them: TestAPIDoc_OperationIDsAreStable pins every one.
func operationID(op apiOp) string {
	method := strings.ToLower(op.method)
	if word, ok := strings.CutPrefix(op.path, "/api/v1/sqlite/db/"); ok {
		return word + "Db" // createDb, backupDb
	}
	rest, ok := strings.CutPrefix(op.path, kvDoc)
	if !ok { // probes, metrics, this document
		name := path.Base(op.path)
		return method + upperFirst(strings.TrimSuffix(name, path.Ext(name)))
	}
	rest = strings.TrimPrefix(rest, "/")
	word, keyOp := strings.CutPrefix(rest, "{key}/")
	batchOp, batch := strings.CutPrefix(rest, "batch/")
	switch {
	case rest == "" && op.method == http.MethodHead:
		return "headListKeys"
	case rest == "":
		return "listKeys"
	case rest == "watch" || word == "watch" && keyOp:
		return "watch" + map[bool]string{true: "Key", false: "Table"}[keyOp] // watchKey, watchTable
	case rest == "{key}":
		return method + "Key" // getKey, putKey, ...
	case keyOp && op.method == http.MethodPost:
		return word + "Key" // incrKey, pushKey, rollbackKey, ...
	case keyOp:
		return method + "Key" + upperFirst(word) // getKeyHistory, getKeySnapshot
	case batch:
		return "batch" + upperFirst(batchOp) // batchGet, batchSet, batchDelete
	case op.method == http.MethodPost:
		return rest + "Table" // rollbackTable
	}
	return method + "Table" + upperFirst(rest) // getTableSnapshot, getTableDiff
}

func upperFirst(word string) string {
	if word == "" {
		return ""
	}
	return strings.ToUpper(word[:1]) + word[1:]
}

func apiResponses(op apiOp) obj {
	ok := obj{"description": "OK", "headers": obj{"X-Request-Id": obj{"schema": obj{"type": "string"},
		"description": "The request's X-Request-Id when it is 1..128 characters of [A-Za-z0-9._:-], else one kvd made; in kvd's log lines too"}}}
	switch op.ok {
	case "headers":
	case "none":
		ok["headers"] = entryHeaders()
	case "raw":
		ok["headers"] = entryHeaders()
		ok["content"] = obj{"*/*": obj{"schema": obj{"type": "string", "format": "binary"}}}
	case "text":
		ok["content"] = obj{"text/plain": obj{"schema": obj{"type": "string"}}}
	case "sqlite":
		ok["content"] = obj{"application/vnd.sqlite3": obj{"schema": obj{"type": "string", "format": "binary"}}}
	case "json":
		ok["content"] = obj{"application/json": obj{"schema": obj{"type": "object"}}}
	case "Watch":
		ok["content"] = obj{"text/event-stream": obj{"schema": obj{"type": "string",
			"description": "One event per committed write, in op_number order: `id:` its op number, `event:` its op (or `gap`), `data:` one JSON line as an item of Watch.events. A comment line at least every 15 s. A stream kvd ends because its database closed, history could not be read, or too many large answers wait for their clients, ends with a comment saying why: reconnect with Last-Event-ID."}},
			"application/json": obj{"schema": ref(op.ok)}}
	default:
		ok["content"] = obj{"application/json": obj{"schema": ref(op.ok)}}
	}
	res := obj{"200": ok}
	for _, status := range op.errors {
		r := obj{"description": http.StatusText(status)}
		if status != http.StatusNotModified && op.method != http.MethodHead {
			r["content"] = obj{"application/json": obj{"schema": ref("Error")}}
		}
		if status == http.StatusServiceUnavailable {
			r["headers"] = obj{"Retry-After": obj{"schema": obj{"type": "integer"}}}
		}
		res[strconv.Itoa(status)] = r
	}
	return res
}

func entryHeaders() obj {
	h := obj{}
	for name, desc := range map[string]string{
		"ETag":         "The key's version (op number of its last write), quoted; usable in If-Match and If-None-Match.",
		"X-Created-At": "Unix seconds.", "X-Updated-At": "Unix seconds.", "X-Expire-At": "Unix seconds, with a TTL only.",
		"X-KV-Reference": "`true` when read through a reference.", "X-KV-Reference-Target": "The key finally read, escaped as in a URL path (config%2Fv2).",
	} {
		h[name] = obj{"description": desc, "schema": obj{"type": "string"}}
	}
	return h
}

func ref(schema string) obj { return obj{"$ref": "#/components/schemas/" + schema} }

func object(props obj, required ...string) obj {
	o := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

var (
	str     = obj{"type": "string"}
	integer = obj{"type": "integer"}
	number  = obj{"type": "number"}
	boolean = obj{"type": "boolean"}
	anyJSON = obj{"description": "JSON inline when the value is JSON, a string when text, else base64 (with encoding)."}
	// History and watch events show text in base64 too (historyValue).
	onlyJSON = obj{"description": "The value inline when it is JSON; any other value is in the raw_ field beside it instead."}
	rawValue = obj{"type": "string", "description": "The value's bytes in base64, when it is not JSON."}
	// truncated is the field of every answer that lists values.
	truncated = obj{"type": "boolean", "description": "The answer reached kvd's --max-answer-bytes (default 16 MiB) and ended early; the rest comes with the cursor (next_after, next_cursor, next_offset or next_keys). At least one item is always answered."}
)

func arrayOf(items obj) obj { return obj{"type": "array", "items": items} }

func apiSchemas() obj {
	storedOrNull := object(obj{"value": anyJSON, "content_type": str, "encoding": obj{"type": "string", "enum": []string{"base64"}}})
	storedOrNull["nullable"] = true // null: the key is missing
	return obj{
		"Error": object(obj{"statusCode": integer, "error": str, "code": obj{"type": "string", "enum": errorCodes(),
			"description": "x-statuses gives the HTTP status kvd answers with each code.", "x-statuses": statusOf},
			"message": str, "keys": arrayOf(str)}, "statusCode", "error", "code", "message"),
		"Status":       object(obj{"status": str}),
		"PutResult":    object(obj{"status": str, "success": boolean, "key": str, "created": boolean}),
		"DeleteResult": object(obj{"status": str, "success": boolean, "key": str, "deleted": boolean}),
		"IncrResult":   object(obj{"key": str, "value": integer, "previous": integer}),
		"KeyList": object(obj{"keys": arrayOf(str), "count": integer, "limit": integer, "offset": integer, "prefix": str, "has_gaps": boolean, "gap_keys": arrayOf(str), "candidate_truncated": boolean, "next_after": str, "at_timestamp": number,
			"truncated": truncated, "next_offset": obj{"type": "integer", "description": "When truncated (without at_timestamp): the offset of the rest."}}),
		"BatchKeys": object(obj{"keys": arrayOf(str)}, "keys"),
		"BatchSet":  object(obj{"items": arrayOf(object(obj{"key": str, "value": obj{"type": "string", "description": "The value's bytes (base64 with encoding)."}, "content_type": str, "ttl": integer, "encoding": obj{"type": "string", "enum": []string{"base64"}}}, "key", "value"))}, "items"),
		"BatchGetResult": object(obj{"values": obj{"type": "object", "additionalProperties": storedOrNull},
			"truncated": truncated, "next_keys": obj{"type": "array", "items": str, "description": "When truncated: the keys not answered (absent from values), to ask for again."}}),
		"BatchSetResult":    object(obj{"status": str, "success": boolean, "count": integer, "created": arrayOf(str)}),
		"BatchDeleteResult": object(obj{"status": str, "success": boolean, "deleted": integer}),
		"History": object(obj{"key": str, "operations": arrayOf(object(obj{"op_number": integer, "timestamp": number,
			"operation": object(obj{"op": str, "old_value": onlyJSON, "new_value": onlyJSON, "raw_old_value": rawValue, "raw_new_value": rawValue, "content_type": str, "unrecorded": boolean})})),
			"truncated": truncated, "next_cursor": obj{"type": "string", "description": "Present while older writes remain: pass it as cursor."}}),
		"KeyValue":       object(obj{"success": boolean, "key": str, "op_number": obj{"type": "integer", "description": "On a key snapshot: the op number asked for."}, "value": anyJSON, "content_type": str, "encoding": str}),
		"TableSnapshot":  object(obj{"timestamp": number, "entries": obj{"type": "object", "additionalProperties": anyJSON}, "binary_keys": arrayOf(str), "has_gaps": boolean, "gap_keys": arrayOf(str), "candidate_truncated": boolean, "truncated": truncated, "next_after": str}),
		"Diff":           object(obj{"from": number, "to": number, "stats": object(obj{"created": integer, "modified": integer, "deleted": integer}), "changes": arrayOf(object(obj{"key": str, "change": str, "old_value": anyJSON, "new_value": anyJSON, "old_encoding": str, "new_encoding": str})), "has_gaps": boolean, "gap_keys": arrayOf(str), "candidate_truncated": boolean, "truncated": truncated, "next_after": str}),
		"RollbackBody":   object(obj{"keys": obj{"type": "array", "items": str, "minItems": 1, "maxItems": MaxListedKeys}, "exclude_keys": obj{"type": "array", "items": str, "maxItems": MaxListedKeys}}),
		"RollbackResult": object(obj{"success": boolean, "dry_run": boolean, "to_timestamp": number, "count": integer, "changes": arrayOf(object(obj{"key": str, "action": str})), "changes_truncated": boolean, "message": str}),
		"ArrayResult":    object(obj{"success": boolean, "key": str, "newLength": integer, "value": anyJSON, "removed": integer}),
		"Watch": object(obj{"events": arrayOf(object(obj{"key": str, "op": str, "op_number": integer, "timestamp": number, "value": onlyJSON, "raw_value": rawValue, "content_type": str,
			"code": obj{"type": "string", "description": "TIME_TRAVEL_GAP on a gap: history needed was pruned, the write was made with history=false, or the watch resumed past the table's newest op (another lineage of the database)."}, "resume_op": obj{"type": "integer", "description": "On a gap: the stream is complete again from this op number on."}})),
			"next_op": obj{"type": "integer", "description": "Pass it as after_op to go on."}}),
		"CreateResult": object(obj{"success": boolean, "path": str, "table": str}),
	}
}
