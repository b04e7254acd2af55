package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// costPage is the part of a /analytics/cost answer the limit tests read.
type costPage struct {
	costJSON
	GroupsTotal     int  `json:"groups_total"`
	GroupsTruncated bool `json:"groups_truncated"`
}

// newSessionFixture seeds ten days of short sessions (a few calls within
// three hours, some across midnight, some resumed days later, one whose
// calls came from two keys, a few with equal cost and calls) and calls
// without a session. Costs are multiples of 1/1024 dollar, so every sum is
// exact and the order of groups is unambiguous.
func newSessionFixture(t *testing.T, seed uint64) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "metis.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	f := &fixture{st: st, h: New(st.ReadDB(), Options{Now: func() time.Time { return testNow }})}
	f.keys = []seedKey{
		{id: "gk_A", name: "a", user: "alice", team: "eng", workspace: "/src/api"},
		{id: "gk_B", name: "b", user: "bob", team: "eng", workspace: "/src/web"},
		{id: "gk_C", name: "c", user: "carol", team: "sales", workspace: "/src/crm"},
		{id: "gk_D", name: "d", workspace: "/tmp"},
	}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	n := 0
	add := func(at time.Time, k seedKey, session string, cost float64) {
		n++
		c := store.Call{TurnID: fmt.Sprintf("t%05d", n), GatewayKeyID: k.id, KeyName: k.name, User: k.user,
			Team: k.team, Workspace: k.workspace, SessionID: session, InboundShape: "anthropic",
			Provider: "anthropic", Model: "claude-haiku-4-5", Status: 200, Attempts: 1,
			InputTokens: int64(10 * n), OutputTokens: int64(n), CacheReadInputTokens: int64(n % 7),
			UsageSource: "provider", CostUSD: &cost, Priced: true}
		if n%9 == 0 {
			c.Status, c.ErrorClass = 500, "UPSTREAM"
		}
		f.calls = append(f.calls, seedCall{at: at.Truncate(time.Microsecond), c: c})
	}
	price := func() float64 { return float64(1+rng.IntN(4096)) / 1024 }
	for i := range 90 {
		k := f.keys[rng.IntN(len(f.keys))]
		id := fmt.Sprintf("s%02d", i)
		at := testNow.Add(-time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
		for range 1 + rng.IntN(4) {
			add(at, k, id, price())
			at = at.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		}
		switch {
		case i%15 == 0: // resumed two days later
			add(at.Add(49*time.Hour), k, id, price())
		case i%31 == 0: // a second key joins: mixed
			add(at.Add(time.Minute), f.keys[(rng.IntN(3)+1)%len(f.keys)], id, price())
		}
	}
	for i := range 4 { // equal cost and calls: ordered by key
		add(testNow.Add(-time.Duration(30+i)*time.Hour), f.keys[0], fmt.Sprintf("tie-%d", 3-i), 2)
	}
	for range 40 {
		add(testNow.Add(-time.Duration(rng.Int64N(int64(10*24*time.Hour)))), f.keys[rng.IntN(4)], "", price())
	}
	add(testNow.Add(time.Hour), f.keys[1], "s01", 1) // after now: never counted
	rng.Shuffle(len(f.calls), func(i, j int) { f.calls[i], f.calls[j] = f.calls[j], f.calls[i] })
	f.enqueue(t, f.calls...)
	return f
}

