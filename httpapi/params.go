package httpapi

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// maxTTL keeps expiry arithmetic in milliseconds far from overflow.
const maxTTL = 100 * 365 * 24 * time.Hour

// query is the parsed query string, with the typed getters every handler
// shares. Each getter returns a 400-class *sqlitekv.Error on bad input.
// It keeps the pairs in order, as few as a request carries: a url.Values
// map cost the hot writes a map and a slice per name.
type query struct {
	pairs []queryPair
	first [4]queryPair // pairs' backing array up to four
}

type queryPair struct{ name, value string }

// maxQueryPairs bounds the pairs a query string may carry, far above what
// any endpoint takes (net/url's own bound is 10,000).
const maxQueryPairs = 100

// parseQuery refuses a malformed query string outright: Go would silently
// drop the bad pair (a ';' say) and the request would run without it. The
// pairs are decoded as url.ParseQuery decodes them.
func parseQuery(r *http.Request) (*query, error) {
	q := &query{}
	q.pairs = q.first[:0]
	if n := strings.Count(r.URL.RawQuery, "&") + 1; n > maxQueryPairs {
		return nil, invalidParam("Too many query parameters (%d): no endpoint takes more than %d", n, maxQueryPairs)
	}
	for raw := r.URL.RawQuery; raw != ""; {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			return nil, invalidParam("Malformed query string")
		}
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(name)
		value, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil {
			return nil, invalidParam("Malformed query string")
		}
		q.pairs = append(q.pairs, queryPair{name, value})
	}
	return q, nil
}

