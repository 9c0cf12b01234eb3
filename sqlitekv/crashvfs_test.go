package sqlitekv_test

import (
	"testing"

	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/ncruces/go-sqlite3/vfs"
)

// crashDisk is a disk that can lose power, in the manner of SQLite's own
// crash tests (src/test6.c). It is a VFS over the OS's: files live on the
// real disk as the OS page cache would hold them, so locks, shared memory
// and reads are the OS VFS's; beside each, crashDisk remembers what the
// platters hold for sure (the content at the file's last sync) and the
// writes since. After a given number of writes and syncs the power goes:
// every later write, sync, truncate or delete fails, and so does making a
// file. reboot then rewrites each file as the cut may have left it: its
// synced content and some of the writes since (afterPowerCut); a file made
// since its folder was last synced may be gone altogether.
//
// Deleting a file is durable at once: SQLite deletes only a WAL that a
// checkpoint emptied, so its return would bring back only pages that the
// database file holds already.
type crashDisk struct {
	vfs.VFSFilename // the OS's

	mu    sync.Mutex
	files map[string]*platter // by path
	left  int                 // writes and syncs before the power goes; negative: no limit
	off   bool                // the power is off
}

// sectorSize is the unit a disk writes whole or not at all.
const sectorSize = 512

// errPowerOff is what every change to the disk returns once the power is off.
var errPowerOff = errors.New("the power is off")

func newCrashDisk() *crashDisk {
	return &crashDisk{VFSFilename: vfs.Find("os").(vfs.VFSFilename), files: map[string]*platter{}, left: -1}
}

// platter is what the disk holds of one file.
type platter struct {
	synced  []byte      // the content at the last sync: what survives for sure
	linked  bool        // its folder entry is durable
	pending []diskWrite // since the last sync, in order
}

// diskWrite is a write, or with truncate a truncation to off.
type diskWrite struct {
	off      int64
	data     []byte
	truncate bool
}

// cutAfter lets n more writes and syncs through, then cuts the power.
func (d *crashDisk) cutAfter(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.left = n
}

// cutNow cuts the power.
func (d *crashDisk) cutNow() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.off = true
}

func (d *crashDisk) powerOff() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.off
}

// spend takes one change to the disk from what is left before the power
// goes, and reports whether the power is still on. Under d.mu.
func (d *crashDisk) spend() bool {
	if d.left == 0 {
		d.off = true
	}
	if d.off {
		return false
	}
	if d.left > 0 {
		d.left--
	}
	return true
}

// syncDir stands for the fsync of a folder: the entries of the files in it
// become durable.
func (d *crashDisk) syncDir(folder string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.spend() {
		return errPowerOff
	}
	for path, p := range d.files {
		if filepath.Dir(path) == folder {
			p.linked = true
		}
	}
	return nil
}

// reboot rewrites every file as the power cut left it and turns the power
// back on. Every connection must be closed: SQLite's shared memory goes
// too, as it does at a power cut.
func (d *crashDisk) reboot(rng *rand.Rand) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for path, p := range d.files {
		if err := os.Remove(path + "-shm"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		switch {
		case !p.linked && rng.IntN(2) == 0:
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		case len(p.pending) > 0: // else the file holds what was synced
			if err := os.WriteFile(path, p.afterPowerCut(rng), 0o600); err != nil {
				return err
			}
		}
	}
	clear(d.files)
	d.left, d.off = -1, false
	return nil
}

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

// Open is not reached: SQLite opens through OpenFilename.
func (d *crashDisk) Open(string, vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	return nil, 0, errors.New("crashDisk opens files by their Filename")
}

func (d *crashDisk) OpenFilename(name *vfs.Filename, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	if name == nil || flags&vfs.OPEN_DELETEONCLOSE != 0 {
		return d.VFSFilename.OpenFilename(name, flags) // a temporary file: no power cut can matter
	}
	path := name.String()
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.files[path]
	if p == nil {
		content, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if d.off {
				return nil, 0, errPowerOff
			}
			p = &platter{} // its folder entry is not durable until the folder is synced
		case err != nil:
			return nil, 0, err
		default:
			p = &platter{synced: content, linked: true}
		}
	}
	f, flags, err := d.VFSFilename.OpenFilename(name, flags)
	if err != nil {
		return nil, 0, err
	}
	d.files[path] = p
	return &crashFile{File: f, disk: d, platter: p}, flags, nil
}

