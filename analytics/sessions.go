package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// sessionRow is one session of /sessions; its figures are the session's
// totals, not limited to the window. CostUSD is null when every call of the
// session was unpriced.
type sessionRow struct {
	SessionID     string `json:"session_id"`
	GatewayKeyID  string `json:"gateway_key_id"`
	KeyName       string `json:"key_name"`
	User          string `json:"user"`
	Team          string `json:"team"`
	Workspace     string `json:"workspace"`
	FirstCallAt   string `json:"first_call_at"`
	LastCallAt    string `json:"last_call_at"`
	Calls         int64  `json:"calls"`
	CostUSD       *usd   `json:"cost_usd"`
	UnpricedCalls int64  `json:"unpriced_calls"`
}

type sessionsAnswer struct {
	windowFields
	Sessions []sessionRow `json:"sessions"`
}

type sessionAnswer struct {
	sessionRow
	CallsList []callRow `json:"calls_list"`
}

const sessionColumns = `session_id, key_id, key_name, user, team, workspace, first_ts_us, last_ts_us, calls,
	cost_usd, unpriced_calls`

func scanSession(sc interface{ Scan(...any) error }) (sessionRow, error) {
	var s sessionRow
	var first, last int64
	var cost float64
	err := sc.Scan(&s.SessionID, &s.GatewayKeyID, &s.KeyName, &s.User, &s.Team, &s.Workspace, &first, &last,
		&s.Calls, &cost, &s.UnpricedCalls)
	s.FirstCallAt, s.LastCallAt = fmtMicros(first), fmtMicros(last)
	s.CostUSD = costOf(cost, s.Calls, s.UnpricedCalls)
	return s, err
}

// sessions lists the sessions whose last call is in the window, most recent
// first.
func (h *Handler) sessions(ctx context.Context, r *http.Request) (any, error) {
	win, err := parseWindow(r, h.now())
	if err != nil {
		return nil, err
	}
	limit, err := parseLimit(r)
	if err != nil {
		return nil, err
	}
	f := parseFilter(r) // without model (sessionParams)
	var sb strings.Builder
	sb.WriteString("SELECT " + sessionColumns + " FROM sessions WHERE last_ts_us >= ? AND last_ts_us < ?")
	args := f.where(&sb, []any{win.from.UnixMicro(), win.to.UnixMicro()})
	sb.WriteString(" ORDER BY last_ts_us DESC, session_id LIMIT ?")
	rows, err := h.db.QueryContext(ctx, sb.String(), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	defer rows.Close()
	ans := sessionsAnswer{windowFields: newWindowFields(win), Sessions: []sessionRow{}}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("reading sessions: %w", err)
		}
		ans.Sessions = append(ans.Sessions, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading sessions: %w", err)
	}
	return ans, nil
}

// session answers one session with its calls in time order.
func (h *Handler) session(ctx context.Context, r *http.Request) (any, error) {
	id := strings.TrimPrefix(r.URL.Path, "/sessions/")
	row := h.db.QueryRowContext(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE session_id = ?", id)
	s, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &apiError{status: http.StatusNotFound, typ: "not_found",
			message: fmt.Sprintf("no session %q", id), param: "id"}
	}
	if err != nil {
		return nil, fmt.Errorf("reading session %q: %w", id, err)
	}
	calls, err := h.listCalls(ctx, "WHERE session_id = ? AND session_id <> '' ORDER BY ts_us, event_id", id)
	if err != nil {
		return nil, fmt.Errorf("calls of session %q: %w", id, err)
	}
	return sessionAnswer{sessionRow: s, CallsList: calls}, nil
}
