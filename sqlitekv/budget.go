package sqlitekv

// Budget bounds one answer in bytes, as well as in count: a read that
// lists values (history, a table at a time, a diff, a batch get) stops
// taking items once the next would take the answer past Max, and says
// where the next page starts. Reads go row by row and stop there, so one
// request cannot make the server gather gigabytes of values.
//
// An answer always holds at least one item, so paging always moves on:
// a single item (a value, or the two of a history entry) may exceed Max.
type Budget struct {
	// Max is the most bytes the items of one answer may take; 0 or less
	// is no bound.
	Max int
	// Measure is what a key and a value take in the answer as the caller
	// presents them (e nil: no value; key "": a second value of the same
	// item). Nil counts their raw bytes.
	Measure func(key string, e *Entry) int

	spent int
	ended bool // an item did not fit: the page ended before it
}

// Take spends the cost of one item, a key and its values (nil where there
// is none), and reports whether the item fits: the first always does,
// the others while the answer stays within Max. An item that does not fit
// is left out, and the page ends before it: every later item is left out
// too, however small (a list that went on with a shorter key skipped the
// one before it).
func (b *Budget) Take(key string, values ...*Entry) bool {
	var cost int
	if len(values) == 0 {
		cost = b.measure(key, nil)
	}
	for i, e := range values {
		if i > 0 {
			key = ""
		}
		cost += b.measure(key, e)
	}
	if b.ended || b.Max > 0 && b.spent > 0 && b.spent+cost > b.Max {
		b.ended = true
		return false
	}
	b.spent += cost
	return true
}

func (b *Budget) measure(key string, e *Entry) int {
	if b.Measure != nil {
		return b.Measure(key, e)
	}
	n := len(key)
	if e != nil {
		n += len(e.Value)
	}
	return n
}
