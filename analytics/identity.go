package analytics

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/metisgateway/metis/budget"
)

// keyRow is one entry of /analytics/by_key. CostUSD is null when every call
// of the key was unpriced; cost is the priced sum it sorts by.
type keyRow struct {
	GatewayKeyID  string           `json:"gateway_key_id"`
	Name          string           `json:"name"`
	User          string           `json:"user"`
	Team          string           `json:"team"`
	Workspace     string           `json:"workspace"`
	CostUSD       *usd             `json:"cost_usd"`
	Calls         int64            `json:"calls"`
	Errors        int64            `json:"errors"`
	UnpricedCalls int64            `json:"unpriced_calls"`
	LastCallAt    string           `json:"last_call_at"`
	InboundShapes map[string]int64 `json:"inbound_shapes"`
	Quota         *budget.Quota    `json:"quota"`
	lastUS        int64
	cost          usd
}

type byKeyAnswer struct {
	windowFields
	Keys []*keyRow `json:"keys"`
}

func (h *Handler) byKey(ctx context.Context, r *http.Request) (any, error) {
	win, err := parseWindow(r, h.now())
	if err != nil {
		return nil, err
	}
	res, err := h.aggregate(ctx, query{from: win.from, to: win.to, filter: parseFilter(r),
		dims: []dim{dimKey, dimShape, dimUser, dimTeam, dimWorkspace}, lean: true})
	if err != nil {
		return nil, fmt.Errorf("spend by key: %w", err)
	}
	idx := make(map[string]*keyRow)
	ans := byKeyAnswer{windowFields: newWindowFields(win), Keys: []*keyRow{}}
	for _, g := range res {
		k := idx[g.vals[0]]
		if k == nil {
			k = &keyRow{GatewayKeyID: g.vals[0], User: g.vals[2], Team: g.vals[3], Workspace: g.vals[4],
				InboundShapes: map[string]int64{"anthropic": 0, "openai": 0}}
			idx[g.vals[0]] = k
			ans.Keys = append(ans.Keys, k)
		}
		if g.lastUS > k.lastUS { // the tags of the latest call win
			k.lastUS, k.User, k.Team, k.Workspace = g.lastUS, g.vals[2], g.vals[3], g.vals[4]
		}
		k.cost += usd(g.cost)
		k.Calls += g.calls
		k.Errors += g.errors
		k.UnpricedCalls += g.unpriced
		k.InboundShapes[g.vals[1]] += g.calls
	}
	ids := make([]string, len(ans.Keys))
	for i, k := range ans.Keys {
		ids[i] = k.GatewayKeyID
	}
	meta, err := h.keyInfo(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, k := range ans.Keys {
		m := meta[k.GatewayKeyID]
		k.Name = m.name
		if m.known {
			k.User, k.Team, k.Workspace = m.user, m.team, m.workspace
		}
		k.LastCallAt = fmtMicros(k.lastUS)
		k.CostUSD = costOf(float64(k.cost), k.Calls, k.UnpricedCalls)
	}
	qs, err := h.quotas(ctx, budget.ScopeKey)
	if err != nil {
		return nil, err
	}
	for _, k := range ans.Keys {
		k.Quota = qs[k.GatewayKeyID]
	}
	sort.Slice(ans.Keys, func(i, j int) bool {
		a, b := ans.Keys[i], ans.Keys[j]
		return byCost(a.cost, a.Calls, a.GatewayKeyID, b.cost, b.Calls, b.GatewayKeyID)
	})
	return ans, nil
}

// userRow is one entry of /analytics/by_user. CostUSD is null when every
// call of the user was unpriced; cost is the priced sum it sorts by.
type userRow struct {
	User          string        `json:"user"`
	CostUSD       *usd          `json:"cost_usd"`
	Calls         int64         `json:"calls"`
	Errors        int64         `json:"errors"`
	UnpricedCalls int64         `json:"unpriced_calls"`
	Keys          int           `json:"keys"`
	Quota         *budget.Quota `json:"quota"`
	cost          usd
}

type byUserAnswer struct {
	windowFields
	Users []*userRow `json:"users"`
}

func (h *Handler) byUser(ctx context.Context, r *http.Request) (any, error) {
	win, err := parseWindow(r, h.now())
	if err != nil {
		return nil, err
	}
	f := parseFilter(r)
	res, err := h.aggregate(ctx, query{from: win.from, to: win.to, filter: f,
		dims: []dim{dimUser, dimKey}, lean: true})
	if err != nil {
		return nil, fmt.Errorf("spend by user: %w", err)
	}
	idx := make(map[string]*userRow)
	ans := byUserAnswer{windowFields: newWindowFields(win), Users: []*userRow{}}
	for _, g := range res {
		name := tagLabel(g.vals[0])
		u := idx[name]
		if u == nil {
			u = &userRow{User: name}
			idx[name] = u
			ans.Users = append(ans.Users, u)
		}
		u.cost += usd(g.cost)
		u.Calls += g.calls
		u.Errors += g.errors
		u.UnpricedCalls += g.unpriced
		u.Keys++ // one group per (user, key)
	}
	qs, err := h.quotas(ctx, budget.ScopeUser)
	if err != nil {
		return nil, err
	}
	for subject := range qs {
		if idx[subject] == nil && budgetOnlyRow(f, f.user, subject) {
			ans.Users = append(ans.Users, &userRow{User: subject})
		}
	}
	for _, u := range ans.Users {
		u.Quota = qs[u.User]
		u.CostUSD = costOf(float64(u.cost), u.Calls, u.UnpricedCalls)
	}
	sort.Slice(ans.Users, func(i, j int) bool {
		a, b := ans.Users[i], ans.Users[j]
		return byCost(a.cost, a.Calls, a.User, b.cost, b.Calls, b.User)
	})
	return ans, nil
}

// teamUser is one entry of a team's by_user. CostUSD is null when every
// call of the user in the team was unpriced; cost is the priced sum it sorts
// by.
type teamUser struct {
	User          string `json:"user"`
	CostUSD       *usd   `json:"cost_usd"`
	Calls         int64  `json:"calls"`
	UnpricedCalls int64  `json:"unpriced_calls"`
	cost          usd
}

// teamRow is one entry of /analytics/by_team. CostUSD is null when every
// call of the team was unpriced; cost is the priced sum it sorts by.
type teamRow struct {
	Team          string        `json:"team"`
	CostUSD       *usd          `json:"cost_usd"`
	Calls         int64         `json:"calls"`
	Errors        int64         `json:"errors"`
	UnpricedCalls int64         `json:"unpriced_calls"`
	Users         int           `json:"users"`
	Quota         *budget.Quota `json:"quota"`
	ByUser        []*teamUser   `json:"by_user"`
	cost          usd
}

type byTeamAnswer struct {
	windowFields
	Teams []*teamRow `json:"teams"`
}

func (h *Handler) byTeam(ctx context.Context, r *http.Request) (any, error) {
	win, err := parseWindow(r, h.now())
	if err != nil {
		return nil, err
	}
	f := parseFilter(r)
	res, err := h.aggregate(ctx, query{from: win.from, to: win.to, filter: f,
		dims: []dim{dimTeam, dimUser}, lean: true})
	if err != nil {
		return nil, fmt.Errorf("spend by team: %w", err)
	}
	idx := make(map[string]*teamRow)
	ans := byTeamAnswer{windowFields: newWindowFields(win), Teams: []*teamRow{}}
	for _, g := range res {
		name := tagLabel(g.vals[0])
		t := idx[name]
		if t == nil {
			t = &teamRow{Team: name, ByUser: []*teamUser{}}
			idx[name] = t
			ans.Teams = append(ans.Teams, t)
		}
		t.cost += usd(g.cost)
		t.Calls += g.calls
		t.Errors += g.errors
		t.UnpricedCalls += g.unpriced
		if g.vals[1] != "" {
			t.Users++ // one group per (team, user)
		}
		t.ByUser = append(t.ByUser, &teamUser{User: tagLabel(g.vals[1]), cost: usd(g.cost),
			CostUSD: costOf(g.cost, g.calls, g.unpriced), Calls: g.calls, UnpricedCalls: g.unpriced})
	}
	for _, t := range ans.Teams {
		t.CostUSD = costOf(float64(t.cost), t.Calls, t.UnpricedCalls)
		sort.Slice(t.ByUser, func(i, j int) bool {
			a, b := t.ByUser[i], t.ByUser[j]
			return byCost(a.cost, a.Calls, a.User, b.cost, b.Calls, b.User)
		})
	}
	qs, err := h.quotas(ctx, budget.ScopeTeam)
	if err != nil {
		return nil, err
	}
	for subject := range qs {
		if idx[subject] == nil && budgetOnlyRow(f, f.team, subject) {
			zero := usd(0)
			ans.Teams = append(ans.Teams, &teamRow{Team: subject, CostUSD: &zero, ByUser: []*teamUser{}})
		}
	}
	for _, t := range ans.Teams {
		t.Quota = qs[t.Team]
	}
	sort.Slice(ans.Teams, func(i, j int) bool {
		a, b := ans.Teams[i], ans.Teams[j]
		return byCost(a.cost, a.Calls, a.Team, b.cost, b.Calls, b.Team)
	})
	return ans, nil
}

// budgetOnlyRow reports whether a subject with a budget but no calls in the
// window gets a row of zeros beside its quota: a team or user whose every
// call its hard cap refuses has no accepted calls, and is the one a lead
// must see. It does unless the answer is filtered by anything but own (the
// scope's own filter), which must then name the subject: the subject's
// keys, workspaces or models are unknown without calls.
func budgetOnlyRow(f filter, own *string, subject string) bool {
	for _, p := range []*string{f.keyID, f.user, f.team, f.workspace, f.model} {
		if p != nil && p != own {
			return false
		}
	}
	return own == nil || *own == subject
}
