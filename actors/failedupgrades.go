package actors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// An open that failed to upgrade a table an older kvd wrote (most often
// for want of room: it needs two to three times the table's size) would
// fail so again at once, after rewriting the table again: every request
// of the database started another rewrite, keeping the disk full for
// every other database on it. So its requests get the same answer,
// without a try, for 2 s after the failure, doubling with each failure
// up to a minute; or until its disk has more room than the failure left,
// or its path names another file (restored, made anew).
const (
	firstUpgradeWait = 2 * time.Second
	maxUpgradeWait   = time.Minute
	// moreRoom is how much free space must have grown to try before the
	// wait is over: more than a log line's.
	moreRoom = 1 << 20
)

// failedUpgrades is each database's last failed upgrade, by path.
type failedUpgrades map[string]failedUpgrade

type failedUpgrade struct {
	err  *sqlitekv.Error
	at   time.Time
	wait time.Duration
	room uint64      // sqlitekv.RoomFor after the failure
	file fs.FileInfo // what the path named after it (nil: nothing)
}

// failedUpgradeOf is the failedUpgrade that err, path's open's, is, nil
// if it is none. It asks the file system: call it outside the
// registry's lock, which a hung disk must not hold.
func failedUpgradeOf(path string, err error) *failedUpgrade {
	if !sqlitekv.UpgradeFailed(err) {
		return nil
	}
	var e *sqlitekv.Error
	if !errors.As(err, &e) {
		e = &sqlitekv.Error{Code: sqlitekv.CodeDatabaseError, Message: "Database operation failed", Cause: err}
	}
	file, _ := os.Stat(sqlitekv.DatabaseFile(path)) // directory mode: its cache, not the folder
	return &failedUpgrade{err: e, room: sqlitekv.RoomFor(path), file: file}
}

// note records how path's open ended at now: failed, its upgrade (see
// failedUpgradeOf), or else nil, which forgets the failures before.
func (f failedUpgrades) note(path string, failed *failedUpgrade, now time.Time) {
	if failed == nil {
		delete(f, path)
		return
	}
	wait := firstUpgradeWait
	if last, ok := f[path]; ok {
		wait = min(2*last.wait, maxUpgradeWait)
	}
	failed.at, failed.wait = now, wait
	f[path] = *failed
}

// refusal is the answer to a request for path at now while this failed
// upgrade is not to be tried again yet, nil when it may be. It asks the
// file system (room, os.Stat): call it outside the registry's lock.
func (last failedUpgrade) refusal(path string, now time.Time, room func(string) uint64) error {
	left := last.at.Add(last.wait).Sub(now)
	if left <= 0 || !last.sameFile(path) || room(path) >= last.room+moreRoom {
		return nil
	}
	when := fmt.Sprintf("kvd tries again in %v", left.Round(time.Millisecond))
	if last.err.Code == sqlitekv.CodeStorageFull {
		when += ", or as soon as the disk has more room"
	}
	return &sqlitekv.Error{Code: last.err.Code, Cause: last.err.Cause, Message: last.err.Message + " (" + when + ")"}
}

// sameFile reports whether path still names the file that failed, as it
// was then. (A copy put over it with `cp -p`, the same size and mtime,
// is most likely the same version, which would fail again.)
func (last failedUpgrade) sameFile(path string) bool {
	now, err := os.Stat(sqlitekv.DatabaseFile(path))
	if last.file == nil || err != nil {
		return last.file == nil && err != nil
	}
	return sqlitekv.Unchanged(last.file, now)
}
