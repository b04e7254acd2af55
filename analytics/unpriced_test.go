package analytics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// The answers' costs as *float64, so that null (nil) and 0 differ.
type (
	nullableGroup struct {
		Key           string   `json:"key"`
		CostUSD       *float64 `json:"cost_usd"`
		Calls         int64    `json:"calls"`
		UnpricedCalls int64    `json:"unpriced_calls"`
	}
	nullableCost struct {
		TotalCostUSD  *float64        `json:"total_cost_usd"`
		Calls         int64           `json:"calls"`
		UnpricedCalls int64           `json:"unpriced_calls"`
		Groups        []nullableGroup `json:"groups"`
	}
	nullableSession struct {
		SessionID     string   `json:"session_id"`
		CostUSD       *float64 `json:"cost_usd"`
		Calls         int64    `json:"calls"`
		UnpricedCalls int64    `json:"unpriced_calls"`
		CallsList     []struct {
			CostUSD *float64 `json:"cost_usd"`
			Priced  bool     `json:"priced"`
		} `json:"calls_list"`
	}
	nullableSessions struct {
		Sessions []nullableSession `json:"sessions"`
	}
	nullableActivity struct {
		Series []struct {
			T       string   `json:"t"`
			Calls   int64    `json:"calls"`
			CostUSD *float64 `json:"cost_usd"`
		} `json:"series"`
	}
	// nullableRow is a row of /analytics/by_key, by_user, by_team (and a
	// team's by_user) or of /analytics/me's by_model.
	nullableRow struct {
		GatewayKeyID  string        `json:"gateway_key_id"`
		User          string        `json:"user"`
		Team          string        `json:"team"`
		Key           string        `json:"key"`
		CostUSD       *float64      `json:"cost_usd"`
		Calls         int64         `json:"calls"`
		UnpricedCalls int64         `json:"unpriced_calls"`
		ByUser        []nullableRow `json:"by_user"`
	}
	nullableIdentity struct {
		Keys  []nullableRow `json:"keys"`
		Users []nullableRow `json:"users"`
		Teams []nullableRow `json:"teams"`
	}
	nullableMe struct {
		Today struct {
			CostUSD *float64 `json:"cost_usd"`
			Calls   int64    `json:"calls"`
		} `json:"today"`
		Total struct {
			CostUSD       *float64 `json:"cost_usd"`
			Calls         int64    `json:"calls"`
			UnpricedCalls int64    `json:"unpriced_calls"`
		} `json:"total"`
		ByModel []nullableRow `json:"by_model"`
	}
)

// nullRule checks the rule: a cost is null exactly when it covers calls
// and all of them are unpriced.
func nullRule(t *testing.T, what string, cost *float64, calls, unpriced int64) {
	t.Helper()
	if (cost == nil) != (calls > 0 && unpriced == calls) {
		t.Errorf("%s: cost_usd %s with %d calls, %d unpriced", what, fmtCost(cost), calls, unpriced)
	}
}

// unpricedKeys are the gateway tokens of the unpriced fixture's keys:
// ursula's and pat's, quinn's and zed's (whose calls only
// TestAllUnpricedIdentityCostIsNull adds) and gk_N, which has no calls.
var unpricedKeys = map[string]Identity{
	"gw_U": {KeyID: "gk_U", Name: "u", User: "ursula", Team: "ghosts", Workspace: "/src/unpriced"},
	"gw_P": {KeyID: "gk_P", Name: "p", User: "pat", Team: "eng", Workspace: "/src/api"},
	"gw_Q": {KeyID: "gk_Q", Name: "q", User: "quinn", Team: "eng", Workspace: "/src/web"},
	"gw_Z": {KeyID: "gk_Z", Name: "z", User: "zed", Team: "ghosts", Workspace: "/src/free"},
	"gw_N": {KeyID: "gk_N", Name: "n", User: "nina", Team: "eng", Workspace: "/src/none"},
}

func unpricedAuth(tok string) (Identity, error) {
	if id, ok := unpricedKeys[tok]; ok {
		return id, nil
	}
	return Identity{}, errors.New("unknown token")
}

