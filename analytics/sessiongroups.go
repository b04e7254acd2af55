package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
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
//     from its calls in the window (the covering index calls_session_sums),
//     filtered call by call;
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
	if g := noSessionGroup(rest); g != nil {
		res = append(res, g)
	}
	return res, nil
}

// noSessionGroup is the group "" of the calls without a session: what the
// window's total leaves once the session groups are taken out (nil when
// nothing is left). Its last-call time is not known, and float dust from
// the subtraction is rounded to zero.
func noSessionGroup(rest sums) *group {
	if rest.calls <= 0 {
		return nil
	}
	rest.lastUS = 0
	if math.Abs(rest.cost) < 1e-12 {
		rest.cost = 0
	}
	if math.Abs(rest.savings) < 1e-12 {
		rest.savings = 0
	}
	return &group{vals: []string{""}, sums: rest}
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
	// session_id <> '' lets SQLite use the partial index calls_session_sums,
	// which holds every column of callSums: unfiltered, no calls row is read.
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

// sessionRange is what sessionsInRange reads of the unmixed sessions
// matching a filter whose last call lies in a range and whose first call is
// at or after a bound: their number and sums, the first k of them in
// byCost order, and the ids of the sessions in the range that start
// before the bound (edge).
type sessionRange struct {
	n    int64
	sums sums
	top  result
	edge []string
}

// sessionsInRange reads the unmixed sessions matching q's filter with
// last_ts_us in [a, b): those with first_ts_us >= firstMin summed, counted
// and their first k kept (SQLite's ORDER BY … LIMIT, so the range's
// sessions never cross into Go), the others' ids listed.
func sessionsInRange(ctx context.Context, tx *sql.Tx, q query, a, b, firstMin int64, k int) (sessionRange, error) {
	var sr sessionRange
	if b <= a {
		return sr, nil
	}
	var sb strings.Builder
	sb.WriteString(`SELECT COUNT(*), COALESCE(SUM(calls),0), COALESCE(SUM(errors),0), COALESCE(SUM(unpriced_calls),0),
	COALESCE(SUM(estimated_calls),0), TOTAL(cost_usd), TOTAL(cache_savings_usd), COALESCE(SUM(input_tokens),0),
	COALESCE(SUM(cache_read_tokens),0), COALESCE(SUM(cache_write_tokens),0), COALESCE(SUM(output_tokens),0),
	COALESCE(SUM(reasoning_tokens),0), COALESCE(SUM(latency_ms_sum),0), COALESCE(MAX(last_ts_us),0)
	FROM sessions WHERE last_ts_us >= ? AND last_ts_us < ? AND first_ts_us >= ? AND mixed = 0`)
	args := q.filter.where(&sb, []any{a, b, firstMin})
	s := &sr.sums
	err := tx.QueryRowContext(ctx, sb.String(), args...).Scan(&sr.n, &s.calls, &s.errors, &s.unpriced, &s.estimated,
		&s.cost, &s.savings, &s.input, &s.cacheRead, &s.cacheWrite, &s.output, &s.reasoning, &s.latencyMS, &s.lastUS)
	if err != nil {
		return sr, fmt.Errorf("summing sessions: %w", err)
	}
	if sr.n > 0 && k > 0 {
		sb.Reset()
		sb.WriteString(sessionSums + " WHERE last_ts_us >= ? AND last_ts_us < ? AND first_ts_us >= ? AND mixed = 0")
		args = q.filter.where(&sb, []any{a, b, firstMin})
		sb.WriteString(" ORDER BY cost_usd DESC, calls DESC, session_id LIMIT ?")
		if sr.top, _, err = scanSessionRows(ctx, tx, sb.String(), append(args, k), firstMin, b, nil, nil); err != nil {
			return sr, err
		}
	}
	if firstMin > 0 {
		sb.Reset()
		sb.WriteString("SELECT session_id FROM sessions WHERE last_ts_us >= ? AND last_ts_us < ? AND first_ts_us < ? AND mixed = 0")
		args = q.filter.where(&sb, []any{a, b, firstMin})
		if sr.edge, err = readIDs(ctx, tx, sb.String(), args...); err != nil {
			return sr, err
		}
	}
	return sr, nil
}

// readIDs runs a query selecting one text column.
func readIDs(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading session ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("reading session ids: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading session ids: %w", err)
	}
	return ids, nil
}

