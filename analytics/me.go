package analytics

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/store"
)

// meTotals, meToday and meModel are the caller's figures; a CostUSD is null
// when the figure has calls and every one of them was unpriced.
type meTotals struct {
	CostUSD       *usd  `json:"cost_usd"`
	Calls         int64 `json:"calls"`
	InputTokens   int64 `json:"input_tokens"`
	OutputTokens  int64 `json:"output_tokens"`
	UnpricedCalls int64 `json:"unpriced_calls"`
}

type meToday struct {
	CostUSD *usd  `json:"cost_usd"`
	Calls   int64 `json:"calls"`
}

type meModel struct {
	Key           string `json:"key"`
	CostUSD       *usd   `json:"cost_usd"`
	Calls         int64  `json:"calls"`
	UnpricedCalls int64  `json:"unpriced_calls"`
	cost          usd    // the priced sum, to sort by
}

type meAnswer struct {
	GatewayKeyID string `json:"gateway_key_id"`
	Name         string `json:"name"`
	User         string `json:"user"`
	Team         string `json:"team"`
	Workspace    string `json:"workspace"`
	windowFields
	Today   meToday        `json:"today"`
	Total   meTotals       `json:"total"`
	ByModel []meModel      `json:"by_model"`
	Budgets []budget.Quota `json:"budgets"`
}

func unauthorized(message string) *apiError {
	return &apiError{status: http.StatusUnauthorized, typ: "authentication_error", message: message}
}

// me answers the caller's own spend. Every figure is filtered to the
// authenticated key; identity filters in the query string are ignored.
func (h *Handler) me(ctx context.Context, r *http.Request) (any, error) {
	tok, conflict := store.TokenFromLines(r.Header["X-Api-Key"], r.Header["Authorization"])
	if tok == "" {
		return nil, unauthorized("a gateway key is required (x-api-key or Authorization: Bearer)")
	}
	if conflict {
		return nil, unauthorized("the request carries two different gateway keys (in x-api-key and Authorization: Bearer, or in one of them sent twice); send one")
	}
	if h.auth == nil {
		return nil, unauthorized("gateway key authentication is not configured")
	}
	id, err := h.auth(tok)
	if err != nil || id.KeyID == "" {
		return nil, unauthorized("invalid, revoked or expired gateway key")
	}
	now := h.now()
	win, err := parseWindow(r, now)
	if err != nil {
		return nil, err
	}
	f := filter{keyID: &id.KeyID}
	res, err := h.aggregate(ctx, query{from: win.from, to: win.to, filter: f, dims: []dim{dimModel}, lean: true})
	if err != nil {
		return nil, fmt.Errorf("own spend by model: %w", err)
	}
	midnight := now.UTC().Truncate(24 * time.Hour)
	today, err := h.aggregate(ctx, query{from: midnight, to: now.UTC(), filter: f, lean: true})
	if err != nil {
		return nil, fmt.Errorf("own spend today: %w", err)
	}
	t, d := res.total(), today.total()
	ans := meAnswer{GatewayKeyID: id.KeyID, Name: id.Name, User: id.User, Team: id.Team, Workspace: id.Workspace,
		windowFields: newWindowFields(win),
		Today:        meToday{CostUSD: costOf(d.cost, d.calls, d.unpriced), Calls: d.calls},
		Total: meTotals{CostUSD: costOf(t.cost, t.calls, t.unpriced), Calls: t.calls, InputTokens: t.input,
			OutputTokens: t.output, UnpricedCalls: t.unpriced},
		ByModel: make([]meModel, 0, len(res)), Budgets: []budget.Quota{}}
	for _, g := range res {
		ans.ByModel = append(ans.ByModel, meModel{Key: g.vals[0], CostUSD: costOf(g.cost, g.calls, g.unpriced),
			Calls: g.calls, UnpricedCalls: g.unpriced, cost: usd(g.cost)})
	}
	if h.budgets != nil {
		qs, err := h.budgets.QuotasFor(ctx, budget.Identity{KeyID: id.KeyID, User: id.User, Team: id.Team,
			Workspace: id.Workspace}, now)
		if err != nil {
			return nil, fmt.Errorf("own budgets: %w", err)
		}
		ans.Budgets = append(ans.Budgets, qs...)
	}
	sort.Slice(ans.ByModel, func(i, j int) bool {
		a, b := ans.ByModel[i], ans.ByModel[j]
		return byCost(a.cost, a.Calls, a.Key, b.cost, b.Calls, b.Key)
	})
	return ans, nil
}
