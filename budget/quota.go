package budget

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Quota is a budget's state in its current window, as analytics report it
// (`quota: {window, hard, soft, spent, reserved, resets_at, state}`).
type Quota struct {
	BudgetID string     `json:"budget_id"`
	Scope    string     `json:"scope"`
	Subject  string     `json:"subject"`
	Window   string     `json:"window"`
	TZ       string     `json:"tz"`
	Hard     float64    `json:"hard"`
	Soft     *float64   `json:"soft"` // nil when the budget has no soft limit
	Spent    float64    `json:"spent"`
	Reserved float64    `json:"reserved"`  // worst-case cost of calls in flight
	ResetsAt *time.Time `json:"resets_at"` // next window start in the budget's zone; nil for rolling windows
	// State is "hard" when spent + reserved has reached the hard limit (new
	// calls are refused), or when the latest call refused for the spend in
	// this window would still be (calls as large are refused), "soft" when
	// spent + reserved has reached the soft limit, else "ok".
	State string `json:"state"`
}

// Quotas returns the quotas of every budget on one subject (scope "key",
// "user", "team" or "workspace"), shortest calendar window first; none when
// it has no budget.
func (l *Ledger) Quotas(ctx context.Context, scope, subject string, now time.Time) ([]Quota, error) {
	out, err := l.quotas(ctx, now, sqlSelectBudgets+` WHERE scope = ? AND subject = ? ORDER BY `+windowOrder, scope, subject)
	if err != nil {
		return nil, fmt.Errorf("reading %s %q quotas: %w", scope, subject, err)
	}
	return out, nil
}

// QuotasFor returns the quotas of every budget covering id: key, user,
// team, then workspace budgets.
func (l *Ledger) QuotasFor(ctx context.Context, id Identity, now time.Time) ([]Quota, error) {
	budgets, err := covering(ctx, l.rdb, id)
	if err != nil {
		return nil, fmt.Errorf("reading quotas: %w", err)
	}
	out := make([]Quota, 0, len(budgets))
	for _, b := range budgets {
		q, err := l.quota(ctx, b, now)
		if err != nil {
			return nil, fmt.Errorf("reading quotas: %w", err)
		}
		out = append(out, q)
	}
	return out, nil
}

func (l *Ledger) quotas(ctx context.Context, now time.Time, query string, args ...any) ([]Quota, error) {
	rows, err := l.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err)
	}
	var budgets []Budget
	for rows.Next() {
		b, err := scanBudget(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr(err)
		}
		budgets = append(budgets, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr(err)
	}
	out := make([]Quota, 0, len(budgets))
	for _, b := range budgets {
		q, err := l.quota(ctx, b, now)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

func (l *Ledger) quota(ctx context.Context, b Budget, now time.Time) (Quota, error) {
	u, err := l.usage(ctx, l.rdb, b, now)
	if err != nil {
		return Quota{}, err
	}
	q := Quota{
		BudgetID: b.ID, Scope: b.Scope, Subject: b.Subject, Window: b.Window, TZ: b.TZ,
		Hard: b.Hard, Spent: round12(u.spent), Reserved: round12(u.reserved), ResetsAt: u.resetsAt, State: StateOK,
	}
	if b.Soft > 0 {
		soft := b.Soft
		q.Soft = &soft
	}
	switch held := u.spent + u.reserved; {
	case held >= b.Hard-epsilon:
		q.State = StateHard
	case b.Soft > 0 && held >= b.Soft-epsilon:
		q.State = StateSoft
	}
	if q.State != StateHard {
		// Its latest refusal for the spend (markExhausted) in this
		// window would still be made: its callers are refused.
		at, amount, ok := exhausted(ctx, l.rdb, b.ID)
		inWindow := ok && !at.Before(u.start) && (u.resetsAt == nil || at.Before(*u.resetsAt))
		// Not for a call larger than the whole budget (a limit lowered
		// since: review 30R8): no spend makes room for it.
		if inWindow && amount <= b.Hard+epsilon && u.spent+amount > b.Hard+epsilon {
			q.State = StateHard
		}
	}
	return q, nil
}

// round12 rounds a sum of charges to 1e-12 dollars, the resolution of the
// costs it adds up: $0.1 + $0.2 reads 0.3, not 0.30000000000000004.
func round12(usd float64) float64 { return math.Round(usd*1e12) / 1e12 }
