package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// lastUsedEvery is how often the writer persists key last-used times.
const lastUsedEvery = 2 * time.Second

const (
	sqlInsertEvent = `INSERT INTO events (id, type, timestamp_us, payload_json) VALUES (?, ?, ?, ?)`
	sqlInsertCall  = `INSERT INTO calls (event_id, ts_us, turn_id, key_id, key_name, user, team, workspace,
	session_id, inbound_shape, provider, requested_model, model, stream, status, error_class, attempts,
	input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_usd,
	priced, estimated, cache_savings_usd, latency_ms, ttft_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlUpsertRollup = `INSERT INTO %s (bucket, key_id, user, team, workspace, provider, model, inbound_shape,
	calls, errors, unpriced_calls, estimated_calls, cost_usd, input_tokens, cache_read_tokens,
	cache_write_tokens, output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum, last_ts_us)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (bucket, key_id, model, provider, inbound_shape, user, team, workspace) DO UPDATE SET
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
	sqlUpsertSession = `INSERT INTO sessions (session_id, key_id, key_name, user, team, workspace,
	first_ts_us, last_ts_us, calls, unpriced_calls, cost_usd)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (session_id) DO UPDATE SET
	first_ts_us = min(first_ts_us, excluded.first_ts_us),
	last_ts_us = max(last_ts_us, excluded.last_ts_us),
	calls = calls + excluded.calls,
	unpriced_calls = unpriced_calls + excluded.unpriced_calls,
	cost_usd = cost_usd + excluded.cost_usd`
	sqlKeyLastUsed = `UPDATE gateway_keys SET last_used_at = ?
WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`
)

var (
	sqlUpsertHour = fmt.Sprintf(sqlUpsertRollup, "rollup_hour")
	sqlUpsertDay  = fmt.Sprintf(sqlUpsertRollup, "rollup_day")
)

// row is an encoded event ready for insertion.
type row struct {
	id      string
	typ     string
	tsUS    int64
	payload []byte // bound as TEXT (a BLOB would be read as JSONB by json_extract)
	call    *Call
}

// rollupKey is the primary key of rollup_hour and rollup_day.
type rollupKey struct {
	bucket                                                  int64
	keyID, user, team, workspace, provider, model, inbShape string
}

// rollupAgg accumulates one rollup row's deltas within a batch.
type rollupAgg struct {
	calls, errors, unpriced, estimated                   int64
	cost, savings                                        float64
	input, cacheRead, cacheWrite, output, reasoning, lat int64
	lastTS                                               int64
}

// sessionAgg accumulates one session row's deltas within a batch.
type sessionAgg struct {
	keyID, keyName, user, team, workspace string
	first, last, calls, unpriced          int64
	cost                                  float64
}

// badEvents describes events dropped because their payload did not encode.
type badEvents struct {
	n   int
	typ string
	err error
}

// batchWriter holds one batch's encoded rows and pre-aggregated rollup
// deltas; its buffers are reused across batches by the writer goroutine.
type batchWriter struct {
	rows         []row
	buf          []byte // backs the batch's *Call payloads
	hour, day    map[rollupKey]*rollupAgg
	sessions     map[string]*sessionAgg
	lastUsedSave time.Time
}

