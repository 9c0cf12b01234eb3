package sqlitekv

import (
	"bytes"
	"context"
	"slices"
	"strings"
)

// readTx runs fn on a read connection's table statements, in one
// snapshot. t is nil when the table does not exist (yet).
func (s *Store) readTx(ctx context.Context, table string, fn func(t *readStmts) error) error {
	return s.withReader(ctx, func(r *reader) error {
		t, err := r.table(table)
		if err != nil {
			return err
		}
		return fn(t)
	})
}

// asOf is the point of history at at (Unix ms), which may be still to
// come (see point).
func (s *Store) asOf(at int64) point { return atTime(at, s.Now()) }

// HasTable reports whether the database holds KV table name, read
// without the writer (so also where kvd cannot write).
func (s *Store) HasTable(ctx context.Context, name string) (bool, error) {
	var found bool
	err := s.readTx(ctx, name, func(t *readStmts) error {
		found = t != nil
		return nil
	})
	return found, err
}

// SnapshotAt answers the value key held right after op number op.
func (s *Store) SnapshotAt(ctx context.Context, table, key string, op int64) (Entry, error) {
	var e Entry
	err := s.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return Errorf(CodeKeyNotFound, "Key not found")
		}
		p, err := t.pointOfOp(op, s.Now())
		if err != nil {
			return err
		}
		e, err = t.stateAt(key, p)
		return err
	})
	return e, err
}

// AsOf is a table, or the part under a prefix, as it was at one time.
type AsOf struct {
	Keys      []string         // keys present then, in byte order
	Entries   map[string]Entry // their values (none from KeysAt)
	GapKeys   []string         // keys whose state then history cannot tell
	Truncated bool             // more candidate keys remain: the limit or the budget ended the page
	Cut       bool             // the budget ended the page
	Next      string           // the After of the next page, when truncated
}

// TableAt reconstructs the table as of at (inclusive bound in Unix ms),
// over one page of candidate keys, within c.Budget.
func (s *Store) TableAt(ctx context.Context, table string, at int64, c Candidates) (AsOf, error) {
	return s.tableAt(ctx, table, at, c, true)
}

// KeysAt is TableAt without the values: which keys existed then. It does
// not read the values' bytes.
func (s *Store) KeysAt(ctx context.Context, table string, at int64, c Candidates) (AsOf, error) {
	return s.tableAt(ctx, table, at, c, false)
}

func (s *Store) tableAt(ctx context.Context, table string, at int64, c Candidates, values bool) (AsOf, error) {
	res := AsOf{Keys: []string{}, Entries: map[string]Entry{}, GapKeys: []string{}}
	p := s.asOf(at)
	err := s.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return nil
		}
		keys, truncated, err := t.candidates(c)
		if err != nil {
			return err
		}
		res.Truncated, res.Next = truncated, next(keys, truncated)
		state := t.presenceAt
		if values {
			state = t.stateAt
		}
		budget := c.Budget
		for i, key := range keys {
			e, err := state(key, p)
			var shown *Entry // the value the answer shows, if any
			switch CodeOf(err) {
			case "":
				if values {
					shown = &e
				}
			case CodeTimeTravelGap:
			case CodeKeyNotFound:
				continue
			default:
				return err
			}
			if !budget.Take(key, shown) {
				res.cut(keys[:i])
				return nil
			}
			if CodeOf(err) == CodeTimeTravelGap {
				res.GapKeys = append(res.GapKeys, key)
				continue
			}
			res.Keys = append(res.Keys, key)
			if values {
				res.Entries[key] = e
			}
		}
		return nil
	})
	return res, err
}

// cut ends the page after the keys looked at: the budget is spent.
func (a *AsOf) cut(looked []string) {
	a.Truncated, a.Cut, a.Next = true, true, looked[len(looked)-1]
}

// Change kinds of a diff.
const (
	ChangeCreated  = "created"
	ChangeModified = "modified"
	ChangeDeleted  = "deleted"
)

// Change is how one key differs between two times; Old or New is nil where
// the key was absent.
type Change struct {
	Key  string
	Kind string
	Old  *Entry
	New  *Entry
}

// Diff lists what changed between two times.
type Diff struct {
	Changes   []Change
	GapKeys   []string
	Truncated bool   // more keys remain: the limit or the budget ended the page
	Cut       bool   // the budget ended the page
	Next      string // the After of the next page, when truncated
}

