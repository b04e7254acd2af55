package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"
)

// sessionChunk is how many straddling sessions one calls query reads.
const sessionChunk = 200

// aggregateSessions answers a query grouped by session alone (no grain, no
// model filter: sessions have no single model) without reading every call
// of the window, in one read transaction:
//
//   - a session lying wholly inside the window, whose calls all share one
//     key, user, team and workspace (not mixed), is its sessions row,
//     filtered by that identity;
//   - a session straddling the window's start or end, or mixed, is read
//     from its calls in the window (the calls_session index), filtered call
//     by call;
//   - the calls without a session (the group "") are the window's total,
//     from the rollups, less every session group.
//
// The "" group's lastUS is left 0: no answer shows it.
func (h *Handler) aggregateSessions(ctx context.Context, q query) (result, error) {
	lo, hi := q.from.UnixMicro(), q.to.UnixMicro()
	if hi <= lo {
		return nil, nil
	}
	tx, err := h.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("starting a read transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	tq := q
	tq.dims = nil
	total, err := h.aggregateTx(ctx, tx, tq)
	if err != nil {
		return nil, err
	}
	res, straddling, err := readSessionRows(ctx, tx, q, lo, hi)
	if err != nil {
		return nil, err
	}
	for len(straddling) > 0 {
		n := min(len(straddling), sessionChunk)
		part, err := readSessionCalls(ctx, tx, q, straddling[:n], lo, hi)
		if err != nil {
			return nil, err
		}
		res = append(res, part...)
		straddling = straddling[n:]
	}
	rest := total.total()
	for _, g := range res {
		rest.sub(&g.sums)
	}
	if rest.calls > 0 {
		rest.lastUS = 0
		if math.Abs(rest.cost) < 1e-12 {
			rest.cost = 0
		}
		if math.Abs(rest.savings) < 1e-12 {
			rest.savings = 0
		}
		res = append(res, &group{vals: []string{""}, sums: rest})
	}
	return res, nil
}

// readSessionRows reads the sessions that may have calls in [lo, hi): the
// groups of those wholly inside, unmixed and matching q's filter, and the
// ids of the others (straddling an edge or mixed), to read from calls.
func readSessionRows(ctx context.Context, tx *sql.Tx, q query, lo, hi int64) (result, []string, error) {
	// The unmixed sessions by their (filtered) identity, which the
	// sessions_user_last and sessions_key_last indexes serve; the mixed ones
	// (index sessions_mixed) whatever their first call's identity.
	var sb strings.Builder
	sb.WriteString(sessionSums + " WHERE last_ts_us >= ? AND first_ts_us < ? AND mixed = 0")
	args := q.filter.where(&sb, []any{lo, hi})
	res, straddling, err := scanSessionRows(ctx, tx, sb.String(), args, lo, hi, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	return scanSessionRows(ctx, tx, sessionSums+" WHERE mixed <> 0 AND last_ts_us >= ? AND first_ts_us < ?",
		[]any{lo, hi}, lo, hi, res, straddling)
}

// sessionSums selects what readSessionRows reads of a session.
const sessionSums = `SELECT session_id, first_ts_us, last_ts_us, mixed, calls, errors, unpriced_calls,
	estimated_calls, cost_usd, cache_savings_usd, input_tokens, cache_read_tokens, cache_write_tokens,
	output_tokens, reasoning_tokens, latency_ms_sum FROM sessions`

// scanSessionRows runs query and appends the sessions wholly inside
// [lo, hi) and unmixed to res, the others' ids to straddling.
func scanSessionRows(ctx context.Context, tx *sql.Tx, query string, args []any, lo, hi int64, res result,
	straddling []string) (result, []string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("reading sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		g := &group{vals: make([]string, 1)}
		s := &g.sums
		var first int64
		var mixed bool
		if err := rows.Scan(&g.vals[0], &first, &s.lastUS, &mixed, &s.calls, &s.errors, &s.unpriced, &s.estimated,
			&s.cost, &s.savings, &s.input, &s.cacheRead, &s.cacheWrite, &s.output, &s.reasoning,
			&s.latencyMS); err != nil {
			return nil, nil, fmt.Errorf("reading sessions: %w", err)
		}
		if mixed || first < lo || s.lastUS >= hi {
			straddling = append(straddling, g.vals[0])
			continue
		}
		res = append(res, g)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading sessions: %w", err)
	}
	return res, straddling, nil
}

// readSessionCalls aggregates the calls of sessions ids in [lo, hi)
// matching q's filter, by session.
func readSessionCalls(ctx context.Context, tx *sql.Tx, q query, ids []string, lo, hi int64) (result, error) {
	var sb strings.Builder
	sb.WriteString("SELECT session_id, " + callSums + " FROM calls WHERE session_id IN (")
	args := make([]any, 0, len(ids)+8)
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("?")
		args = append(args, id)
	}
	// session_id <> '' lets SQLite use the partial index calls_session.
	sb.WriteString(") AND session_id <> '' AND ts_us >= ? AND ts_us < ?")
	args = q.filter.where(&sb, append(args, lo, hi))
	sb.WriteString(" GROUP BY session_id")
	rows, err := tx.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("reading the calls of straddling sessions: %w", err)
	}
	defer rows.Close()
	var res result
	for rows.Next() {
		g := &group{vals: make([]string, 1)}
		s := &g.sums
		if err := rows.Scan(&g.vals[0], &s.calls, &s.errors, &s.unpriced, &s.estimated, &s.cost, &s.savings,
			&s.input, &s.cacheRead, &s.cacheWrite, &s.output, &s.reasoning, &s.latencyMS, &s.lastUS); err != nil {
			return nil, fmt.Errorf("reading the calls of straddling sessions: %w", err)
		}
		if s.calls > 0 {
			res = append(res, g)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the calls of straddling sessions: %w", err)
	}
	return res, nil
}

// aggregateTx answers q (any grouping but session) in tx, unit after unit,
// from the day cache where it holds a unit at tx's snapshot: the answer is
// of one snapshot, which aggregateSessions subtracts from.
func (h *Handler) aggregateTx(ctx context.Context, tx *sql.Tx, q query) (result, error) {
	var all []signed
	var mark int64
	synced := false
	for _, u := range plan(q.from, q.to, q.grain, false) {
		if !cacheable(u) {
			parts, err := readUnitTx(ctx, tx, q, u)
			if err != nil {
				return nil, err
			}
			all = append(all, parts...)
			continue
		}
		if !synced {
			var err error
			if mark, err = h.cache.sync(ctx, tx); err != nil {
				return nil, err
			}
			synced = true
		}
		key := cacheKey(q, u.parts[0])
		if res, ok := h.cache.getAt(key, mark, time.Now()); ok {
			all = append(all, signed{res: res})
			continue
		}
		parts, err := readUnitTx(ctx, tx, q, u)
		if err != nil {
			return nil, err
		}
		h.cache.put(key, u.parts[0].hi, mark, parts[0].res, time.Now())
		all = append(all, parts...)
	}
	return merge(all, q.grain != grainNone), nil
}
