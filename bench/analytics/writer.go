package analyticsbench

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/metisgateway/metis/store"
)

// writer holds the bulk load's open transaction and its prepared
// statements.
type writer struct {
	ctx                          context.Context
	tx                           *sql.Tx
	event, call, hour, day, sess *sql.Stmt
	pending                      int
}

const (
	insEvent = `INSERT INTO events (id, type, timestamp_us, payload_json) VALUES (?, 'llm.call_completed', ?, ?)`
	insCall  = `INSERT INTO calls (event_id, ts_us, turn_id, key_id, key_name, user, team, workspace,
	session_id, inbound_shape, provider, requested_model, model, stream, status, error_class, attempts,
	input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_usd,
	priced, estimated, cache_savings_usd, latency_ms, ttft_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insRollup = `INSERT INTO %s (bucket, key_id, user, team, workspace, provider, model, inbound_shape,
	calls, errors, unpriced_calls, estimated_calls, cost_usd, input_tokens, cache_read_tokens,
	cache_write_tokens, output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum, last_ts_us)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insSession = `INSERT INTO sessions (session_id, key_id, key_name, user, team, workspace,
	first_ts_us, last_ts_us, calls, unpriced_calls, cost_usd, errors, estimated_calls, input_tokens,
	cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// coarseRollups derive the identity-free hour rollup and the model-free
	// day rollup from the loaded ones (rows are sums, so summing them is
	// exact), as the store's migration 3 does.
	coarseRollups = `
INSERT INTO rollup_hour_model SELECT bucket, provider, model, inbound_shape, SUM(calls), SUM(errors),
	SUM(unpriced_calls), SUM(estimated_calls), TOTAL(cost_usd), SUM(input_tokens), SUM(cache_read_tokens),
	SUM(cache_write_tokens), SUM(output_tokens), SUM(reasoning_tokens), TOTAL(cache_savings_usd),
	SUM(latency_ms_sum), MAX(last_ts_us)
FROM rollup_hour GROUP BY bucket, model, provider, inbound_shape;
INSERT INTO rollup_key_day SELECT bucket, key_id, user, team, workspace, inbound_shape, SUM(calls), SUM(errors),
	SUM(unpriced_calls), SUM(estimated_calls), TOTAL(cost_usd), SUM(input_tokens), SUM(cache_read_tokens),
	SUM(cache_write_tokens), SUM(output_tokens), SUM(reasoning_tokens), TOTAL(cache_savings_usd),
	SUM(latency_ms_sum), MAX(last_ts_us)
FROM rollup_day GROUP BY bucket, key_id, inbound_shape, user, team, workspace;`
)

func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	w := &writer{ctx: ctx}
	return w, w.begin(db)
}

func (w *writer) begin(db *sql.DB) error {
	tx, err := db.BeginTx(w.ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	w.tx = tx
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&w.event, insEvent}, {&w.call, insCall}, {&w.hour, fmt.Sprintf(insRollup, "rollup_hour")},
		{&w.day, fmt.Sprintf(insRollup, "rollup_day")}, {&w.sess, insSession}} {
		if *p.st, err = tx.PrepareContext(w.ctx, p.sql); err != nil {
			return fmt.Errorf("preparing %q: %w", p.sql[:30], err)
		}
	}
	return nil
}

// commit ends the transaction and starts the next one.
func (w *writer) commit(ctx context.Context, db *sql.DB) error {
	if err := w.commitLast(); err != nil {
		return err
	}
	return w.begin(db)
}

func (w *writer) commitLast() error {
	if err := w.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.tx, w.pending = nil, 0
	return nil
}

func (w *writer) rollback() {
	if w.tx != nil {
		_ = w.tx.Rollback()
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (w *writer) add(id string, ts int64, c *store.Call) error {
	p, err := payload(c)
	if err != nil {
		return err
	}
	if _, err := w.event.ExecContext(w.ctx, id, ts, p); err != nil {
		return fmt.Errorf("inserting event: %w", err)
	}
	var cost, ttft any
	if c.Priced {
		cost = *c.CostUSD
	}
	if c.TTFTMS != nil {
		ttft = *c.TTFTMS
	}
	if _, err := w.call.ExecContext(w.ctx, id, ts, c.TurnID, c.GatewayKeyID, c.KeyName, c.User, c.Team,
		c.Workspace, c.SessionID, c.InboundShape, c.Provider, c.RequestedModel, c.Model, c.Stream, c.Status,
		nullable(c.ErrorClass), c.Attempts, c.InputTokens, c.CacheReadInputTokens, c.CacheCreationInputTokens,
		c.OutputTokens, c.ReasoningTokens, cost, c.Priced, c.UsageSource == "estimated", c.CacheSavingsUSD,
		c.LatencyMS, ttft); err != nil {
		return fmt.Errorf("inserting call: %w", err)
	}
	w.pending++
	return nil
}

func (w *writer) rollup(table string, bucket int64, k *key, m *model, shape string, a *ragg) error {
	st := w.hour
	if table == "rollup_day" {
		st = w.day
	}
	_, err := st.ExecContext(w.ctx, bucket, k.id, k.user, k.team, k.workspace, m.provider, m.name, shape,
		a.calls, a.errors, a.unpriced, a.estimated, a.cost, a.input, a.cacheRead, a.cacheWrite, a.output,
		a.reasoning, a.savings, a.lat, a.last)
	if err != nil {
		return fmt.Errorf("inserting %s row: %w", table, err)
	}
	return nil
}

func (w *writer) session(id string, k *key, s *sagg) error {
	if _, err := w.sess.ExecContext(w.ctx, id, k.id, k.name, k.user, k.team, k.workspace, s.first, s.last,
		s.calls, s.unpriced, s.cost, s.errors, s.estimated, s.input, s.cacheRead, s.cacheWrite, s.output,
		s.reasoning, s.savings, s.lat); err != nil {
		return fmt.Errorf("inserting session: %w", err)
	}
	return nil
}
