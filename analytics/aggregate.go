package analytics

import (
	"context"
	"fmt"
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
}

// sums are the additive figures of a group.
type sums struct {
	calls, errors, unpriced, estimated              int64
	cost, savings                                   float64
	input, cacheRead, cacheWrite, output, reasoning int64
	latencyMS                                       int64
	lastUS                                          int64 // latest call, unix µs
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
)

// aggregate answers q by reading every part of the window's decomposition
// (concurrently) and merging the parts' groups.
func (h *Handler) aggregate(ctx context.Context, q query) (result, error) {
	callsOnly := false
	for _, d := range q.dims {
		callsOnly = callsOnly || d == dimSession
	}
	parts := plan(q.from, q.to, q.grain, callsOnly)
	out := make([]result, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Go(func() { out[i], errs[i] = h.aggregatePart(ctx, q, p) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return merge(out, q.grain != grainNone), nil
}

func merge(parts []result, bucketed bool) result {
	if len(parts) == 1 {
		return parts[0]
	}
	idx := make(map[string]*group)
	var res result
	var kb strings.Builder
	for _, part := range parts {
		for _, g := range part {
			kb.Reset()
			for _, v := range g.vals {
				kb.WriteString(v)
				kb.WriteByte(0)
			}
			if bucketed {
				fmt.Fprint(&kb, g.bucket)
			}
			if m, ok := idx[kb.String()]; ok {
				m.add(&g.sums)
				continue
			}
			idx[kb.String()] = g
			res = append(res, g)
		}
	}
	return res
}

// aggregatePart runs one part's grouped SELECT.
func (h *Handler) aggregatePart(ctx context.Context, q query, p part) (result, error) {
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
		if step > 0 {
			fmt.Fprintf(&sb, "(ts_us / 1000000) - (ts_us / 1000000) %% %d, ", step)
		}
	default:
		table, aggs = "rollup_hour", rollupSums
		if p.src == srcDay {
			table = "rollup_day"
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
	rows, err := h.db.QueryContext(ctx, sb.String(), args...)
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
		dest = append(dest, &s.calls, &s.errors, &s.unpriced, &s.estimated, &s.cost, &s.savings, &s.input,
			&s.cacheRead, &s.cacheWrite, &s.output, &s.reasoning, &s.latencyMS, &s.lastUS)
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
