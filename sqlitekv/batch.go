package sqlitekv

import (
	"context"
	"time"

	"github.com/ncruces/go-sqlite3"
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
		for _, item := range req.Items {
			cur, exists, err := w.live(t, item.Key)
			if err != nil {
				return err
			}
			if !exists && !seen[item.Key] {
				created = append(created, item.Key)
			}
			seen[item.Key] = true
			next := Entry{Value: item.Value, ContentType: item.ContentType, ExpireAt: ttlExpiry(w.now(), item.TTL)}
			if _, err := w.commitEntry(t, item.Key, OpSet, cur, exists, next, !req.NoHistory); err != nil {
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
			_, exists, err := w.live(t, key)
			if err == nil && (exists || t.fileTooLarge(key) != nil) {
				if _, _, err = w.write(t, key, OpDelete, nil, !req.NoHistory); err == nil {
					err = t.delete(key)
				}
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

// BatchGet reads all keys in withReader's snapshot, so the answer is
// consistent even while a batch set of the same keys commits.
// Missing and expired keys are absent from the map.
func (s *Store) BatchGet(ctx context.Context, table string, keys []string) (map[string]Entry, error) {
	found := make(map[string]Entry, len(keys))
	err := s.withReader(ctx, func(r *reader) error {
		t, err := r.table(table)
		if err != nil || t == nil {
			return err
		}
		now := s.opts.Now().UnixMilli()
		for _, key := range keys {
			var e Entry
			ok, err := queryRow(t.get, func(st *sqlite3.Stmt) { e = scanEntry(st) }, key)
			if err != nil {
				return dbError(err)
			}
			if ok && !e.expired(now) {
				found[key] = e
			}
		}
		return nil
	})
	return found, err
}
