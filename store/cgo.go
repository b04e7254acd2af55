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
