package sqlitekv

import (
	"context"
	"time"
)

// MaxBatch is the most entries one batch request may carry.
const MaxBatch = 100

// BatchItem is one value of a batch set. The caller has validated it.
type BatchItem struct {
	Key         string
	Value       []byte
	ContentType string
	TTL         time.Duration
}

type BatchSetRequest struct {
	Table     string
	Items     []BatchItem
	NoHistory bool
}

type BatchDeleteRequest struct {
	Table     string
	Keys      []string
	NoHistory bool
}

// BatchSet stores every item: all or nothing. The caller has validated
// the items, so nothing can refuse one once the first is stored, and only
// a database error can stop it half-way, which fails its whole group: it
// needs no savepoint (checkedFirst), which saves a tenth of its cost.
// Later duplicates win. Created lists the keys that did not exist before,
// once.
func (w *Writer) BatchSet(req BatchSetRequest) (created []string, err error) {
	t, err := w.table(req.Table, true)
	if err != nil {
		return nil, err
	}
	created = []string{}
	err = w.checkedFirst(func() error {
		seen := map[string]bool{}
		now := w.writeNow() // the batch's: one expiry for every item of one TTL
		for _, item := range req.Items {
			cur, exists, err := w.loadForWrite(t, item.Key)
			if err != nil {
				return err
			}
			if !exists && !seen[item.Key] {
				created = append(created, item.Key)
			}
			seen[item.Key] = true
			next := Entry{Value: item.Value, ContentType: item.ContentType, ExpireAt: ttlExpiry(now, item.TTL)}
			if _, err := w.writeVersion(t, item.Key, OpSet, cur, exists, next, !req.NoHistory); err != nil {
				return err
			}
		}
		return nil
	})
	return created, err
}

// BatchDelete removes the keys that exist, in one savepoint, and counts
// them; missing keys are skipped, expired ones removed as expiries.
func (w *Writer) BatchDelete(req BatchDeleteRequest) (deleted int, err error) {
	t, err := w.table(req.Table, false)
	if err != nil || t == nil {
		return 0, err
	}
	err = w.atomically(func() error {
		deleted = 0
		for _, key := range req.Keys {
			_, exists, err := w.loadForWrite(t, key)
			if err == nil && (exists || t.fileLeftOut(key) != nil) {
				err = w.removeVersion(t, key, OpDelete, !req.NoHistory)
				deleted++
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return deleted, err
}

// BatchGet reads keys (each once, in order) in withReader's snapshot, so
// the answer is consistent even while a batch set of the same keys
// commits. Missing and expired keys are absent from the map. When the
// budget runs out first, rest holds the keys not read, for another call.
func (s *Store) BatchGet(ctx context.Context, table string, keys []string, budget Budget) (found map[string]Entry, rest []string, err error) {
	found = make(map[string]Entry, len(keys))
	err = s.withReader(ctx, func(r *reader) error {
		t, err := r.table(table)
		if err != nil || t == nil {
			return err
		}
		now := s.Now()
		keys := Distinct(keys)
		for i, key := range keys {
			e, ok, err := readEntry(t.get, t.valueAt, key)
			if err != nil {
				return dbError(err)
			}
			var shown *Entry // nil: the key answers null
			if ok && !e.expired(now) {
				shown = &e
			}
			if !budget.Take(key, shown) {
				rest = keys[i:]
				return nil
			}
			if shown != nil {
				found[key] = e
			}
		}
		return nil
	})
	return found, rest, err
}
