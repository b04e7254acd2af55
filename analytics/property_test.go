package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// eventPaths maps each dimension to its llm.call_completed payload key.
var eventPaths = map[dim]string{
	dimModel: "$.model", dimProvider: "$.provider", dimKey: "$.gateway_key_id", dimUser: "$.user",
	dimTeam: "$.team", dimWorkspace: "$.workspace", dimShape: "$.inbound_shape", dimSession: "$.session_id",
}

// fromEvents computes q straight from the events table with json_extract,
// bypassing calls and the rollups.
func fromEvents(ctx context.Context, t *testing.T, f *fixture, q query) map[string]sums {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("SELECT '' ")
	for _, d := range q.dims {
		fmt.Fprintf(&sb, "|| COALESCE(json_extract(payload_json, '%s'), '') || char(0) ", eventPaths[d])
	}
	if step := q.grain.seconds(); step > 0 {
		fmt.Fprintf(&sb, "|| ((timestamp_us / 1000000) - (timestamp_us / 1000000) %% %d) ", step)
	}
	sb.WriteString(`AS k, COUNT(*),
	SUM(json_extract(payload_json, '$.status') >= 400 OR json_extract(payload_json, '$.error_class') IS NOT NULL),
	SUM(NOT json_extract(payload_json, '$.priced')),
	SUM(json_extract(payload_json, '$.usage_source') = 'estimated'),
	TOTAL(CASE WHEN json_extract(payload_json, '$.priced') THEN json_extract(payload_json, '$.cost_usd') END),
	TOTAL(json_extract(payload_json, '$.cache_savings_usd')),
	SUM(json_extract(payload_json, '$.input_tokens')), SUM(json_extract(payload_json, '$.cache_read_input_tokens')),
	SUM(json_extract(payload_json, '$.cache_creation_input_tokens')), SUM(json_extract(payload_json, '$.output_tokens')),
	SUM(json_extract(payload_json, '$.reasoning_tokens')), SUM(json_extract(payload_json, '$.latency_ms')),
	MAX(timestamp_us)
FROM events WHERE type = 'llm.call_completed' AND timestamp_us >= ? AND timestamp_us < ?`)
	args := []any{q.from.UnixMicro(), q.to.UnixMicro()}
	for _, c := range []struct {
		path string
		v    *string
	}{{"$.gateway_key_id", q.filter.keyID}, {"$.user", q.filter.user}, {"$.team", q.filter.team},
		{"$.workspace", q.filter.workspace}, {"$.model", q.filter.model}} {
		if c.v != nil {
			fmt.Fprintf(&sb, " AND json_extract(payload_json, '%s') = ?", c.path)
			args = append(args, *c.v)
		}
	}
	sb.WriteString(" GROUP BY k")
	rows, err := f.st.ReadDB().QueryContext(ctx, sb.String(), args...)
	if err != nil {
		t.Fatalf("events aggregate: %v", err)
	}
	defer rows.Close()
	out := map[string]sums{}
	for rows.Next() {
		var k string
		var s sums
		if err := rows.Scan(&k, &s.calls, &s.errors, &s.unpriced, &s.estimated, &s.cost, &s.savings, &s.input,
			&s.cacheRead, &s.cacheWrite, &s.output, &s.reasoning, &s.latencyMS, &s.lastUS); err != nil {
			t.Fatalf("events aggregate: %v", err)
		}
		out[k] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("events aggregate: %v", err)
	}
	return out
}

func groupKey(g *group, bucketed bool) string {
	var sb strings.Builder
	for _, v := range g.vals {
		sb.WriteString(v + "\x00")
	}
	if bucketed {
		fmt.Fprint(&sb, g.bucket)
	}
	return sb.String()
}

