package analytics

import (
	"context"
	"fmt"

	"github.com/metisgateway/metis/budget"
)

// quotaRank orders budget states from most to least severe.
var quotaRank = map[string]int{budget.StateHard: 2, budget.StateSoft: 1}

// primaryQuota is the quota a row shows when a subject has several budgets
// (a daily and a monthly one): the most severe state, then the one closest
// to its hard limit.
func primaryQuota(qs []budget.Quota) *budget.Quota {
	var best *budget.Quota
	for i := range qs {
		q := &qs[i]
		if best == nil || quotaRank[q.State] > quotaRank[best.State] ||
			(quotaRank[q.State] == quotaRank[best.State] && (q.Spent+q.Reserved)/q.Hard > (best.Spent+best.Reserved)/best.Hard) {
			best = q
		}
	}
	return best
}

// quotas returns the primary quota of every subject of a scope ("key",
// "user", "team") that has a budget, as it stands now whatever the answer's
// window (the state the gateway enforces; the ledger's sums at a past
// instant would count the spend made since); nil when budgets are not
// configured.
func (h *Handler) quotas(ctx context.Context, scope string) (map[string]*budget.Quota, error) {
	now := h.now()
	if h.budgets == nil {
		return nil, nil
	}
	all, err := h.budgets.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing budgets: %w", err)
	}
	out := map[string]*budget.Quota{}
	for _, b := range all {
		if b.Scope != scope || out[b.Subject] != nil {
			continue
		}
		qs, err := h.budgets.Quotas(ctx, scope, b.Subject, now)
		if err != nil {
			return nil, err
		}
		if q := primaryQuota(qs); q != nil {
			out[b.Subject] = q
		}
	}
	return out, nil
}