// costList renders rows as "name=cost" in answer order, name picked by
// nameOf and cost "null" for null, and checks each row against nullRule.
func costList(t *testing.T, what string, rows []nullableRow, nameOf func(nullableRow) string) []string {
	t.Helper()
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		nullRule(t, what+" "+nameOf(r), r.CostUSD, r.Calls, r.UnpricedCalls)
		out = append(out, nameOf(r)+"="+fmtCost(r.CostUSD))
	}
	return out
}

func fmtCost(c *float64) string {
	if c == nil {
		return "null"
	}
	return fmt.Sprint(*c)
}

// wantCost checks got against want, nil meaning null.
func wantCost(t *testing.T, what string, got, want *float64) {
	t.Helper()
	if (got == nil) != (want == nil) || (got != nil && !near(*got, *want)) {
		t.Errorf("%s: cost_usd %s, want %s", what, fmtCost(got), fmtCost(want))
	}
}

// newUnpricedFixture seeds three sessions: "all-unpriced" (two calls of a
// model without a price, two days ago, by ursula of team ghosts), "partly"
// (one call at $0.25, one unpriced) and "priced" ($0.5 + $0.125), plus
// "recent-unpriced", one unpriced call by ursula 90 minutes ago. Every
// unpriced call is alone in its hour and the first two alone in their day.
func newUnpricedFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "metis.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	f := &fixture{st: st, h: New(st.ReadDB(), Options{Now: func() time.Time { return testNow },
		Authenticate: unpricedAuth})}
	ursula := seedKey{id: "gk_U", name: "u", user: "ursula", team: "ghosts", workspace: "/src/unpriced"}
	pat := seedKey{id: "gk_P", name: "p", user: "pat", team: "eng", workspace: "/src/api"}
	n := 0
	add := func(ago time.Duration, k seedKey, session string, cost float64) {
		n++
		c := store.Call{TurnID: fmt.Sprintf("t%02d", n), GatewayKeyID: k.id, KeyName: k.name, User: k.user,
			Team: k.team, Workspace: k.workspace, SessionID: session, InboundShape: "anthropic",
			Provider: "anthropic", Model: "claude-haiku-4-5", Status: 200, Attempts: 1,
			InputTokens: int64(100 * n), OutputTokens: int64(10 * n), UsageSource: "provider"}
		if cost < 0 {
			c.Provider, c.Model = "local", "mystery-model"
		} else {
			c.CostUSD, c.Priced = &cost, true
		}
		f.calls = append(f.calls, seedCall{at: testNow.Add(-ago).Truncate(time.Microsecond), c: c})
	}
	const unpriced = -1
	add(50*time.Hour, ursula, "all-unpriced", unpriced)
	add(49*time.Hour, ursula, "all-unpriced", unpriced)
	add(5*time.Hour, pat, "partly", 0.25)
	add(4*time.Hour, pat, "partly", unpriced)
	add(3*time.Hour, pat, "priced", 0.5)
	add(2*time.Hour, pat, "priced", 0.125)
	add(90*time.Minute, ursula, "recent-unpriced", unpriced)
	f.enqueue(t, f.calls...)
	return f
}

