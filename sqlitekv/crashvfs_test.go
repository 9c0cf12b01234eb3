package sqlitekv_test

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// sectorSize is the unit in which a cut keeps, loses or tears a write.
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
