package analytics

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// groupDims maps the group_by values to their dimension; day and hour are
// time grains instead.
var groupDims = map[string]dim{
	"model": dimModel, "provider": dimProvider, "key": dimKey, "user": dimUser, "team": dimTeam,
	"workspace": dimWorkspace, "session": dimSession,
}

const groupByValues = "model, provider, key, user, team, workspace, session, day, hour"

// costGroup is one entry of /analytics/cost's groups. CostUSD is null when
// every call of the group was unpriced.
type costGroup struct {
	Key     string `json:"key"`
	Name    string `json:"name,omitempty"`
	CostUSD *usd   `json:"cost_usd"`
	costCounts
}

// costCounts are the figures, besides the cost, that /analytics/cost gives
// for the whole window and for each group.
type costCounts struct {
	Calls                    int64 `json:"calls"`
	Errors                   int64 `json:"errors"`
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	ReasoningTokens          int64 `json:"reasoning_tokens"`
	UnpricedCalls            int64 `json:"unpriced_calls"`
	EstimatedCalls           int64 `json:"estimated_calls"`
	CacheSavingsUSD          usd   `json:"cache_savings_usd"`
}

func countsOf(s sums) costCounts {
	return costCounts{Calls: s.calls, Errors: s.errors, InputTokens: s.input, OutputTokens: s.output,
		CacheReadInputTokens: s.cacheRead, CacheCreationInputTokens: s.cacheWrite, ReasoningTokens: s.reasoning,
		UnpricedCalls: s.unpriced, EstimatedCalls: s.estimated, CacheSavingsUSD: usd(s.savings)}
}

// costAnswer is the body of /analytics/cost. TotalCostUSD is null when the
// window has calls and all of them were unpriced.
type costAnswer struct {
	windowFields
	GroupBy      string `json:"group_by"`
	TotalCostUSD *usd   `json:"total_cost_usd"`
	costCounts
	rejectedCounts
	Groups []costGroup `json:"groups"`
	// GroupsTotal is the number of groups of the whole window;
	// GroupsTruncated is set when limit cut groups to fewer.
	GroupsTotal     int  `json:"groups_total"`
	GroupsTruncated bool `json:"groups_truncated"`
}

// windowFields are the window, from and to every windowed answer starts with.
type windowFields struct {
	Window string `json:"window"`
	From   string `json:"from"`
	To     string `json:"to"`
}

func newWindowFields(w window) windowFields {
	return windowFields{Window: w.name, From: fmtInstant(w.from), To: fmtInstant(w.to)}
}

func (h *Handler) cost(ctx context.Context, r *http.Request) (any, error) {
	win, err := parseWindow(r, h.now())
	if err != nil {
		return nil, err
	}
	by := strings.TrimSpace(r.URL.Query().Get("group_by"))
	if by == "" {
		by = "model"
	}
	limit, err := parseLimitIn(r, defaultCostLimit, maxCostLimit)
	if err != nil {
		return nil, err
	}
	q := query{from: win.from, to: win.to, filter: parseFilter(r)}
	switch by {
	case "day":
		q.grain = grainDay
	case "hour":
		q.grain = grainHour
	default:
		d, ok := groupDims[by]
		if !ok {
			return nil, badParam("group_by", fmt.Sprintf("unknown group_by %q; one of %s", by, groupByValues))
		}
		q.dims = []dim{d}
	}
	var (
		res    result
		t      sums
		groups int
	)
	if by == "session" && q.filter.model == nil {
		// The top limit sessions without reading every session of the
		// window; the totals come from the rollups.
		res, t, groups, err = h.aggregateSessionsTop(ctx, q, limit)
	} else {
		res, err = h.aggregate(ctx, q)
		t, groups = res.total(), len(res)
	}
	if err != nil {
		return nil, fmt.Errorf("cost by %s: %w", by, err)
	}
	rej, err := h.rejected(ctx, q)
	if err != nil {
		return nil, err
	}
	ans := costAnswer{
		windowFields: newWindowFields(win), GroupBy: by,
		TotalCostUSD: costOf(t.cost, t.calls, t.unpriced), costCounts: countsOf(t), rejectedCounts: rej,
		Groups: make([]costGroup, 0, len(res)),
	}
	for _, g := range res {
		cg := costGroup{CostUSD: costOf(g.cost, g.calls, g.unpriced), costCounts: countsOf(g.sums)}
		switch {
		case q.grain != grainNone:
			cg.Key = fmtTime(time.Unix(g.bucket, 0))
		case by == "user" || by == "team":
			cg.Key = tagLabel(g.vals[0])
		default:
			cg.Key = g.vals[0]
		}
		ans.Groups = append(ans.Groups, cg)
	}
	if q.grain != grainNone {
		// Time buckets stay in time order; a limit keeps the latest.
		sort.Slice(ans.Groups, func(i, j int) bool { return ans.Groups[i].Key < ans.Groups[j].Key })
		ans.Groups = ans.Groups[max(0, len(ans.Groups)-limit):]
	} else {
		sort.Slice(ans.Groups, func(i, j int) bool {
			return byCost(ans.Groups[i].CostUSD.value(), ans.Groups[i].Calls, ans.Groups[i].Key,
				ans.Groups[j].CostUSD.value(), ans.Groups[j].Calls, ans.Groups[j].Key)
		})
		ans.Groups = ans.Groups[:min(len(ans.Groups), limit)]
	}
	ans.GroupsTotal, ans.GroupsTruncated = groups, groups > len(ans.Groups)
	if by == "key" {
		ids := make([]string, len(ans.Groups))
		for i, g := range ans.Groups {
			ids[i] = g.Key
		}
		keys, err := h.keyInfo(ctx, ids)
		if err != nil {
			return nil, err
		}
		for i := range ans.Groups {
			ans.Groups[i].Name = keys[ans.Groups[i].Key].name
		}
	}
	return ans, nil
}

// byCost orders by cost descending, then calls descending, then key.
func byCost(ci usd, ni int64, ki string, cj usd, nj int64, kj string) bool {
	if ci != cj {
		return ci > cj
	}
	if ni != nj {
		return ni > nj
	}
	return ki < kj
}
