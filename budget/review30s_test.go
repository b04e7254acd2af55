//go:build cgo

package budget

import (
	"context"
	"testing"
	"time"
)

// TestReview30SQuotaStateOfABlockedBudget: a budget whose remaining room is
// smaller than its callers' worst case refuses every one of their calls,
// yet its quota (list-budgets' STATE, /analytics/by_key's quota.state and
// the dashboard's Quota column) says "soft". Because every call reserves
// its worst case and settles at or below it, spend never reaches the hard
// limit exactly, so "hard" is in practice never shown once a budget is
// used up: in review 30S's 25-minute run a key with hard $0.40 stopped at
// $0.399666 and was refused 10,806 times (reason budget) while its state
// read "soft" the whole time. Quota.State's doc says "hard" means new calls
// are refused; a refusal of the budget's own callers is that.
func TestReview30SQuotaStateOfABlockedBudget(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	b := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_review30s", Window: WindowDaily, Hard: 0.40, Soft: 0.20})
	id := Identity{KeyID: "gk_review30s"}

	// The run's 3,051 settled calls, in one charge.
	charge(t, l, id, 0.399666, now)

	// The next call (a 64-token Haiku request: about $0.00041 of worst
	// case) is refused, and so is every later one.
	for i := 0; i < 3; i++ {
		at := now.Add(time.Duration(i+1) * time.Second)
		r, _, ref, err := l.Reserve(context.Background(), id, 0.00041, at)
		if err != nil {
			t.Fatalf("Reserve: %v", err)
		}
		if ref == nil {
			_ = r.Release()
			t.Fatalf("call %d fitted: the premise (the budget refuses its callers) does not hold", i)
		}
	}

	q := awaitState(t, l, b, now.Add(5*time.Second), StateHard)
	if q.State != StateHard {
		t.Errorf("quota state %q (spent $%v of a $%v hard limit, every call refused since): want %q, the state the gateway enforces",
			q.State, q.Spent, q.Hard, StateHard)
	}
}

// awaitState reads b's quota at now until its state is want (the marker
// of a refusal is written by the ledger's goroutine), for up to 5 s.
func awaitState(t *testing.T, l *Ledger, b Budget, now time.Time, want string) Quota {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q := quotaOf(t, l, b, now)
		if q.State == want || time.Now().After(deadline) {
			return q
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The "hard" state of a used-up budget is for refusals of its spend only,
// and for its window only: a call larger than the whole budget, or one
// refused only for calls in flight, leaves it "soft"; the next window
// starts "ok".
func TestExhaustedStateOnlyForSpendAndItsWindow(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	b := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_review30s2", Window: WindowDaily, Hard: 1, Soft: 0.5})
	id := Identity{KeyID: "gk_review30s2"}
	charge(t, l, id, 0.6, now)

	// Larger than the whole budget: refused in every window, not for the
	// spend.
	if _, _, ref, err := l.Reserve(context.Background(), id, 2, now.Add(time.Second)); err != nil || ref == nil {
		t.Fatalf("a $2 call against $1: refusal %v, %v", ref, err)
	}
	// $0.3 in flight, then a $0.3 call: refused for the call in flight
	// only, it fits beside the spend.
	held, _, ref, err := l.Reserve(context.Background(), id, 0.3, now.Add(2*time.Second))
	if err != nil || ref != nil {
		t.Fatalf("$0.3: %v %v", ref, err)
	}
	if _, _, ref, err := l.Reserve(context.Background(), id, 0.3, now.Add(3*time.Second)); err != nil || ref == nil {
		t.Fatalf("a second $0.3 beside one in flight: refusal %v, %v", ref, err)
	}
	_ = held.Release()
	if q := quotaOf(t, l, b, now.Add(4*time.Second)); q.State != StateSoft {
		t.Errorf("after refusals not for the spend: state %q, want soft", q.State)
	}
	// Refused for the spend: $0.6 spent, $0.5 does not fit.
	if _, _, ref, err := l.Reserve(context.Background(), id, 0.5, now.Add(5*time.Second)); err != nil || ref == nil {
		t.Fatalf("$0.5 beside $0.6 spent: refusal %v, %v", ref, err)
	}
	if q := awaitState(t, l, b, now.Add(6*time.Second), StateHard); q.State != StateHard {
		t.Errorf("refused for the spend: state %q, want hard", q.State)
	}
	// The next day's window.
	if q := quotaOf(t, l, b, now.Add(24*time.Hour)); q.State != StateOK {
		t.Errorf("next window: state %q, want ok", q.State)
	}
}

// Prune deletes the refusal markers of budgets cleared since (a marker
// written just after its budget's clear-budget) and keeps live ones.
func TestPruneDropsMarkersOfClearedBudgets(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	now := time.Now()
	b := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_prune30", Window: WindowDaily, Hard: 1})
	ctx := context.Background()
	for _, id := range []string{b.ID, "bd_gone"} {
		for _, name := range []string{exhaustedAt + id, exhaustedAmt + id} {
			if _, err := l.db.ExecContext(ctx, `INSERT INTO budget_meta(name, value) VALUES (?, 1)`, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := exhausted(ctx, l.rdb, "bd_gone"); ok {
		t.Error("the cleared budget's marker survived prune")
	}
	if _, _, ok := exhausted(ctx, l.rdb, b.ID); !ok {
		t.Error("prune deleted a live budget's marker")
	}
}
