//go:build cgo

package store

import (
	"errors"

	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" database/sql driver
)

// cgoCheck reports whether the real SQLite driver is linked in.
func cgoCheck() error { return nil }

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// isTransient reports whether err is a SQLite failure that may pass
// without anything changing in the statement: the disk or database full,
// the database locked or busy, an I/O error, a file read-only or
// unopenable (an operator can mend all of these), or memory short.
func isTransient(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrFull, sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrIoErr, sqlite3.ErrReadonly,
		sqlite3.ErrCantOpen, sqlite3.ErrNomem:
		return true
	}
	return false
}
