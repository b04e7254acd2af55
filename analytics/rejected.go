package analytics

import (
	"context"
	"fmt"
	"strings"
)

// rejectedCounts are the requests the gateway refused in a window (bad or
// missing key, bad body, unknown or disallowed model, over budget…), which
// cost nothing and so are in no other figure.
type rejectedCounts struct {
	Rejected         int64            `json:"rejected"`
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
}

// rejectedFilterPaths are the request.rejected payload members the filters
// match: a refusal attributed to a key carries its tags; one with no valid
// key matches no identity filter.
var rejectedFilterPaths = [...]string{"$.gateway_key_id", "$.user", "$.team", "$.workspace", "$.requested_model"}

// rejected counts the window's refusals matching f, by reason, through the
// partial index events_rejected: an event with a count stands for that many
// (the gateway sums a flood of refusals).
func (h *Handler) rejected(ctx context.Context, q query) (rejectedCounts, error) {
	query, args := rejectedSQL(q)
	out := rejectedCounts{RejectedByReason: map[string]int64{}}
	rows, err := h.db.QueryContext(ctx, query, args...)
	if err != nil {
		return out, fmt.Errorf("counting refused requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var reason *string
		var n int64
		if err := rows.Scan(&reason, &n); err != nil {
			return out, fmt.Errorf("counting refused requests: %w", err)
		}
		r := "unknown"
		if reason != nil && *reason != "" {
			r = *reason
		}
		out.RejectedByReason[r] += n
		out.Rejected += n
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("counting refused requests: %w", err)
	}
	return out, nil
}

// rejectedSQL is the query rejected runs, and its arguments.
func rejectedSQL(q query) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`SELECT json_extract(payload_json, '$.reason'), SUM(COALESCE(json_extract(payload_json, '$.count'), 1)) FROM events
WHERE type = 'request.rejected' AND timestamp_us >= ? AND timestamp_us < ?`)
	args := []any{q.from.UnixMicro(), q.to.UnixMicro()}
	for i, v := range [...]*string{q.filter.keyID, q.filter.user, q.filter.team, q.filter.workspace, q.filter.model} {
		if v != nil {
			sb.WriteString(" AND json_extract(payload_json, '" + rejectedFilterPaths[i] + "') = ?")
			args = append(args, *v)
		}
	}
	sb.WriteString(" GROUP BY 1")
	return sb.String(), args
}
