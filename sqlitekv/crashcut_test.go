package sqlitekv_test

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// What a power cut leaves of a file's writes since its last sync.

// afterPowerCut is the file's content after a power cut: what was synced,
// and of the writes since, what one of the policies keeps. They follow
// what SQLite assumes of a disk (atomiccommit.html, "Hardware
// Assumptions"): a sector write may be cut short, but linearly, from one
// end of it; the writes since the last sync may reach the disk in any
// order; and an area a file grew by may hold garbage.
func (p *platter) afterPowerCut(rng *rand.Rand) []byte {
	out := slices.Clone(p.synced)
	switch rng.IntN(4) {
	case 0: // nothing since the last sync reached the disk
	case 1: // everything did (as after a crash of the process alone)
		for _, w := range p.pending {
			out = w.apply(out, 0, len(w.data))
		}
	case 2: // the writes reached the disk in order, up to one torn
		keep := rng.IntN(len(p.pending) + 1)
		for i, w := range p.pending[:keep] {
			to := len(w.data)
			if i == keep-1 {
				to = rng.IntN(len(w.data) + 1)
				if rng.IntN(2) == 0 { // at a sector's end
					sectors := w.sectors()
					to = sectors[rng.IntN(len(sectors))]
				}
			}
			out = w.apply(out, 0, to)
		}
	default: // each sector of each write reached the disk, or not, or torn
		for _, w := range p.pending {
			if w.truncate {
				if rng.IntN(2) == 0 {
					out = w.apply(out, 0, 0)
				}
				continue
			}
			from := 0
			for _, to := range w.sectors() {
				out = w.applySector(out, from, to, rng)
				from = to
			}
		}
	}
	return out
}

// applySector applies w.data[from:to], one sector's worth, as a power cut
// may: whole, not at all (where the file grew, garbage may stand in for
// it), or torn from either end.
func (w diskWrite) applySector(out []byte, from, to int, rng *rand.Rand) []byte {
	switch rng.IntN(3) {
	case 0:
		return w.apply(out, from, to)
	case 1:
		if int(w.off)+from >= len(out) && rng.IntN(2) == 0 {
			junk := diskWrite{off: w.off + int64(from), data: make([]byte, to-from)}
			for i := range junk.data {
				junk.data[i] = byte(rng.Uint32())
			}
			return junk.apply(out, 0, len(junk.data))
		}
		return out
	default:
		cut := from + rng.IntN(to-from+1)
		if rng.IntN(2) == 0 {
			return w.apply(out, from, cut)
		}
		return w.apply(out, cut, to)
	}
}

// sectors lists where the write's data crosses a sector boundary of the
// file, and its end.
func (w diskWrite) sectors() []int {
	var ends []int
	for at := int((w.off/sectorSize+1)*sectorSize - w.off); at < len(w.data); at += sectorSize {
		ends = append(ends, at)
	}
	return append(ends, len(w.data))
}

// apply writes w.data[from:to] (or truncates) over content.
func (w diskWrite) apply(content []byte, from, to int) []byte {
	if w.truncate {
		if int(w.off) < len(content) {
			return content[:w.off]
		}
		return append(content, make([]byte, int(w.off)-len(content))...)
	}
	start := int(w.off) + from
	if end := int(w.off) + to; end > len(content) {
		content = append(content, make([]byte, end-len(content))...)
	}
	copy(content[start:], w.data[from:to])
	return content
}

// The simulated disk must be a fair one: a cut keeps every synced byte,
// never puts garbage where a file already held data, and shows each
// outcome (nothing of the unsynced write, all of it, a part) in turn.
func TestCrashDisk_APowerCutKeepsSyncedBytesAndSomeOfTheRest(t *testing.T) {
	synced := bytes.Repeat([]byte{'s'}, 2*sectorSize)
	p := &platter{synced: synced, linked: true}
	// Over the second sector and on past the end: an overwrite and an append.
	p.pending = []diskWrite{{off: sectorSize, data: bytes.Repeat([]byte{'n'}, 2*sectorSize)}}
	seen := map[string]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		got := p.afterPowerCut(rng)
		if len(got) < len(synced) || !bytes.Equal(got[:sectorSize], synced[:sectorSize]) {
			t.Fatalf("a cut changed synced bytes: got %q", got)
		}
		for i, b := range got[sectorSize:len(synced)] {
			if b != 's' && b != 'n' {
				t.Fatalf("a cut left byte %d of an overwritten sector as %q, want old or new", sectorSize+i, b)
			}
		}
		switch {
		case bytes.Equal(got, synced):
			seen["nothing"]++
		case bytes.Equal(got, append(slices.Clone(synced[:sectorSize]), p.pending[0].data...)):
			seen["everything"]++
		default:
			seen["part"]++
		}
	}
	for _, outcome := range []string{"nothing", "everything", "part"} {
		if seen[outcome] == 0 {
			t.Errorf("in 1000 cuts, never %s of the unsynced write: %v", outcome, seen)
		}
	}
}