// Get returns the first value of name, or "".
func (q *query) Get(name string) string {
	for _, p := range q.pairs {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

func (q *query) has(name string) bool { return q.count(name) > 0 }

// count tells how many times name is given.
func (q *query) count(name string) int {
	n := 0
	for _, p := range q.pairs {
		if p.name == name {
			n++
		}
	}
	return n
}

// paramSet is the query parameters an endpoint takes, by name.
type paramSet map[string]bool

// refuseOthers refuses a parameter the endpoint does not take (a typo such
// as tll=60 would otherwise store a key that never expires) and one given
// twice (which of the two counts would be a guess). The first offender in
// name order is named.
func (takes paramSet) refuseOthers(q *query) error {
	if takes.allows(q) { // every request passes here: no sorting unless needed
		return nil
	}
	names := make([]string, 0, len(q.pairs))
	for _, p := range q.pairs {
		names = append(names, p.name)
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		if !takes[name] {
			return invalidParam("Unknown query parameter %q: this endpoint takes %s", clipped(name), strings.Join(slices.Sorted(maps.Keys(takes)), ", "))
		}
		if n := q.count(name); n > 1 {
			return invalidParam("Query parameter %q is given %d times; give it once", name, n)
		}
	}
	return nil
}

func (takes paramSet) allows(q *query) bool {
	for i, p := range q.pairs {
		if !takes[p.name] {
			return false
		}
		for _, earlier := range q.pairs[:i] {
			if earlier.name == p.name {
				return false
			}
		}
	}
	return true
}

// clipped keeps an echoed name short.
func clipped(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	return s[:most] + "..."
}

func (q *query) table() (string, error) {
	t := q.Get("table")
	if !q.has("table") {
		return sqlitekv.DefaultTable, nil
	}
	return t, sqlitekv.ValidateTable(t)
}

func (q *query) boolean(name string, def bool) (bool, error) {
	if !q.has(name) {
		return def, nil
	}
	switch strings.ToLower(q.Get(name)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, invalidParam("%s must be true or false", name)
}

// create reads create_db_if_missing and its alias auto_create.
func (q *query) create() (bool, error) {
	a, err := q.boolean("create_db_if_missing", false)
	if err != nil {
		return false, err
	}
	b, err := q.boolean("auto_create", false)
	if err != nil {
		return false, err
	}
	if q.has("create_db_if_missing") && q.has("auto_create") && a != b {
		return false, invalidParam("create_db_if_missing and auto_create disagree")
	}
	return a || b, nil
}

// readDB is the database a read reaches: it must exist.
func (q *query) readDB() dbRef {
	return dbRef{name: q.Get("db"), dirMode: q.has("table")}
}

// writeDB is the database a write reaches: create_db_if_missing (or
// auto_create) lets it make a missing file.
func (q *query) writeDB() (dbRef, error) {
	create, err := q.create()
	if err != nil {
		return dbRef{}, err
	}
	return dbRef{name: q.Get("db"), create: create, dirMode: q.has("table"), write: true}, nil
}

// newDB is the database db/create makes: path names it, as db does
// elsewhere; never a directory-mode folder.
func (q *query) newDB() dbRef {
	return dbRef{name: q.Get("path"), create: true}
}

// backupDB is the database a backup copies: never a directory-mode
// folder, which has no single file to copy.
func (q *query) backupDB() dbRef {
	return dbRef{name: q.Get("db")}
}

// noHistory reads history (default true) as the storage's NoHistory flag.
func (q *query) noHistory() (bool, error) {
	h, err := q.boolean("history", true)
	return !h, err
}

func (q *query) ttl() (time.Duration, error) {
	if !q.has("ttl") {
		return 0, nil
	}
	n, err := strconv.ParseInt(q.Get("ttl"), 10, 64)
	if err != nil || n <= 0 || n > int64(maxTTL/time.Second) {
		return 0, invalidParam("ttl must be a positive whole number of seconds (at most %d)", int64(maxTTL/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}

func (q *query) delta() (int64, error) {
	if !q.has("delta") {
		return 1, nil
	}
	n, err := strconv.ParseInt(q.Get("delta"), 10, 64)
	if err != nil || n <= 0 {
		return 0, invalidParam("delta must be a positive integer")
	}
	return n, nil
}

func (q *query) path() (sqlitekv.JSONPath, error) {
	if !q.has("path") {
		return nil, nil
	}
	return sqlitekv.ParseJSONPath(q.Get("path"))
}

// atTimestamp reads the optional at_timestamp of time travel.
func (q *query) atTimestamp() (*int64, error) {
	if !q.has("at_timestamp") {
		return nil, nil
	}
	bound, err := q.unixTime("at_timestamp")
	return &bound, err
}

// unixTime turns a required Unix-seconds parameter into an inclusive bound
// in milliseconds: a whole second means the end of that second, a fraction
// the instant it names.
func (q *query) unixTime(name string) (int64, error) {
	if !q.has(name) {
		return 0, invalidParam("%s is required (Unix seconds)", name)
	}
	ms, whole, ok := unixMillis(q.Get(name))
	if !ok {
		return 0, invalidParam("%s must be Unix seconds (1700000000, or 1700000000.5 for an instant within it)", name)
	}
	if whole {
		return ms + 999, nil
	}
	return ms, nil
}

// maxUnixSeconds bounds a time parameter (the year 318857) so that its
// milliseconds fit an int64 with room to spare.
const maxUnixSeconds = 10_000_000_000_000

// unixMillis reads Unix seconds written as digits, with a fraction or not,
// as milliseconds, the fraction cut after its third digit; whole says
// there was no fraction. It reads the digits themselves: through a
// float64, 2170884354.811 s times 1000 falls a hair under its millisecond,
// and a client passing back a write's own timestamp would miss that write.
// Go's other number syntax is refused (0x1p4, 1796455831_0, 1e9): an
// exponent would blur whether a whole second, meaning its end, was named.
func unixMillis(raw string) (ms int64, whole, ok bool) {
	secs, frac, hasFrac := strings.Cut(raw, ".")
	if !allDigits(secs) || hasFrac && !allDigits(frac) {
		return 0, false, false
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n > maxUnixSeconds || n == maxUnixSeconds && strings.Trim(frac, "0") != "" {
		return 0, false, false
	}
	milli, _ := strconv.Atoi((frac + "000")[:3])
	return n*1000 + int64(milli), !hasFrac, true
}

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// intIn reads a whole number within [lo, hi], or def when absent.
func (q *query) intIn(name string, def, lo, hi int) (int, error) {
	if !q.has(name) {
		return def, nil
	}
	n, err := strconv.Atoi(q.Get(name))
	if err != nil || n < lo || n > hi {
		return 0, invalidParam("%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// candidates reads the page of keys with history that a look into the
// past (listing, snapshot or diff at a time) goes over: prefix, limit, and
// after, the next_after of the previous page. Which of those keys existed
// then is only known once each is read, so pages are cut by key, not by
// offset.
func (q *query) candidates() (sqlitekv.Candidates, error) {
	c := sqlitekv.Candidates{Prefix: q.Get("prefix"), After: q.Get("after")}
	var err error
	if c.Limit, err = q.intIn("limit", defaultListLimit, 1, maxListLimit); err != nil {
		return c, err
	}
	offset, err := q.intIn("offset", 0, 0, 1<<31-1)
	if err != nil {
		return c, err
	}
	if offset != 0 {
		return c, invalidParam("offset does not apply to a look at a past time: page with after=<next_after>")
	}
	return c, nil
}

// historyCursor reads cursor, a history answer's next_cursor: "<op>-<ts>"
// of the last write listed.
func (q *query) historyCursor() (sqlitekv.HistoryCursor, error) {
	var c sqlitekv.HistoryCursor
	if !q.has("cursor") {
		return c, nil
	}
	op, ts, ok := strings.Cut(q.Get("cursor"), "-")
	var errOp, errTs error
	c.Op, errOp = strconv.ParseInt(op, 10, 64)
	c.Ts, errTs = strconv.ParseInt(ts, 10, 64)
	if !ok || errOp != nil || errTs != nil || c.Op <= 0 || c.Ts < 0 {
		return c, invalidParam("cursor must be the next_cursor of an earlier history answer")
	}
	return c, nil
}

// opNumber reads the required op_number of a key snapshot.
func (q *query) opNumber() (int64, error) {
	op, err := strconv.ParseInt(q.Get("op_number"), 10, 64)
	if err != nil || op <= 0 {
		return 0, invalidParam("op_number is required: a positive op number from the key's history")
	}
	return op, nil
}

// keys reads the optional comma-separated keys of a diff; nil when absent.
func (q *query) keys() ([]string, error) {
	if !q.has("keys") {
		return nil, nil
	}
	var keys []string
	for _, k := range strings.Split(q.Get("keys"), ",") {
		if err := sqlitekv.ValidateKey(k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
