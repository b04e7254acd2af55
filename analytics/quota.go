package analytics

import (
	"context"
	"fmt"
	"time"

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
// "user", "team") that has a budget, at now; nil when budgets are not
// configured. The by_* answers pass the present whatever their window: a
// quota is the state the gateway enforces, and the ledger's sums at a past
// instant would count the spend made since.
func (h *Handler) quotas(ctx context.Context, scope string, now time.Time) (map[string]*budget.Quota, error) {
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
