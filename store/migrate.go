package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/metisgateway/metis/internal/sqlitefile"
)

// schemaVersion is the PRAGMA user_version this build writes and expects.
const schemaVersion = 5

// migrations[i] brings the schema from user_version i to i+1.
var migrations = []string{schemaV1, schemaV2, schemaV3, schemaV4, schemaV5}

// migrateWait bounds migrate's retries of a busy database.
const migrateWait = 10 * time.Second

// migrate reads PRAGMA user_version and applies the missing migrations in one
// BEGIN IMMEDIATE transaction (the writer DSN sets _txlock=immediate), so
// concurrent openers (a running server, `caddy validate`, the CLI) serialise
// on SQLite's write lock and all but the first find nothing to do.
//
// While another process turns a fresh file into a WAL database, SQLite can
// answer "database is locked" at once instead of calling the busy handler
// (1 in 20 runs of TestOpenConcurrentProcesses), so a busy error is retried
// for up to migrateWait (retryBusy).
func migrate(ctx context.Context, db *sql.DB, writeCheck bool) error {
	return retryBusy(ctx, func() error { return migrateOnce(ctx, db, writeCheck) })
}

// retryBusy runs f until it does not fail busy, for up to migrateWait.
func retryBusy(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(migrateWait)
	for {
		err := f()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond):
		}
	}
}

// migrateOnce brings the schema to schemaVersion; with writeCheck it
// writes user_version even when the schema is current. A migration
// written from now on must not rebuild rollups or sessions from the calls
// table alone: `caddy metis prune` deletes old calls, whose sums then live
// only in the rollups and sessions.
func migrateOnce(ctx context.Context, db *sql.DB, writeCheck bool) error {
	if !writeCheck {
		// A current schema needs no write lock: `caddy metis list-keys`
		// waited 10 s for one another process held, then failed (audit
		// 24O).
		var v int
		if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err == nil && v == schemaVersion {
			return nil
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating schema: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrating schema: reading user_version: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("migrating schema: database schema version %d is newer than this build supports (%d); upgrade Metis", v, schemaVersion)
	}
	if v == schemaVersion && !writeCheck {
		return nil
	}
	if v == 0 {
		// Checked again inside the transaction: another process may
		// have changed the file since CheckForeign.
		if err := sqlitefile.RefuseForeign(ctx, tx); err != nil {
			return err
		}
	}
	for i := v; i < schemaVersion; i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", i+1, err)
		}
	}
	// Written even when the schema is current (writeCheck, for a
	// gateway): a file this process may read but not write (another
	// user's, mode 0444) fails here, at start, rather than at its first
	// event, after the gateway began answering calls it could not record.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("migrating schema: setting user_version (is the database file writable?): %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrating schema: commit: %w", err)
	}
	return nil
}
