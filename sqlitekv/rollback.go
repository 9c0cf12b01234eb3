package sqlitekv

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ncruces/go-sqlite3"
)

// RollbackKeyRequest undoes the last Steps writes of Key.
type RollbackKeyRequest struct {
	Table, Key string
	Steps      int
	Versions   Versions // If-Match, If-None-Match
	NoHistory  bool
}

// RollbackKey restores the state Key had before its last Steps writes, as a
// new write (so a rollback can itself be rolled back). It returns the
// restored entry, or nil when that state is "absent". A state history
// cannot tell (an unrecorded write, pruned versions) is TIME_TRAVEL_GAP.
func (w *Writer) RollbackKey(req RollbackKeyRequest) (restored *Entry, err error) {
	t, err := w.table(req.Table, false)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, missingTable(req.Versions, "Key has no history")
	}
	err = w.atomically(func() error {
		if req.Versions.Given() {
			cur, exists, _, err := t.current(req.Key, w.writeNow())
			if err == nil {
				err = req.Versions.check(cur, exists)
			}
			if err != nil {
				return err
			}
		}
		target, seen, err := t.back(req.Key, req.Steps)
		if err != nil {
			return err
		}
		if seen == 0 {
			return Errorf(CodeKeyNotFound, "Key has no history")
		}
		if seen > req.Steps {
			if !target.Recorded {
				return Errorf(CodeTimeTravelGap, "Cannot roll back: the version to restore was written with history=false")
			}
			if !target.Removes() {
				restored = unexpired(&target.Entry, w.writeNow())
			}
		} else if pruned, err := w.hasHorizon(t, req.Key); err != nil || pruned {
			// Fewer versions than steps means the key did not exist before
			// them, unless retention pruned the older ones.
			if err == nil {
				err = Errorf(CodeTimeTravelGap, "Cannot roll back that far: older versions were pruned")
			}
			return err
		}
		return w.restore(t, req.Key, restored, !req.NoHistory)
	})
	return restored, err
}

// hasHorizon reports whether retention pruned some of key's history.
func (w *Writer) hasHorizon(t *writeTable, key string) (bool, error) {
	found, err := queryRow(t.horizon, func(*sqlite3.Stmt) {}, key)
	if err != nil {
		return false, dbError(err)
	}
	return found, nil
}

// restore makes key hold target (absent when nil) as one rollback write;
// nothing is written when the key already holds it.
func (w *Writer) restore(t *writeTable, key string, target *Entry, recorded bool) error {
	cur, exists, err := w.loadForWrite(t, key)
	if err != nil {
		return err
	}
	return w.restoreOver(t, key, target, cur, exists, recorded)
}

// restoreOver is restore once key's live entry (cur, when it exists) is
// known.
func (w *Writer) restoreOver(t *writeTable, key string, target *Entry, cur Entry, exists, recorded bool) error {
	switch {
	case target == nil && !exists:
		return nil
	case target == nil:
		return w.removeVersion(t, key, OpRollback, recorded)
	case exists && sameEntry(cur, *target):
		return nil
	}
	next := Entry{Value: target.Value, ContentType: target.ContentType, ExpireAt: target.ExpireAt}
	_, err := w.writeVersion(t, key, OpRollback, cur, exists, next, recorded)
	return err
}

// unexpired is target, or nil when its TTL has run out by now: restoring
// it would bring back a value already gone, so the key goes instead (and
// is reported so).
func unexpired(target *Entry, now int64) *Entry {
	if target != nil && target.expired(now) {
		return nil
	}
	return target
}

func sameEntry(a, b Entry) bool {
	return bytes.Equal(a.Value, b.Value) && a.ContentType == b.ContentType && a.ExpireAt == b.ExpireAt
}

// RollbackTableRequest brings a table (or the chosen keys) back to At, an
// inclusive bound in Unix ms.
type RollbackTableRequest struct {
	Table     string
	At        int64
	Keys      []string // only these, when given
	Exclude   []string // all but these
	DryRun    bool     // only say what it would do: Store.PlanRollback, never the writer
	NoHistory bool
	// Listed bounds the keys the answer lists (a table of 100,000 long
	// keys made a 100 MB answer); the changes past it are counted only.
	Listed Budget
}

// RollbackTableResult is what a table rollback did, or would do: Count
// changes, the first of them listed, as many as Listed took.
type RollbackTableResult struct {
	Changes []RollbackAction
	Count   int
}

// RollbackAction is what a table rollback does (or would do) to one key.
type RollbackAction struct {
	Key    string
	Action string // "restore" or "delete"
}