// prepare encodes batch into rows and aggregates the calls' rollup deltas,
// so that each rollup row is upserted once per transaction.
func (w *batchWriter) prepare(batch []Event) badEvents {
	if w.hour == nil {
		w.hour = make(map[rollupKey]*rollupAgg)
		w.day = make(map[rollupKey]*rollupAgg)
		w.sessions = make(map[string]*sessionAgg)
	}
	var bad badEvents
	for i := range batch {
		ev := &batch[i]
		var payload []byte
		var call *Call
		var err error
		w.buf, payload, call, err = encodePayload(w.buf, ev)
		if err != nil {
			bad.n++
			bad.typ, bad.err = ev.Type, err
			continue
		}
		ts := ev.Time.UnixMicro()
		w.rows = append(w.rows, row{id: ev.ID.String(), typ: ev.Type, tsUS: ts, payload: payload, call: call})
		if call == nil {
			continue
		}
		sec := ts / 1e6
		if ts < 0 && ts%1e6 != 0 {
			sec-- // floor for times before 1970
		}
		k := rollupKey{keyID: call.GatewayKeyID, user: call.User, team: call.Team, workspace: call.Workspace,
			provider: call.Provider, model: call.Model, inbShape: call.InboundShape}
		k.bucket = sec - mod(sec, 3600)
		addRollup(w.hour, k, call, ts)
		k.bucket = sec - mod(sec, 86400)
		addRollup(w.day, k, call, ts)
		if call.SessionID != "" {
			a := w.sessions[call.SessionID]
			if a == nil {
				a = &sessionAgg{keyID: call.GatewayKeyID, keyName: call.KeyName, user: call.User,
					team: call.Team, workspace: call.Workspace, first: ts, last: ts}
				w.sessions[call.SessionID] = a
			}
			a.first, a.last = min(a.first, ts), max(a.last, ts)
			a.calls++
			a.unpriced += b2i(!call.Priced)
			a.cost += call.pricedCost()
		}
	}
	return bad
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func addRollup(m map[rollupKey]*rollupAgg, k rollupKey, c *Call, ts int64) {
	a := m[k]
	if a == nil {
		a = &rollupAgg{lastTS: ts}
		m[k] = a
	}
	a.calls++
	a.errors += b2i(c.isError())
	a.unpriced += b2i(!c.Priced)
	a.estimated += b2i(c.UsageSource == "estimated")
	a.cost += c.pricedCost()
	a.input += c.InputTokens
	a.cacheRead += c.CacheReadInputTokens
	a.cacheWrite += c.CacheCreationInputTokens
	a.output += c.OutputTokens
	a.reasoning += c.ReasoningTokens
	a.savings += c.CacheSavingsUSD
	a.lat += c.LatencyMS
	a.lastTS = max(a.lastTS, ts)
}

// reset empties the buffers for the next batch.
func (w *batchWriter) reset() {
	clear(w.rows)
	w.rows = w.rows[:0]
	w.buf = w.buf[:0]
	clear(w.hour)
	clear(w.day)
	clear(w.sessions)
}

// write commits the prepared rows, their calls and rollup upserts and, every
// lastUsedEvery (or when forced), the keys' pending last-used times, in one
// transaction with statements prepared for it.
func (w *batchWriter) write(ctx context.Context, s *Store, forceLastUsed bool) (err error) {
	saveUsed := forceLastUsed || time.Since(w.lastUsedSave) >= lastUsedEvery
	if len(w.rows) == 0 && !(saveUsed && s.pendingLastUsed()) {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback() //nolint:errcheck // the write error is what matters
		}
	}()
	if len(w.rows) > 0 {
		if err := w.insertRows(ctx, tx); err != nil {
			return err
		}
	}
	var saved []usageMark
	if saveUsed {
		if saved, err = s.saveLastUsed(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if saveUsed {
		w.lastUsedSave = time.Now()
		for _, m := range saved {
			m.u.persisted.Store(m.at)
		}
	}
	return nil
}

func (w *batchWriter) insertRows(ctx context.Context, tx *sql.Tx) error {
	insEvent, err := tx.PrepareContext(ctx, sqlInsertEvent)
	if err != nil {
		return fmt.Errorf("preparing events insert: %w", err)
	}
	defer insEvent.Close()
	var insCall *sql.Stmt
	for i := range w.rows {
		r := &w.rows[i]
		if _, err := insEvent.ExecContext(ctx, r.id, r.typ, r.tsUS, string(r.payload)); err != nil {
			return fmt.Errorf("inserting event %s: %w", r.id, err)
		}
		if r.call == nil {
			continue
		}
		if insCall == nil {
			if insCall, err = tx.PrepareContext(ctx, sqlInsertCall); err != nil {
				return fmt.Errorf("preparing calls insert: %w", err)
			}
			defer insCall.Close()
		}
		c := r.call
		var cost any
		if c.Priced && c.CostUSD != nil {
			cost = *c.CostUSD
		}
		var ttft any
		if c.TTFTMS != nil {
			ttft = *c.TTFTMS
		}
		if _, err := insCall.ExecContext(ctx, r.id, r.tsUS, c.TurnID, c.GatewayKeyID, c.KeyName, c.User, c.Team,
			c.Workspace, c.SessionID, c.InboundShape, c.Provider, c.RequestedModel, c.Model, c.Stream, c.Status,
			nullString(c.ErrorClass), c.Attempts, c.InputTokens, c.CacheReadInputTokens, c.CacheCreationInputTokens,
			c.OutputTokens, c.ReasoningTokens, cost, c.Priced, c.UsageSource == "estimated", c.CacheSavingsUSD,
			c.LatencyMS, ttft); err != nil {
			return fmt.Errorf("inserting call %s: %w", r.id, err)
		}
	}
	if err := upsertRollups(ctx, tx, sqlUpsertHour, w.hour); err != nil {
		return fmt.Errorf("updating rollup_hour: %w", err)
	}
	if err := upsertRollups(ctx, tx, sqlUpsertDay, w.day); err != nil {
		return fmt.Errorf("updating rollup_day: %w", err)
	}
	if len(w.sessions) == 0 {
		return nil
	}
	upSession, err := tx.PrepareContext(ctx, sqlUpsertSession)
	if err != nil {
		return fmt.Errorf("preparing sessions upsert: %w", err)
	}
	defer upSession.Close()
	for id, a := range w.sessions {
		if _, err := upSession.ExecContext(ctx, id, a.keyID, a.keyName, a.user, a.team, a.workspace,
			a.first, a.last, a.calls, a.unpriced, a.cost); err != nil {
			return fmt.Errorf("updating session %s: %w", id, err)
		}
	}
	return nil
}

func upsertRollups(ctx context.Context, tx *sql.Tx, query string, m map[rollupKey]*rollupAgg) error {
	if len(m) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("preparing: %w", err)
	}
	defer st.Close()
	for k, a := range m {
		if _, err := st.ExecContext(ctx, k.bucket, k.keyID, k.user, k.team, k.workspace, k.provider, k.model,
			k.inbShape, a.calls, a.errors, a.unpriced, a.estimated, a.cost, a.input, a.cacheRead, a.cacheWrite,
			a.output, a.reasoning, a.savings, a.lat, a.lastTS); err != nil {
			return err
		}
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
