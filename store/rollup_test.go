//go:build cgo

package store

import (
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

type testKey struct{ id, name, user, team, workspace string }

// randomCall returns a call at a random time within ±40h of base (so hour
// and day boundaries are crossed), sometimes exactly on an hour.
func randomCall(r *rand.Rand, base time.Time, keys []testKey) (time.Time, *Call) {
	at := base.Add(time.Duration(r.Int64N(int64(80*time.Hour))) - 40*time.Hour)
	if r.IntN(10) == 0 {
		at = at.Truncate(time.Hour)
	}
	k := keys[r.IntN(len(keys))]
	c := &Call{
		TurnID: NewID().String(), GatewayKeyID: k.id, KeyName: k.name, User: k.user, Team: k.team,
		Workspace:    k.workspace,
		InboundShape: []string{"anthropic", "openai"}[r.IntN(2)],
		Provider:     []string{"anthropic", "openai"}[r.IntN(2)],
		Model:        []string{"claude-haiku-4-5", "gpt-5-mini", "claude-sonnet-4-5", ""}[r.IntN(4)],
		Stream:       r.IntN(2) == 0, Status: []int{200, 200, 200, 200, 429, 500, 400}[r.IntN(7)],
		Attempts:    1 + r.IntN(3),
		InputTokens: r.Int64N(5000), CacheReadInputTokens: r.Int64N(20000),
		CacheCreationInputTokens: r.Int64N(3000), OutputTokens: r.Int64N(2000), ReasoningTokens: r.Int64N(500),
		UsageSource: []string{"provider", "provider", "estimated"}[r.IntN(3)],
		LatencyMS:   r.Int64N(30000), CacheSavingsUSD: r.Float64() / 10,
	}
	c.RequestedModel = c.Model
	if r.IntN(5) == 0 {
		c.ErrorClass = []string{"CANCELLED", "RATE_LIMITED", "STREAM_INTERRUPTED"}[r.IntN(3)]
	}
	if r.IntN(3) > 0 {
		c.SessionID = fmt.Sprint("sess-", r.IntN(6))
	}
	switch r.IntN(10) {
	case 0, 1: // unpriced
	case 2: // inconsistent input: a cost on an unpriced call must not count
		c.CostUSD = ptr(r.Float64())
	default:
		c.Priced, c.CostUSD = true, ptr(0.0001+r.Float64())
	}
	if c.Stream {
		c.TTFTMS = ptr(r.Int64N(2000))
	}
	return at, c
}

// TestRollupsMatchAggregates is a property test: for random workloads (fixed
// seeds), rollup_hour, rollup_day and sessions equal the same aggregates
// computed directly over calls and over the events' payload_json.
func TestRollupsMatchAggregates(t *testing.T) {
	keys := []testKey{
		{"gk_a", "alice-laptop", "alice", "eng", "/w/a"},
		{"gk_b", "bob", "bob", "eng", "/w/b"},
		{"gk_c", "ci", "", "", ""},
		{"gk_d", "dora", "dora", "sales", "/w/a"},
	}
	base := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			s := openTest(t, Options{BatchSize: 1 + r.IntN(60), FlushInterval: time.Millisecond})
			n := 200 + r.IntN(400)
			var wantCost float64
			for i := range n {
				at, c := randomCall(r, base, keys)
				if c.SessionID != "" && i%2 == 0 {
					c.SessionID = "own-" + c.GatewayKeyID // a session of one key (randomCall's mix keys)
				}
				wantCost += c.pricedCost()
				if !s.Enqueue(
					Event{Type: TypeRouteDecided, Time: at, Payload: map[string]any{"turn_id": c.TurnID}},
					Event{Type: TypeCallCompleted, Time: at, Payload: c},
					Event{Type: TypeTurnCompleted, Time: at, Payload: map[string]any{"turn_id": c.TurnID}},
				) {
					t.Fatal("Enqueue returned false")
				}
				if i%97 == 0 {
					syncStore(t, s) // later upserts then hit rows committed earlier
				}
			}
			syncStore(t, s)
			db := s.ReadDB()
			if got := queryInt(t, db, `SELECT count(*) FROM calls`); got != int64(n) {
				t.Fatalf("calls: %d rows, want %d", got, n)
			}
			for _, g := range []struct {
				table string
				secs  int
			}{{"rollup_hour", 3600}, {"rollup_day", 86400}} {
				rollup := loadAgg(t, db, 8, `SELECT bucket, key_id, user, team, workspace, provider, model, inbound_shape,
					calls, errors, unpriced_calls, estimated_calls, cost_usd, input_tokens, cache_read_tokens,
					cache_write_tokens, output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum, last_ts_us
					FROM `+g.table)
				fromCalls := loadAgg(t, db, 8, fmt.Sprintf(`SELECT ts_us / 1000000 - (ts_us / 1000000) %% %[1]d,
					key_id, user, team, workspace, provider, model, inbound_shape,
					count(*), sum(status >= 400 OR error_class IS NOT NULL), sum(NOT priced), sum(estimated),
					total(cost_usd), sum(input_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
					sum(output_tokens), sum(reasoning_tokens), total(cache_savings_usd), sum(latency_ms), max(ts_us)
					FROM calls GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`, g.secs))
				fromEvents := loadAgg(t, db, 8, fmt.Sprintf(`WITH c AS (SELECT timestamp_us AS ts, payload_json AS p
					FROM events WHERE type = 'llm.call_completed')
					SELECT ts / 1000000 - (ts / 1000000) %% %[1]d, p->>'gateway_key_id', p->>'user', p->>'team',
					p->>'workspace', p->>'provider', p->>'model', p->>'inbound_shape',
					count(*), sum(p->>'status' >= 400 OR p->>'error_class' IS NOT NULL), sum(NOT p->>'priced'),
					sum(p->>'usage_source' = 'estimated'),
					total(CASE WHEN p->>'priced' THEN p->>'cost_usd' END), sum(p->>'input_tokens'),
					sum(p->>'cache_read_input_tokens'), sum(p->>'cache_creation_input_tokens'),
					sum(p->>'output_tokens'), sum(p->>'reasoning_tokens'), total(p->>'cache_savings_usd'),
					sum(p->>'latency_ms'), max(ts)
					FROM c GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`, g.secs))
				compareAgg(t, g.table+" vs calls", rollup, fromCalls)
				compareAgg(t, g.table+" vs events", rollup, fromEvents)
				var total float64
				for _, v := range rollup {
					total += v[4]
				}
				if !near(total, wantCost) {
					t.Errorf("%s: total cost %v, generated %v", g.table, total, wantCost)
				}
			}
			// The coarser rollups of schema 3 against the same aggregates over
			// calls (and so, through the check above, over the events).
			for _, g := range []struct {
				table, keys, from string
				nkey              int
			}{
				{"rollup_hour_model", "bucket, provider, model, inbound_shape",
					"ts_us / 1000000 - (ts_us / 1000000) % 3600, provider, model, inbound_shape", 4},
				{"rollup_key_day", "bucket, key_id, user, team, workspace, inbound_shape",
					"ts_us / 1000000 - (ts_us / 1000000) % 86400, key_id, user, team, workspace, inbound_shape", 6},
			} {
				rollup := loadAgg(t, db, g.nkey, `SELECT `+g.keys+`, calls, errors, unpriced_calls, estimated_calls,
					cost_usd, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
					cache_savings_usd, latency_ms_sum, last_ts_us FROM `+g.table)
				groupBy := "1"
				for i := 2; i <= g.nkey; i++ {
					groupBy += fmt.Sprint(", ", i)
				}
				fromCalls := loadAgg(t, db, g.nkey, `SELECT `+g.from+`, count(*),
					sum(status >= 400 OR error_class IS NOT NULL), sum(NOT priced), sum(estimated), total(cost_usd),
					sum(input_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(output_tokens),
					sum(reasoning_tokens), total(cache_savings_usd), sum(latency_ms), max(ts_us)
					FROM calls GROUP BY `+groupBy)
				compareAgg(t, g.table+" vs calls", rollup, fromCalls)
			}
			sessions := loadAgg(t, db, 1, `SELECT session_id, first_ts_us, last_ts_us, calls, unpriced_calls, cost_usd,
				errors, estimated_calls, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
				reasoning_tokens, cache_savings_usd, latency_ms_sum, mixed FROM sessions`)
			sessFromCalls := loadAgg(t, db, 1, `SELECT session_id, min(ts_us), max(ts_us), count(*), sum(NOT priced),
				total(cost_usd), sum(status >= 400 OR error_class IS NOT NULL), sum(estimated), sum(input_tokens),
				sum(cache_read_tokens), sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens),
				total(cache_savings_usd), sum(latency_ms), count(DISTINCT key_id || char(0) || user || char(0) || team
					|| char(0) || workspace) > 1
				FROM calls WHERE session_id <> '' GROUP BY 1`)
			for _, v := range sessions {
				v[len(v)-1] = min(v[len(v)-1], 1)
			}
			var mixed, single int
			for _, v := range sessFromCalls {
				if v[len(v)-1] != 0 {
					mixed++
				} else {
					single++
				}
			}
			if mixed == 0 || single == 0 {
				t.Errorf("%d mixed and %d single-identity sessions: the workload does not test both", mixed, single)
			}
			sessFromEvents := loadAgg(t, db, 1, `SELECT p->>'session_id', min(ts), max(ts), count(*), sum(NOT p->>'priced'),
				total(CASE WHEN p->>'priced' THEN p->>'cost_usd' END),
				sum(p->>'status' >= 400 OR p->>'error_class' IS NOT NULL), sum(p->>'usage_source' = 'estimated'),
				sum(p->>'input_tokens'), sum(p->>'cache_read_input_tokens'), sum(p->>'cache_creation_input_tokens'),
				sum(p->>'output_tokens'), sum(p->>'reasoning_tokens'), total(p->>'cache_savings_usd'),
				sum(p->>'latency_ms'), count(DISTINCT (p->>'gateway_key_id') || char(0) || (p->>'user') || char(0)
					|| (p->>'team') || char(0) || (p->>'workspace')) > 1
				FROM (SELECT timestamp_us AS ts, payload_json AS p FROM events WHERE type = 'llm.call_completed')
				WHERE p->>'session_id' IS NOT NULL GROUP BY 1`)
			compareAgg(t, "sessions vs calls", sessions, sessFromCalls)
			compareAgg(t, "sessions vs events", sessions, sessFromEvents)
			if len(sessions) == 0 {
				t.Fatal("no sessions: the workload is vacuous")
			}
		})
	}
}

// loadAgg runs q and maps its first nkey columns (joined) to the remaining
// numeric columns.
func loadAgg(t *testing.T, db *sql.DB, nkey int, q string, args ...any) map[string][]float64 {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string][]float64{}
	for rows.Next() {
		keys := make([]sql.NullString, nkey)
		vals := make([]sql.NullFloat64, len(cols)-nkey)
		dest := make([]any, 0, len(cols))
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, k := range keys {
			ks = append(ks, k.String)
		}
		var vs []float64
		for _, v := range vals {
			vs = append(vs, v.Float64)
		}
		out[strings.Join(ks, "|")] = vs
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func compareAgg(t *testing.T, what string, got, want map[string][]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d groups, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: group %q missing", what, k)
			continue
		}
		for i := range w {
			if !near(g[i], w[i]) {
				t.Errorf("%s: group %q column %d = %v, want %v", what, k, i, g[i], w[i])
			}
		}
	}
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}
