//go:build cgo

package budget

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A key covered by two budgets, both used up by the same calls: every call
// of the key is refused by both (judge lists both), but the refusal names
// one (the later reset), and only that one is marked: the key's daily
// budget reads "soft" in list-budgets / quota.state while it refuses every
// call its key makes.
func TestReview30R3TwoExhaustedBudgetsBothHard(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	kb := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r3two", Window: WindowDaily, Hard: 0.40, Soft: 0.20})
	tb := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng-r3", Window: WindowMonthly, Hard: 0.40, Soft: 0.20})
	id := Identity{KeyID: "gk_r3two", Team: "eng-r3"}
	charge(t, l, id, 0.399666, now)
	for i := range 3 {
		_, _, ref, err := l.Reserve(context.Background(), id, 0.00041, now.Add(time.Duration(i+1)*time.Second))
		if err != nil || ref == nil {
			t.Fatalf("call %d: refusal %v, err %v: the premise (both budgets refuse) does not hold", i, ref, err)
		}
	}
	at := now.Add(5 * time.Second)
	tq := awaitState(t, l, tb, at, StateHard)
	kq := awaitState(t, l, kb, at, StateHard)
	for _, q := range []Quota{kq, tq} {
		if q.State != StateHard {
			t.Errorf("%s %s budget: spent $%v of $%v, every call of its key refused: state %q, want hard",
				q.Scope, q.Window, q.Spent, q.Hard, q.State)
		}
	}
}

