// Package sqlitefile prepares the files of the SQLite databases the
// gateway keeps (the trace store and the budget ledger): private
// permissions before SQLite creates anything, the go-sqlite3 data source
// name for a path, and the single-connection writer and read-only reader
// pools both open on it.
package sqlitefile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Prepare makes path absolute and, before SQLite opens it, creates its
// folder (mode 0700, with any missing parents; an existing folder keeps
// its mode) and the database file (mode 0600; an existing file is left as
// it is), so neither is created with the process umask's looser defaults.
//
// It returns the absolute path, also with an error once the path could be
// made absolute, so the caller can name the file it failed on; abs is ""
// only when filepath.Abs fails.
func Prepare(path string) (abs string, err error) {
	abs, err = filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return abs, fmt.Errorf("creating folder: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return abs, fmt.Errorf("creating database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return abs, fmt.Errorf("creating database file: %w", err)
	}
	return abs, nil
}

// uriEscaper escapes what SQLite would otherwise read as a URI's escape,
// query or fragment in a file: URI's path (SQLite decodes %HH).
var uriEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// DSN returns the go-sqlite3 data source name of the database file at
// path: a file: URI of path with params ("key=value", already URL-safe)
// joined by & as its query, or without a query when there are none.
func DSN(path string, params ...string) string {
	dsn := "file:" + uriEscaper.Replace(path)
	if len(params) == 0 {
		return dsn
	}
	return dsn + "?" + strings.Join(params, "&")
}
