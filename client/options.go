package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Option sets a parameter of one call. Each method lists the options its
// endpoint takes and refuses the others, so a TTL passed to Get is an error
// rather than a parameter silently ignored.
type Option struct {
	name  string
	apply func(*call) error
}

// call collects what the options of one call set.
type call struct {
	endpoint string // the method's name, for an *ArgumentError
	query    url.Values
	header   http.Header
	// keys and excludeKeys travel in the query (Diff) or the body
	// (RollbackTable), so the method places them.
	keys, excludeKeys []string
}

// newCall applies opts for endpoint, which takes the named options. The
// client's database and table come first, so DB and Table override them.
// Its errors are *ArgumentError: nothing has been sent.
func (c *Client) newCall(endpoint string, opts []Option, takes ...string) (*call, error) {
	cl := &call{endpoint: endpoint, query: url.Values{}, header: http.Header{}}
	if c.db != "" && slices.Contains(takes, "DB") {
		cl.query.Set("db", c.db)
	}
	if c.table != "" && slices.Contains(takes, "Table") {
		cl.query.Set("table", c.table)
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, argErrorf(endpoint, "a zero Option; build options with DB, TTL, ...")
		}
		if !slices.Contains(takes, o.name) {
			return nil, argErrorf(endpoint, "does not take option %s", o.name)
		}
		if err := o.apply(cl); err != nil {
			return nil, argErrorf(endpoint, "option %s: %w", o.name, err)
		}
	}
	return cl, nil
}

// newKeyCall is newCall for an endpoint of one key, with the key's path
// (op "" for the key itself, else the operation on it).
func (c *Client) newKeyCall(endpoint, key, op string, opts []Option, takes ...string) (*call, string, error) {
	cl, err := c.newCall(endpoint, opts, takes...)
	if err != nil {
		return nil, "", err
	}
	path, err := keyPath(endpoint, key, op)
	return cl, path, err
}

func queryOption(name, param, value string) Option {
	return Option{name, func(c *call) error { c.query.Set(param, value); return nil }}
}

// DB names the database of this call: a bare name such as "app"
// (<data-dir>/app.db) or an absolute path inside one of kvd's roots.
func DB(name string) Option { return queryOption("DB", "db", name) }

// Table names the table of this call (kvd's default is kv_store).
func Table(name string) Option { return queryOption("Table", "table", name) }

// Path addresses a fragment inside a JSON value: "prefs.theme",
// "items[2].price" (a leading "$." is accepted).
func Path(p string) Option { return queryOption("Path", "path", p) }

// At reads the past: the value as the last write at or before t left it.
// t goes as Unix seconds. A whole second means the end of that second (the
// contract's rule for at_timestamp=1700000000); a time with a fraction names
// that instant, to the millisecond.
func At(t time.Time) Option { return queryOption("At", "at_timestamp", unixParam(t)) }

// Rebuild rescans a directory-mode table's folder before reading, so files
// added or changed behind kvd's back are seen.
func Rebuild() Option { return queryOption("Rebuild", "rebuild", "true") }

// TTL makes a written key expire after d, a whole number of seconds. A Put
// without TTL clears an earlier one.
func TTL(d time.Duration) Option {
	return Option{"TTL", func(c *call) error {
		if d <= 0 || d%time.Second != 0 {
			return fmt.Errorf("%v is not a positive whole number of seconds", d)
		}
		c.query.Set("ttl", strconv.FormatInt(int64(d/time.Second), 10))
		return nil
	}}
}

// IfMatch writes only if the stored value is exactly old (with Path: the
// JSON fragment there). Otherwise kvd answers CAS_MISMATCH, or
// CAS_KEY_MISSING when there is no key.
func IfMatch(old []byte) Option { return queryOption("IfMatch", "if_match", string(old)) }

// IfVersion writes only if the key's version (Entry.Version, its ETag) is
// still version: optimistic locking without comparing values.
func IfVersion(version int64) Option {
	return Option{"IfVersion", func(c *call) error {
		if version <= 0 {
			return errors.New("version must be positive")
		}
		c.header.Set("If-Match", `"`+strconv.FormatInt(version, 10)+`"`)
		return nil
	}}
}

// IfAbsent writes only if the key does not exist (If-None-Match: *).
func IfAbsent() Option {
	return Option{"IfAbsent", func(c *call) error { c.header.Set("If-None-Match", "*"); return nil }}
}

// NoHistory writes without keeping the value in the key's history; time
// travel over that write answers TIME_TRAVEL_GAP.
func NoHistory() Option { return queryOption("NoHistory", "history", "false") }

// Ref stores the value as a reference to the key it names; reads of this
// key then answer with the target's value.
func Ref() Option { return queryOption("Ref", "ref", "true") }

// CreateIfMissing lets a write create the database when its file does not
// exist; without it the write answers DATABASE_NOT_FOUND.
func CreateIfMissing() Option { return queryOption("CreateIfMissing", "create_db_if_missing", "true") }

// Prefix lists only keys starting with p.
func Prefix(p string) Option { return queryOption("Prefix", "prefix", p) }

// Limit caps how many entries an answer holds (kvd's defaults and maxima
// apply: 100/1000 for listings, 50/1000 for history).
func Limit(n int) Option { return queryOption("Limit", "limit", strconv.Itoa(n)) }

// Offset skips the first n keys of a listing.
func Offset(n int) Option { return queryOption("Offset", "offset", strconv.Itoa(n)) }

// After starts a page (List, ListAt, TableSnapshot, Diff) after this key:
// pass the NextAfter of the previous page; "" is the first page. A look at
// a past time is paged only so, since which keys existed then is known
// only once each is read.
func After(key string) Option { return queryOption("After", "after", key) }

// Cursor continues a page of history where the one before ended (a
// HistoryPage's NextCursor).
func Cursor(c string) Option { return queryOption("Cursor", "cursor", c) }

// Keys restricts a diff or a table rollback to these keys, at least one:
// kvd reads a missing key list as "every key", so Keys() with none (an
// empty slice spread into it) is refused rather than sent as the whole
// table.
func Keys(keys ...string) Option {
	return Option{"Keys", func(c *call) error {
		if len(keys) == 0 {
			return errors.New("no keys given; leave Keys out to mean every key")
		}
		c.keys = keys
		return nil
	}}
}

// ExcludeKeys rolls a table back except for these keys.
func ExcludeKeys(keys ...string) Option {
	return Option{"ExcludeKeys", func(c *call) error { c.excludeKeys = keys; return nil }}
}

// Confirm makes a table rollback write; without it kvd only reports what
// it would do.
func Confirm() Option { return queryOption("Confirm", "confirm", "yes") }

// DryRun asks a table rollback for its plan only, even with Confirm.
func DryRun() Option { return queryOption("DryRun", "dry_run", "true") }

// unixParam writes t as kvd reads times: whole Unix seconds when t has no
// fraction, else seconds with milliseconds.
func unixParam(t time.Time) string {
	if t.Nanosecond() == 0 {
		return strconv.FormatInt(t.Unix(), 10)
	}
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}