func (d *crashDisk) Delete(name string, syncDir bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.spend() {
		return errPowerOff
	}
	delete(d.files, name)
	return d.VFSFilename.Delete(name, syncDir)
}

// crashFile is an open file of a crashDisk. Reads and locks go to the OS
// file; changes go there too and are remembered until the next sync.
type crashFile struct {
	vfs.File
	disk    *crashDisk
	platter *platter
}

func (f *crashFile) WriteAt(b []byte, off int64) (int, error) {
	f.disk.mu.Lock()
	defer f.disk.mu.Unlock()
	if !f.disk.spend() {
		return 0, errPowerOff
	}
	n, err := f.File.WriteAt(b, off)
	f.platter.pending = append(f.platter.pending, diskWrite{off: off, data: bytes.Clone(b[:n])})
	return n, err
}

func (f *crashFile) Truncate(size int64) error {
	f.disk.mu.Lock()
	defer f.disk.mu.Unlock()
	if !f.disk.spend() {
		return errPowerOff
	}
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	f.platter.pending = append(f.platter.pending, diskWrite{off: size, truncate: true})
	return nil
}

// SizeHint grows the file as the OS file's does (fallocate, which a
// checkpoint asks for before it copies pages past the file's end).
func (f *crashFile) SizeHint(size int64) error {
	hint, ok := f.File.(vfs.FileSizeHint)
	if !ok {
		return nil
	}
	f.disk.mu.Lock()
	defer f.disk.mu.Unlock()
	if !f.disk.spend() {
		return errPowerOff
	}
	before, err := f.File.Size()
	if err != nil {
		return err
	}
	if err := hint.SizeHint(size); err != nil {
		return err
	}
	if after, err := f.File.Size(); err == nil && after > before {
		f.platter.pending = append(f.platter.pending, diskWrite{off: after, truncate: true})
	}
	return err
}

// Sync makes the writes since the last one durable. The OS file is not
// synced: the real disk plays no part in the test.
func (f *crashFile) Sync(vfs.SyncFlag) error {
	f.disk.mu.Lock()
	defer f.disk.mu.Unlock()
	if !f.disk.spend() {
		return errPowerOff
	}
	p := f.platter
	for _, w := range p.pending {
		p.synced = w.apply(p.synced, 0, len(w.data))
	}
	p.pending = nil
	return nil
}

// What the OS file offers beyond vfs.File, passed on so that SQLite sees
// the same file it would without the simulated disk.

func (f *crashFile) SharedMemory() vfs.SharedMemory {
	if shm, ok := f.File.(vfs.FileSharedMemory); ok {
		return shm.SharedMemory()
	}
	return nil
}

func (f *crashFile) LockState() vfs.LockLevel {
	if l, ok := f.File.(vfs.FileLockState); ok {
		return l.LockState()
	}
	return vfs.LOCK_EXCLUSIVE + 1 // unknown
}

func (f *crashFile) PowersafeOverwrite() bool {
	p, ok := f.File.(vfs.FilePowersafeOverwrite)
	return ok && p.PowersafeOverwrite()
}

func (f *crashFile) SetPowersafeOverwrite(psow bool) {
	if p, ok := f.File.(vfs.FilePowersafeOverwrite); ok {
		p.SetPowersafeOverwrite(psow)
	}
}

func (f *crashFile) PersistWAL() bool {
	p, ok := f.File.(vfs.FilePersistWAL)
	return ok && p.PersistWAL()
}

func (f *crashFile) SetPersistWAL(keep bool) {
	if p, ok := f.File.(vfs.FilePersistWAL); ok {
		p.SetPersistWAL(keep)
	}
}

func (f *crashFile) HasMoved() (bool, error) {
	if m, ok := f.File.(vfs.FileHasMoved); ok {
		return m.HasMoved()
	}
	return false, nil
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
