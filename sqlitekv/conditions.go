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

func (v Versions) check(cur Entry, exists bool) error {
	switch {
	case v.Absent && exists:
		return Errorf(CodeCASMismatch, "Compare-and-swap failed: key already exists")
	case exists && slices.Contains(v.NoneMatch, cur.Version):
		return Errorf(CodeCASMismatch, "Compare-and-swap failed: current version matches If-None-Match")
	case !v.MatchAny && len(v.Match) == 0:
		return nil
	case !exists:
		return Errorf(CodeCASKeyMissing, "Compare-and-swap failed: key does not exist")
	case len(v.Match) > 0 && !slices.Contains(v.Match, cur.Version):
		return Errorf(CodeCASMismatch, "Compare-and-swap failed: current version does not match If-Match")
	}
	return nil
}
