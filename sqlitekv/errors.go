package sqlitekv

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ncruces/go-sqlite3"
	"golang.org/x/sys/unix"
)

// Code names a class of failure. The HTTP layer maps each code to one status;
// storage never thinks in statuses.
type Code string

const (
	CodeInvalidDBPath       Code = "INVALID_DB_PATH"
	CodeInvalidParameters   Code = "INVALID_PARAMETERS"
	CodeInvalidSQLiteHeader Code = "INVALID_SQLITE_HEADER"
	CodePathIsDirectory     Code = "PATH_IS_DIRECTORY"
	CodeKeyNotFound         Code = "KEY_NOT_FOUND"
	CodeDatabaseNotFound    Code = "DATABASE_NOT_FOUND"
	CodeKeyExpired          Code = "KEY_EXPIRED"
	CodePathNotFound        Code = "PATH_NOT_FOUND"
	CodeTimeTravelGap       Code = "TIME_TRAVEL_GAP"
	CodeCASMismatch         Code = "CAS_MISMATCH"
	CodeCASKeyMissing       Code = "CAS_KEY_MISSING"
	CodePayloadTooLarge     Code = "PAYLOAD_TOO_LARGE"
	CodeOverloaded          Code = "OVERLOADED"
	CodeDatabaseError       Code = "DATABASE_ERROR"
	CodeFileSystemError     Code = "FILE_SYSTEM_ERROR"
	CodeStorageFull         Code = "STORAGE_FULL"
	CodeReadOnly            Code = "READ_ONLY"
)

// Codes lists every code above. httpapi's tests check each has its HTTP
// status, and errors_test.go that none declared here is missing.
func Codes() []Code {
	return []Code{CodeInvalidDBPath, CodeInvalidParameters, CodeInvalidSQLiteHeader, CodePathIsDirectory,
		CodeKeyNotFound, CodeDatabaseNotFound, CodeKeyExpired, CodePathNotFound, CodeTimeTravelGap,
		CodeCASMismatch, CodeCASKeyMissing, CodePayloadTooLarge, CodeOverloaded, CodeDatabaseError,
		CodeFileSystemError, CodeStorageFull, CodeReadOnly}
}

// Error is the only error type storage hands upward: a code for the HTTP
// layer and a message safe to show a client. Cause, when set, is logged but
// never sent (it may hold SQL text or file paths).
type Error struct {
	Code    Code
	Message string
	Keys    []string // the keys concerned, where it helps (TIME_TRAVEL_GAP of a rollback)
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf builds an *Error with a formatted client-facing message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Cancelled answers a request whose context ended (its client closed the
// connection, or only its sending side) before anything was done: a 503,
// since kvd did not fail, and one a client still reading may retry.
func Cancelled(cause error) *Error {
	return &Error{Code: CodeOverloaded, Message: "Request cancelled: the client closed its connection before anything was done; retry", Cause: cause}
}

// NoFilesLeft reports whether err says the process ran out of file
// descriptors (its own limit, or the system's).
func NoFilesLeft(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// outOfFiles answers a failure for want of file descriptors: kvd's, not
// the client's, and one that passes (a database closes, a watch or a
// client goes), so 503 OVERLOADED for the client to retry, naming the
// cause. what says what failed.
func outOfFiles(what string, cause error) *Error {
	return &Error{Code: CodeOverloaded, Message: what + ": too many open files; retry", Cause: cause}
}

// cannotOpenMore reports whether the process is out of file descriptors,
// or near its limit. SQLite's open of a database, its WAL or its shared
// memory often fails with a bare SQLITE_CANTOPEN, the errno lost, and by
// the time the error is seen the files the open did get are closed again,
// and under load other requests' files too: so the question is whether
// the files a few connections take (the database, its WAL and shared
// memory, a folder to sync) could be opened now. (Only asking for four
// missed most such failures of a kvd at its limit: 500s, not 503s.)
func cannotOpenMore() bool {
	if time.Since(time.Unix(0, filesRanOutAt.Load())) < time.Second {
		return true
	}
	var limit unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) == nil {
		if open, err := openDescriptors(); err == nil && uint64(open+nearFileLimit) >= limit.Cur {
			return true
		}
	}
	err := canOpen(1)
	return err != nil && NoFilesLeft(err)
}

// canOpen fails as an open would when n files could not be opened now
// (noting a want of descriptors, see filesRanOutAt).
func canOpen(n int) error {
	var held []int
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	for range n {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			noteOpenFailure(err)
			return err
		}
		held = append(held, fd)
	}
	return nil
}

// openDescriptors counts the process's open file descriptors.
func openDescriptors() (int, error) {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1) // unsorted, unlike os.ReadDir
	return len(names), err
}

