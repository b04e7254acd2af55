package budget

import (
	"context"
	"database/sql"
	"fmt"
)

// schemaVersion is the version of the budget tables this build writes. It is
// kept in budget_meta (name 'schema_version'), not in PRAGMA user_version,
// which belongs to the trace store that shares the database file.
const schemaVersion = 1

// bucketUS is the width of a spend bucket in microseconds (15 minutes).
// Every current UTC offset is a multiple of 15 minutes, so calendar window
// starts fall on bucket boundaries and spent(window) is a sum over at most
// a month's worth of buckets instead of a scan of every charge.
const bucketUS = int64(15 * 60 * 1e6)

// schemaV1 creates the ledger tables. Amounts are USD, times unix
// microseconds.
const schemaV1 = `
-- One budget per (scope, subject, window).
CREATE TABLE IF NOT EXISTS budgets (
	id         TEXT PRIMARY KEY,  -- bd_<ULID>
	scope      TEXT NOT NULL,     -- key | user | team | workspace
	subject    TEXT NOT NULL,
	window     TEXT NOT NULL,     -- daily | weekly | monthly | Go duration
	tz         TEXT NOT NULL DEFAULT 'UTC',
	hard       REAL NOT NULL,
	soft       REAL NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	UNIQUE (scope, subject, window)
);

-- One row per settled call and budget; reservation_id makes settling
-- idempotent. Rows older than the previous window are pruned.
CREATE TABLE IF NOT EXISTS budget_charges (
	budget_id      TEXT NOT NULL,
	reservation_id TEXT NOT NULL,
	ts_us          INTEGER NOT NULL,
	amount         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS budget_charges_ts ON budget_charges(budget_id, ts_us, amount);
CREATE UNIQUE INDEX IF NOT EXISTS budget_charges_res ON budget_charges(reservation_id, budget_id);

-- budget_charges summed per 15-minute bucket (bucket = floor(ts_us)).
CREATE TABLE IF NOT EXISTS budget_spend (
	budget_id TEXT NOT NULL,
	bucket_us INTEGER NOT NULL,
	amount    REAL NOT NULL,
	PRIMARY KEY (budget_id, bucket_us)
) WITHOUT ROWID;

-- Worst-case amounts of calls in flight; one row per reservation and budget.
CREATE TABLE IF NOT EXISTS budget_reservations (
	id         TEXT NOT NULL,     -- rs_<ULID>, shared by the rows of one Reserve
	budget_id  TEXT NOT NULL,
	amount     REAL NOT NULL,
	created_us INTEGER NOT NULL,
	PRIMARY KEY (id, budget_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS budget_reservations_budget ON budget_reservations(budget_id, created_us, amount);

-- Soft-limit notices already reported: calendar windows by their start,
-- rolling windows by the time of the notice.
CREATE TABLE IF NOT EXISTS budget_notices (
	budget_id       TEXT NOT NULL,
	window_start_us INTEGER NOT NULL,
	PRIMARY KEY (budget_id, window_start_us)
) WITHOUT ROWID;

-- budgets_version is bumped by triggers on every budgets change, so running
-- gateways reload their in-memory Applies cache only when something changed.
INSERT OR IGNORE INTO budget_meta(name, value) VALUES ('budgets_version', 0);
CREATE TRIGGER IF NOT EXISTS budgets_ins AFTER INSERT ON budgets BEGIN
	UPDATE budget_meta SET value = value + 1 WHERE name = 'budgets_version';
END;
CREATE TRIGGER IF NOT EXISTS budgets_upd AFTER UPDATE ON budgets BEGIN
	UPDATE budget_meta SET value = value + 1 WHERE name = 'budgets_version';
END;
CREATE TRIGGER IF NOT EXISTS budgets_del AFTER DELETE ON budgets BEGIN
	UPDATE budget_meta SET value = value + 1 WHERE name = 'budgets_version';
END;
`

// migrations[i] brings the budget schema from version i to i+1.
var migrations = []string{schemaV1}

// migrate creates or upgrades the budget tables in one BEGIN IMMEDIATE
// transaction (the writer DSN sets _txlock=immediate), so concurrent openers
// serialise and all but the first find nothing to do.
func migrate(ctx context.Context, db *sql.DB) error {
	// A current schema needs no write lock (`caddy metis list-budgets`
	// while another process writes).
	var current int
	if err := db.QueryRowContext(ctx, `SELECT value FROM budget_meta WHERE name = 'schema_version'`).Scan(&current); err == nil && current == schemaVersion {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating budget schema: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS budget_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID`); err != nil {
		return fmt.Errorf("migrating budget schema: creating budget_meta: %w", err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT value FROM budget_meta WHERE name = 'schema_version'`).Scan(&v)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("migrating budget schema: reading schema_version: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("migrating budget schema: version %d is newer than this build supports (%d): a newer Metis upgraded it; run that build, or restore the backup made before the upgrade", v, schemaVersion)
	}
	if v == schemaVersion {
		return nil
	}
	for i := v; i < schemaVersion; i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating budget schema to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO budget_meta(name, value) VALUES ('schema_version', ?)
		ON CONFLICT(name) DO UPDATE SET value = excluded.value`, schemaVersion); err != nil {
		return fmt.Errorf("migrating budget schema: setting schema_version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrating budget schema: commit: %w", err)
	}
	return nil
}
