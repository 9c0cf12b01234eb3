package actors

import (
	"errors"
	"fmt"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// An open that failed to upgrade a table an older kvd wrote (most often
// for want of room: it needs two to three times the table's size) would
// fail so again at once, after rewriting the table again: every request
// of the database started another rewrite, keeping the disk full for
// every other database on it. So its requests get the same answer,
// without a try, for 2 s after the failure, doubling with each failure
// up to a minute; or until its disk has more room than the failure left.
const (
	firstUpgradeWait = 2 * time.Second
	maxUpgradeWait   = time.Minute
	// moreRoom is how much free space must have grown to try before the
	// wait is over: more than a log line's.
	moreRoom = 1 << 20
)

// failedUpgrades is each database's last failed upgrade, by path.
type failedUpgrades map[string]*failedUpgrade

type failedUpgrade struct {
	err  *sqlitekv.Error
	at   time.Time
	wait time.Duration
	room uint64 // sqlitekv.RoomFor after the failure
}

// note records that path's open failed to upgrade it (sqlitekv.
// UpgradeFailed), leaving room bytes free (sqlitekv.RoomFor).
func (f failedUpgrades) note(path string, err error, now time.Time, room uint64) {
	var e *sqlitekv.Error
	if !errors.As(err, &e) {
		e = &sqlitekv.Error{Code: sqlitekv.CodeDatabaseError, Message: "Database operation failed", Cause: err}
	}
	last := f[path]
	if last == nil {
		last = &failedUpgrade{wait: firstUpgradeWait / 2}
	}
	last.err, last.at, last.wait, last.room = e, now, min(2*last.wait, maxUpgradeWait), room
	f[path] = last
}

// retryRefused is the answer to a request for path while its last failed
// upgrade is not to be tried again yet, nil when it may be.
func (f failedUpgrades) retryRefused(path string, now time.Time, room func() uint64) error {
	last := f[path]
	if last == nil {
		return nil
	}
	left := last.at.Add(last.wait).Sub(now)
	if left <= 0 || room() >= last.room+moreRoom {
		return nil
	}
	return &sqlitekv.Error{Code: last.err.Code, Cause: last.err.Cause, Message: fmt.Sprintf(
		"%s (kvd tries again in %v, or as soon as the disk has more room)", last.err.Message, left.Round(time.Millisecond))}
}