// enqueue writes calls through the store's writer, a few per batch.
func (f *fixture) enqueue(t *testing.T, calls ...seedCall) {
	t.Helper()
	for i, c := range calls {
		cc := c.c
		if !f.st.Enqueue(store.Event{Type: store.TypeCallCompleted, Time: c.at, Payload: &cc}) {
			t.Fatal("store queue full")
		}
		if i%7 == 6 || i == len(calls)-1 {
			if err := f.st.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkCostPage requests /analytics/cost with params and checks it against
// the seeded calls: the whole window's totals, groups_total, the first
// limit groups in cost order (ties by calls, then key) or, for day and
// hour, the latest limit buckets in time order, and groups_truncated.
func checkCostPage(t *testing.T, f *fixture, params url.Values) {
	t.Helper()
	by, win := params.Get("group_by"), params.Get("window")
	from, to := testWindow(win)
	var keyOf func(seedCall) string
	switch by {
	case "day", "hour":
		step := map[string]int64{"day": 86400, "hour": 3600}[by]
		keyOf = func(c seedCall) string {
			s := c.at.Unix()
			return fmtTime(time.Unix(s-s%step, 0))
		}
	default:
		keyOf = costKeyOf(by)
	}
	groups, total := f.expect(from, to, params, keyOf)
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	if by == "day" || by == "hour" {
		sort.Strings(keys)
	} else {
		sort.Slice(keys, func(i, j int) bool {
			a, b := groups[keys[i]], groups[keys[j]]
			return byCost(usd(a.cost), a.calls, keys[i], usd(b.cost), b.calls, keys[j])
		})
	}
	limit := defaultCostLimit
	if params.Has("limit") {
		limit, _ = strconv.Atoi(params.Get("limit"))
	}
	want := keys[:min(limit, len(keys))]
	if by == "day" || by == "hour" {
		want = keys[max(0, len(keys)-limit):]
	}
	var got costPage
	f.get(t, "/analytics/cost", params, 200, &got)
	what := "cost?" + params.Encode()
	checkInt(t, what+" calls", got.Calls, total.calls)
	checkInt(t, what+" errors", got.Errors, total.errors)
	checkInt(t, what+" input_tokens", got.InputTokens, total.input)
	checkMoney(t, what+" total_cost_usd", got.TotalCostUSD, total.cost)
	if got.GroupsTotal != len(keys) || got.GroupsTruncated != (len(keys) > limit) {
		t.Errorf("%s: groups_total %d, truncated %t; want %d, %t", what, got.GroupsTotal, got.GroupsTruncated,
			len(keys), len(keys) > limit)
	}
	gotKeys := make([]string, len(got.Groups))
	for i, g := range got.Groups {
		gotKeys[i] = g.Key
	}
	if fmt.Sprint(gotKeys) != fmt.Sprint(want) {
		t.Fatalf("%s: groups\n%q, want\n%q", what, gotKeys, want)
	}
	for _, g := range got.Groups {
		w := groups[g.Key]
		checkInt(t, what+" "+g.Key+" calls", g.Calls, w.calls)
		checkInt(t, what+" "+g.Key+" errors", g.Errors, w.errors)
		checkInt(t, what+" "+g.Key+" output_tokens", g.OutputTokens, w.output)
		checkInt(t, what+" "+g.Key+" cache_read", g.CacheReadInputTokens, w.cacheRead)
		checkMoney(t, what+" "+g.Key+" cost_usd", g.CostUSD, w.cost)
	}
}

// TestCostLimitBySession: group_by=session answers the sessions that cost
// the most, as many as limit asks (1000 by default), with the number of
// sessions in the window and whether some were left out, while the
// window's totals still count every call — for windows that start and end
// mid-day, hold whole days or everything, with and without filters.
func TestCostLimitBySession(t *testing.T) {
	f := newSessionFixture(t, 7)
	for _, p := range []url.Values{{}, {"user": {"alice"}}, {"team": {"eng"}}, {"gateway_key": {"gk_D"}},
		{"workspace": {"/src/crm"}}, {"model": {"claude-haiku-4-5"}}} {
		for _, win := range []string{"24h", "30h", "7d", "30d", "all", "100h"} {
			for _, limit := range []string{"", "1", "3", "10", "1000"} {
				q := with(p, "window", win, "group_by", "session")
				if limit != "" {
					q.Set("limit", limit)
				}
				checkCostPage(t, f, q)
			}
		}
	}
	// The fixture is not vacuous: at 7 days the answer is cut at 10, and
	// the four sessions of equal cost and calls come in key order.
	var got costPage
	f.get(t, "/analytics/cost", url.Values{"window": {"7d"}, "group_by": {"session"}, "limit": {"10"}}, 200, &got)
	if !got.GroupsTruncated || got.GroupsTotal < 40 || len(got.Groups) != 10 {
		t.Fatalf("fixture: %d groups of %d, truncated %t", len(got.Groups), got.GroupsTotal, got.GroupsTruncated)
	}
	var ties []string
	f.get(t, "/analytics/cost", url.Values{"window": {"7d"}, "group_by": {"session"}}, 200, &got)
	for _, g := range got.Groups {
		if len(g.Key) > 4 && g.Key[:4] == "tie-" {
			ties = append(ties, g.Key)
		}
	}
	if fmt.Sprint(ties) != "[tie-0 tie-1 tie-2 tie-3]" {
		t.Errorf("equal sessions in order %v", ties)
	}
}

// TestCostLimitBySessionAfterNewCalls: the answers stay exact when calls
// arrive after the handler answered — a session of days ago resumed today,
// a late call stamped days ago, a new session today.
func TestCostLimitBySessionAfterNewCalls(t *testing.T) {
	f := newSessionFixture(t, 8)
	check := func() {
		t.Helper()
		for _, win := range []string{"7d", "30d", "all", "100h"} {
			for _, limit := range []string{"2", "1000"} {
				checkCostPage(t, f, url.Values{"window": {win}, "group_by": {"session"}, "limit": {limit}})
			}
		}
	}
	check()
	// The most expensive session that lies wholly inside the whole days of
	// the 7d window is resumed today, with a call costing more than any.
	day := testNow.Truncate(24 * time.Hour)
	groups, _ := f.expect(day.Add(-6*24*time.Hour), day, url.Values{}, costKeyOf("session"))
	var best string
	for _, c := range f.calls {
		s := c.c.SessionID
		g := groups[s]
		if s == "" || g == nil || c.at.Before(day.Add(-5*24*time.Hour)) || !c.at.Before(day.Add(-time.Hour)) {
			continue
		}
		if best == "" || g.cost > groups[best].cost {
			best = s
		}
	}
	var resumed seedCall
	for _, c := range f.calls {
		if c.c.SessionID == best {
			resumed = c
		}
	}
	resumed.at, resumed.c.TurnID = testNow.Add(-time.Minute), "resumed"
	cost := 100.0
	resumed.c.CostUSD = &cost
	late := resumed
	late.at, late.c.TurnID, late.c.SessionID = day.Add(-3*24*time.Hour+time.Hour), "late", "late-session"
	f.calls = append(f.calls, resumed)
	f.enqueue(t, resumed)
	check()
	f.calls = append(f.calls, late)
	f.enqueue(t, late)
	check()
	var got costPage
	f.get(t, "/analytics/cost", url.Values{"window": {"7d"}, "group_by": {"session"}, "limit": {"2"}}, 200, &got)
	if got.Groups[0].Key != best { // its calls plus 100 outweigh late-session's 100
		t.Errorf("the resumed session %s is not first: %+v", best, got.Groups)
	}
}

// TestCostLimitOtherGroupings: limit cuts every grouping — by cost for the
// dimensions, to the latest buckets (in time order) for day and hour —
// and the default keeps them whole.
func TestCostLimitOtherGroupings(t *testing.T) {
	f := newSessionFixture(t, 9)
	for _, by := range []string{"key", "user", "team", "workspace", "model", "day", "hour"} {
		for _, limit := range []string{"", "1", "2", "3"} {
			q := url.Values{"window": {"7d"}, "group_by": {by}}
			if limit != "" {
				q.Set("limit", limit)
			}
			checkCostPage(t, f, q)
		}
	}
}
