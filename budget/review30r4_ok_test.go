//go:build cgo

package budget

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Checks of review 30R4 that pass (coverage), with measurements logged.

func TestReview30R4OKCloseWaits(t *testing.T) {
	for _, rounds := range []int{1, 2} {
		t.Run(fmt.Sprint(rounds), func(t *testing.T) {
			path := testDB(t)
			l, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
			var ids []Identity
			for i := range 2 {
				key := fmt.Sprintf("gk_r4c%d", i)
				mustSet(t, l, Budget{Scope: ScopeKey, Subject: key, Window: WindowDaily, Hard: 0.40})
				ids = append(ids, Identity{KeyID: key})
				charge(t, l, ids[i], 0.3997, now)
				// remembered as refused, not marked: an in-flight-only refusal
				r, _, _, _ := l.Reserve(context.Background(), ids[i], 0.0003, now)
				if _, _, ref, _ := l.Reserve(context.Background(), ids[i], 0.0001, now); ref == nil || !ref.InFlight() {
					t.Fatalf("premise %v", ref)
				}
				r.Release()
			}
			unlock := lockWrites(t, path)
			defer unlock()
			if _, _, ref, _ := l.Reserve(context.Background(), ids[0], 0.001, now); ref == nil {
				t.Fatal("no refusal")
			}
			time.Sleep(50 * time.Millisecond) // goroutine is in writeMarks, waiting
			if rounds == 2 {
				if _, _, ref, _ := l.Reserve(context.Background(), ids[1], 0.001, now); ref == nil {
					t.Fatal("no refusal")
				}
			}
			start := time.Now()
			err = l.Close()
			t.Logf("rounds %d: Close took %s (err %v)", rounds, time.Since(start), err)
		})
	}
}

func TestReview30R4OKRaces(t *testing.T) {
	path := testDB(t)
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	const n = 50
	for i := range n {
		key := fmt.Sprintf("gk_r4r%02d", i)
		mustSet(t, l, Budget{Scope: ScopeKey, Subject: key, Window: WindowDaily, Hard: 0.40})
		mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "t", Window: WindowMonthly, Hard: 100})
		charge(t, l, Identity{KeyID: key, Team: "t"}, 0.3997, now)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("gk_r4r%02d", (g*7+i)%n)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				l.Reserve(ctx, Identity{KeyID: key, Team: "t"}, 0.001+float64(i%5)*0.0001, now.Add(time.Duration(i)*time.Millisecond))
				cancel()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	t.Logf("Close amid refusals took %s", time.Since(start))
	wg.Wait()
	// after Close: neither blocks nor panics
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			l.markExhausted(&Refusal{exhausted: []markRequest{{budgetID: "x", mark: exhaustedMark{at: now, amount: 1}}}})
			l.Reserve(context.Background(), Identity{KeyID: "gk_r4r00"}, 0.001, now)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("markExhausted/Reserve after Close blocked")
	}
	l2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	hard := 0
	for i := range n {
		qs, _ := l2.Quotas(context.Background(), ScopeKey, fmt.Sprintf("gk_r4r%02d", i), now.Add(time.Second))
		if qs[0].State == StateHard {
			hard++
		}
	}
	tq, _ := l2.Quotas(context.Background(), ScopeTeam, "t", now.Add(time.Second))
	t.Logf("after restart: %d of %d keys hard; team %q", hard, n, tq[0].State)
	if tq[0].State != StateOK {
		t.Errorf("team with room %v reads %q", 100-tq[0].Spent, tq[0].State)
	}
}

// A refusal by a key budget exhausted by its spend and a team budget full
// only of reservations marks the key only; Never marks the others only;
// a refusal judged on a reader carries exhausted.
func TestReview30R4OKWhichBudgetsMarked(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	kb := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r4w", Window: WindowDaily, Hard: 0.40})
	tb := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "tw", Window: WindowMonthly, Hard: 1.0})
	ub := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "uw", Window: WindowMonthly, Hard: 0.10})
	id := Identity{KeyID: "gk_r4w", Team: "tw"}
	charge(t, l, id, 0.3997, now)
	other := Identity{KeyID: "gk_other", Team: "tw"}
	held, _, ref, err := l.Reserve(context.Background(), other, 0.6, now)
	if err != nil || ref != nil {
		t.Fatal(ref, err)
	}
	defer held.Release()
	_, _, ref, _ = l.Reserve(context.Background(), id, 0.001, now.Add(time.Second))
	if ref == nil {
		t.Fatal("no refusal")
	}
	var got []string
	for _, m := range ref.exhausted {
		got = append(got, m.budgetID)
	}
	t.Logf("refusal names %s; exhausted %v (key %s team %s)", ref.Budget.Scope, got, kb.ID, tb.ID)
	if len(got) != 1 || got[0] != kb.ID {
		t.Errorf("exhausted %v, want only the key", got)
	}
	// reader path
	ref2 := l.judgeOnReader(context.Background(), time.Second, id, 0.001, now.Add(2*time.Second))
	if ref2 == nil || len(ref2.exhausted) != 1 || ref2.exhausted[0].budgetID != kb.ID {
		t.Errorf("reader refusal %+v", ref2)
	}
	if !ref2.exhausted[0].mark.at.Equal(now.Add(2 * time.Second)) {
		t.Errorf("marker time %v, want the refusal's", ref2.exhausted[0].mark.at)
	}
	// Never: user budget 0.10 < call 0.2; key exhausted by spend
	id3 := Identity{KeyID: "gk_r4w", User: "uw"}
	_, _, ref3, _ := l.Reserve(context.Background(), id3, 0.2, now.Add(3*time.Second))
	if ref3 == nil || !ref3.Never() {
		t.Fatalf("premise %v", ref3)
	}
	var got3 []string
	for _, m := range ref3.exhausted {
		got3 = append(got3, m.budgetID)
	}
	t.Logf("Never refusal names %s; exhausted %v (user %s)", ref3.Budget.Scope, got3, ub.ID)
	if q := awaitState(t, l, ub, now.Add(4*time.Second), StateHard); q.State == StateHard {
		t.Errorf("user budget smaller than the call reads hard")
	}
}
