package sqlitekv

import (
	"context"
)

// ListRequest pages through the live keys of a table in byte order:
// with Offset, or with After, the last key of the page before, which
// misses no key when keys before it expire or are deleted meanwhile.
type ListRequest struct {
	Table, Prefix, After string
	Limit, Offset        int
}

// List returns live (unexpired) keys starting with Prefix, in byte order.
func (s *Store) List(ctx context.Context, req ListRequest) ([]string, error) {
	keys := []string{}
	err := s.withReader(ctx, func(r *reader) error {
		t, err := r.table(req.Table)
		if err != nil || t == nil {
			return err
		}
		from := req.Prefix
		if next := req.After + "\x00"; req.After != "" && next > from { // the first key after After: no key holds NUL
			from = next
		}
		args := []any{from, s.Now(), req.Limit, req.Offset}
		stmt := t.listFrom
		if end := prefixEnd(req.Prefix); end != "" {
			stmt, args = t.listPrefix, append(args, end)
		}
		if err := bindAll(stmt, args...); err != nil {
			return dbError(err)
		}
		for stmt.Step() {
			keys = append(keys, stmt.ColumnText(0))
		}
		if err := stmt.Reset(); err != nil {
			return dbError(err)
		}
		return nil
	})
	return keys, err
}

// prefixEnd is the smallest string above every string with the prefix, so
// the prefix is an index range; "" means no upper bound.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}