// TestAllUnpricedCostIsNull: a session, a group, a window or a time bucket
// whose calls all had no price reports cost_usd null, never $0; a partly
// priced one keeps the sum of its priced calls with unpriced_calls > 0, and
// a bucket without calls costs 0.
func TestAllUnpricedCostIsNull(t *testing.T) {
	f := newUnpricedFixture(t)
	dollars := func(v float64) *float64 { return &v }

	// /sessions and /sessions/{id}.
	want := map[string]struct {
		cost            *float64
		calls, unpriced int64
	}{
		"all-unpriced":    {nil, 2, 2},
		"recent-unpriced": {nil, 1, 1},
		"partly":          {dollars(0.25), 2, 1},
		"priced":          {dollars(0.625), 2, 0},
	}
	var list nullableSessions
	f.get(t, "/sessions", url.Values{"window": {"7d"}}, 200, &list)
	if len(list.Sessions) != len(want) {
		t.Fatalf("/sessions: %d sessions, want %d", len(list.Sessions), len(want))
	}
	for _, s := range list.Sessions {
		w := want[s.SessionID]
		wantCost(t, "/sessions "+s.SessionID, s.CostUSD, w.cost)
		if s.Calls != w.calls || s.UnpricedCalls != w.unpriced {
			t.Errorf("/sessions %s: %d calls, %d unpriced; want %d, %d", s.SessionID, s.Calls, s.UnpricedCalls,
				w.calls, w.unpriced)
		}
	}
	for id, w := range want {
		var s nullableSession
		f.get(t, "/sessions/"+id, nil, 200, &s)
		wantCost(t, "/sessions/"+id, s.CostUSD, w.cost)
		if s.UnpricedCalls != w.unpriced || len(s.CallsList) != int(w.calls) {
			t.Errorf("/sessions/%s: %d unpriced, %d calls listed; want %d, %d", id, s.UnpricedCalls,
				len(s.CallsList), w.unpriced, w.calls)
		}
	}

	// /analytics/cost: groups and totals, through the rollups (day, hour)
	// and the calls table, and group_by=session through the sessions table
	// and, with a model filter, through calls.
	costCases := []struct {
		params url.Values
		total  *float64
		groups map[string]*float64
	}{
		{url.Values{"group_by": {"model"}}, dollars(0.875),
			map[string]*float64{"mystery-model": nil, "claude-haiku-4-5": dollars(0.875)}},
		{url.Values{"group_by": {"provider"}, "window": {"24h"}}, dollars(0.875),
			map[string]*float64{"local": nil, "anthropic": dollars(0.875)}},
		{url.Values{"group_by": {"user"}}, dollars(0.875), map[string]*float64{"ursula": nil, "pat": dollars(0.875)}},
		{url.Values{"group_by": {"team"}, "window": {"all"}}, dollars(0.875),
			map[string]*float64{"ghosts": nil, "eng": dollars(0.875)}},
		{url.Values{"group_by": {"key"}, "window": {"30d"}}, dollars(0.875),
			map[string]*float64{"gk_U": nil, "gk_P": dollars(0.875)}},
		{url.Values{"group_by": {"workspace"}}, dollars(0.875),
			map[string]*float64{"/src/unpriced": nil, "/src/api": dollars(0.875)}},
		{url.Values{"group_by": {"session"}}, dollars(0.875), map[string]*float64{"all-unpriced": nil,
			"recent-unpriced": nil, "partly": dollars(0.25), "priced": dollars(0.625)}},
		{url.Values{"group_by": {"session"}, "model": {"mystery-model"}}, nil,
			map[string]*float64{"all-unpriced": nil, "recent-unpriced": nil, "partly": nil}},
		{url.Values{"group_by": {"session"}, "limit": {"1"}}, dollars(0.875), map[string]*float64{"priced": dollars(0.625)}},
		{url.Values{"group_by": {"model"}, "user": {"ursula"}}, nil, map[string]*float64{"mystery-model": nil}},
		{url.Values{"group_by": {"model"}, "user": {"nobody"}}, dollars(0), map[string]*float64{}},
		{url.Values{"group_by": {"day"}}, dollars(0.875), map[string]*float64{
			fmtTime(testNow.Add(-50 * time.Hour).Truncate(24 * time.Hour)): nil,
			fmtTime(testNow.Truncate(24 * time.Hour)):                      dollars(0.875)}},
		{url.Values{"group_by": {"hour"}, "window": {"24h"}}, dollars(0.875), map[string]*float64{
			fmtTime(testNow.Add(-5 * time.Hour).Truncate(time.Hour)):    dollars(0.25),
			fmtTime(testNow.Add(-4 * time.Hour).Truncate(time.Hour)):    nil, // partly's unpriced call
			fmtTime(testNow.Add(-3 * time.Hour).Truncate(time.Hour)):    dollars(0.5),
			fmtTime(testNow.Add(-2 * time.Hour).Truncate(time.Hour)):    dollars(0.125),
			fmtTime(testNow.Add(-90 * time.Minute).Truncate(time.Hour)): nil}},
	}
	for _, c := range costCases {
		q := c.params
		if q.Get("window") == "" {
			q = with(q, "window", "7d")
		}
		what := "/analytics/cost?" + q.Encode()
		var got nullableCost
		f.get(t, "/analytics/cost", q, 200, &got)
		wantCost(t, what+" total", got.TotalCostUSD, c.total)
		if len(got.Groups) != len(c.groups) {
			t.Errorf("%s: %d groups, want %d", what, len(got.Groups), len(c.groups))
		}
		for _, g := range got.Groups {
			w, ok := c.groups[g.Key]
			if !ok {
				t.Errorf("%s: unexpected group %q", what, g.Key)
				continue
			}
			wantCost(t, what+" group "+g.Key, g.CostUSD, w)
			if (w == nil) != (g.UnpricedCalls == g.Calls) {
				t.Errorf("%s group %s: %d calls, %d unpriced", what, g.Key, g.Calls, g.UnpricedCalls)
			}
		}
	}

	// /analytics/activity: null for a bucket whose calls are all unpriced,
	// the sum for the others, 0 for the empty ones.
	for _, c := range []struct {
		params  url.Values
		buckets map[string]*float64
	}{
		{url.Values{"window": {"24h"}}, map[string]*float64{
			fmtTime(testNow.Add(-5 * time.Hour).Truncate(time.Hour)):    dollars(0.25),
			fmtTime(testNow.Add(-4 * time.Hour).Truncate(time.Hour)):    nil,
			fmtTime(testNow.Add(-3 * time.Hour).Truncate(time.Hour)):    dollars(0.5),
			fmtTime(testNow.Add(-2 * time.Hour).Truncate(time.Hour)):    dollars(0.125),
			fmtTime(testNow.Add(-90 * time.Minute).Truncate(time.Hour)): nil}},
		{url.Values{"window": {"7d"}}, map[string]*float64{
			fmtTime(testNow.Add(-50 * time.Hour).Truncate(24 * time.Hour)): nil,
			fmtTime(testNow.Truncate(24 * time.Hour)):                      dollars(0.875)}},
		{url.Values{"window": {"all"}, "user": {"ursula"}}, map[string]*float64{
			fmtTime(testNow.Add(-50 * time.Hour).Truncate(24 * time.Hour)): nil,
			fmtTime(testNow.Truncate(24 * time.Hour)):                      nil}},
	} {
		what := "/analytics/activity?" + c.params.Encode()
		var got nullableActivity
		f.get(t, "/analytics/activity", c.params, 200, &got)
		seen := 0
		for _, p := range got.Series {
			w, ok := c.buckets[p.T]
			if !ok {
				w = dollars(0)
			} else {
				seen++
			}
			wantCost(t, what+" bucket "+p.T, p.CostUSD, w)
		}
		if seen != len(c.buckets) {
			t.Errorf("%s: %d of the %d buckets with calls in the series", what, seen, len(c.buckets))
		}
	}
}

