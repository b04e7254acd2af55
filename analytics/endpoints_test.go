package analytics

import (
	"net/url"
	"sort"
	"testing"
	"time"
)

var testWindows = []string{"1h", "90m", "2h", "24h", "36h", "72h", "7d", "30d", "all"}

func testFilters(f *fixture) []url.Values {
	return []url.Values{
		{},
		{"gateway_key": {f.keys[0].id}},
		{"gateway_key": {"gk_GHOST"}},
		{"user": {"alice"}},
		{"user": {"untagged"}},
		{"team": {"eng"}},
		{"team": {"untagged"}},
		{"workspace": {"/src/api"}},
		{"model": {"gpt-5-mini"}},
		{"team": {"eng"}, "model": {"claude-haiku-4-5"}},
		{"user": {"alice"}, "workspace": {"/src/web"}},
	}
}

func with(p url.Values, kv ...string) url.Values {
	q := url.Values{}
	for k, v := range p {
		q[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

type costJSON struct {
	Window                   string  `json:"window"`
	From                     string  `json:"from"`
	To                       string  `json:"to"`
	GroupBy                  string  `json:"group_by"`
	TotalCostUSD             float64 `json:"total_cost_usd"`
	Calls                    int64   `json:"calls"`
	Errors                   int64   `json:"errors"`
	InputTokens              int64   `json:"input_tokens"`
	OutputTokens             int64   `json:"output_tokens"`
	CacheReadInputTokens     int64   `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64   `json:"cache_creation_input_tokens"`
	ReasoningTokens          int64   `json:"reasoning_tokens"`
	UnpricedCalls            int64   `json:"unpriced_calls"`
	EstimatedCalls           int64   `json:"estimated_calls"`
	CacheSavingsUSD          float64 `json:"cache_savings_usd"`
	Groups                   []struct {
		Key                      string  `json:"key"`
		Name                     string  `json:"name"`
		CostUSD                  float64 `json:"cost_usd"`
		Calls                    int64   `json:"calls"`
		Errors                   int64   `json:"errors"`
		InputTokens              int64   `json:"input_tokens"`
		OutputTokens             int64   `json:"output_tokens"`
		CacheReadInputTokens     int64   `json:"cache_read_input_tokens"`
		CacheCreationInputTokens int64   `json:"cache_creation_input_tokens"`
		UnpricedCalls            int64   `json:"unpriced_calls"`
		CacheSavingsUSD          float64 `json:"cache_savings_usd"`
	} `json:"groups"`
}

func costKeyOf(by string) func(seedCall) string {
	return func(c seedCall) string {
		switch by {
		case "model":
			return c.c.Model
		case "provider":
			return c.c.Provider
		case "key":
			return c.c.GatewayKeyID
		case "user":
			return tagOr(c.c.User)
		case "team":
			return tagOr(c.c.Team)
		case "workspace":
			return c.c.Workspace
		case "session":
			return c.c.SessionID
		case "day":
			return c.at.UTC().Truncate(24 * time.Hour).Format(time.RFC3339)
		case "hour":
			return c.at.UTC().Truncate(time.Hour).Format(time.RFC3339)
		}
		panic(by)
	}
}

func TestCostMatchesSeededCalls(t *testing.T) {
	f := newFixture(t, 1, 4000)
	names := map[string]string{"gk_GHOST": "ghost-key"}
	for _, k := range f.keys {
		names[k.id] = k.name
	}
	for _, win := range testWindows {
		from, to := testWindow(win)
		for _, p := range testFilters(f) {
			for _, by := range []string{"model", "provider", "key", "user", "team", "workspace", "session", "day", "hour"} {
				q := with(p, "window", win, "group_by", by)
				var got costJSON
				f.get(t, "/analytics/cost", q, 200, &got)
				groups, total := f.expect(from, to, p, costKeyOf(by))
				ctx := "cost?" + q.Encode()
				if got.Window != win || got.GroupBy != by {
					t.Errorf("%s: window %q group_by %q", ctx, got.Window, got.GroupBy)
				}
				if !parseAPITime(t, got.To).Equal(to.Truncate(time.Microsecond)) {
					t.Errorf("%s: to = %s", ctx, got.To)
				}
				checkMoney(t, ctx+" total_cost_usd", got.TotalCostUSD, total.cost)
				checkMoney(t, ctx+" cache_savings_usd", got.CacheSavingsUSD, total.savings)
				checkInt(t, ctx+" calls", got.Calls, total.calls)
				checkInt(t, ctx+" errors", got.Errors, total.errors)
				checkInt(t, ctx+" unpriced_calls", got.UnpricedCalls, total.unpriced)
				checkInt(t, ctx+" estimated_calls", got.EstimatedCalls, total.estimated)
				checkInt(t, ctx+" input_tokens", got.InputTokens, total.input)
				checkInt(t, ctx+" output_tokens", got.OutputTokens, total.output)
				checkInt(t, ctx+" cache_read_input_tokens", got.CacheReadInputTokens, total.cacheRead)
				checkInt(t, ctx+" cache_creation_input_tokens", got.CacheCreationInputTokens, total.cacheWrite)
				checkInt(t, ctx+" reasoning_tokens", got.ReasoningTokens, total.reasoning)
				if len(got.Groups) != len(groups) {
					t.Errorf("%s: %d groups, want %d", ctx, len(got.Groups), len(groups))
				}
				for i, g := range got.Groups {
					w := groups[g.Key]
					if w == nil {
						t.Errorf("%s: unexpected group %q", ctx, g.Key)
						continue
					}
					gc := ctx + " group " + g.Key
					checkMoney(t, gc+" cost_usd", g.CostUSD, w.cost)
					checkMoney(t, gc+" cache_savings_usd", g.CacheSavingsUSD, w.savings)
					checkInt(t, gc+" calls", g.Calls, w.calls)
					checkInt(t, gc+" errors", g.Errors, w.errors)
					checkInt(t, gc+" unpriced_calls", g.UnpricedCalls, w.unpriced)
					checkInt(t, gc+" input_tokens", g.InputTokens, w.input)
					checkInt(t, gc+" output_tokens", g.OutputTokens, w.output)
					checkInt(t, gc+" cache_read", g.CacheReadInputTokens, w.cacheRead)
					checkInt(t, gc+" cache_creation", g.CacheCreationInputTokens, w.cacheWrite)
					if by == "key" && g.Name != names[g.Key] {
						t.Errorf("%s: name %q, want %q", gc, g.Name, names[g.Key])
					}
					if i == 0 {
						continue
					}
					prev := got.Groups[i-1]
					if by == "day" || by == "hour" {
						if prev.Key >= g.Key {
							t.Errorf("%s: groups not in time order: %q then %q", ctx, prev.Key, g.Key)
						}
					} else if prev.CostUSD < g.CostUSD {
						t.Errorf("%s: groups not by cost desc", ctx)
					}
				}
			}
		}
	}
}

type byKeyJSON struct {
	Window string `json:"window"`
	Keys   []struct {
		GatewayKeyID  string           `json:"gateway_key_id"`
		Name          string           `json:"name"`
		User          string           `json:"user"`
		Team          string           `json:"team"`
		Workspace     string           `json:"workspace"`
		CostUSD       float64          `json:"cost_usd"`
		Calls         int64            `json:"calls"`
		UnpricedCalls int64            `json:"unpriced_calls"`
		LastCallAt    string           `json:"last_call_at"`
		InboundShapes map[string]int64 `json:"inbound_shapes"`
		Quota         *struct{}        `json:"quota"`
	} `json:"keys"`
}

func TestByKeyMatchesSeededCalls(t *testing.T) {
	f := newFixture(t, 2, 3000)
	meta := map[string]seedKey{"gk_GHOST": {id: "gk_GHOST", name: "ghost-key", user: "erin", team: "sales",
		workspace: "/src/old"}}
	for _, k := range f.keys {
		meta[k.id] = k
	}
	for _, win := range testWindows {
		from, to := testWindow(win)
		for _, p := range testFilters(f) {
			q := with(p, "window", win)
			var got byKeyJSON
			f.get(t, "/analytics/by_key", q, 200, &got)
			want, _ := f.expect(from, to, p, func(c seedCall) string { return c.c.GatewayKeyID })
			ctx := "by_key?" + q.Encode()
			if len(got.Keys) != len(want) {
				t.Errorf("%s: %d keys, want %d", ctx, len(got.Keys), len(want))
			}
			for i, k := range got.Keys {
				w, m := want[k.GatewayKeyID], meta[k.GatewayKeyID]
				if w == nil {
					t.Errorf("%s: unexpected key %s", ctx, k.GatewayKeyID)
					continue
				}
				kc := ctx + " " + k.GatewayKeyID
				checkMoney(t, kc+" cost_usd", k.CostUSD, w.cost)
				checkInt(t, kc+" calls", k.Calls, w.calls)
				checkInt(t, kc+" unpriced_calls", k.UnpricedCalls, w.unpriced)
				checkInt(t, kc+" anthropic", k.InboundShapes["anthropic"], w.shapes["anthropic"])
				checkInt(t, kc+" openai", k.InboundShapes["openai"], w.shapes["openai"])
				if k.Name != m.name || k.User != m.user || k.Team != m.team || k.Workspace != m.workspace {
					t.Errorf("%s: identity %q %q %q %q, want %+v", kc, k.Name, k.User, k.Team, k.Workspace, m)
				}
				if !parseAPITime(t, k.LastCallAt).Equal(w.last.Truncate(time.Millisecond)) {
					t.Errorf("%s: last_call_at %s, want %s", kc, k.LastCallAt, w.last)
				}
				if k.Quota != nil {
					t.Errorf("%s: quota not null", kc)
				}
				if i > 0 && got.Keys[i-1].CostUSD < k.CostUSD {
					t.Errorf("%s: keys not by cost desc", ctx)
				}
			}
		}
	}
}

type byUserJSON struct {
	Users []struct {
		User          string  `json:"user"`
		CostUSD       float64 `json:"cost_usd"`
		Calls         int64   `json:"calls"`
		UnpricedCalls int64   `json:"unpriced_calls"`
		Keys          int     `json:"keys"`
	} `json:"users"`
}

type byTeamJSON struct {
	Teams []struct {
		Team          string  `json:"team"`
		CostUSD       float64 `json:"cost_usd"`
		Calls         int64   `json:"calls"`
		UnpricedCalls int64   `json:"unpriced_calls"`
		Users         int     `json:"users"`
		ByUser        []struct {
			User    string  `json:"user"`
			CostUSD float64 `json:"cost_usd"`
			Calls   int64   `json:"calls"`
		} `json:"by_user"`
	} `json:"teams"`
}

func TestByUserAndTeamMatchSeededCalls(t *testing.T) {
	f := newFixture(t, 3, 3000)
	for _, win := range testWindows {
		from, to := testWindow(win)
		for _, p := range testFilters(f) {
			q := with(p, "window", win)
			var users byUserJSON
			f.get(t, "/analytics/by_user", q, 200, &users)
			want, _ := f.expect(from, to, p, func(c seedCall) string { return tagOr(c.c.User) })
			ctx := "by_user?" + q.Encode()
			if len(users.Users) != len(want) {
				t.Errorf("%s: %d users, want %d", ctx, len(users.Users), len(want))
			}
			for _, u := range users.Users {
				w := want[u.User]
				if w == nil {
					t.Errorf("%s: unexpected user %q", ctx, u.User)
					continue
				}
				checkMoney(t, ctx+" "+u.User+" cost", u.CostUSD, w.cost)
				checkInt(t, ctx+" "+u.User+" calls", u.Calls, w.calls)
				checkInt(t, ctx+" "+u.User+" unpriced", u.UnpricedCalls, w.unpriced)
				checkInt(t, ctx+" "+u.User+" keys", int64(u.Keys), int64(len(w.keys)))
			}

			var teams byTeamJSON
			f.get(t, "/analytics/by_team", q, 200, &teams)
			wantTeams, _ := f.expect(from, to, p, func(c seedCall) string { return tagOr(c.c.Team) })
			wantPairs, _ := f.expect(from, to, p, func(c seedCall) string { return tagOr(c.c.Team) + "|" + tagOr(c.c.User) })
			ctx = "by_team?" + q.Encode()
			if len(teams.Teams) != len(wantTeams) {
				t.Errorf("%s: %d teams, want %d", ctx, len(teams.Teams), len(wantTeams))
			}
			for i, tm := range teams.Teams {
				w := wantTeams[tm.Team]
				if w == nil {
					t.Errorf("%s: unexpected team %q", ctx, tm.Team)
					continue
				}
				checkMoney(t, ctx+" "+tm.Team+" cost", tm.CostUSD, w.cost)
				checkInt(t, ctx+" "+tm.Team+" calls", tm.Calls, w.calls)
				checkInt(t, ctx+" "+tm.Team+" unpriced", tm.UnpricedCalls, w.unpriced)
				checkInt(t, ctx+" "+tm.Team+" users", int64(tm.Users), int64(len(w.users)))
				if i > 0 && teams.Teams[i-1].CostUSD < tm.CostUSD {
					t.Errorf("%s: teams not by cost desc", ctx)
				}
				var sum float64
				for _, u := range tm.ByUser {
					wu := wantPairs[tm.Team+"|"+u.User]
					if wu == nil {
						t.Errorf("%s: unexpected user %q in team %q", ctx, u.User, tm.Team)
						continue
					}
					checkMoney(t, ctx+" "+tm.Team+"/"+u.User+" cost", u.CostUSD, wu.cost)
					checkInt(t, ctx+" "+tm.Team+"/"+u.User+" calls", u.Calls, wu.calls)
					sum += u.CostUSD
				}
				checkMoney(t, ctx+" "+tm.Team+" by_user sum", sum, w.cost)
			}
		}
	}
}

type callJSON struct {
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
	InputTokens              int64    `json:"input_tokens"`
	OutputTokens             int64    `json:"output_tokens"`
	CacheReadInputTokens     int64    `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64    `json:"cache_creation_input_tokens"`
	CostUSD                  *float64 `json:"cost_usd"`
	Priced                   bool     `json:"priced"`
	UsageSource              string   `json:"usage_source"`
	LatencyMS                int64    `json:"latency_ms"`
	TTFTMS                   *int64   `json:"ttft_ms"`
}

// checkCall compares a listed call with the seeded call of the same turn.
func checkCall(t *testing.T, ctx string, got callJSON, byTurn map[string]seedCall) seedCall {
	t.Helper()
	s, ok := byTurn[got.TurnID]
	if !ok {
		t.Fatalf("%s: unknown turn %q", ctx, got.TurnID)
	}
	c := s.c
	if got.ID == "" || got.GatewayKeyID != c.GatewayKeyID || got.KeyName != c.KeyName || got.User != c.User ||
		got.Team != c.Team || got.Workspace != c.Workspace || got.Model != c.Model || got.Provider != c.Provider ||
		got.InboundShape != c.InboundShape || got.Stream != c.Stream || got.Status != c.Status ||
		got.Priced != c.Priced || got.UsageSource != c.UsageSource || got.LatencyMS != c.LatencyMS ||
		got.InputTokens != c.InputTokens || got.OutputTokens != c.OutputTokens ||
		got.CacheReadInputTokens != c.CacheReadInputTokens || got.CacheCreationInputTokens != c.CacheCreationInputTokens {
		t.Errorf("%s: call %+v does not match seeded %+v", ctx, got, c)
	}
	if (got.CostUSD == nil) != (c.CostUSD == nil) || (got.CostUSD != nil && !near(*got.CostUSD, *c.CostUSD)) {
		t.Errorf("%s: cost %v, want %v", ctx, got.CostUSD, c.CostUSD)
	}
	if (got.ErrorClass == nil) != (c.ErrorClass == "") || (got.SessionID == nil) != (c.SessionID == "") {
		t.Errorf("%s: error_class/session_id nullness wrong: %+v", ctx, got)
	}
	if (got.TTFTMS == nil) != (c.TTFTMS == nil) {
		t.Errorf("%s: ttft_ms %v, want %v", ctx, got.TTFTMS, c.TTFTMS)
	}
	if !parseAPITime(t, got.Time).Equal(s.at.Truncate(time.Millisecond)) {
		t.Errorf("%s: time %s, want %s", ctx, got.Time, s.at)
	}
	return s
}

type activityJSON struct {
	Window string `json:"window"`
	Bucket string `json:"bucket"`
	Series []struct {
		T            string  `json:"t"`
		Calls        int64   `json:"calls"`
		Errors       int64   `json:"errors"`
		CostUSD      float64 `json:"cost_usd"`
		InputTokens  int64   `json:"input_tokens"`
		OutputTokens int64   `json:"output_tokens"`
	} `json:"series"`
	Recent []callJSON `json:"recent"`
}

func TestActivityMatchesSeededCalls(t *testing.T) {
	f := newFixture(t, 4, 3000)
	byTurn := map[string]seedCall{}
	for _, c := range f.calls {
		byTurn[c.c.TurnID] = c
	}
	for _, win := range testWindows {
		from, to := testWindow(win)
		for _, p := range testFilters(f) {
			for _, limit := range []string{"", "7"} {
				q := with(p, "window", win)
				n := 50
				if limit != "" {
					q.Set("limit", limit)
					n = 7
				}
				var got activityJSON
				f.get(t, "/analytics/activity", q, 200, &got)
				ctx := "activity?" + q.Encode()
				bucket, step := "day", 24*time.Hour
				if d := to.Sub(from); win != "all" && d <= 2*time.Hour {
					bucket, step = "minute", time.Minute
				} else if win != "all" && d <= 48*time.Hour {
					bucket, step = "hour", time.Hour
				}
				if got.Bucket != bucket {
					t.Errorf("%s: bucket %q, want %q", ctx, got.Bucket, bucket)
				}
				want, total := f.expect(from, to, p, func(c seedCall) string {
					return c.at.UTC().Truncate(step).Format(time.RFC3339)
				})
				var calls int64
				seen := 0
				for i, pt := range got.Series {
					if i > 0 && got.Series[i-1].T >= pt.T {
						t.Errorf("%s: series out of order at %s", ctx, pt.T)
					}
					w := want[pt.T]
					if w == nil {
						w = &tsums{}
					} else {
						seen++
					}
					checkInt(t, ctx+" "+pt.T+" calls", pt.Calls, w.calls)
					checkInt(t, ctx+" "+pt.T+" errors", pt.Errors, w.errors)
					checkInt(t, ctx+" "+pt.T+" input", pt.InputTokens, w.input)
					checkInt(t, ctx+" "+pt.T+" output", pt.OutputTokens, w.output)
					checkMoney(t, ctx+" "+pt.T+" cost", pt.CostUSD, w.cost)
					calls += pt.Calls
				}
				if seen != len(want) || calls != total.calls {
					t.Errorf("%s: series covers %d buckets / %d calls, want %d / %d", ctx, seen, calls, len(want), total.calls)
				}
				if win != "all" && len(got.Series) > 0 {
					first := parseAPITime(t, got.Series[0].T)
					if !first.Equal(from.Truncate(step)) {
						t.Errorf("%s: series starts %s, want %s", ctx, first, from.Truncate(step))
					}
				}
				var matching []seedCall
				for _, c := range f.calls {
					if matches(c, from, to, p) {
						matching = append(matching, c)
					}
				}
				sort.Slice(matching, func(i, j int) bool { return matching[i].at.After(matching[j].at) })
				if len(got.Recent) != min(n, len(matching)) {
					t.Fatalf("%s: %d recent, want %d", ctx, len(got.Recent), min(n, len(matching)))
				}
				for i, rc := range got.Recent {
					s := checkCall(t, ctx, rc, byTurn)
					if !s.at.Equal(matching[i].at) {
						t.Errorf("%s: recent[%d] at %s, want %s", ctx, i, s.at, matching[i].at)
					}
				}
			}
		}
	}
}

// An absolute range (from/to, as a monthly chargeback asks) answers
// exactly the calls in [from, to), at any alignment, with dates read as
// UTC midnights.
func TestAbsoluteRangeMatchesSeededCalls(t *testing.T) {
	f := newFixture(t, 7, 3000)
	day := testNow.UTC().Truncate(24 * time.Hour)
	ranges := [][2]string{
		{testNow.Add(-29*24*time.Hour - 97*time.Minute).Format(time.RFC3339Nano), testNow.Add(-11*24*time.Hour + 13*time.Second).Format(time.RFC3339Nano)},
		{testNow.Add(-5*time.Hour - 7*time.Millisecond).Format(time.RFC3339Nano), testNow.Add(-2 * time.Hour).Format(time.RFC3339Nano)},
		{day.Add(-20 * 24 * time.Hour).Format(time.DateOnly), day.Add(-3 * 24 * time.Hour).Format(time.DateOnly)},
		{day.Add(-2 * 24 * time.Hour).Format(time.DateOnly), ""}, // to defaults to now
	}
	for _, rg := range ranges {
		from, _ := parseInstant(rg[0])
		to := testNow
		q := url.Values{"from": {rg[0]}, "group_by": {"team"}}
		if rg[1] != "" {
			to, _ = parseInstant(rg[1])
			q.Set("to", rg[1])
		}
		var got costJSON
		f.get(t, "/analytics/cost", q, 200, &got)
		groups, total := f.expect(from, to, url.Values{}, costKeyOf("team"))
		ctx := "cost?" + q.Encode()
		if total.calls == 0 {
			t.Fatalf("%s: the seed has no calls in the range; the test proves nothing", ctx)
		}
		if !parseAPITime(t, got.From).Equal(from.Truncate(time.Microsecond)) || !parseAPITime(t, got.To).Equal(to.Truncate(time.Microsecond)) {
			t.Errorf("%s: from %s to %s", ctx, got.From, got.To)
		}
		checkMoney(t, ctx+" total_cost_usd", got.TotalCostUSD, total.cost)
		checkInt(t, ctx+" calls", got.Calls, total.calls)
		if len(got.Groups) != len(groups) {
			t.Errorf("%s: %d groups, want %d", ctx, len(got.Groups), len(groups))
		}
		for _, g := range got.Groups {
			if w := groups[g.Key]; w == nil || g.Calls != w.calls {
				t.Errorf("%s: group %q has %d calls, want %v", ctx, g.Key, g.Calls, w)
			}
		}
	}
}
