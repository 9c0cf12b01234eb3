package sqlitekv

import "context"

// HistoryRequest pages through a key's history, newest first.
type HistoryRequest struct {
	Table, Key string
	Limit      int           // writes listed at most
	Before     HistoryCursor // zero: from the newest write
	Budget     Budget        // bytes of the values shown
}

// HistoryCursor is where a page of history stopped: the next page lists
// the writes before this one.
type HistoryCursor struct{ Ts, Op int64 }

// HistoryPage is one page of a key's history. Versions holds the writes
// listed, newest first, then the write before the last of them when there
// is one, so the old value of every listed write is known.
type HistoryPage struct {
	Versions []Version
	Listed   int            // how many of Versions are listed
	Next     *HistoryCursor // where the next page starts; nil on the last
	Cut      bool           // the budget ended the page before Limit
}

// HistoryPage reads one page of key's history. A key with no history is
// KEY_NOT_FOUND; a page past the oldest write is empty.
func (s *Store) HistoryPage(ctx context.Context, req HistoryRequest) (HistoryPage, error) {
	var p HistoryPage
	err := s.readTx(ctx, req.Table, func(t *readStmts) error {
		if t == nil {
			return Errorf(CodeKeyNotFound, "Key has no history")
		}
		var err error
		if p, err = t.historyPage(req); err == nil && len(p.Versions) == 0 && req.Before == (HistoryCursor{}) {
			return Errorf(CodeKeyNotFound, "Key has no history")
		}
		return err
	})
	return p, err
}

// historyPage reads the rows one at a time and lists each write once the
// row before it (its old value) is read, while the budget holds both.
func (tl *timeline) historyPage(req HistoryRequest) (HistoryPage, error) {
	var p HistoryPage
	limit := max(req.Limit, 1)
	budget := req.Budget
	err := tl.olderThan(req.Key, req.Before, func(v Version) bool {
		p.Versions = append(p.Versions, v)
		n := len(p.Versions)
		if n == 1 {
			return true
		}
		if !budget.Take(req.Key, p.Versions[n-2].shown(), v.shown()) {
			p.Versions, p.Cut = p.Versions[:n-1], true // the last listed keeps its old value
			return false
		}
		p.Listed++
		return n <= limit
	})
	if err != nil {
		return HistoryPage{}, err
	}
	n := len(p.Versions)
	if !p.Cut && n > 0 && n <= limit { // the key's oldest write kept: nothing before it
		if p.Cut = !budget.Take(req.Key, p.Versions[n-1].shown()); !p.Cut {
			p.Listed++
		}
	}
	if p.Listed < n {
		last := p.Versions[p.Listed-1]
		p.Next = &HistoryCursor{Ts: last.Ts, Op: last.OpNumber}
	}
	return p, nil
}

// shown is the value a history answer shows for the write: none for a
// removal or an unrecorded write.
func (v *Version) shown() *Entry {
	if !v.Recorded || v.Removes() {
		return nil
	}
	return &v.Entry
}
