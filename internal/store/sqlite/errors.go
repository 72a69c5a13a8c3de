package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// fail wraps an error from database/sql or the driver in a *cpis.Error of
// the kind the store contract names, so that no driver error leaves the
// store. Errors that already are *cpis.Error (the store's own refusals)
// are returned as they are.
func fail(op string, err error) error {
	var e *cpis.Error
	if errors.As(err, &e) {
		return err
	}
	return cpis.E(op, kindOf(err), err)
}

// kindOf classifies a driver error. Whatever means "the database cannot
// serve now, try again" is Unavailable: a lock held too long by another
// process, a full or failing disk, a request whose context ended.
func kindOf(err error) cpis.Kind {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, sql.ErrConnDone), errors.Is(err, sql.ErrTxDone):
		return cpis.Unavailable
	case errors.Is(err, sql.ErrNoRows):
		return cpis.NotFound
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return cpis.Other
	}
	switch se.Code() & 0xff { // the primary result code, without the extended part
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_PERM:
		return cpis.Unavailable
	case sqlite3.SQLITE_CONSTRAINT:
		// A key already taken: only a concurrent writer, or a caller
		// reusing an id, can cause it.
		return cpis.Conflict
	}
	return cpis.Other
}

// isBusy reports whether err is SQLite's "another connection holds the lock".
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}
