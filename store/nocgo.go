//go:build !cgo

package store

// cgoCheck fails fast: without cgo, go-sqlite3 compiles to a stub that only
// errors once a connection is used, far from the cause.
func cgoCheck() error { return ErrNoCGO }

// isBusy is false without SQLite.
func isBusy(error) bool { return false }

// isTransient is false without SQLite.
func isTransient(error) bool { return false }
