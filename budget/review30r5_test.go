//go:build cgo

package budget

import (
	"context"
	"testing"
	"time"
)

// Review 30R5 (commit 0bf1d62).

// awaitMark polls the database's marker of budgetID until its time is at
// (or 3 s pass) and returns it.
func awaitMark(t *testing.T, l *Ledger, budgetID string, at time.Time) (time.Time, float64, bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		mat, amt, ok := exhausted(context.Background(), l.rdb, budgetID)
		if ok && mat.Equal(at) || time.Now().After(deadline) {
			return mat, amt, ok
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A budget's state follows its latest refusal for the spend (review 30R7
// settled the rule; 30R5 had read "the smallest call refused"): a $3 call
// is refused (room $2.50), a $5 call two minutes later, then the limit is
// raised by $2 (room $4.50). The $3 call now fits and is admitted, and the
// state reads hard, since a call the size of the latest refused, $5, would
// be refused again.
func TestReview30R5LatestRefusalDecidesAfterARaise(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	T := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	b := Budget{Scope: ScopeKey, Subject: "gk_r5min", Window: WindowDaily, Hard: 10, Soft: 5}
	bd := mustSet(t, l, b)
	id := Identity{KeyID: "gk_r5min"}
	charge(t, l, id, 7.5, T)
	if _, _, ref, err := l.Reserve(context.Background(), id, 3, T.Add(time.Second)); err != nil || ref == nil || ref.InFlight() {
		t.Fatalf("premise: $3 refused for the spend; got %v err %v", ref, err)
	}
	if _, amt, ok := awaitMark(t, l, bd.ID, T.Add(time.Second)); !ok || !near(amt, 3) {
		t.Fatalf("premise: marker $3 written; got %v %v", amt, ok)
	}
	if _, _, ref, err := l.Reserve(context.Background(), id, 5, T.Add(2*time.Minute)); err != nil || ref == nil || ref.InFlight() {
		t.Fatalf("premise: $5 refused for the spend; got %v err %v", ref, err)
	}
	if _, amt, ok := awaitMark(t, l, bd.ID, T.Add(2*time.Minute)); !ok || !near(amt, 5) {
		t.Fatalf("the latest refusal's marker: $%v %v, want $5", amt, ok)
	}
	b.Hard = 12
	mustSet(t, l, b)
	now := T.Add(3 * time.Minute)
	if q := quotaOf(t, l, bd, now); q.State != StateHard {
		t.Errorf("latest call refused $5, room now $%.2f (limit raised to $12): state %q, want hard", q.Hard-q.Spent, q.State)
	}
	r, _, ref, err := l.Reserve(context.Background(), id, 3, now)
	if err != nil || ref != nil {
		t.Fatalf("premise: the $3 call now fits; refusal %v err %v", ref, err)
	}
	_ = r.Release()
	b.Hard = 20 // room $12.50: no refusal would be made again
	mustSet(t, l, b)
	if q := quotaOf(t, l, bd, now); q.State == StateHard {
		t.Errorf("limit raised past the latest refusal: state %q, want not hard", q.State)
	}
}

// A failed write re-queues its markers with queueLocked, which keeps a
// pending marker only when it covers the re-queued one: a newer refusal
// queued during the failed write, for a larger call, is replaced by the
// older one (older time). In a rolling window the older marker leaves the
// window first: at T+61m the $5 refusal of T+2m is in the window, the room
// ($2.50) is below it, but nothing in the database says so (and the
// in-memory marker, at T+2m, keeps later $5 refusals from writing).
func TestReview30R5RequeueReplacesNewerPending(t *testing.T) {
	path := testDB(t)
	l := openLedger(t, path, Options{})
	T := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r5req", Window: "1h", Hard: 10, Soft: 5})
	id := Identity{KeyID: "gk_r5req"}
	charge(t, l, id, 7.5, T.Add(-50*time.Minute)) // in the window until T+10m
	unlock := lockWrites(t, path)
	refuse := func(amount float64, at time.Time) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, _, ref, err := l.Reserve(ctx, id, amount, at); err != nil || ref == nil || ref.InFlight() {
			t.Fatalf("premise: $%v refused for the spend at %s; got %v err %v", amount, at, ref, err)
		}
	}
	refuse(3, T)                       // queued; the goroutine's write waits 1 s for the lock
	time.Sleep(300 * time.Millisecond) // the write of ($3, T) is under way
	refuse(5, T.Add(2*time.Minute))    // queued beside it: ($3, T) is 2 min old
	time.Sleep(1500 * time.Millisecond)
	unlock()
	time.Sleep(2500 * time.Millisecond) // a tick or two: what is pending is written
	charge(t, l, id, 7.5, T.Add(15*time.Minute))
	mat, amt, ok := exhausted(context.Background(), l.rdb, bd.ID)
	at := T.Add(61 * time.Minute)
	q := quotaOf(t, l, bd, at)
	if !near(q.Spent, 7.5) {
		t.Fatalf("premise: spent %v at T+61m, want 7.5", q.Spent)
	}
	if q.State != StateHard {
		t.Errorf("a $5 call refused for the spend at T+2m, room $%.2f at T+61m: state %q, want hard "+
			"(database marker: %v $%v ok=%v; want one dated T+2m)", q.Hard-q.Spent, q.State, mat.UTC(), amt, ok)
	}
}

// A marker pending when its budget is cleared is written afterwards for
// the dead id: Clear deletes the budget's markers, writeMarks then inserts
// them again (nothing checks the budget still exists), and no prune ever
// removes them (prune walks live budgets only).
func TestReview30R5MarkerWrittenForClearedBudget(t *testing.T) {
	l := openLedger(t, testDB(t), Options{Refresh: time.Hour})
	T := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r5dead", Window: WindowDaily, Hard: 1})
	// A refusal whose write has not run yet (the database was busy: it
	// stays pending until a tick or signal).
	l.refusedMu.Lock()
	l.queueLocked(markRequest{budgetID: bd.ID, mark: exhaustedMark{at: T, amount: 0.5}})
	l.refusedMu.Unlock()
	if err := l.Clear(context.Background(), ScopeKey, "gk_r5dead", WindowDaily); err != nil {
		t.Fatal(err)
	}
	l.writeMarks(context.Background())
	var n int
	if err := l.rdb.QueryRow(`SELECT count(*) FROM budget_meta WHERE name IN (?, ?)`, exhaustedAt+bd.ID, exhaustedAmt+bd.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("budget %s cleared before its pending marker was written: %d budget_meta rows for the dead id, want 0", bd.ID, n)
	}
}