// filesRanOutAt is when (Unix nanoseconds) one of SQLite's opens through
// kvd's VFSs last failed for want of file descriptors: SQLite's error
// often no longer says so by the time kvd sees it.
var filesRanOutAt atomic.Int64

// noteOpenFailure keeps the time of an open that failed for want of file
// descriptors (filesRanOutAt).
func noteOpenFailure(err error) {
	if err != nil && NoFilesLeft(err) {
		filesRanOutAt.Store(time.Now().UnixNano())
	}
}

// nearFileLimit is how many descriptors short of its limit kvd counts as
// out of them: enough for a few databases' connections to open.
const nearFileLimit = 32

// dbError wraps an unexpected SQLite failure: the client learns what kind
// of failure it was (never SQL text), the log gets the cause.
func dbError(cause error) *Error {
	msg := "Database operation failed"
	switch {
	case NoFilesLeft(cause):
		return outOfFiles("Database file cannot be opened", cause)
	case errors.Is(cause, syscall.ENOMEM):
		return &Error{Code: CodeOverloaded, Message: "Out of memory for another database connection; retry", Cause: cause}
	case errors.Is(cause, sqlite3.CANTOPEN) && !errors.As(cause, new(syscall.Errno)) && cannotOpenMore():
		return outOfFiles("Database file cannot be opened", errors.Join(cause, syscall.EMFILE))
	case errors.Is(cause, sqlite3.CORRUPT), errors.Is(cause, sqlite3.NOTADB):
		msg = "Database file is corrupt"
	case storageFull(cause):
		return &Error{Code: CodeStorageFull, Message: "Disk is full: the write was not saved", Cause: cause}
	case errors.Is(cause, sqlite3.IOERR):
		msg = "Disk I/O error"
	case errors.Is(cause, sqlite3.READONLY), errors.Is(cause, sqlite3.PERM), errors.Is(cause, sqlite3.CANTOPEN):
		msg = "Database file cannot be written or opened"
		if errno := syscall.Errno(0); errors.As(cause, &errno) {
			msg += ": " + errno.Error() // too many open files, permission denied: no path
		}
	case LockedElsewhere(cause):
		msg = "Database is locked by another process"
	}
	return &Error{Code: CodeDatabaseError, Message: msg, Cause: cause}
}

// LockedElsewhere tells whether err is another program's lock on the
// database, held past SQLite's busy timeout.
func LockedElsewhere(err error) bool {
	return errors.Is(err, sqlite3.BUSY) || errors.Is(err, sqlite3.LOCKED)
}

// storageFull tells a full disk (or an exhausted quota) from other
// failures: SQLITE_FULL, or the system's ENOSPC or EDQUOT itself. The
// driver's VFS hands a full disk up as an I/O error whose errno SQLite's
// later calls overwrite before the error reaches kvd, so the writer's WAL
// turns it into SQLITE_FULL first (walbuffer.go); any other I/O error
// stays one.
func storageFull(err error) bool {
	return errors.Is(err, sqlite3.FULL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// PanicError is the error of a write that panicked: a bug, reported to
// its client as a database failure, with the panic as the logged cause.
func PanicError(p any) error { return dbError(fmt.Errorf("panic: %v", p)) }

// CodeOf returns the code of err, or "" when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
