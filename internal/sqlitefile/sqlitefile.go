// Package sqlitefile prepares the files of the SQLite databases the
// gateway keeps (the trace store and the budget ledger): private
// permissions before SQLite creates anything, the go-sqlite3 data source
// name for a path, and the single-connection writer and read-only reader
// pools both open on it.
package sqlitefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Prepare makes path absolute and, before SQLite opens it, creates its
// folder (mode 0700, with any missing parents; an existing folder keeps
// its mode) and the database file (mode 0600), so neither is created with
// the process umask's looser defaults.
//
// An existing file is not opened at all. SQLite's locks are POSIX record
// locks, which belong to the process: closing any descriptor of the file
// releases every lock the process holds on it, including those of SQLite
// connections already open on it (the trace store's, when the budget
// ledger prepares the same file). Without its shared lock, the writer
// looks absent to other processes: the last of them to close, a sqlite3
// shell reading the file say, checkpoints and deletes the WAL under the
// writer, whose later commits are lost.
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
	if fi, err := os.Stat(abs); err == nil {
		if fi.IsDir() {
			return abs, fmt.Errorf("creating database file: %w", &fs.PathError{Op: "open", Path: abs, Err: syscall.EISDIR})
		}
		if !fi.Mode().IsRegular() {
			return abs, fmt.Errorf("database file: %s is not a regular file (%v)", abs, fi.Mode().Type())
		}
		return abs, sidecarsPossible(abs)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return abs, fmt.Errorf("database file: %w", err)
	}
	// O_EXCL: a file created meanwhile by another process is not opened.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if fi, lerr := os.Lstat(abs); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			// O_EXCL refuses a symlink; Stat said its target is missing,
			// and SQLite would create that with the umask's mode.
			return abs, fmt.Errorf("database file: %s is a symlink to a missing file", abs)
		}
		return abs, nil
	}
	if err != nil {
		return abs, fmt.Errorf("creating database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return abs, fmt.Errorf("creating database file: %w", err)
	}
	return abs, nil
}

// sidecarsPossible fails when SQLite could not create the -wal and -shm
// files of the database at abs beside it (a read-only file system, a
// folder the process may not write) and they are not there already:
// SQLite would then say "unable to open database file", of a file that
// exists.
func sidecarsPossible(abs string) error {
	dir := filepath.Dir(abs)
	err := dirWritable(dir)
	if err == nil {
		return nil
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, serr := os.Stat(abs + suffix); serr != nil {
			return fmt.Errorf("folder %s is not writable (%w): SQLite keeps the database's %s and %s files beside it",
				dir, err, filepath.Base(abs)+"-wal", filepath.Base(abs)+"-shm")
		}
	}
	return nil
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
