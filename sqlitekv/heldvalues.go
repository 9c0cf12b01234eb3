package sqlitekv

import "slices"

// The open group's value rows wait in memory and are written once, at the
// group's end: a key written n times in a group then costs one UPDATE
// instead of n, and a write that reads a key the group already wrote
// costs no SELECT. Under kvbench's batch-set a group writes each of 1000
// keys four or five times. History rows are still written as each write
// happens: they are what a write is.
//
// Rows wait only for writes that run without a savepoint (checkedFirst),
// whose failure after a change fails the whole group anyway, so nothing
// short of the group's rollback ever has to take a waiting row back.
// Everything else on the writer's connection that reads the values table
// (a savepoint's write, the sweep) or ends the group writes them first.

// heldRow is a key's value row as the open group left it.
type heldRow struct {
	entry     Entry
	exists    bool // the table holds a row for the key: UPDATE it, else INSERT
	inHistory bool // the row holds the op number of its value's history row (largevalues.go)
}

// holdValue keeps key's new row until the group's end.
func (t *writeTable) holdValue(key string, e Entry, exists, inHistory bool) {
	if t.heldValues == nil {
		t.heldValues = map[string]heldRow{}
	}
	if row, ok := t.heldValues[key]; ok {
		exists = row.exists // what the table holds has not changed since
	}
	t.heldValues[key] = heldRow{entry: e, exists: exists, inHistory: inHistory}
}

// heldValue returns key's waiting row. Its value is a copy: a caller may edit
// what it reads (a JSON path write does), and the row must stay as the
// write that left it.
func (t *writeTable) heldValue(key string) (Entry, bool) {
	row, ok := t.heldValues[key]
	row.entry.Value = slices.Clone(row.entry.Value)
	return row.entry, ok
}

// writeHeld writes the waiting rows and forgets them.
func (t *writeTable) writeHeld() error {
	for key, row := range t.heldValues {
		if err := t.storeValue(key, row.entry, row.exists, row.inHistory); err != nil {
			return err
		}
		delete(t.heldValues, key)
	}
	return nil
}

// writeHeld writes every table's waiting rows, unless the group failed
// (they go with its rollback). A failure fails the group: the writes
// whose rows they are had been applied.
func (w *Writer) writeHeld() error {
	if err := w.lost(); err != nil {
		return err
	}
	for _, t := range w.tables {
		if err := t.writeHeld(); err != nil {
			w.spoil(err, true)
			return err
		}
	}
	return nil
}
