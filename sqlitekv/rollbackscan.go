package sqlitekv

// rollbackScan is a table rollback's look at its table: through the
// writer, which applies it, or a reader, for a dry run.
type rollbackScan struct {
	tl      *timeline
	current func(key string, now int64) (e Entry, exists, expired bool, err error)
	now     func() int64 // the writer's writeNow, or a dry run's clock
	req     RollbackTableRequest
}

// rollState is what rolling one key back does: bring it from cur (its
// state now) to target (its state at the time rolled back to; nil:
// absent).
type rollState struct {
	target          *Entry
	cur             Entry
	exists, expired bool
}

// action is "delete", "restore", or "" where the key already is as it was.
func (s rollState) action() string {
	switch {
	case s.target == nil && s.exists:
		return "delete"
	case s.target != nil && (!s.exists || !sameEntry(s.cur, *s.target)):
		return "restore"
	}
	return ""
}

// state is what rolling key back does. At a time still to come, a TTL
// that runs out before then has not run out yet (point).
func (r rollbackScan) state(key string) (s rollState, err error) {
	now := r.now() // one time per key: what is reported is what is done
	if s.target, err = entryOrNil(r.tl.stateAt(key, atTime(r.req.At, now))); err != nil {
		return s, err
	}
	s.target = unexpired(s.target, now)
	s.cur, s.exists, s.expired, err = r.current(key, now)
	return s, err
}

// each calls fn with the state of each key the rollback chooses, in
// order (req.Keys, or every key with history but req.Exclude), and gap
// with each key whose state history cannot tell.
func (r rollbackScan) each(gap func(key string), fn func(key string, s rollState) error) error {
	excluded := map[string]bool{}
	for _, k := range r.req.Exclude {
		excluded[k] = true
	}
	visit := func(key string) error {
		if excluded[key] {
			return nil
		}
		s, err := r.state(key)
		if CodeOf(err) == CodeTimeTravelGap {
			gap(key)
			return nil
		}
		if err != nil {
			return err
		}
		return fn(key, s)
	}
	if r.req.Keys == nil {
		return r.tl.eachKey(visit)
	}
	for _, key := range Distinct(r.req.Keys) {
		if err := visit(key); err != nil {
			return err
		}
	}
	return nil
}
