//go:build cgo

package budget

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Review 30R8 (commit c120c6c).

// quota() makes a budget hard when spent + amount > hard for the latest
// refused amount, without markExhausted's other condition (amount <=
// hard). After the hard limit is lowered below that amount the budget
// reads hard on a call that is now larger than the whole budget, with
// $6 spent of $8 and $2 of room that calls are admitted into. README
// (Spend caps): "A call larger than the whole budget ... does not make it
// `hard`"; the same $9 call refused after the change is not marked
// (Never()), yet the state stays hard for the rest of the day.
func TestReview30R8LoweredLimitLargerThanBudgetReadsHard(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	T := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	b := Budget{Scope: ScopeKey, Subject: "gk_r8lower", Window: WindowDaily, Hard: 10, Soft: 5}
	bd := mustSet(t, l, b)
	id := Identity{KeyID: "gk_r8lower"}
	charge(t, l, id, 6, T)
	refuseAt(t, l, id, 9, T.Add(time.Second)) // 6 + 9 > 10, 9 <= 10: for the spend
	if _, amt, ok := awaitMark(t, l, bd.ID, T.Add(time.Second)); !ok || !near(amt, 9) {
		t.Fatalf("premise: marker $9 written; got %v %v", amt, ok)
	}
	b.Hard = 8 // the $9 call is now larger than the whole budget
	mustSet(t, l, b)
	_, _, ref, err := l.Reserve(context.Background(), id, 9, T.Add(time.Minute))
	if err != nil || ref == nil || !ref.Never() {
		t.Fatalf("premise: $9 now refused as larger than the whole $8 budget; got %+v err %v", ref, err)
	}
	charge(t, l, id, 1.5, T.Add(2*time.Minute)) // room is left: $0.50 after this
	q := quotaOf(t, l, bd, T.Add(3*time.Minute))
	if q.State == StateHard {
		t.Errorf("hard lowered to $8, spent $%v, a $1.50 call just admitted, the only refusal for the spend was a call "+
			"now larger than the whole budget: state %q, want soft (README: such a call does not make it hard)", q.Spent, q.State)
	}
}

// exhausted() reads the marker's time and amount in two statements on
// the reader pool, outside a transaction: a marker written in between
// (another refusal, another gateway) gives quota() the time of one
// refusal with the amount of another. Here a writer alternates two
// markers, (T1, $1) and (T2, $9); a reader must only ever see one of the
// pairs.
func TestReview30R8MarkerReadTorn(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r8torn", Window: WindowDaily, Hard: 10})
	T1 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	T2 := T1.Add(2 * time.Hour)
	pairs := map[int64]int64{T1.UnixMicro(): 1e12, T2.UnixMicro(): 9e12}
	ctx := context.Background()
	write := func(at time.Time, pusd int64) {
		if _, err := l.db.ExecContext(ctx, `INSERT INTO budget_meta(name, value) VALUES (?1, ?2), (?3, ?4)
			ON CONFLICT(name) DO UPDATE SET value = excluded.value`,
			exhaustedAt+bd.ID, at.UnixMicro(), exhaustedAmt+bd.ID, pusd); err != nil {
			t.Error(err)
		}
	}
	write(T1, 1e12)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			if i%2 == 0 {
				write(T2, 9e12)
			} else {
				write(T1, 1e12)
			}
		}
	}()
	torn := 0
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && torn == 0 {
		at, amt, ok := exhausted(ctx, l.rdb, bd.ID)
		if ok && pairs[at.UnixMicro()] != int64(math.Round(amt*1e12)) {
			torn++
			t.Errorf("marker read torn: time %s with amount $%v (written pairs: 10:00 $1, 12:00 $9)", at.UTC().Format(time.TimeOnly), amt)
		}
	}
	stop.Store(true)
	wg.Wait()
}
