package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// dim is a grouping column; the whitelist below is the only way a column
// name reaches SQL text.
type dim string

const (
	dimModel     dim = "model"
	dimProvider  dim = "provider"
	dimKey       dim = "key_id"
	dimUser      dim = "user"
	dimTeam      dim = "team"
	dimWorkspace dim = "workspace"
	dimShape     dim = "inbound_shape"
	dimSession   dim = "session_id" // calls only: the rollups have no session
)

// query is one aggregate over a window: calls matching filter in [from, to),
// grouped by dims and, with a grain, by time bucket.
type query struct {
	from, to time.Time
	filter   filter
	dims     []dim
	grain    grain
	// lean reads only calls, errors, unpriced, cost, input and output
	// tokens and the last call; the other sums stay 0.
	lean bool
}

// sums are the additive figures of a group.
type sums struct {
	calls, errors, unpriced, estimated              int64
	cost, savings                                   float64
	input, cacheRead, cacheWrite, output, reasoning int64
	latencyMS                                       int64
	lastUS                                          int64 // latest call, unix µs
}

func (s *sums) sub(o *sums) {
	s.calls -= o.calls
	s.errors -= o.errors
	s.unpriced -= o.unpriced
	s.estimated -= o.estimated
	s.cost -= o.cost
	s.savings -= o.savings
	s.input -= o.input
	s.cacheRead -= o.cacheRead
	s.cacheWrite -= o.cacheWrite
	s.output -= o.output
	s.reasoning -= o.reasoning
	s.latencyMS -= o.latencyMS
}

func (s *sums) add(o *sums) {
	s.calls += o.calls
	s.errors += o.errors
	s.unpriced += o.unpriced
	s.estimated += o.estimated
	s.cost += o.cost
	s.savings += o.savings
	s.input += o.input
	s.cacheRead += o.cacheRead
	s.cacheWrite += o.cacheWrite
	s.output += o.output
	s.reasoning += o.reasoning
	s.latencyMS += o.latencyMS
	s.lastUS = max(s.lastUS, o.lastUS)
}

// group is one row of an aggregate: the dims' values in query order, the
// bucket start (unix seconds) when the query has a grain, and the sums.
type group struct {
	vals   []string
	bucket int64
	sums
}

// result is an aggregate's groups in no particular order.
type result []*group

// total sums every group.
func (res result) total() sums {
	var t sums
	for _, g := range res {
		t.add(&g.sums)
	}
	return t
}

// Expressions giving the calls table the rollups' column semantics (the
// writer's: an error is status >= 400 or an error class; unpriced is
// priced = 0; cost_usd is NULL unless priced).
var (
	rollupSums = `COALESCE(SUM(calls),0), COALESCE(SUM(errors),0), COALESCE(SUM(unpriced_calls),0),
	COALESCE(SUM(estimated_calls),0), TOTAL(cost_usd), TOTAL(cache_savings_usd), COALESCE(SUM(input_tokens),0),
	COALESCE(SUM(cache_read_tokens),0), COALESCE(SUM(cache_write_tokens),0), COALESCE(SUM(output_tokens),0),
	COALESCE(SUM(reasoning_tokens),0), COALESCE(SUM(latency_ms_sum),0), COALESCE(MAX(last_ts_us),0)`
	callSums = `COUNT(*), COALESCE(SUM(status >= 400 OR error_class IS NOT NULL),0), COALESCE(SUM(priced = 0),0),
	COALESCE(SUM(estimated),0), TOTAL(cost_usd), TOTAL(cache_savings_usd), COALESCE(SUM(input_tokens),0),
	COALESCE(SUM(cache_read_tokens),0), COALESCE(SUM(cache_write_tokens),0), COALESCE(SUM(output_tokens),0),
	COALESCE(SUM(reasoning_tokens),0), COALESCE(SUM(latency_ms),0), COALESCE(MAX(ts_us),0)`
	// The lean forms read only calls, errors, unpriced, cost, input and
	// output tokens and the last call: fewer columns to move through cgo.
	rollupLean = `COALESCE(SUM(calls),0), COALESCE(SUM(errors),0), COALESCE(SUM(unpriced_calls),0),
	TOTAL(cost_usd), COALESCE(SUM(input_tokens),0), COALESCE(SUM(output_tokens),0), COALESCE(MAX(last_ts_us),0)`
	callLean = `COUNT(*), COALESCE(SUM(status >= 400 OR error_class IS NOT NULL),0), COALESCE(SUM(priced = 0),0),
	TOTAL(cost_usd), COALESCE(SUM(input_tokens),0), COALESCE(SUM(output_tokens),0), COALESCE(MAX(ts_us),0)`
)

