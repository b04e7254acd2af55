package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
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

// bulkStmts are the writer's statements, prepared with the driver on the
// writer pool's connection (conn) and kept for as long as that connection
// lives: by bulkQueries index and bulkSizes index, plus the last-used
// update. named is the reused argument slice of one execution.
type bulkStmts struct {
	conn     any
	stmts    [numBulk][len(bulkSizes)]driver.Stmt
	lastUsed driver.Stmt
	named    []driver.NamedValue
}

// bulkLastUsed is exec's index for the last-used update (sqlKeyLastUsed).
const bulkLastUsed = numBulk

// prepare makes the statements ready on the driver connection dc: when dc
// is not the connection they were prepared on (the first batch, or after
// database/sql replaced a broken connection), it drops the old ones,
// turns the connection's automatic checkpoint off (checkpointPages) and
// prepares them all.
func (b *bulkStmts) prepare(ctx context.Context, dc any, s *Store) error {
	if b.conn == dc {
		return nil
	}
	b.close() //nolint:errcheck // statements of a connection database/sql closed
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return fmt.Errorf("trace writer: driver connection %T cannot prepare statements", dc)
	}
	if ex, ok := dc.(driver.ExecerContext); ok {
		// The writer checkpoints itself (checkpointPages). A failure only
		// leaves SQLite's default, so it is logged.
		if _, err := ex.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0", nil); err != nil {
			s.logger().Warn("turning off the trace writer's wal_autocheckpoint", zap.Error(err))
		}
		if _, err := ex.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit), nil); err != nil {
			s.logger().Warn("limiting the trace writer's WAL file size", zap.Error(err))
		}
	}
	for qi := range b.stmts {
		for si, rows := range bulkSizes {
			st, err := pc.PrepareContext(ctx, bulkQueries[qi].text(rows))
			if err != nil {
				b.close() //nolint:errcheck // the prepare error is what matters
				return fmt.Errorf("preparing writer statement: %w", err)
			}
			b.stmts[qi][si] = st
		}
	}
	st, err := pc.PrepareContext(ctx, sqlKeyLastUsed)
	if err != nil {
		b.close() //nolint:errcheck // the prepare error is what matters
		return fmt.Errorf("preparing writer statement: %w", err)
	}
	b.lastUsed = st
	b.conn = dc
	return nil
}

// exec runs statement qi (or bulkLastUsed) over args, whole rows of its
// columns, in as few executions as bulkSizes allow. Each execution goes
// through the driver's query path, which binds the values and steps the
// statement in a single cgo call (its exec path makes one per value).
func (b *bulkStmts) exec(ctx context.Context, qi int, args []any) error {
	if qi == bulkLastUsed {
		return b.run(ctx, b.lastUsed, args)
	}
	cols := bulkQueries[qi].cols
	for len(args) > 0 {
		n, si := len(args)/cols, 0
		for bulkSizes[si] > n {
			si++
		}
		k := bulkSizes[si] * cols
		if err := b.run(ctx, b.stmts[qi][si], args[:k]); err != nil {
			return err
		}
		args = args[k:]
	}
	return nil
}

// run executes st once with args as its positional values.
func (b *bulkStmts) run(ctx context.Context, st driver.Stmt, args []any) error {
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return fmt.Errorf("trace writer: driver statement %T cannot run", st)
	}
	named := b.named[:0]
	for i, v := range args {
		named = append(named, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	rows, err := q.QueryContext(ctx, named)
	clear(named) // release the batch's values
	b.named = named[:0]
	if err != nil {
		return err
	}
	// The driver has already stepped the statement; Next reads that step's
	// result (io.EOF for a statement without rows), so the insert is
	// complete even if a driver version stepped lazily.
	if err := rows.Next(nil); err != nil && !errors.Is(err, io.EOF) {
		rows.Close() //nolint:errcheck // the step error is what matters
		return err
	}
	return rows.Close()
}

// close closes the prepared statements. The writer calls it on its
// connection (through Conn.Raw) when it exits, before the store closes the
// pool.
func (b *bulkStmts) close() error {
	var errs []error
	for qi := range b.stmts {
		for si, st := range b.stmts[qi] {
			if st != nil {
				errs = append(errs, st.Close())
				b.stmts[qi][si] = nil
			}
		}
	}
	if b.lastUsed != nil {
		errs = append(errs, b.lastUsed.Close())
		b.lastUsed = nil
	}
	b.conn = nil
	return errors.Join(errs...)
}
