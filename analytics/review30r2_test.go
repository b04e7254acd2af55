package analytics

import (
	"context"
	"testing"
	"time"
)

// README (How big the database gets): after `caddy metis prune`, "windows
// that start after the cut ... give the same figures by any group". A
// window starting after the cut, in the cut's hour, and reaching that
// hour's end is now read as the hour's rollup row minus the calls of
// [hour start, from) (partialHour, 4831a1a); the calls of [hour start,
// cut) are gone, so nothing subtracts them and the window counts them.
// Before 4831a1a the partial hour was read from the calls: exact.
func TestReview30R2PruneCutInsideWindowsFirstHour(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 11, 3000)
	h := testNow.Truncate(time.Hour).Add(-2 * time.Hour) // 11:00, a whole past hour
	cut := h.Add(10 * time.Minute)                       // prune at 11:10
	from := h.Add(20 * time.Minute)                      // window from 11:20, after the cut
	var pruned int64
	if err := f.st.ReadDB().QueryRow(`SELECT COUNT(*) FROM calls WHERE ts_us >= ? AND ts_us < ?`,
		h.UnixMicro(), cut.UnixMicro()).Scan(&pruned); err != nil || pruned == 0 {
		t.Fatalf("the fixture needs calls in [11:00, 11:10): %d, %v", pruned, err)
	}
	if _, err := f.st.Prune(ctx, cut); err != nil {
		t.Fatal(err)
	}
	for _, to := range []time.Time{h.Add(time.Hour), testNow} {
		// The plain sum of the calls: every call of the window is kept.
		var wantCalls int64
		var wantCost float64
		if err := f.st.ReadDB().QueryRow(`SELECT COUNT(*), TOTAL(cost_usd) FROM calls WHERE ts_us >= ? AND ts_us < ?`,
			from.UnixMicro(), to.UnixMicro()).Scan(&wantCalls, &wantCost); err != nil {
			t.Fatal(err)
		}
		for _, g := range []grain{grainNone, grainHour, grainDay} {
			got, err := f.h.aggregate(ctx, query{from: from, to: to, grain: g})
			if err != nil {
				t.Fatal(err)
			}
			if gt := got.total(); gt.calls != wantCalls || !near(gt.cost, wantCost) {
				t.Errorf("[%s, %s) grain %d after pruning before %s (%d calls were in [11:00, 11:10)): %d calls $%.6f, the calls table %d calls $%.6f",
					from.Format("15:04"), to.Format("15:04:05"), g, cut.Format("15:04"), pruned, gt.calls, gt.cost, wantCalls, wantCost)
			}
		}
	}
}