// aggregate answers q by reading every unit of the window's decomposition
// (concurrently, each in its own read transaction) and merging the parts'
// groups.
func (h *Handler) aggregate(ctx context.Context, q query) (result, error) {
	callsOnly := false
	for _, d := range q.dims {
		callsOnly = callsOnly || d == dimSession
	}
	if callsOnly && len(q.dims) == 1 && q.grain == grainNone && q.filter.model == nil {
		return h.aggregateSessions(ctx, q)
	}
	units := plan(q.from, q.to, q.grain, callsOnly)
	out := make([][]signed, len(units))
	errs := make([]error, len(units))
	var mark int64
	for _, u := range units {
		if cacheable(u) {
			var err error
			if mark, err = h.cache.sync(ctx, h.db); err != nil {
				return nil, err
			}
			break
		}
	}
	var wg sync.WaitGroup
	spawn := wg.Go
	if ctx.Value(serialKey{}) != nil {
		spawn = func(f func()) { f() }
	}
	for i, u := range units {
		if !cacheable(u) {
			spawn(func() { out[i], errs[i] = h.readUnit(ctx, q, u) })
			continue
		}
		key := cacheKey(q, u.parts[0])
		if res, ok := h.cache.get(key, time.Now()); ok {
			out[i] = []signed{{res: res}}
			continue
		}
		spawn(func() {
			out[i], errs[i] = h.readUnit(ctx, q, u)
			if errs[i] == nil {
				h.cache.put(key, u.parts[0].hi, mark, out[i][0].res, time.Now())
			}
		})
	}
	wg.Wait()
	var all []signed
	for i, err := range errs {
		if err != nil {
			return nil, err
		}
		all = append(all, out[i]...)
	}
	return merge(all, q.grain != grainNone), nil
}

// signed is one part's groups and whether they are subtracted.
type signed struct {
	res result
	neg bool
}

