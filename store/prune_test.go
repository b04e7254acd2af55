//go:build cgo

package store

import (
	"context"
	"testing"
	"time"
)

// Prune deletes the events and calls rows before the cut, in batches, and
// keeps the rollups, so spend by day is whole after it.
func TestPruneKeepsRollups(t *testing.T) {
	s := openTest(t, Options{})
	now := time.Now()
	old, recent := now.Add(-100*24*time.Hour), now.Add(-24*time.Hour)
	cost := 0.5
	var evs []Event
	const total = 3 * pruneBatch // two batches of old calls exactly, and four of their events
	for i := range total {
		at := old
		if i%3 == 0 {
			at = recent
		}
		evs = append(evs,
			Event{Type: TypeRouteDecided, Time: at, Payload: map[string]any{"turn_id": "t"}},
			Event{Type: TypeCallCompleted, Time: at, Payload: &Call{TurnID: "t", Status: 200, Model: "m", Provider: "p",
				GatewayKeyID: "gk_1", Priced: true, CostUSD: &cost}})
	}
	if !s.Enqueue(evs...) {
		t.Fatal("queue full")
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, s.Path())
	sumDays := func() (n int64, dollars float64) {
		if err := db.QueryRow(`SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(cost_usd), 0) FROM rollup_day`).Scan(&n, &dollars); err != nil {
			t.Fatal(err)
		}
		return n, dollars
	}
	calls, dollars := sumDays()
	got, err := s.Prune(context.Background(), now.Add(-30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	oldCalls := int64(total - total/3)
	if got.Calls != oldCalls || got.Events != 2*oldCalls {
		t.Errorf("pruned %+v, want %d calls and %d events", got, oldCalls, 2*oldCalls)
	}
	var left, leftEvents int64
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM events)`).Scan(&left, &leftEvents); err != nil {
		t.Fatal(err)
	}
	if want := int64(total) - oldCalls; left != want || leftEvents != 2*want {
		t.Errorf("%d calls and %d events left, want %d and %d", left, leftEvents, want, 2*want)
	}
	if c, d := sumDays(); c != calls || d != dollars {
		t.Errorf("daily rollups %d calls $%v after pruning, want %d $%v", c, d, calls, dollars)
	}
}
