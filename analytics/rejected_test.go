package analytics

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// /analytics/cost counts the window's refused requests by reason, matched
// by the filters through the refused key's tags, from the partial index. An
// event with a count (the gateway's sum of a flood) stands for that many.
func TestCostCountsRejectedRequests(t *testing.T) {
	f := newFixture(t, 3, 50)
	k := f.keys[0] // alice, eng
	rej := func(at time.Time, reason, keyID, user, team string) store.Event {
		p := map[string]any{"reason": reason, "status": 429, "path": "/v1/messages"}
		if keyID != "" {
			p["gateway_key_id"], p["user"], p["team"] = keyID, user, team
		}
		return store.Event{Type: store.TypeRequestRejected, Time: at, Payload: p}
	}
	summed := func(ev store.Event, n int) store.Event {
		ev.Payload.(map[string]any)["count"] = n
		return ev
	}
	if !f.st.Enqueue(
		rej(testNow.Add(-10*time.Minute), "budget", k.id, k.user, k.team),
		rej(testNow.Add(-20*time.Minute), "budget", k.id, k.user, k.team),
		rej(testNow.Add(-30*time.Minute), "missing_key", "", "", ""),
		rej(testNow.Add(-3*time.Hour), "model_not_allowed", "gk_OTHER", "bob", "sales"),
		rej(testNow.Add(-48*time.Hour), "budget", k.id, k.user, k.team), // outside 24h
		summed(rej(testNow.Add(-40*time.Minute), "invalid_key", "", "", ""), 250),
	) {
		t.Fatal("store queue full")
	}
	if err := f.st.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    url.Values
		want map[string]int64
	}{
		{url.Values{"window": {"24h"}}, map[string]int64{"budget": 2, "missing_key": 1, "model_not_allowed": 1, "invalid_key": 250}},
		{url.Values{"window": {"1h"}}, map[string]int64{"budget": 2, "missing_key": 1, "invalid_key": 250}},
		{url.Values{"window": {"7d"}, "team": {k.team}}, map[string]int64{"budget": 3}},
		{url.Values{"window": {"24h"}, "user": {"bob"}}, map[string]int64{"model_not_allowed": 1}},
		{url.Values{"window": {"24h"}, "gateway_key": {"gk_NONE"}}, map[string]int64{}},
		// A refusal without a valid key has no tags: untagged means a
		// key's empty user, not no key at all.
		{url.Values{"window": {"24h"}, "user": {"untagged"}}, map[string]int64{}},
	} {
		var got struct {
			Rejected         int64            `json:"rejected"`
			RejectedByReason map[string]int64 `json:"rejected_by_reason"`
		}
		f.get(t, "/analytics/cost", c.q, 200, &got)
		var total int64
		for _, n := range c.want {
			total += n
		}
		if got.Rejected != total || len(got.RejectedByReason) != len(c.want) {
			t.Errorf("%s: rejected %d %v, want %d %v", c.q.Encode(), got.Rejected, got.RejectedByReason, total, c.want)
			continue
		}
		for r, n := range c.want {
			if got.RejectedByReason[r] != n {
				t.Errorf("%s: %s = %d, want %d", c.q.Encode(), r, got.RejectedByReason[r], n)
			}
		}
	}
	// The count reads the refusals' own index, not every event of the window.
	var plan string
	team := "eng"
	sqlText, args := rejectedSQL(query{from: testNow.Add(-time.Hour), to: testNow, filter: filter{team: &team}})
	rows, err := f.st.ReadDB().Query("EXPLAIN QUERY PLAN "+sqlText, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "; "
	}
	if want := "USING INDEX events_rejected"; !strings.Contains(plan, want) {
		t.Errorf("query plan %q, want %s", plan, want)
	}
}