// TestAggregateAgreesWithEvents is a property test: for random windows
// (aligned and not), groupings, grains and filters, the rollup-based
// decomposition equals a direct aggregate over the events' payloads.
func TestAggregateAgreesWithEvents(t *testing.T) {
	ctx := context.Background()
	for _, seed := range []uint64{21, 22} {
		f := newFixtureFuture(t, seed, 2500, seed%2 == 0) // with and without calls after now
		rng := rand.New(rand.NewPCG(seed, 7))
		dimSets := [][]dim{nil, {dimModel}, {dimProvider}, {dimKey, dimShape}, {dimUser, dimKey},
			{dimTeam, dimUser}, {dimWorkspace}, {dimSession}, {dimKey, dimShape, dimUser, dimTeam, dimWorkspace}}
		vals := func(vs ...string) *string {
			if rng.IntN(3) != 0 {
				return nil
			}
			v := vs[rng.IntN(len(vs))]
			return &v
		}
		for i := range 300 {
			var from time.Time
			switch rng.IntN(3) {
			case 0:
				from = testNow.Add(-time.Duration(rng.Int64N(int64(50 * 24 * time.Hour)))).Truncate(time.Microsecond)
			case 1:
				from = testNow.Truncate(time.Hour).Add(-time.Duration(rng.IntN(1200)) * time.Hour)
			default:
				from = testNow.Truncate(24 * time.Hour).Add(-time.Duration(rng.IntN(50)) * 24 * time.Hour)
			}
			to := from.Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
			switch rng.IntN(4) {
			case 0:
				to = to.Truncate(time.Hour)
			case 1:
				to = testNow // the usual window: up to now
			}
			q := query{from: from, to: to, dims: dimSets[rng.IntN(len(dimSets))], grain: grain(rng.IntN(4)),
				filter: filter{keyID: vals(f.keys[0].id, f.keys[3].id, "gk_GHOST"), user: vals("alice", "", "erin"),
					team: vals("eng", ""), workspace: vals("/src/api", "/src/web"), model: vals("gpt-5-mini", "llama-3.1-8b")}}
			if q.grain == grainMinute && to.Sub(from) > 3*24*time.Hour {
				q.grain = grainHour
			}
			got, err := f.h.aggregate(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want := fromEvents(ctx, t, f, q)
			name := fmt.Sprintf("case %d [%s, %s) dims %v grain %d", i, from.Format(time.RFC3339Nano),
				to.Format(time.RFC3339Nano), q.dims, q.grain)
			if len(got) != len(want) {
				t.Fatalf("%s: %d groups, events give %d", name, len(got), len(want))
			}
			for _, g := range got {
				w, ok := want[groupKey(g, q.grain != grainNone)]
				if !ok {
					t.Fatalf("%s: group %q not in events", name, groupKey(g, q.grain != grainNone))
				}
				gs := g.sums
				if !near(gs.cost, w.cost) || !near(gs.savings, w.savings) {
					t.Errorf("%s: money %v/%v, events %v/%v", name, gs.cost, gs.savings, w.cost, w.savings)
				}
				gs.cost, gs.savings, w.cost, w.savings = 0, 0, 0, 0
				if len(q.dims) == 1 && q.dims[0] == dimSession && q.grain == grainNone && q.filter.model == nil && g.vals[0] == "" {
					// The calls without a session are the total less the
					// sessions: their last call is not known (nor shown).
					w.lastUS = 0
				}
				if gs != w {
					t.Errorf("%s: group %q\n got %+v\nwant %+v", name, groupKey(g, q.grain != grainNone), gs, w)
				}
			}
		}
	}
}

// TestRollupTablesAgreeWithEvents checks every rollup row against the
// events it summarises.
func TestRollupTablesAgreeWithEvents(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 23, 2500)
	for _, c := range []struct {
		table string
		step  int
	}{{"rollup_hour", 3600}, {"rollup_day", 86400}} {
		q := fmt.Sprintf(`SELECT COUNT(*) FROM (
SELECT bucket, key_id, user, team, workspace, provider, model, inbound_shape, calls, errors, unpriced_calls,
	estimated_calls, input_tokens, output_tokens, round(cost_usd, 9) FROM %[1]s
EXCEPT
SELECT (timestamp_us / 1000000) - (timestamp_us / 1000000) %% %[2]d,
	json_extract(payload_json, '$.gateway_key_id'), json_extract(payload_json, '$.user'),
	json_extract(payload_json, '$.team'), json_extract(payload_json, '$.workspace'),
	json_extract(payload_json, '$.provider'), json_extract(payload_json, '$.model'),
	json_extract(payload_json, '$.inbound_shape'), COUNT(*),
	SUM(json_extract(payload_json, '$.status') >= 400 OR json_extract(payload_json, '$.error_class') IS NOT NULL),
	SUM(NOT json_extract(payload_json, '$.priced')), SUM(json_extract(payload_json, '$.usage_source') = 'estimated'),
	SUM(json_extract(payload_json, '$.input_tokens')), SUM(json_extract(payload_json, '$.output_tokens')),
	round(TOTAL(CASE WHEN json_extract(payload_json, '$.priced') THEN json_extract(payload_json, '$.cost_usd') END), 9)
FROM events WHERE type = 'llm.call_completed' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8)`, c.table, c.step)
		var diff int
		if err := f.st.ReadDB().QueryRowContext(ctx, q).Scan(&diff); err != nil {
			t.Fatalf("%s: %v", c.table, err)
		}
		if diff != 0 {
			t.Errorf("%s: %d rows differ from the events", c.table, diff)
		}
		var rows, groups int
		err := f.st.ReadDB().QueryRowContext(ctx, fmt.Sprintf(`SELECT (SELECT COUNT(*) FROM %s), (SELECT COUNT(*) FROM
(SELECT 1 FROM events WHERE type = 'llm.call_completed' GROUP BY (timestamp_us / 1000000) / %d, payload_json ->> '$.gateway_key_id',
	payload_json ->> '$.model', payload_json ->> '$.inbound_shape', payload_json ->> '$.user'))`, c.table, c.step)).Scan(&rows, &groups)
		if err != nil {
			t.Fatalf("%s: %v", c.table, err)
		}
		if rows != groups {
			t.Errorf("%s: %d rows, the events make %d groups", c.table, rows, groups)
		}
	}
}
