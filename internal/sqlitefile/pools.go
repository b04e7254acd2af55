package sqlitefile

import "database/sql"

// The pools open connections through the "sqlite3" database/sql driver,
// which the caller registers (by importing github.com/mattn/go-sqlite3).

// OpenWriter opens the writer pool of the database file at path with the
// DSN params: a single connection, never closed for age or idleness, so
// the process's writes serialise on it and it keeps the WAL open. Like
// sql.Open it does not connect yet.
func OpenWriter(path string, params ...string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", DSN(path, params...))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// OpenReaders opens a pool of at most n read-only connections (all kept
// idle) on the database file at path, next to its writer: mode=ro,
// _query_only=1 and a 5 s busy timeout. Like sql.Open it does not connect
// yet.
func OpenReaders(path string, n int) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", DSN(path, "mode=ro", "_query_only=1", "_busy_timeout=5000"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}