// RollbackTable computes, and applies in one savepoint, the writes that
// bring every chosen key back to its state at At. If history cannot tell
// the state of any key, nothing is written and the error lists those
// keys. (A dry run is PlanRollback's.)
//
// It goes through the table's keys a page at a time, restoring and
// deleting as it goes (in directory mode restoring after every delete), so
// memory holds the answer (a key and an action per changed key), never
// the values; a gap found late is still all-or-nothing, since the
// savepoint undoes the writes already made.
func (w *Writer) RollbackTable(req RollbackTableRequest) (RollbackTableResult, error) {
	res := RollbackTableResult{Changes: []RollbackAction{}}
	t, err := w.table(req.Table, false)
	if err != nil || t == nil {
		return res, err
	}
	scan := rollbackScan{tl: &t.timeline, current: t.current, now: w.writeNow, req: req}
	apply := func(key string, s rollState) error {
		if err := w.expireIf(t, key, s.expired); err != nil { // as live does before any write
			return err
		}
		return w.restoreOver(t, key, s.target, s.cur, s.exists, !req.NoHistory)
	}
	// In directory mode deletes go first, restores after them all: a
	// restored key's file may need the folder that a deleted key ("x/y",
	// restoring "x") leaves. (In file mode the order is the keys'.)
	var restores []string
	gaps := gapKeys{listed: req.Listed}
	err = w.atomically(func() error {
		err := scan.each(gaps.note, func(key string, s rollState) error {
			if s.action() != "" && w.mirror != nil {
				synced, err := w.importFirst(scan, key)
				if err != nil {
					return err
				}
				s = synced
			}
			action := s.action()
			if action == "" {
				return nil
			}
			res.note(key, action, &req.Listed)
			switch {
			case action == "restore" && w.mirror != nil:
				restores = append(restores, key)
				return nil
			case gaps.count > 0: // after a gap nothing will be kept
				return nil
			}
			return apply(key, s)
		})
		if err != nil {
			return err
		}
		if gaps.count > 0 {
			return gaps.err()
		}
		for _, key := range restores {
			s, err := scan.state(key)
			if err == nil {
				err = apply(key, s)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return RollbackTableResult{}, err
	}
	return res, nil
}

// importFirst, in directory mode, imports key's file before a rollback
// changes it, and tells its state again: the folder was rescanned before
// the rollback began (actors.DB.RollbackTable), but a change made by hand
// since then would otherwise be overwritten without a trace in history.
// A file the rollback leaves alone is left to the next read or rescan,
// which brings its change in as one made after the rollback.
func (w *Writer) importFirst(scan rollbackScan, key string) (rollState, error) {
	if err := w.mirror.Sync(scan.req.Table, key); err != nil {
		return rollState{}, err
	}
	return scan.state(key)
}

// PlanRollback is a table rollback's dry run on a read connection: what
// RollbackTable would do, read without queueing behind the database's
// writes or holding them up (a rollback over 100,000 keys takes tens of
// seconds), and on a database kvd may not write too.
func (s *Store) PlanRollback(ctx context.Context, req RollbackTableRequest) (RollbackTableResult, error) {
	res := RollbackTableResult{Changes: []RollbackAction{}}
	gaps := gapKeys{listed: req.Listed}
	err := s.readTx(ctx, req.Table, func(t *readStmts) error {
		if t == nil {
			return nil
		}
		scan := rollbackScan{tl: &t.timeline, current: t.current, now: s.Now, req: req}
		return scan.each(gaps.note, func(key string, st rollState) error {
			if action := st.action(); action != "" {
				res.note(key, action, &req.Listed)
			}
			return nil
		})
	})
	if err == nil && gaps.count > 0 {
		err = gaps.err()
	}
	if err != nil {
		return RollbackTableResult{}, err
	}
	return res, nil
}

// note counts a change, and lists it while listed allows.
func (res *RollbackTableResult) note(key, action string, listed *Budget) {
	if res.Count++; listed.Take(key) {
		res.Changes = append(res.Changes, RollbackAction{Key: key, Action: action})
	}
}

// gapKeys are the keys whose state at the time rolled back to history
// cannot tell: all counted, and listed while the answer's budget allows
// (a table of 300 such keys of 1,000 bytes made an error of 302 KB, and
// the list grew with the table).
type gapKeys struct {
	keys   []string
	count  int
	listed Budget
}

func (g *gapKeys) note(key string) {
	if g.count++; g.listed.Take(key) {
		g.keys = append(g.keys, key)
	}
}

func (g *gapKeys) err() error {
	msg := "Cannot roll back: history cannot tell the state of some keys at that time"
	if len(g.keys) < g.count {
		msg = fmt.Sprintf("Cannot roll back: history cannot tell the state of %d keys at that time (the first %d listed)", g.count, len(g.keys))
	}
	return &Error{Code: CodeTimeTravelGap, Keys: g.keys, Message: msg}
}

// EnsureTable creates a KV table (and its history) if it does not exist.
func (w *Writer) EnsureTable(name string) error {
	_, err := w.table(name, true)
	return err
}
