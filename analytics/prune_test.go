package analytics

import (
	"context"
	"net/url"
	"reflect"
	"testing"
	"time"
)

// After `caddy metis prune`, spend over whole days is what it was, by any
// group, also for days before the cut: the rollups keep the sums of the
// calls it deletes, and the handler's day cache notices the deletion. By
// session it is exact for windows that start after the cut.
func TestPruneKeepsSpendByDay(t *testing.T) {
	f := newFixture(t, 11, 3000)
	day := testNow.Truncate(24 * time.Hour)
	q := func(groupBy string) url.Values {
		from := day.Add(-44 * 24 * time.Hour) // before the cut
		if groupBy == "session" {
			// Sessions straddling the window's start are corrected from
			// their calls: exact for windows that start after the cut.
			from = day.Add(-30 * 24 * time.Hour)
		}
		return url.Values{"from": {from.Format(time.RFC3339)}, "to": {day.Format(time.RFC3339)},
			"group_by": {groupBy}, "limit": {"1000"}}
	}
	before := map[string]map[string]any{}
	for _, g := range []string{"user", "team", "model", "key", "day", "session"} {
		var out map[string]any
		f.get(t, "/analytics/cost", q(g), 200, &out)
		before[g] = out
	}
	var beforeMid map[string]any
	f.get(t, "/analytics/cost", url.Values{"from": {day.Add(-40 * 24 * time.Hour).Format(time.RFC3339)},
		"to": {day.Add(-40*24*time.Hour + 6*time.Hour).Format(time.RFC3339)}, "group_by": {"model"}}, 200, &beforeMid)
	if beforeMid["calls"] == 0.0 {
		t.Fatal("the fixture has no calls in the mid-day window")
	}
	n, err := f.st.Prune(context.Background(), day.Add(-35*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n.Calls == 0 {
		t.Fatal("the fixture has no calls older than 35 days to prune")
	}
	for g, want := range before {
		var got map[string]any
		f.get(t, "/analytics/cost", q(g), 200, &got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("group_by=%s after pruning %d calls:\n got %v\nwant %v", g, n.Calls, got, want)
		}
	}
	// A window that ends inside a day before the cut, on an hour: read
	// from the hourly rollups. (A day's row minus the rest of the day is
	// exact only while the calls of that rest are there to be seen.)
	mid := url.Values{"from": {day.Add(-40 * 24 * time.Hour).Format(time.RFC3339)},
		"to": {day.Add(-40*24*time.Hour + 6*time.Hour).Format(time.RFC3339)}, "group_by": {"model"}}
	var after map[string]any
	f.get(t, "/analytics/cost", mid, 200, &after)
	if !reflect.DeepEqual(after, beforeMid) {
		t.Errorf("a window ending mid-day before the cut, after pruning:\n got %v\nwant %v", after, beforeMid)
	}
}