// Two gateways on one file: a refusal by one makes the budget read hard
// through the other, and through a third ledger opened as list-budgets does.
func TestReview30R3TwoLedgersOneFile(t *testing.T) {
	path := testDB(t)
	a := openLedger(t, path, Options{Refresh: 50 * time.Millisecond})
	b := openLedger(t, path, Options{Refresh: 50 * time.Millisecond})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	bd := mustSet(t, a, Budget{Scope: ScopeKey, Subject: "gk_r3ab", Window: WindowDaily, Hard: 0.40, Soft: 0.20})
	id := Identity{KeyID: "gk_r3ab"}
	charge(t, a, id, 0.399666, now)
	if q := quotaOf(t, b, bd, now.Add(time.Second)); q.State != StateSoft {
		t.Fatalf("before any refusal: %q", q.State)
	}
	if _, _, ref, err := a.Reserve(context.Background(), id, 0.001, now.Add(2*time.Second)); err != nil || ref == nil {
		t.Fatalf("refusal %v err %v", ref, err)
	}
	if q := awaitState(t, b, bd, now.Add(3*time.Second), StateHard); q.State != StateHard {
		t.Errorf("the other gateway: %q, want hard", q.State)
	}
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if q := quotaOf(t, c, bd, now.Add(3*time.Second)); q.State != StateHard {
		t.Errorf("a third ledger (list-budgets): %q, want hard", q.State)
	}
	_ = c.Close()
	// b refuses a smaller call: its marker lowers the amount.
	if _, _, ref, err := b.Reserve(context.Background(), id, 0.0004, now.Add(4*time.Second)); err != nil || ref == nil {
		t.Fatalf("refusal %v err %v", ref, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, amt, ok := exhausted(context.Background(), a.rdb, bd.ID)
		if ok && near(amt, 0.0004) || time.Now().After(deadline) {
			if !(ok && near(amt, 0.0004)) {
				t.Errorf("marker amount %v (ok %v), want 0.0004", amt, ok)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Raise the limit from gateway b: no longer hard anywhere.
	mustSet(t, b, Budget{Scope: ScopeKey, Subject: "gk_r3ab", Window: WindowDaily, Hard: 0.50, Soft: 0.20})
	if q := quotaOf(t, a, bd, now.Add(5*time.Second)); q.State != StateSoft {
		t.Errorf("after raising the limit: %q, want soft", q.State)
	}
}

// Many budgets refused at once: more than the marker queue (64) holds.
// Each is refused once (its clients then stop): the markers that found the
// queue full are forgotten, to be written on a later refusal that does not
// come, so those budgets read soft for the rest of the window.
func TestReview30R3ManyBudgetsRefusedAtOnce(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	const n = 200
	var bs []Budget
	for i := range n {
		key := fmt.Sprintf("gk_r3m%03d", i)
		bs = append(bs, mustSet(t, l, Budget{Scope: ScopeKey, Subject: key, Window: WindowDaily, Hard: 0.40, Soft: 0.20}))
		charge(t, l, Identity{KeyID: key}, 0.399666, now)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, ref, err := l.Reserve(context.Background(), Identity{KeyID: fmt.Sprintf("gk_r3m%03d", i)}, 0.001, now.Add(time.Second))
			if err != nil || ref == nil {
				t.Errorf("key %d: refusal %v err %v", i, ref, err)
			}
		})
	}
	wg.Wait()
	time.Sleep(2 * time.Second)
	soft := 0
	for _, b := range bs {
		if q := quotaOf(t, l, b, now.Add(2*time.Second)); q.State != StateHard {
			soft++
		}
	}
	if soft > 0 {
		t.Errorf("%d of %d budgets refused for their spend read soft", soft, n)
	}
}

// Close right after a refusal (the gateway shutting down after draining
// its calls): the marker queued for the ledger's goroutine is dropped (run
// returns on stop without draining markq, and the write in progress runs
// on a context Close cancels), so after the restart the budget reads soft
// until one of its callers is refused again. With a 300 ms pause before
// Close every marker is written.
func TestReview30R3CloseWithMarkerQueued(t *testing.T) {
	lost := 0
	const runs = 30
	for range runs {
		path := testDB(t)
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r3c", Window: WindowDaily, Hard: 0.40, Soft: 0.20})
		id := Identity{KeyID: "gk_r3c"}
		charge(t, l, id, 0.399666, now)
		if _, _, ref, err := l.Reserve(context.Background(), id, 0.001, now.Add(time.Second)); err != nil || ref == nil {
			t.Fatalf("refusal %v err %v", ref, err)
		}
		_ = l.Close()
		l2, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if q := quotaOf(t, l2, bd, now.Add(2*time.Second)); q.State != StateHard {
			lost++
		}
		_ = l2.Close()
	}
	if lost > 0 {
		t.Errorf("%d of %d refusals followed by Close left no marker: the budget reads soft after a restart", lost, runs)
	}
}

// Rolling window: hard after a refusal, for as long as the spend leaves no
// room; ok once the spend has aged out.
func TestReview30R3RollingWindow(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	now := time.Now().Truncate(time.Second)
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r3roll", Window: "1h", Hard: 0.40, Soft: 0.20})
	id := Identity{KeyID: "gk_r3roll"}
	charge(t, l, id, 0.399666, now)
	if q := quotaOf(t, l, bd, now.Add(time.Second)); q.State != StateSoft {
		t.Fatalf("before: %q", q.State)
	}
	if _, _, ref, err := l.Reserve(context.Background(), id, 0.001, now.Add(time.Second)); err != nil || ref == nil {
		t.Fatalf("refusal %v err %v", ref, err)
	}
	if q := awaitState(t, l, bd, now.Add(2*time.Second), StateHard); q.State != StateHard {
		t.Errorf("after the refusal: %q", q.State)
	}
	if q := quotaOf(t, l, bd, now.Add(59*time.Minute)); q.State != StateHard {
		t.Errorf("59 min later, spend still in the window: %q, want hard", q.State)
	}
	if q := quotaOf(t, l, bd, now.Add(61*time.Minute)); q.State != StateOK {
		t.Errorf("61 min later, spend aged out: %q, want ok", q.State)
	}
}

// clear-budget then set-budget: the new budget starts without the old
// marker, and is marked on its own refusal.
func TestReview30R3ClearThenSet(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	set := func() Budget {
		return mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r3cs", Window: WindowDaily, Hard: 0.40, Soft: 0.20})
	}
	bd := set()
	id := Identity{KeyID: "gk_r3cs"}
	charge(t, l, id, 0.399666, now)
	if _, _, ref, err := l.Reserve(context.Background(), id, 0.001, now.Add(time.Second)); err != nil || ref == nil {
		t.Fatalf("refusal %v err %v", ref, err)
	}
	if q := awaitState(t, l, bd, now.Add(2*time.Second), StateHard); q.State != StateHard {
		t.Fatalf("first budget: %q", q.State)
	}
	if err := l.Clear(context.Background(), ScopeKey, "gk_r3cs", WindowDaily); err != nil {
		t.Fatal(err)
	}
	bd2 := set()
	if q := quotaOf(t, l, bd2, now.Add(3*time.Second)); q.State != StateOK {
		t.Errorf("new budget: %q (spent %v), want ok", q.State, q.Spent)
	}
	charge(t, l, id, 0.399666, now.Add(4*time.Second))
	if _, _, ref, err := l.Reserve(context.Background(), id, 0.001, now.Add(5*time.Second)); err != nil || ref == nil {
		t.Fatalf("refusal %v err %v", ref, err)
	}
	if q := awaitState(t, l, bd2, now.Add(6*time.Second), StateHard); q.State != StateHard {
		t.Errorf("new budget after its refusal: %q, want hard", q.State)
	}
}
