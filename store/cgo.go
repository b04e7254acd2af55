//go:build cgo

package store

import _ "github.com/mattn/go-sqlite3" // registers the "sqlite3" database/sql driver

// cgoCheck reports whether the real SQLite driver is linked in.
func cgoCheck() error { return nil }