// readUnit reads u's parts in one read transaction, after checking its
// guard.
func (h *Handler) readUnit(ctx context.Context, q query, u unit) ([]signed, error) {
	tx, err := h.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("starting a read transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	return readUnitTx(ctx, tx, q, u)
}

// readUnitTx reads u's parts in tx, after checking its guard and, for a
// unit that subtracts calls, that none were pruned from them.
func readUnitTx(ctx context.Context, tx *sql.Tx, q query, u unit) ([]signed, error) {
	parts := u.parts
	guarded := u.guardHi > u.guardLo
	// The rollup rows a unit reads count calls that `caddy metis prune`
	// may have deleted: from the rest of the day or hour after its guard,
	// or from the calls it subtracts (review 30R2: a window starting in
	// the hour after the cut counted that hour's pruned calls). When the
	// oldest call left is younger than the first of those, the unit is
	// read by addition instead.
	pruneAt, check := u.guardLo, guarded
	for _, p := range u.parts {
		if p.neg && p.src == srcCalls && (!check || p.lo < pruneAt) {
			pruneAt, check = p.lo, true
		}
	}
	if check && u.fallback != nil {
		lo, hi := u.guardLo, u.guardHi
		if !guarded {
			lo, hi = 0, 0 // no rest of the period to check
		}
		var any int
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM calls WHERE ts_us >= ?1 AND ts_us < ?2)
	OR COALESCE((SELECT MIN(ts_us) FROM calls), ?3 + 1) > ?3`,
			lo, hi, pruneAt).Scan(&any)
		if err != nil {
			return nil, fmt.Errorf("checking for calls after the window: %w", err)
		}
		if any != 0 {
			parts = u.fallback
		}
	}
	out := make([]signed, 0, len(parts))
	for _, p := range parts {
		res, err := aggregatePart(ctx, tx, q, p)
		if err != nil {
			return nil, err
		}
		out = append(out, signed{res, p.neg})
	}
	return out, nil
}

// merge adds (or subtracts) the parts' groups by key. A subtracted part
// never lowers lastUS: exclusion only subtracts calls that precede every
// call left in the group. Groups left without calls are dropped.
func merge(parts []signed, bucketed bool) result {
	if len(parts) == 1 && !parts[0].neg {
		return parts[0].res
	}
	idx := make(map[string]*group)
	var res result
	var kb strings.Builder
	for _, part := range parts {
		for _, g := range part.res {
			kb.Reset()
			for _, v := range g.vals {
				kb.WriteString(v)
				kb.WriteByte(0)
			}
			if bucketed {
				fmt.Fprint(&kb, g.bucket)
			}
			m, ok := idx[kb.String()]
			if !ok {
				m = &group{vals: g.vals, bucket: g.bucket}
				idx[kb.String()] = m
				res = append(res, m)
			}
			if part.neg {
				m.sub(&g.sums)
			} else {
				m.add(&g.sums)
			}
		}
	}
	kept := res[:0]
	for _, g := range res {
		if g.calls > 0 {
			if math.Abs(g.cost) < 1e-12 {
				g.cost = 0
			}
			if math.Abs(g.savings) < 1e-12 {
				g.savings = 0
			}
			kept = append(kept, g)
		}
	}
	return kept
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rollupTable is the smallest rollup table that answers q's part read from
// src (srcDay or srcHour): rollup_hour_model (hour × model × provider ×
// shape) when q neither filters nor groups by identity; rollup_key_day
// (day × key × shape × user, team, workspace) for whole days when q neither
// filters nor groups by model or provider — except a gateway_key filter,
// which the (key_id, bucket) indexes of rollup_day and rollup_hour answer
// faster; else rollup_hour or rollup_day.
func rollupTable(q query, src source) string {
	f := q.filter
	noIdentity := f.keyID == nil && f.user == nil && f.team == nil && f.workspace == nil
	noModel := f.model == nil
	for _, d := range q.dims {
		switch d {
		case dimModel, dimProvider:
			noModel = false
		case dimKey, dimUser, dimTeam, dimWorkspace, dimSession:
			noIdentity = false
		}
	}
	switch {
	case noIdentity:
		return "rollup_hour_model"
	case src == srcDay && noModel && f.keyID == nil:
		return "rollup_key_day"
	case src == srcDay:
		return "rollup_day"
	}
	return "rollup_hour"
}

// aggregatePart runs one part's grouped SELECT.
func aggregatePart(ctx context.Context, db querier, q query, p part) (result, error) {
	var sb strings.Builder
	args := make([]any, 0, 8)
	sb.WriteString("SELECT ")
	for _, d := range q.dims {
		sb.WriteString(string(d) + ", ")
	}
	step := q.grain.seconds()
	var table, aggs string
	switch p.src {
	case srcCalls:
		table, aggs = "calls", callSums
		if q.lean {
			aggs = callLean
		}
		if step > 0 {
			fmt.Fprintf(&sb, "(ts_us / 1000000) - (ts_us / 1000000) %% %d, ", step)
		}
	default:
		table, aggs = rollupTable(q, p.src), rollupSums
		if q.lean {
			aggs = rollupLean
		}
		if step > 0 {
			fmt.Fprintf(&sb, "bucket - bucket %% %d, ", step)
		}
	}
	sb.WriteString(aggs + " FROM " + table + " WHERE ")
	if p.src == srcCalls {
		sb.WriteString("ts_us >= ? AND ts_us < ?")
		args = append(args, p.lo, p.hi)
	} else {
		sb.WriteString("bucket >= ? AND bucket < ?")
		args = append(args, p.lo/1e6, p.hi/1e6)
	}
	args = q.filter.where(&sb, args)
	if n := len(q.dims); n > 0 || step > 0 {
		sb.WriteString(" GROUP BY ")
		for i := range q.dims {
			fmt.Fprintf(&sb, "%d, ", i+1)
		}
		if step > 0 {
			fmt.Fprintf(&sb, "%d, ", n+1)
		}
		s := strings.TrimSuffix(sb.String(), ", ")
		sb.Reset()
		sb.WriteString(s)
	}
	rows, err := db.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("aggregating %s: %w", table, err)
	}
	defer rows.Close()
	var res result
	for rows.Next() {
		g := &group{vals: make([]string, len(q.dims))}
		dest := make([]any, 0, len(q.dims)+14)
		for i := range g.vals {
			dest = append(dest, &g.vals[i])
		}
		if step > 0 {
			dest = append(dest, &g.bucket)
		}
		s := &g.sums
		if q.lean {
			dest = append(dest, &s.calls, &s.errors, &s.unpriced, &s.cost, &s.input, &s.output, &s.lastUS)
		} else {
			dest = append(dest, &s.calls, &s.errors, &s.unpriced, &s.estimated, &s.cost, &s.savings, &s.input,
				&s.cacheRead, &s.cacheWrite, &s.output, &s.reasoning, &s.latencyMS, &s.lastUS)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("reading %s aggregate: %w", table, err)
		}
		if s.calls > 0 {
			res = append(res, g)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %s aggregate: %w", table, err)
	}
	return res, nil
}
