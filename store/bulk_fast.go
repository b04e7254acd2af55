package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// bulkInsert is a multi-row INSERT statement: head, then one tuple of cols
// placeholders per row, then tail (an upsert's ON CONFLICT clause). Rows
// inserted by one statement are inserted in order, as by one statement each.
type bulkInsert struct {
	head string
	cols int
	tail string
}

// The statements the writer runs, indexes into bulkQueries.
const (
	bulkEvents = iota
	bulkCalls
	bulkHour
	bulkDay
	bulkHourModel
	bulkDayKey
	bulkSessions
	numBulk
)

// bulkSizes are the row counts of each statement's prepared variants, in
// decreasing order and ending with 1: n rows take the largest variants
// first, so at most a few statements each (the largest, 64 calls, binds
// 1792 variables, far below SQLite's limit of 32766).
var bulkSizes = [...]int{64, 16, 4, 1}

const rollupColumns = ` (bucket, key_id, user, team, workspace, provider, model, inbound_shape,
	calls, errors, unpriced_calls, estimated_calls, cost_usd, input_tokens, cache_read_tokens,
	cache_write_tokens, output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum, last_ts_us)
VALUES `

const rollupConflict = `
ON CONFLICT (bucket, key_id, model, provider, inbound_shape, user, team, workspace) DO UPDATE SET` + rollupSums

// rollupSums adds an upsert's sums to the row's (the rollups' and the
// sessions' columns).
const rollupSums = `
	calls = calls + excluded.calls,
	errors = errors + excluded.errors,
	unpriced_calls = unpriced_calls + excluded.unpriced_calls,
	estimated_calls = estimated_calls + excluded.estimated_calls,
	cost_usd = cost_usd + excluded.cost_usd,
	input_tokens = input_tokens + excluded.input_tokens,
	cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
	cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
	output_tokens = output_tokens + excluded.output_tokens,
	reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
	cache_savings_usd = cache_savings_usd + excluded.cache_savings_usd,
	latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum,
	last_ts_us = max(last_ts_us, excluded.last_ts_us)`

// bulkQueries are the writer's statements. Each batch upserts a rollup or
// session row at most once (prepare aggregates them), so no statement sees
// the same key twice.
var bulkQueries = [numBulk]bulkInsert{
	bulkEvents: {head: `INSERT INTO events (id, type, timestamp_us, payload_json) VALUES `, cols: 4},
	bulkCalls: {head: `INSERT INTO calls (event_id, ts_us, turn_id, key_id, key_name, user, team, workspace,
	session_id, inbound_shape, provider, requested_model, model, stream, status, error_class, attempts,
	input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_usd,
	priced, estimated, cache_savings_usd, latency_ms, ttft_ms)
VALUES `, cols: 28},
	bulkHour: {head: `INSERT INTO rollup_hour` + rollupColumns, cols: 21, tail: rollupConflict},
	bulkDay:  {head: `INSERT INTO rollup_day` + rollupColumns, cols: 21, tail: rollupConflict},
	bulkHourModel: {head: `INSERT INTO rollup_hour_model (bucket, provider, model, inbound_shape,
	calls, errors, unpriced_calls, estimated_calls, cost_usd, input_tokens, cache_read_tokens,
	cache_write_tokens, output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum, last_ts_us)
VALUES `, cols: 17, tail: `
ON CONFLICT (bucket, model, provider, inbound_shape) DO UPDATE SET` + rollupSums},
	bulkDayKey: {head: `INSERT INTO rollup_key_day (bucket, key_id, user, team, workspace, inbound_shape,
	calls, errors, unpriced_calls, estimated_calls, cost_usd, input_tokens, cache_read_tokens,
	cache_write_tokens, output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum, last_ts_us)
VALUES `, cols: 19, tail: `
ON CONFLICT (bucket, key_id, inbound_shape, user, team, workspace) DO UPDATE SET` + rollupSums},
	// mixed is set once a batch's calls of the session disagree on the
	// identity, or the batch's first call disagrees with the stored one.
	bulkSessions: {head: `INSERT INTO sessions (session_id, key_id, key_name, user, team, workspace,
	first_ts_us, last_ts_us, calls, unpriced_calls, cost_usd, errors, estimated_calls, input_tokens,
	cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum,
	mixed)
VALUES `, cols: 21, tail: `
ON CONFLICT (session_id) DO UPDATE SET
	first_ts_us = min(first_ts_us, excluded.first_ts_us),
	mixed = mixed OR excluded.mixed OR key_id <> excluded.key_id OR user <> excluded.user
		OR team <> excluded.team OR workspace <> excluded.workspace,` + rollupSums},
}

// text returns the statement for rows rows.
func (q *bulkInsert) text(rows int) string {
	tuple := "(" + strings.Repeat("?, ", q.cols-1) + "?)"
	var sb strings.Builder
	sb.WriteString(q.head)
	for i := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(tuple)
	}
	sb.WriteString(q.tail)
	return sb.String()
}

// bulkStmts are the writer's statements prepared on the writer pool, by
// bulkQueries index and bulkSizes index. database/sql keeps each prepared
// on the pool's connection, so a transaction's tx.StmtContext reuses it
// rather than preparing again (and re-prepares should the connection ever
// be replaced).
type bulkStmts [numBulk][len(bulkSizes)]*sql.Stmt

// prepare prepares the statements not prepared yet. It must not run inside
// a transaction on db, whose single connection it needs.
func (b *bulkStmts) prepare(ctx context.Context, db *sql.DB) error {
	for qi := range b {
		for si, rows := range bulkSizes {
			if b[qi][si] != nil {
				continue
			}
			st, err := db.PrepareContext(ctx, bulkQueries[qi].text(rows))
			if err != nil {
				return fmt.Errorf("preparing writer statement: %w", err)
			}
			b[qi][si] = st
		}
	}
	return nil
}

// exec runs statement qi in tx over args, whole rows of its columns, in
// as few executions as bulkSizes allow.
func (b *bulkStmts) exec(ctx context.Context, tx *sql.Tx, qi int, args []any) error {
	cols := bulkQueries[qi].cols
	for len(args) > 0 {
		n, si := len(args)/cols, 0
		for bulkSizes[si] > n {
			si++
		}
		k := bulkSizes[si] * cols
		if _, err := tx.StmtContext(ctx, b[qi][si]).ExecContext(ctx, args[:k]...); err != nil {
			return err
		}
		args = args[k:]
	}
	return nil
}

// close closes the prepared statements; the writer calls it when it exits,
// before the store closes the pool.
func (b *bulkStmts) close() error {
	var errs []error
	for qi := range b {
		for si, st := range b[qi] {
			if st != nil {
				errs = append(errs, st.Close())
				b[qi][si] = nil
			}
		}
	}
	return errors.Join(errs...)
}
