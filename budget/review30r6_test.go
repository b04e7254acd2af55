//go:build cgo

package budget

import (
	"context"
	"testing"
	"time"
)

// Review 30R6 (commit 684affd).

// refuseAt reserves amount at now on l and fails unless it is refused for
// the spend (not for calls in flight).
func refuseAt(t *testing.T, l *Ledger, id Identity, amount float64, now time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, _, ref, err := l.Reserve(ctx, id, amount, now); err != nil || ref == nil || ref.InFlight() {
		t.Fatalf("premise: $%v refused for the spend at %s; got %v err %v", amount, now.UTC(), ref, err)
	}
}

// In a rolling window merged() gives the smaller amount of an older
// refusal the later refusal's time, so every refresh carries it forward:
// a $1 refusal at T keeps living in the marker long after T+1h, as long as
// larger calls keep being refused. README: the state is hard "once it
// refused a call for its spend in this window while the room the spend
// leaves is still below that call's worst case". At T+62m the window is
// [T+2m, T+62m]: the refusals in it are $5 (T+20m) and $5 (T+61m), the
// room is $4, so every $5 call is refused while the state reads soft.
// Before 684affd the marker was ($5, T+61m) and the state read hard.
func TestReview30R6RollingSmallestAmountOutlivesItsWindow(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	T := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r6roll", Window: "1h", Hard: 10, Soft: 5})
	id := Identity{KeyID: "gk_r6roll"}
	charge(t, l, id, 9.5, T.Add(-time.Minute)) // in the window until T+59m
	refuseAt(t, l, id, 1, T)                   // room $0.50
	if _, amt, ok := awaitMark(t, l, bd.ID, T); !ok || !near(amt, 1) {
		t.Fatalf("premise: marker ($1, T) written; got %v %v", amt, ok)
	}
	refuseAt(t, l, id, 5, T.Add(20*time.Minute)) // room $0.50; marker refreshed
	awaitMark(t, l, bd.ID, T.Add(20*time.Minute))
	charge(t, l, id, 6, T.Add(60*time.Minute))   // the $9.50 has left: spent $6, room $4
	refuseAt(t, l, id, 5, T.Add(61*time.Minute)) // room $4 < $5
	mat, amt, ok := awaitMark(t, l, bd.ID, T.Add(61*time.Minute))
	now := T.Add(62 * time.Minute)
	q := quotaOf(t, l, bd, now)
	if !near(q.Spent, 6) {
		t.Fatalf("premise: spent %v at T+62m, want 6", q.Spent)
	}
	// A $5 call is refused right now, for the spend.
	refuseAt(t, l, id, 5, now)
	if q.State != StateHard {
		t.Errorf("rolling 1h: $5 calls refused at T+20m and T+61m, the only $1 refusal (T) left the window at T+60m, "+
			"room $%.2f: state %q, want hard (database marker %s $%v ok=%v: the $1 of T carried forward to T+61m)",
			q.Hard-q.Spent, q.State, mat.UTC().Format(time.TimeOnly), amt, ok)
	}
}

// Across a calendar window's boundary merged() leaks the old window's
// smaller amount into the new window. Gateway A refuses $1 at 23:59:59 on
// day 1 while the database is locked (its marker stays pending); gateway
// B, on the same database, refuses $5 at 00:00:30 on day 2 and writes its
// marker; A's retry then merges its day-1 $1 into B's day-2 marker
// (writeMarks: m.at >= req.start of day 1), writing ($1, 00:00:30 day 2).
// In day 2 only $5 was refused and the room is $4, yet the state reads
// soft: README, "in this window".
func TestReview30R6CalendarBoundaryLeaksOldWindowAmount(t *testing.T) {
	path := testDB(t)
	la := openLedger(t, path, Options{Refresh: time.Hour}) // its retry runs when we say
	lb := openLedger(t, path, Options{Refresh: time.Hour})
	day2 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	bd := mustSet(t, la, Budget{Scope: ScopeKey, Subject: "gk_r6cal", Window: WindowDaily, Hard: 10, Soft: 5})
	if err := lb.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := Identity{KeyID: "gk_r6cal"}
	charge(t, la, id, 9.5, day2.Add(-time.Hour))
	unlock := lockWrites(t, path)
	refuseAt(t, la, id, 1, day2.Add(-time.Second)) // room $0.50 on day 1; A's write fails
	time.Sleep(1500 * time.Millisecond)            // the write waited its 1 s and re-queued
	unlock()
	la.refusedMu.Lock()
	pending := len(la.pending)
	la.refusedMu.Unlock()
	if pending != 1 {
		t.Fatalf("premise: A's day-1 marker pending after the failed write; %d pending", pending)
	}
	charge(t, lb, id, 6, day2.Add(10*time.Second))   // day 2: spent $6, room $4
	refuseAt(t, lb, id, 5, day2.Add(30*time.Second)) // B refuses $5 and writes its marker
	if _, amt, ok := awaitMark(t, lb, bd.ID, day2.Add(30*time.Second)); !ok || !near(amt, 5) {
		t.Fatalf("premise: B's marker ($5, 00:00:30) written; got %v %v", amt, ok)
	}
	la.writeMarks(context.Background()) // A's retry (its next tick)
	mat, amt, ok := exhausted(context.Background(), la.rdb, bd.ID)
	q := quotaOf(t, la, bd, day2.Add(time.Minute))
	if !near(q.Spent, 6) {
		t.Fatalf("premise: day-2 spent %v, want 6", q.Spent)
	}
	if q.State != StateHard {
		t.Errorf("day 2: a $5 call refused for the spend, room $%.2f: state %q, want hard "+
			"(database marker %s $%v ok=%v: day 1's $1 merged into day 2)", q.Hard-q.Spent, q.State, mat.UTC(), amt, ok)
	}
}
