package sqlitefile

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Querier is what RefuseForeign reads with: a *sql.DB, *sql.Conn or
// *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// RefuseForeign fails when q's database, without a Metis schema
// (user_version 0, which the caller has read), holds tables Metis did not
// create: another application's file, named by a typo or a stray
// METIS_DB, which the migrations would otherwise change for good (adding
// tables, setting user_version). The budget ledger's tables (budget*) may
// be there already: `caddy metis set-budget` can create them first.
func RefuseForeign(ctx context.Context, q Querier) error {
	rows, err := q.QueryContext(ctx, `SELECT name FROM sqlite_master
		WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE 'budget%'
		ORDER BY name LIMIT 6`)
	if err != nil {
		return fmt.Errorf("listing tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("listing tables: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing tables: %w", err)
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

// CheckForeign runs RefuseForeign on the database file at path (prepared
// by Prepare) before the pools open it: their connections switch the file
// to WAL as they connect, and the journal mode of another application's
// file is its own (audit 24O: refused, but left in WAL mode for good).
// This connection sets nothing, and a read leaves the file as it was.
func CheckForeign(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", DSN(path, "_busy_timeout=5000"))
	if err != nil {
		return err
	}
	defer db.Close()
	// One read transaction: another process's first open commits its
	// tables and user_version together, and two reads either side of it
	// saw Metis's tables without its version (review 24R2).
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("reading the schema: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("reading user_version: %w", err)
	}
	if v != 0 {
		return nil
	}
	return RefuseForeign(ctx, tx)
}
