package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/metisgateway/metis/internal/sqlitefile"
)

// schemaVersion is the PRAGMA user_version this build writes and expects.
const schemaVersion = 5

// migrations[i] brings the schema from user_version i to i+1. A shipped
// migration's text is never edited (TestShippedMigrationsUnchanged): a
// file it already made would not get the edit.
var migrations = []string{schemaV1, schemaV2, schemaV3, schemaV4, schemaV5}

// schemaRepairs bring a file to today's schema where a migration's text was
// edited after builds had shipped it: schemaV3 gained sessions_mixed and
// sessions_window, in place of sessions_last, five minutes after it was
// first committed (review 28U). Idempotent, they run on every writable open
// at no cost when there is nothing to do, and leave user_version alone, so
// an older build of the same version still opens the file.
const schemaRepairs = `
CREATE INDEX IF NOT EXISTS sessions_mixed ON sessions(last_ts_us) WHERE mixed <> 0;
DROP INDEX IF EXISTS sessions_last;
CREATE INDEX IF NOT EXISTS sessions_window ON sessions(last_ts_us, first_ts_us, mixed, key_id, user, team,
	workspace, calls, errors, unpriced_calls, estimated_calls, cost_usd, cache_savings_usd, input_tokens,
	cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, latency_ms_sum);
`

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
func migrate(ctx context.Context, db *sql.DB, writeCheck bool, log *zap.Logger) error {
	return retryBusy(ctx, func() error { return migrateOnce(ctx, db, writeCheck, log) })
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
func migrateOnce(ctx context.Context, db *sql.DB, writeCheck bool, log *zap.Logger) error {
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
		return fmt.Errorf("migrating schema: database schema version %d is newer than this build supports (%d): a newer Metis upgraded it; run that build, or restore the backup made before the upgrade", v, schemaVersion)
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
	start := time.Now()
	if v > 0 && v < schemaVersion {
		// Minutes on a file of millions of calls, during which the
		// gateway answers nothing: said, so that it is not taken for a
		// hang and killed (it would start over; review 28U).
		log.Info("migrating the trace database's schema: one way (an older build will refuse the file), and it can take minutes on a large file; let it finish",
			zap.Int("from_version", v), zap.Int("to_version", schemaVersion))
	}
	for i := v; i < schemaVersion; i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", i+1, err)
		}
	}
	if v > 0 {
		if _, err := tx.ExecContext(ctx, schemaRepairs); err != nil {
			return fmt.Errorf("migrating schema: repairing indexes: %w", err)
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
	if v > 0 && v < schemaVersion {
		log.Info("migrated the trace database's schema", zap.Int("from_version", v), zap.Int("to_version", schemaVersion),
			zap.Duration("took", time.Since(start)))
	}
	return nil
}