// TestAllUnpricedIdentityCostIsNull: /analytics/by_key, by_user, by_team
// (and each team's by_user) and /analytics/me report cost_usd null for a
// row, total or day whose calls were all unpriced, the priced sum for a
// partly priced one and 0 for a priced $0 call or no calls; null rows keep
// their place in the cost order (with the $0 ones, then by calls and name).
func TestAllUnpricedIdentityCostIsNull(t *testing.T) {
	f := newUnpricedFixture(t)
	// quinn (team eng with pat) makes one unpriced call 30 minutes ago, zed
	// (team ghosts with ursula) one priced at $0 20 minutes ago.
	for i, c := range []struct {
		ago   time.Duration
		tok   string
		model string
		cost  *float64
	}{
		{30 * time.Minute, "gw_Q", "mystery-model", nil},
		{20 * time.Minute, "gw_Z", "claude-haiku-4-5", new(float64)},
	} {
		id := unpricedKeys[c.tok]
		call := store.Call{TurnID: fmt.Sprintf("x%02d", i), GatewayKeyID: id.KeyID, KeyName: id.Name, User: id.User,
			Team: id.Team, Workspace: id.Workspace, InboundShape: "openai", Provider: "anthropic", Model: c.model,
			Status: 200, Attempts: 1, InputTokens: 10, OutputTokens: 1, UsageSource: "provider",
			CostUSD: c.cost, Priced: c.cost != nil}
		if c.cost == nil {
			call.Provider = "local"
		}
		f.enqueue(t, seedCall{at: testNow.Add(-c.ago).Truncate(time.Microsecond), c: call})
	}
	byKey := func(r nullableRow) string { return r.GatewayKeyID }
	byUser := func(r nullableRow) string { return r.User }
	byTeam := func(r nullableRow) string { return r.Team }
	for _, c := range []struct {
		params      url.Values
		keys, users []string
		teams       []string
		teamUsers   map[string][]string
	}{
		{params: url.Values{"window": {"7d"}},
			keys:      []string{"gk_P=0.875", "gk_U=null", "gk_Q=null", "gk_Z=0"},
			users:     []string{"pat=0.875", "ursula=null", "quinn=null", "zed=0"},
			teams:     []string{"eng=0.875", "ghosts=0"},
			teamUsers: map[string][]string{"eng": {"pat=0.875", "quinn=null"}, "ghosts": {"ursula=null", "zed=0"}}},
		{params: url.Values{"window": {"24h"}},
			keys:      []string{"gk_P=0.875", "gk_Q=null", "gk_U=null", "gk_Z=0"},
			users:     []string{"pat=0.875", "quinn=null", "ursula=null", "zed=0"},
			teams:     []string{"eng=0.875", "ghosts=0"},
			teamUsers: map[string][]string{"eng": {"pat=0.875", "quinn=null"}, "ghosts": {"ursula=null", "zed=0"}}},
		{params: url.Values{"window": {"1h"}},
			keys:      []string{"gk_Q=null", "gk_Z=0"},
			users:     []string{"quinn=null", "zed=0"},
			teams:     []string{"eng=null", "ghosts=0"},
			teamUsers: map[string][]string{"eng": {"quinn=null"}, "ghosts": {"zed=0"}}},
		{params: url.Values{"window": {"all"}, "model": {"mystery-model"}},
			keys:      []string{"gk_U=null", "gk_P=null", "gk_Q=null"},
			users:     []string{"ursula=null", "pat=null", "quinn=null"},
			teams:     []string{"ghosts=null", "eng=null"},
			teamUsers: map[string][]string{"ghosts": {"ursula=null"}, "eng": {"pat=null", "quinn=null"}}},
		{params: url.Values{"window": {"7d"}, "team": {"ghosts"}},
			keys:      []string{"gk_U=null", "gk_Z=0"},
			users:     []string{"ursula=null", "zed=0"},
			teams:     []string{"ghosts=0"},
			teamUsers: map[string][]string{"ghosts": {"ursula=null", "zed=0"}}},
		{params: url.Values{"window": {"7d"}, "user": {"nobody"}},
			keys: []string{}, users: []string{}, teams: []string{}, teamUsers: map[string][]string{}},
	} {
		check := func(path string, got, want []string) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s?%s: %v, want %v", path, c.params.Encode(), got, want)
			}
		}
		var keys, users, teams nullableIdentity
		f.get(t, "/analytics/by_key", c.params, 200, &keys)
		check("/analytics/by_key", costList(t, "by_key", keys.Keys, byKey), c.keys)
		f.get(t, "/analytics/by_user", c.params, 200, &users)
		check("/analytics/by_user", costList(t, "by_user", users.Users, byUser), c.users)
		f.get(t, "/analytics/by_team", c.params, 200, &teams)
		check("/analytics/by_team", costList(t, "by_team", teams.Teams, byTeam), c.teams)
		for _, tm := range teams.Teams {
			check("/analytics/by_team "+tm.Team+" by_user",
				costList(t, "by_team "+tm.Team+" by_user", tm.ByUser, byUser), c.teamUsers[tm.Team])
		}
	}

	// /analytics/me: the total and by_model over the window, and today.
	null, zero, dollars := (*float64)(nil), new(float64), func(v float64) *float64 { return &v }
	for _, c := range []struct {
		tok, window  string
		total, today *float64
		calls        int64
		byModel      []string
	}{
		{"gw_U", "7d", null, null, 3, []string{"mystery-model=null"}},
		{"gw_U", "all", null, null, 3, []string{"mystery-model=null"}},
		{"gw_U", "1h", zero, null, 0, []string{}}, // no call in the last hour; today's was unpriced
		{"gw_P", "7d", dollars(0.875), dollars(0.875), 4, []string{"claude-haiku-4-5=0.875", "mystery-model=null"}},
		{"gw_Q", "24h", null, null, 1, []string{"mystery-model=null"}},
		{"gw_Z", "24h", zero, zero, 1, []string{"claude-haiku-4-5=0"}},
		{"gw_N", "7d", zero, zero, 0, []string{}},
	} {
		what := "/analytics/me?window=" + c.window + " as " + unpricedKeys[c.tok].KeyID
		r := httptest.NewRequest(http.MethodGet, "/analytics/me?window="+c.window, nil)
		r.Header.Set("x-api-key", c.tok)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s: status %d: %s", what, w.Code, w.Body.String())
		}
		var me nullableMe
		decode(t, w, &me)
		wantCost(t, what+" total", me.Total.CostUSD, c.total)
		wantCost(t, what+" today", me.Today.CostUSD, c.today)
		nullRule(t, what+" total", me.Total.CostUSD, me.Total.Calls, me.Total.UnpricedCalls)
		if me.Total.Calls != c.calls {
			t.Errorf("%s: %d calls, want %d", what, me.Total.Calls, c.calls)
		}
		got := costList(t, what+" by_model", me.ByModel, func(r nullableRow) string { return r.Key })
		if fmt.Sprint(got) != fmt.Sprint(c.byModel) {
			t.Errorf("%s: by_model %v, want %v", what, got, c.byModel)
		}
	}
}

