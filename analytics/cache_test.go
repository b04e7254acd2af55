package analytics

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// TestCacheSeesLateCalls checks that a call written into days whose
// rollup_day result is cached (a late event) shows in the next answer.
func TestCacheSeesLateCalls(t *testing.T) {
	f := newFixtureFuture(t, 41, 1500, false)
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		for _, win := range []string{"7d", "30d", "all"} {
			for _, by := range []string{"model", "key", "day", "hour"} {
				q := url.Values{"window": {win}, "group_by": {by}}
				for range 2 { // the second answer comes from the cache
					var got costJSON
					f.get(t, "/analytics/cost", q, 200, &got)
					groups, total := f.expect(testWindowFrom(win), testNow, url.Values{}, costKeyOf(by))
					ctx := when + " cost?" + q.Encode()
					checkInt(t, ctx+" calls", got.Calls, total.calls)
					checkMoney(t, ctx+" total_cost_usd", got.TotalCostUSD, total.cost)
					for _, g := range got.Groups {
						if w := groups[g.Key]; w == nil || w.calls != g.Calls || !near(g.CostUSD, w.cost) {
							t.Errorf("%s: group %q = %d calls $%v, want %+v", ctx, g.Key, g.Calls, g.CostUSD, w)
						}
					}
				}
			}
		}
	}
	check("before")
	if len(f.h.cache.entries) == 0 {
		t.Fatal("nothing cached for 7d/30d/all windows")
	}
	for i, age := range []time.Duration{3 * 24 * time.Hour, 20 * 24 * time.Hour, 40 * 24 * time.Hour} {
		cost := 0.125 * float64(i+1)
		c := store.Call{TurnID: "late-" + age.String(), GatewayKeyID: f.keys[0].id, KeyName: f.keys[0].name,
			User: f.keys[0].user, Team: f.keys[0].team, Workspace: f.keys[0].workspace, InboundShape: "anthropic",
			Provider: "anthropic", RequestedModel: "claude-haiku-4-5", Model: "claude-haiku-4-5", Status: 200,
			CostUSD: &cost, Priced: true, UsageSource: "provider"}
		at := testNow.Add(-age).Truncate(24 * time.Hour).Add(5 * time.Hour)
		f.calls = append(f.calls, seedCall{at: at, c: c})
		if !f.st.Enqueue(store.Event{Type: store.TypeCallCompleted, Time: at, Payload: &c}) {
			t.Fatal("enqueue failed")
		}
		if err := f.st.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		check("after late call " + age.String())
	}
}

func testWindowFrom(name string) time.Time {
	from, _ := testWindow(name)
	return from
}
