//go:build cgo

package budget

import (
	"context"
	"testing"
	"time"
)

// Review 30R7 (commit 96c84c3).

// A calendar marker keeps the smallest amount refused in the window
// (merged), on the premise that "room only shrinks within a calendar
// window". Raising the hard limit breaks that premise: the old smaller
// refusal, made under the old limit, keeps every later refusal under the
// new limit from making the state hard, for the rest of the window. Here
// $3 is refused (room $2.50), the limit is raised by $2 (room $4.50: the
// state reads soft, as review 30R5 wants), then $5 calls are refused for
// the spend at 12:02, 12:04, 12:10 and 15:00: each refresh writes
// (time, min($5, $3)) = $3, and the state reads soft all afternoon while
// every $5 call is refused. README (Spend caps): hard "once it refused a
// call for its spend in this window while the room the spend leaves is
// still below that call's worst case" ($5 > $4.50); Quota.State: "the
// room left is still below it (calls as large are refused)".
func TestReview30R7RaisedLimitThenLargerRefusalsReadSoft(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	T := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	b := Budget{Scope: ScopeKey, Subject: "gk_r7raise", Window: WindowDaily, Hard: 10, Soft: 5}
	bd := mustSet(t, l, b)
	id := Identity{KeyID: "gk_r7raise"}
	charge(t, l, id, 7.5, T)
	refuseAt(t, l, id, 3, T.Add(time.Second)) // room $2.50
	if _, amt, ok := awaitMark(t, l, bd.ID, T.Add(time.Second)); !ok || !near(amt, 3) {
		t.Fatalf("premise: marker $3 written; got %v %v", amt, ok)
	}
	b.Hard = 12 // room $4.50
	mustSet(t, l, b)
	if q := quotaOf(t, l, bd, T.Add(90*time.Second)); q.State == StateHard {
		t.Fatalf("premise (review 30R5): after the raise the $3 call fits; state %q", q.State)
	}
	var last time.Time
	for _, d := range []time.Duration{2 * time.Minute, 4 * time.Minute, 10 * time.Minute, 3 * time.Hour} {
		last = T.Add(d)
		refuseAt(t, l, id, 5, last) // room $4.50 < $5: refused for the spend
		awaitMark(t, l, bd.ID, last)
	}
	mat, amt, ok := exhausted(context.Background(), l.rdb, bd.ID)
	now := last.Add(time.Minute)
	q := quotaOf(t, l, bd, now)
	refuseAt(t, l, id, 5, now) // and right now too
	if q.State != StateHard {
		t.Errorf("daily, limit raised to $12, room $%.2f, $5 calls refused for the spend at 12:02, 12:04, 12:10, 15:00 (and now): "+
			"state %q, want hard (database marker %s $%v ok=%v: the $3 refused under the old $10 limit still decides)",
			q.Hard-q.Spent, q.State, mat.UTC().Format(time.TimeOnly), amt, ok)
	}
}

// In a rolling window covers() lets an older marker for a smaller call
// stand for a larger refusal less than a minute later, so the larger
// refusal's time is never written: the marker leaves the window up to a
// minute before that refusal does. 1h budget, $9.50 spent at T; $1
// refused at T+10s (marker), $5 refused at T+40s (covered: no write).
// At T+1h+1s the $9.50 has left and $6 is spent (room $4). At T+1h+20s
// the window is [T+20s, T+1h+20s]: the $1 refusal has left it, the $5
// one is in it, the room ($4) is below $5, and a $5 call is refused right
// then; the state reads soft (the marker, T+10s, is before the window).
func TestReview30R7RollingCoveredLargerRefusalLeavesEarly(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	T := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r7cov", Window: "1h", Hard: 10, Soft: 5})
	id := Identity{KeyID: "gk_r7cov"}
	charge(t, l, id, 9.5, T)
	refuseAt(t, l, id, 1, T.Add(10*time.Second))
	if _, amt, ok := awaitMark(t, l, bd.ID, T.Add(10*time.Second)); !ok || !near(amt, 1) {
		t.Fatalf("premise: marker ($1, T+10s) written; got %v %v", amt, ok)
	}
	refuseAt(t, l, id, 5, T.Add(40*time.Second))
	awaitMark(t, l, bd.ID, T.Add(40*time.Second)) // written within markEvery
	charge(t, l, id, 6, T.Add(time.Hour+time.Second))
	now := T.Add(time.Hour + 20*time.Second)
	mat, amt, ok := exhausted(context.Background(), l.rdb, bd.ID)
	q := quotaOf(t, l, bd, now)
	if !near(q.Spent, 6) {
		t.Fatalf("premise: spent %v at T+1h+20s, want 6", q.Spent)
	}
	refuseAt(t, l, id, 5, now) // a $5 call is refused for the spend right now
	if q.State != StateHard {
		t.Errorf("rolling 1h at T+1h+20s: $5 refused at T+40s is in the window, room $%.2f < $5: state %q, want hard "+
			"(database marker %s $%v ok=%v: the $5 refusal was covered by the $1 marker of T+10s, which left the window at T+1h+10s)",
			q.Hard-q.Spent, q.State, mat.UTC().Format(time.TimeOnly), amt, ok)
	}
}
