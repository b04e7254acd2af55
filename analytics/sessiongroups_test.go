package analytics

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// TestCostBySessionAtTheWindowEdges: /analytics/cost?group_by=session counts
// only the calls inside the window of a session straddling its start (or
// end, with calls after now), of a session whose calls came from two keys,
// and of the calls without a session, with and without identity filters,
// and after the sessions' rows were written in several batches.
func TestCostBySessionAtTheWindowEdges(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "metis.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	f := &fixture{st: st, h: New(st.ReadDB(), Options{Now: func() time.Time { return testNow }})}
	alice := seedKey{id: "gk_A", name: "a", user: "alice", team: "eng", workspace: "/src/api"}
	bob := seedKey{id: "gk_B", name: "b", user: "bob", team: "sales", workspace: "/src/crm"}
	from := testNow.Add(-24 * time.Hour)
	seeds := []struct {
		at      time.Time
		key     seedKey
		session string
	}{
		{from.Add(-2 * time.Hour), alice, "straddles-start"},
		{from.Add(-10 * time.Minute), alice, "straddles-start"},
		{from, alice, "straddles-start"}, // the first microsecond of the window
		{from.Add(time.Hour), alice, "straddles-start"},
		{testNow.Add(-3 * time.Hour), alice, "inside"},
		{testNow.Add(-2 * time.Hour), alice, "inside"},
		{testNow.Add(-30 * time.Minute), bob, "straddles-end"},
		{testNow, bob, "straddles-end"}, // now is outside [from, now)
		{testNow.Add(time.Hour), bob, "straddles-end"},
		{testNow.Add(-5 * time.Hour), alice, "two-keys"},
		{testNow.Add(-4 * time.Hour), bob, "two-keys"},
		{from.Add(-5 * time.Hour), bob, "before"},
		{testNow.Add(-time.Hour), alice, ""},
		{testNow.Add(-50 * time.Minute), bob, ""},
		{from.Add(-time.Hour), alice, ""},
	}
	for i, s := range seeds {
		cost := float64(i+1) * 0.01
		c := store.Call{TurnID: "t" + string(rune('a'+i)), GatewayKeyID: s.key.id, KeyName: s.key.name,
			User: s.key.user, Team: s.key.team, Workspace: s.key.workspace, SessionID: s.session,
			InboundShape: "anthropic", Provider: "anthropic", Model: "claude-haiku-4-5", Status: 200, Attempts: 1,
			InputTokens: int64(100 * (i + 1)), OutputTokens: int64(10 * (i + 1)),
			CacheReadInputTokens: int64(1000 * i), CacheCreationInputTokens: int64(7 * i), ReasoningTokens: int64(i),
			CostUSD: &cost, Priced: i%5 != 0, UsageSource: "provider", CacheSavingsUSD: float64(i) * 0.001}
		if !c.Priced {
			c.CostUSD = nil
		}
		if i%4 == 0 {
			c.Status, c.ErrorClass = 429, "RATE_LIMITED"
		}
		f.calls = append(f.calls, seedCall{at: s.at, c: c})
		// One event per batch: each session row is upserted call by call.
		if !st.Enqueue(store.Event{Type: store.TypeCallCompleted, Time: s.at, Payload: &c}) {
			t.Fatal("store queue full")
		}
		if err := st.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []url.Values{{}, {"user": {"alice"}}, {"user": {"bob"}}, {"gateway_key": {"gk_B"}},
		{"team": {"eng"}, "workspace": {"/src/api"}}, {"model": {"claude-haiku-4-5"}}} {
		for _, win := range []string{"24h", "4h30m", "all"} {
			q := with(p, "window", win, "group_by", "session")
			wfrom, wto := testWindow(win)
			groups, total := f.expect(wfrom, wto, p, costKeyOf("session"))
			var got costJSON
			f.get(t, "/analytics/cost", q, 200, &got)
			what := "cost?" + q.Encode()
			checkInt(t, what+" calls", got.Calls, total.calls)
			checkMoney(t, what+" total_cost_usd", got.TotalCostUSD, total.cost)
			if len(got.Groups) != len(groups) {
				t.Errorf("%s: %d groups, want %d", what, len(got.Groups), len(groups))
			}
			for _, g := range got.Groups {
				w := groups[g.Key]
				if w == nil {
					t.Errorf("%s: unexpected group %q", what, g.Key)
					continue
				}
				gc := what + " group " + g.Key
				checkInt(t, gc+" calls", g.Calls, w.calls)
				checkInt(t, gc+" errors", g.Errors, w.errors)
				checkInt(t, gc+" unpriced_calls", g.UnpricedCalls, w.unpriced)
				checkInt(t, gc+" input_tokens", g.InputTokens, w.input)
				checkInt(t, gc+" output_tokens", g.OutputTokens, w.output)
				checkInt(t, gc+" cache_read", g.CacheReadInputTokens, w.cacheRead)
				checkInt(t, gc+" cache_creation", g.CacheCreationInputTokens, w.cacheWrite)
				checkMoney(t, gc+" cost_usd", g.CostUSD, w.cost)
				checkMoney(t, gc+" cache_savings_usd", g.CacheSavingsUSD, w.savings)
			}
		}
	}
	// The 24h window holds part of straddles-start (2 of its 4 calls), so
	// the expectation above is not vacuous.
	groups, _ := f.expect(from, testNow, url.Values{}, costKeyOf("session"))
	if groups["straddles-start"] == nil || groups["straddles-start"].calls != 2 || groups["two-keys"].calls != 2 {
		t.Fatalf("fixture: %+v", groups)
	}
}
