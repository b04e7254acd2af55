package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
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
// for up to migrateWait.
func migrate(ctx context.Context, db *sql.DB, writeCheck bool) error {
	deadline := time.Now().Add(migrateWait)
	for {
		err := migrateOnce(ctx, db, writeCheck)
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
		if err := refuseForeign(ctx, tx); err != nil {
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

// refuseForeign fails when a database without a Metis schema (user_version
// 0) holds tables the gateway did not create: another application's file,
// named by a typo or a stray METIS_DB, which the migrations would
// otherwise change for good (adding tables, setting user_version). The
// budget ledger's tables (budget*) may be there already: `caddy metis
// set-budget` can create them first.
func refuseForeign(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master
		WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE 'budget%'
		ORDER BY name LIMIT 6`)
	if err != nil {
		return fmt.Errorf("migrating schema: listing tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("migrating schema: listing tables: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrating schema: listing tables: %w", err)
	}
	if len(names) > 0 {
		if len(names) > 5 {
			names[5] = "…"
		}
		return fmt.Errorf("not a Metis database: it holds other tables (%s) and no Metis schema; "+
			"name a new or Metis database file", strings.Join(names, ", "))
	}
	return nil
}
