package sqlitekv

import (
	"bytes"
	"context"
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

// History lists key's versions newest first: limit of them, plus the one
// before when there is one, so the old value of every listed write is known.
func (s *Store) History(ctx context.Context, table, key string, limit int) ([]Version, error) {
	var out []Version
	err := s.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return Errorf(CodeKeyNotFound, "Key has no history")
		}
		var err error
		if out, err = t.list(key, limit+1); err != nil {
			return err
		}
		if len(out) == 0 {
			return Errorf(CodeKeyNotFound, "Key has no history")
		}
		return nil
	})
	return out, err
}

// SnapshotAt answers the value key held right after op number op.
func (s *Store) SnapshotAt(ctx context.Context, table, key string, op int64) (Entry, error) {
	var e Entry
	err := s.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return Errorf(CodeKeyNotFound, "Key not found")
		}
		p, err := t.pointOfOp(op)
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
	Entries   map[string]Entry // their values
	GapKeys   []string         // keys whose state then history cannot tell
	Truncated bool             // more candidate keys than the limit
	Next      string           // the After of the next page, when truncated
}

// TableAt reconstructs the table as of at (inclusive bound in Unix ms),
// over one page of candidate keys.
func (s *Store) TableAt(ctx context.Context, table string, at int64, c Candidates) (AsOf, error) {
	res := AsOf{Keys: []string{}, Entries: map[string]Entry{}, GapKeys: []string{}}
	err := s.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return nil
		}
		keys, truncated, err := t.candidates(c)
		if err != nil {
			return err
		}
		res.Truncated, res.Next = truncated, next(keys, truncated)
		for _, key := range keys {
			e, err := t.stateAt(key, atTime(at))
			switch CodeOf(err) {
			case "":
				res.Keys = append(res.Keys, key)
				res.Entries[key] = e
			case CodeTimeTravelGap:
				res.GapKeys = append(res.GapKeys, key)
			case CodeKeyNotFound:
			default:
				return err
			}
		}
		return nil
	})
	return res, err
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
	Truncated bool
	Next      string // the After of the next page, when truncated
}

// Diff compares the table at from and at to (inclusive bounds in Unix ms),
// over keys when given, else over one page of candidate keys.
func (s *Store) Diff(ctx context.Context, table string, from, to int64, keys []string, c Candidates) (Diff, error) {
	res := Diff{Changes: []Change{}, GapKeys: []string{}}
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
		}
		for _, key := range distinct(keys) {
			old, oldErr := entryOrNil(t.stateAt(key, atTime(from)))
			cur, newErr := entryOrNil(t.stateAt(key, atTime(to)))
			if CodeOf(oldErr) == CodeTimeTravelGap || CodeOf(newErr) == CodeTimeTravelGap {
				res.GapKeys = append(res.GapKeys, key)
				continue
			}
			if oldErr != nil {
				return oldErr
			}
			if newErr != nil {
				return newErr
			}
			if kind := changeKind(old, cur); kind != "" {
				res.Changes = append(res.Changes, Change{Key: key, Kind: kind, Old: old, New: cur})
			}
		}
		return nil
	})
	return res, err
}

// distinct drops the repeats of keys a client named twice, keeping the
// first of each, so that no key is reported or changed twice.
func distinct(keys []string) []string {
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
