package sqlitekv

import (
	"errors"
	"fmt"
)

// RefContentType labels a value that is a reference: its bytes are the key
// of another key in the same table.
const RefContentType = "application/vnd.kvd.reference"

// maxRefHops bounds how far GET follows a chain of references.
const maxRefHops = 8

// followRefs resolves e through references with load, returning the final
// target's entry with RefTarget set. Cycles, chains longer than maxRefHops
// and dangling targets are KEY_NOT_FOUND, saying which.
func followRefs(key string, e Entry, load func(key string) (Entry, error)) (Entry, error) {
	seen := map[string]bool{key: true}
	for hops := 0; e.ContentType == RefContentType; hops++ {
		if hops == maxRefHops {
			return Entry{}, Errorf(CodeKeyNotFound, "Reference chain from %q is longer than %d hops", key, maxRefHops)
		}
		target := string(e.Value)
		if seen[target] {
			return Entry{}, Errorf(CodeKeyNotFound, "Reference cycle: %q is reached twice", target)
		}
		seen[target] = true
		next, err := load(target)
		// INVALID_PARAMETERS: a key this database cannot hold (in directory
		// mode, one that can be no file), so nothing is there.
		if c := CodeOf(err); c == CodeKeyNotFound || c == CodeKeyExpired || c == CodeInvalidParameters {
			return Entry{}, &Error{Code: CodeKeyNotFound, Message: fmt.Sprintf("Dangling reference: target %q does not exist", target)}
		} else if err != nil {
			return Entry{}, err
		}
		e = next
		e.RefTarget = target
	}
	return e, nil
}

// notARef refuses, on a reference, a write that reads the stored value
// as a number or as JSON (incr, the array operations, a write under a
// path): a reference's bytes are its target's key. Acting on them would
// repoint the reference (an incr of one to "99" made it one to "100"),
// and following it would let a write to one key change another.
func notARef(cur Entry, exists bool, what string) error {
	if exists && cur.ContentType == RefContentType {
		return Errorf(CodeInvalidParameters, "Key is a reference (to %q): %s does not follow references; write to the target, or replace the reference with a PUT", cur.Value, what)
	}
	return nil
}

func validateRefTarget(target []byte) error {
	if err := ValidateKey(string(target)); err != nil {
		msg := err.Error()
		if e := (*Error)(nil); errors.As(err, &e) {
			msg = e.Message
		}
		return Errorf(CodeInvalidParameters, "A reference's body must be a valid key: %s", msg)
	}
	return nil
}