// sessionRun is the day cache's entry for the sessions lying wholly inside
// a run of whole past days [d0, d1) (sessionsInRange over [d0, d1) with
// first_ts_us >= d0). It depends on the calls before d1 — which the day
// cache watches — and on which of the sessions that started in the run
// have calls after it: later is the number of those when it was read, and
// the entry is stale once more have (a session resumed after d1 leaves the
// run).
type sessionRun struct {
	sessionRange
	later int64
}

// minSessionTop is the fewest sessions a cached run keeps, so that the
// common limits share one entry.
const minSessionTop = defaultCostLimit

// aggregateSessionsTop answers a query grouped by session alone like
// aggregateSessions but returns only the first limit groups in byCost
// order, with the window's totals and the number of groups the full answer
// has. The window's
// sessions are read by the range of their last call, in three pieces: the
// partial day at the start, the run of whole past days (from the day cache
// when it holds them), the rest up to now; each piece's sessions lying
// wholly inside the window are summed and counted in SQLite and only their
// first limit read; the sessions straddling an edge of the window, and the
// mixed ones, are read from calls as in aggregateSessions.
func (h *Handler) aggregateSessionsTop(ctx context.Context, q query, limit int) (result, sums, int, error) {
	lo, hi := q.from.UnixMicro(), q.to.UnixMicro()
	if hi <= lo {
		return nil, sums{}, 0, nil
	}
	tx, err := h.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, sums{}, 0, fmt.Errorf("starting a read transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	tq := q
	tq.dims = nil
	total, err := h.aggregateTx(ctx, tx, tq)
	if err != nil {
		return nil, sums{}, 0, err
	}
	d0, d1 := ceilTo(lo, dayUS), floorTo(hi, dayUS)
	if d1 <= d0 {
		d0, d1 = hi, hi // no whole day: one piece [lo, hi)
	}
	var (
		cands      result // the candidates for the first limit groups
		n          int64  // session groups
		sessionSum sums   // their sums
		straddling []string
	)
	addRange := func(sr sessionRange) {
		cands = append(cands, sr.top...)
		n += sr.n
		sessionSum.add(&sr.sums)
	}
	// The start: sessions ending before the first whole day.
	start, err := sessionsInRange(ctx, tx, q, lo, d0, lo, limit)
	if err != nil {
		return nil, sums{}, 0, err
	}
	addRange(start)
	straddling = append(straddling, start.edge...)
	// The end: sessions ending after the whole days, up to now.
	end, err := sessionsInRange(ctx, tx, q, d1, hi, lo, limit)
	if err != nil {
		return nil, sums{}, 0, err
	}
	addRange(end)
	straddling = append(straddling, end.edge...)
	if d1 > d0 {
		run, err := h.sessionRun(ctx, tx, q, d0, d1, max(limit, minSessionTop))
		if err != nil {
			return nil, sums{}, 0, err
		}
		addRange(run.sessionRange)
		// The run's sessions starting before it: wholly inside the window
		// (their row) or straddling its start; those that have since had a
		// call after the run are the end piece's.
		if len(run.edge) > 0 {
			rows, edge, err := readSessionsByID(ctx, tx, run.edge, lo, hi, d1)
			if err != nil {
				return nil, sums{}, 0, err
			}
			for _, g := range rows {
				cands = append(cands, g)
				n++
				sessionSum.add(&g.sums)
			}
			straddling = append(straddling, edge...)
		}
	}
	// Straddling the window's end (calls after now), and the mixed sessions.
	var sb strings.Builder
	sb.WriteString("SELECT session_id FROM sessions WHERE last_ts_us >= ? AND first_ts_us < ? AND mixed = 0")
	ids, err := readIDs(ctx, tx, sb.String(), q.filter.where(&sb, []any{hi, hi})...)
	if err != nil {
		return nil, sums{}, 0, err
	}
	straddling = append(straddling, ids...)
	ids, err = readIDs(ctx, tx, "SELECT session_id FROM sessions WHERE mixed <> 0 AND last_ts_us >= ? AND first_ts_us < ?",
		lo, hi)
	if err != nil {
		return nil, sums{}, 0, err
	}
	straddling = append(straddling, ids...)
	for len(straddling) > 0 {
		c := min(len(straddling), sessionChunk)
		part, err := readSessionCalls(ctx, tx, q, straddling[:c], lo, hi)
		if err != nil {
			return nil, sums{}, 0, err
		}
		for _, g := range part {
			cands = append(cands, g)
			n++
			sessionSum.add(&g.sums)
		}
		straddling = straddling[c:]
	}
	t := total.total()
	rest := t
	rest.sub(&sessionSum)
	if g := noSessionGroup(rest); g != nil {
		cands = append(cands, g)
		n++
	}
	sort.Slice(cands, func(i, j int) bool {
		return byCost(usd(cands[i].cost), cands[i].calls, cands[i].vals[0],
			usd(cands[j].cost), cands[j].calls, cands[j].vals[0])
	})
	return cands[:min(len(cands), limit)], t, int(n), nil
}

// sessionRun returns the sessions lying wholly inside the whole past days
// [d0, d1), from the day cache or read (and cached).
func (h *Handler) sessionRun(ctx context.Context, tx *sql.Tx, q query, d0, d1 int64, k int) (*sessionRun, error) {
	mark, err := h.cache.sync(ctx, tx)
	if err != nil {
		return nil, err
	}
	var later int64
	err = tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions WHERE last_ts_us >= ? AND first_ts_us >= ? AND first_ts_us < ?",
		d1, d0, d1).Scan(&later)
	if err != nil {
		return nil, fmt.Errorf("counting resumed sessions: %w", err)
	}
	key := fmt.Sprintf("session-run|%d|%d|%d|", d0, d1, k) + cacheKey(query{filter: q.filter}, part{})
	if run, ok := h.cache.getRun(key, mark, time.Now()); ok && run.later == later {
		return run, nil
	}
	sr, err := sessionsInRange(ctx, tx, q, d0, d1, d0, k)
	if err != nil {
		return nil, err
	}
	run := &sessionRun{sessionRange: sr, later: later}
	h.cache.putRun(key, d1, mark, run, time.Now())
	return run, nil
}

// readSessionsByID reads the sessions ids, which had their last call before
// d1 when listed: those now wholly inside [lo, hi) and unmixed as groups
// (their rows), those straddling lo or mixed as ids to read from calls;
// those with a call at or after d1 since are skipped (the pieces after d1
// read them).
func readSessionsByID(ctx context.Context, tx *sql.Tx, ids []string, lo, hi, d1 int64) (result, []string, error) {
	var res result
	var edge []string
	for len(ids) > 0 {
		c := min(len(ids), sessionChunk)
		var sb strings.Builder
		sb.WriteString(sessionSums + " WHERE last_ts_us < ? AND session_id IN (")
		args := make([]any, 0, c+1)
		args = append(args, d1)
		for i, id := range ids[:c] {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("?")
			args = append(args, id)
		}
		sb.WriteString(")")
		var err error
		if res, edge, err = scanSessionRows(ctx, tx, sb.String(), args, lo, hi, res, edge); err != nil {
			return nil, nil, err
		}
		ids = ids[c:]
	}
	return res, edge, nil
}