// TestNullCostRuleAcrossPlans: over the randomised fixture (every window,
// grouping and a few filters, so the rollups, the day cache, the sessions
// table and the calls table all answer), a cost is null exactly when its
// group, window, bucket, session, key, user, team or /analytics/me figure
// has calls and all of them are unpriced.
func TestNullCostRuleAcrossPlans(t *testing.T) {
	f := newFixture(t, 6, 2000)
	rule := func(what string, cost *float64, calls, unpriced int64) {
		t.Helper()
		if (cost == nil) != (calls > 0 && unpriced == calls) {
			t.Errorf("%s: cost_usd %s with %d calls, %d unpriced", what, fmtCost(cost), calls, unpriced)
		}
	}
	nulls, identityNulls := 0, 0
	count := func(c *float64) {
		if c == nil {
			nulls++
		}
	}
	filters := []url.Values{{}, {"user": {"untagged"}}, {"model": {"llama-3.1-8b"}}, {"team": {"eng"}}}
	for _, win := range []string{"90m", "24h", "7d", "all"} {
		for _, p := range filters {
			for _, by := range []string{"model", "provider", "key", "user", "team", "workspace", "session", "day", "hour"} {
				q := with(p, "window", win, "group_by", by)
				var got nullableCost
				f.get(t, "/analytics/cost", q, 200, &got)
				what := "/analytics/cost?" + q.Encode()
				rule(what+" total", got.TotalCostUSD, got.Calls, got.UnpricedCalls)
				count(got.TotalCostUSD)
				for _, g := range got.Groups {
					rule(what+" group "+g.Key, g.CostUSD, g.Calls, g.UnpricedCalls)
					count(g.CostUSD)
				}
			}
			q := with(p, "window", win)
			var act nullableActivity
			f.get(t, "/analytics/activity", q, 200, &act)
			series := map[string]*tsums{}
			from, to := testWindow(win)
			g, _ := seriesGrain(window{from: from, to: to, all: win == "all"})
			groups, _ := f.expect(from, to, p, func(c seedCall) string {
				return fmtTime(time.Unix(floorTo(c.at.Unix(), g.seconds()), 0))
			})
			for k, v := range groups {
				series[k] = v
			}
			for _, pt := range act.Series {
				var calls, unpriced int64
				if w := series[pt.T]; w != nil {
					calls, unpriced = w.calls, w.unpriced
				}
				if pt.Calls != calls {
					t.Errorf("/analytics/activity?%s bucket %s: %d calls, want %d", q.Encode(), pt.T, pt.Calls, calls)
				}
				rule("/analytics/activity?"+q.Encode()+" bucket "+pt.T, pt.CostUSD, calls, unpriced)
				count(pt.CostUSD)
			}
			if p.Get("model") == "" {
				var ss nullableSessions
				f.get(t, "/sessions", with(q, "limit", "500"), 200, &ss)
				for _, s := range ss.Sessions {
					rule("/sessions?"+q.Encode()+" "+s.SessionID, s.CostUSD, s.Calls, s.UnpricedCalls)
					count(s.CostUSD)
				}
			}
			// by_key, by_user, by_team and each team's by_user.
			var id nullableIdentity
			for _, path := range []string{"/analytics/by_key", "/analytics/by_user", "/analytics/by_team"} {
				f.get(t, path, q, 200, &id)
			}
			for _, tbl := range []struct {
				path string
				rows []nullableRow
				name func(nullableRow) string
			}{
				{"/analytics/by_key", id.Keys, func(r nullableRow) string { return r.GatewayKeyID }},
				{"/analytics/by_user", id.Users, func(r nullableRow) string { return r.User }},
				{"/analytics/by_team", id.Teams, func(r nullableRow) string { return r.Team }},
			} {
				for _, r := range tbl.rows {
					what := tbl.path + "?" + q.Encode() + " " + tbl.name(r)
					rule(what, r.CostUSD, r.Calls, r.UnpricedCalls)
					identityNulls += nullCount(r.CostUSD)
					for _, u := range r.ByUser {
						rule(what+" by_user "+u.User, u.CostUSD, u.Calls, u.UnpricedCalls)
						identityNulls += nullCount(u.CostUSD)
					}
				}
			}
		}
		// /analytics/me for every key: the window's total and by_model, and
		// today, whose calls the answer does not count.
		midnight := testNow.Truncate(24 * time.Hour)
		for _, k := range f.keys {
			var me nullableMe
			f.getMe(t, "window="+win, "x-api-key", k.token, 200, &me)
			what := "/analytics/me?window=" + win + " as " + k.id
			rule(what+" total", me.Total.CostUSD, me.Total.Calls, me.Total.UnpricedCalls)
			identityNulls += nullCount(me.Total.CostUSD)
			for _, m := range me.ByModel {
				rule(what+" "+m.Key, m.CostUSD, m.Calls, m.UnpricedCalls)
				identityNulls += nullCount(m.CostUSD)
			}
			_, today := f.expect(midnight, testNow, url.Values{"gateway_key": {k.id}},
				func(seedCall) string { return "" })
			if me.Today.Calls != today.calls {
				t.Errorf("%s today: %d calls, want %d", what, me.Today.Calls, today.calls)
			}
			rule(what+" today", me.Today.CostUSD, today.calls, today.unpriced)
			identityNulls += nullCount(me.Today.CostUSD)
		}
	}
	t.Logf("%d null costs; %d from by_key, by_user, by_team and me", nulls, identityNulls)
	if nulls == 0 || identityNulls == 0 {
		t.Fatal("no null cost: the fixture does not exercise the rule")
	}
}

func nullCount(c *float64) int {
	if c == nil {
		return 1
	}
	return 0
}