// Diff compares the table at from and at to (inclusive bounds in Unix ms),
// over keys when given (in byte order, those after c.After), else over
// one page of candidate keys; within c.Budget either way. The values of
// keys rewritten as they were are read to be compared, and shown to no
// one: the page ends once they too pass c.Budget.Max (a page of 1,000
// such keys of 1 MiB read 2 GB for an answer of none).
func (s *Store) Diff(ctx context.Context, table string, from, to int64, keys []string, c Candidates) (Diff, error) {
	res := Diff{Changes: []Change{}, GapKeys: []string{}}
	fromPoint, toPoint := s.asOf(from), s.asOf(to)
	err := s.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return nil
		}
		if keys == nil {
			var err error
			if keys, res.Truncated, err = t.candidates(c); err != nil {
				return err
			}
			res.Next = next(keys, res.Truncated)
		} else {
			keys, res.Truncated = namedPage(keys, c)
			res.Next = next(keys, res.Truncated)
		}
		budget := c.Budget
		same := 0 // bytes read of values found unchanged, bounded as the answer is
		for i, key := range keys {
			old, cur, gap, err := t.statesToDiff(key, fromPoint, toPoint)
			if err != nil {
				return err
			}
			kind := changeKind(old, cur)
			if !gap && kind == "" {
				if same += valueLen(old) + valueLen(cur); budget.Max > 0 && same > budget.Max && i < len(keys)-1 {
					res.Truncated, res.Cut, res.Next = true, true, key
					return nil
				}
				continue
			}
			if !gap && !budget.Take(key, old, cur) || gap && !budget.Take(key) {
				res.Truncated, res.Cut, res.Next = true, true, keys[i-1]
				return nil
			}
			if gap {
				res.GapKeys = append(res.GapKeys, key)
				continue
			}
			res.Changes = append(res.Changes, Change{Key: key, Kind: kind, Old: old, New: cur})
		}
		return nil
	})
	return res, err
}

// valueLen is the length of e's value, 0 without one.
func valueLen(e *Entry) int {
	if e == nil {
		return 0
	}
	return len(e.Value)
}

// statesToDiff is what key held at from and at to (nil: nothing), or gap
// when history cannot say. Values are read only where the versions
// differ: a key not written in between is unchanged whatever its size (a
// diff over 1,000 unchanged keys of 400 KB read 800 MB, for an answer
// of none).
func (t *readStmts) statesToDiff(key string, from, to point) (old, cur *Entry, gap bool, err error) {
	old, oldErr := entryOrNil(t.presenceAt(key, from))
	cur, newErr := entryOrNil(t.presenceAt(key, to))
	oldGap, newGap := CodeOf(oldErr) == CodeTimeTravelGap, CodeOf(newErr) == CodeTimeTravelGap
	switch {
	case oldErr != nil && !oldGap: // a failure, not hidden by a gap on the other side
		return nil, nil, false, oldErr
	case newErr != nil && !newGap:
		return nil, nil, false, newErr
	case oldGap || newGap:
		return nil, nil, true, nil
	case old != nil && cur != nil && old.Version == cur.Version:
		return old, cur, false, nil // one version, values unread: no change
	}
	for _, e := range []*Entry{old, cur} {
		if e != nil {
			if err := t.readValue(e); err != nil {
				return nil, nil, false, err
			}
		}
	}
	return old, cur, false, nil
}

// readValue reads the value of the version presenceAt found, by its op
// number: no second walk down the key's chain.
func (tl *timeline) readValue(e *Entry) error {
	v, _, found, err := readVersion(tl.version, e.Version)
	if err == nil && !found {
		err = dbError(errBrokenChain)
	}
	if err == nil {
		e.Value = v.Entry.Value
	}
	return err
}

// namedPage is the page of the keys a client named that a diff looks at:
// those under c.Prefix, after c.After, at most c.Limit of them, as
// candidates would page them.
func namedPage(keys []string, c Candidates) (page []string, truncated bool) {
	page = slices.DeleteFunc(sortedAfter(keys, c.After), func(k string) bool { return !strings.HasPrefix(k, c.Prefix) })
	if len(page) > c.Limit {
		return page[:c.Limit], true
	}
	return page, false
}

// sortedAfter is the keys a client named, each once, in byte order, from
// the first after after (all when after is ""): pages of a diff of named
// keys follow the order of pages of candidates.
func sortedAfter(keys []string, after string) []string {
	out := Distinct(keys)
	slices.Sort(out)
	start, _ := slices.BinarySearch(out, after)
	if start < len(out) && out[start] == after && after != "" {
		start++
	}
	return out[start:]
}

// Distinct drops the repeats of keys a client named twice, keeping the
// first of each, so that no key is reported or changed twice.
func Distinct(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// entryOrNil turns "not found" into a nil entry.
func entryOrNil(e Entry, err error) (*Entry, error) {
	switch CodeOf(err) {
	case "":
		return &e, nil
	case CodeKeyNotFound:
		return nil, nil
	}
	return nil, err
}

func changeKind(old, cur *Entry) string {
	switch {
	case old == nil && cur != nil:
		return ChangeCreated
	case old != nil && cur == nil:
		return ChangeDeleted
	case old != nil && (!bytes.Equal(old.Value, cur.Value) || old.ContentType != cur.ContentType):
		return ChangeModified
	}
	return ""
}
