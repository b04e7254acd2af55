package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// callRow is one call as listed by /analytics/activity's recent and
// /sessions/{id}'s calls_list.
type callRow struct {
	ID                       string   `json:"id"`
	Time                     string   `json:"time"`
	GatewayKeyID             string   `json:"gateway_key_id"`
	KeyName                  string   `json:"key_name"`
	User                     string   `json:"user"`
	Team                     string   `json:"team"`
	Workspace                string   `json:"workspace"`
	SessionID                *string  `json:"session_id"`
	TurnID                   string   `json:"turn_id"`
	InboundShape             string   `json:"inbound_shape"`
	Provider                 string   `json:"provider"`
	RequestedModel           string   `json:"requested_model"`
	Model                    string   `json:"model"`
	Stream                   bool     `json:"stream"`
	Status                   int      `json:"status"`
	ErrorClass               *string  `json:"error_class"`
	Attempts                 int      `json:"attempts"`
	InputTokens              int64    `json:"input_tokens"`
	OutputTokens             int64    `json:"output_tokens"`
	CacheReadInputTokens     int64    `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64    `json:"cache_creation_input_tokens"`
	ReasoningTokens          int64    `json:"reasoning_tokens"`
	CostUSD                  *float64 `json:"cost_usd"`
	Priced                   bool     `json:"priced"`
	UsageSource              string   `json:"usage_source"`
	CacheSavingsUSD          float64  `json:"cache_savings_usd"`
	LatencyMS                int64    `json:"latency_ms"`
	TTFTMS                   *int64   `json:"ttft_ms"`
}

const callColumns = `event_id, ts_us, key_id, key_name, user, team, workspace, session_id, turn_id,
	inbound_shape, provider, requested_model, model, stream, status, error_class, attempts, input_tokens,
	output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, priced, estimated,
	cache_savings_usd, latency_ms, ttft_ms`

// listCalls runs a SELECT of callColumns FROM calls with the given tail
// (WHERE … ORDER BY … LIMIT …) and arguments.
func (h *Handler) listCalls(ctx context.Context, tail string, args ...any) ([]callRow, error) {
	rows, err := h.db.QueryContext(ctx, "SELECT "+callColumns+" FROM calls "+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("listing calls: %w", err)
	}
	defer rows.Close()
	out := []callRow{}
	for rows.Next() {
		var c callRow
		var ts int64
		var session string
		var errClass sql.NullString
		var cost sql.NullFloat64
		var ttft sql.NullInt64
		var estimated bool
		if err := rows.Scan(&c.ID, &ts, &c.GatewayKeyID, &c.KeyName, &c.User, &c.Team, &c.Workspace, &session,
			&c.TurnID, &c.InboundShape, &c.Provider, &c.RequestedModel, &c.Model, &c.Stream, &c.Status, &errClass,
			&c.Attempts, &c.InputTokens, &c.OutputTokens, &c.CacheReadInputTokens, &c.CacheCreationInputTokens,
			&c.ReasoningTokens, &cost, &c.Priced, &estimated, &c.CacheSavingsUSD, &c.LatencyMS, &ttft); err != nil {
			return nil, fmt.Errorf("reading calls: %w", err)
		}
		c.Time = fmtMicros(ts)
		if session != "" {
			c.SessionID = &session
		}
		if errClass.Valid {
			c.ErrorClass = &errClass.String
		}
		if cost.Valid {
			c.CostUSD = &cost.Float64
		}
		if ttft.Valid {
			c.TTFTMS = &ttft.Int64
		}
		c.UsageSource = "provider"
		if estimated {
			c.UsageSource = "estimated"
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading calls: %w", err)
	}
	return out, nil
}

// recentCalls lists the latest calls in [fromUS, toUS) matching f, newest
// first.
func (h *Handler) recentCalls(ctx context.Context, fromUS, toUS int64, f filter, limit int) ([]callRow, error) {
	var sb strings.Builder
	sb.WriteString("WHERE ts_us >= ? AND ts_us < ?")
	args := f.where(&sb, []any{fromUS, toUS})
	sb.WriteString(" ORDER BY ts_us DESC, event_id DESC LIMIT ?")
	return h.listCalls(ctx, sb.String(), append(args, limit)...)
}
