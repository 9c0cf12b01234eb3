package sqlitekv

import "slices"

// Versions is a precondition on a key's version (its ETag), as HTTP's
// If-Match and If-None-Match state it. The zero value checks nothing.
type Versions struct {
	Match     []int64 // the key must exist at one of these versions
	MatchAny  bool    // the key must exist (If-Match: *)
	NoneMatch []int64 // the key must not be at any of these versions
	Absent    bool    // the key must not exist (If-None-Match: *)
}

// Given reports whether any condition was sent.
func (v Versions) Given() bool {
	return v.MatchAny || v.Absent || len(v.Match) > 0 || len(v.NoneMatch) > 0
}

// MatchFails reports whether If-Match fails for a key at version (exists
// false: no key).
func (v Versions) MatchFails(version int64, exists bool) bool {
	if !v.MatchAny && len(v.Match) == 0 {
		return false
	}
	return !exists || len(v.Match) > 0 && !slices.Contains(v.Match, version)
}

// NoneMatchHits reports whether If-None-Match names the key's state.
func (v Versions) NoneMatchHits(version int64, exists bool) bool {
	return exists && (v.Absent || slices.Contains(v.NoneMatch, version))
}

func (v Versions) check(cur Entry, exists bool) error {
	switch {
	case v.NoneMatchHits(cur.Version, exists):
		return Errorf(CodeCASMismatch, "Compare-and-swap failed: the key's state matches If-None-Match")
	case !v.MatchFails(cur.Version, exists):
		return nil
	case !exists:
		return Errorf(CodeCASKeyMissing, "Compare-and-swap failed: key does not exist")
	}
	return Errorf(CodeCASMismatch, "Compare-and-swap failed: current version does not match If-Match")
}

// missingTable answers a write to a key of a table that does not exist:
// the key is missing there, so an If-Match fails first (412), as it would
// in a table that exists, and otherwise the answer is notFound (404).
func missingTable(v Versions, notFound string) error {
	if err := v.check(Entry{}, false); err != nil {
		return err
	}
	return &Error{Code: CodeKeyNotFound, Message: notFound}
}
