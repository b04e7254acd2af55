//go:build cgo

package budget

import (
	"testing"
	"time"
)

// A charge stamped after the window's end (a gateway that ran with its
// clock ahead, then was corrected; or another process sharing the ledger
// with a skewed clock) belongs to a later window. Counting it in the
// current window as well charges it twice: once now, once when its own
// window comes. The calendar window is [start, reset): its spend must not
// include charges at or after the reset.
func TestReview28TChargeAfterWindowEndNotCounted(t *testing.T) {
	for _, w := range []string{WindowDaily, WindowMonthly} {
		t.Run(w, func(t *testing.T) {
			l := openLedger(t, testDB(t), Options{})
			b := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "ann", Window: w, Hard: 100})
			id := Identity{User: "ann"}
			now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
			// Made while the clock read 40 days ahead.
			charge(t, l, id, 60, now.Add(40*24*time.Hour))
			charge(t, l, id, 5, now.Add(-time.Minute))
			q := quotaOf(t, l, b, now)
			if !near(q.Spent, 5) {
				t.Errorf("%s window at %s: spent $%v, want $5 (the $60 charge is stamped %s, after the window resets at %s)",
					w, now.Format(time.RFC3339), q.Spent, now.Add(40*24*time.Hour).Format(time.RFC3339), q.ResetsAt.Format(time.RFC3339))
			}
			// A call that fits beside this window's $5 is refused for the later window's charge.
			if r, _, ref, err := l.Reserve(t.Context(), id, 50, now); err != nil || ref != nil {
				t.Errorf("Reserve $50 at %s: refusal %v, err %v; want it to fit ($5 of $100 spent in this window)", now.Format(time.RFC3339), ref, err)
			} else {
				_ = r.Release()
			}
			// And the 429 a refusal gives names a reset that makes no room:
			// the charge counts in every window until its own.
			next := *q.ResetsAt
			if r, _, ref, err := l.Reserve(t.Context(), id, 50, next); err != nil || ref != nil {
				t.Errorf("Reserve $50 at the promised reset %s: refusal %v, err %v; want it to fit in the new window", next.Format(time.RFC3339), ref, err)
			} else {
				_ = r.Release()
			}
		})
	}
}

// A reservation that waits for the write lock across midnight is judged
// against the new day, not the one its caller's clock reading fell in: a
// call with room today was refused for yesterday's spend, with a reset
// already past and so no Retry-After (review 28T).
func TestReview28TLockWaitAcrossMidnight(t *testing.T) {
	path := testDB(t)
	l := openLedger(t, path, Options{})
	mustSet(t, l, Budget{Scope: ScopeUser, Subject: "ann", Window: WindowDaily, Hard: 1})
	id := Identity{User: "ann"}
	midnight := time.Now().Truncate(24 * time.Hour).Add(24 * time.Hour).UTC()
	charge(t, l, id, 0.75, midnight.Add(-time.Minute))
	unlock := lockWrites(t, path)
	go func() {
		time.Sleep(400 * time.Millisecond)
		unlock()
	}()
	// Read 100 ms before midnight; the lock is had 300 ms after it.
	r, _, ref, err := l.Reserve(t.Context(), id, 0.5, midnight.Add(-100*time.Millisecond))
	if err != nil || ref != nil {
		t.Fatalf("a call with room in the new day, after a 400 ms wait across midnight: refusal %v, err %v", ref, err)
	}
	_ = r.Release()
}
