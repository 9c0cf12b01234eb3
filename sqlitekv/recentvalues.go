package sqlitekv

import "slices"

// recentValues remembers the value rows a writer wrote lately, as the
// table holds them, so that the next write of such a key needs no SELECT:
// under kvbench's incr-spread every write reads a row a recent group
// wrote, and the SELECT was about a tenth of the writer's cost per incr
// (BenchmarkWriter_Incr/spread). Only
// this writer changes the table, so what it remembers stays true, except
// when what it wrote is taken back: a savepoint's rollback forgets it all
// (Writer.forgetRecent) and a group's rollback forgets the tables
// (forgetTables). Another process's commit to the file does too (Begin
// looks at data_version). Directory mode remembers nothing: a write there
// reads its file first. Small values only, a bounded number of keys per
// table, which it forgets all at once when it fills, as recentChains does.
type recentValues map[string]Entry

const (
	maxRecentValues    = 1024 // kvbench's incr-spread writes 1000 keys
	maxRecentValueSize = 512  // counters, flags and small JSON
)

// wroteValue remembers key's row as a write left it.
func (t *writeTable) wroteValue(key string, e Entry) {
	if t.mirror != nil || len(e.Value) > maxRecentValueSize {
		delete(t.recentValues, key)
		return
	}
	if t.recentValues == nil || len(t.recentValues) >= maxRecentValues {
		t.recentValues = recentValues{}
	}
	e.Value = slices.Clone(e.Value) // the caller's buffer may change
	t.recentValues[key] = e
}

// recentValue returns key's row as this writer last wrote it, if it
// remembers it. Its value is a copy, as heldValue's is.
func (t *writeTable) recentValue(key string) (Entry, bool) {
	e, ok := t.recentValues[key]
	e.Value = slices.Clone(e.Value)
	return e, ok
}
