//go:build cgo

package budget

import (
	"context"
	"testing"
	"time"
)

// Review 30R4 (commit fe48644).

// writeMarks gives up after markCloseWait (2 s) and forgets what it could
// not write: a marker due while the database's write lock is held
// elsewhere for longer (the trace writer allows itself 2 s turns when
// behind, another gateway's transaction, `caddy metis set-budget`) is lost
// for good, unless the same client is refused again. Before fe48644 the
// goroutine's write waited for the lock without a deadline of its own (up
// to SQLite's 5 s busy timeout for another process), and wrote it.
//
// The key is first refused only for a call in flight (no marker, but the
// key is remembered as refused), that call settles at its worst case, and
// the key's next call is refused for the spend from a reader while another
// connection holds the write lock for 2.5 s. The client then stops; the
// budget should read hard (README: hard while the room is below the
// smallest call refused).
func TestReview30R4MarkerLostBehindLockHeldOver2s(t *testing.T) {
	path := testDB(t)
	l := openLedger(t, path, Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r4lock", Window: WindowDaily, Hard: 0.40, Soft: 0.20})
	id := Identity{KeyID: "gk_r4lock"}
	charge(t, l, id, 0.30, now)
	held, _, ref, err := l.Reserve(context.Background(), id, 0.0997, now.Add(time.Second))
	if err != nil || ref != nil {
		t.Fatalf("in-flight call: refusal %v err %v", ref, err)
	}
	if _, _, ref, err := l.Reserve(context.Background(), id, 0.001, now.Add(2*time.Second)); err != nil || ref == nil || !ref.InFlight() {
		t.Fatalf("premise: a refusal for the call in flight only; got %v err %v", ref, err)
	}
	if _, err := held.Settle(0.0997, now.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	unlock := lockWrites(t, path)
	_, _, ref, err = l.Reserve(context.Background(), id, 0.001, now.Add(4*time.Second))
	if err != nil || ref == nil || ref.InFlight() || ref.Never() {
		unlock()
		t.Fatalf("premise: a refusal for the spend; got %v err %v", ref, err)
	}
	time.Sleep(2500 * time.Millisecond)
	unlock()
	if q := awaitState(t, l, bd, now.Add(5*time.Second), StateHard); q.State != StateHard {
		_, _, ok := exhausted(context.Background(), l.rdb, bd.ID)
		t.Errorf("spent $%v of $%v, a $0.001 call refused for the spend while the write lock was held 2.5 s elsewhere: "+
			"state %q 5 s after the lock was released (marker in the database: %v), want hard", q.Spent, q.Hard, q.State, ok)
	}
}

// A refusal made from a reader because the write lock could not be had
// (Reserve's ErrUnavailable path) queues no marker: markExhausted says
// "whichever path refused", but this path never calls it. The lock is held
// only 0.4 s; the goroutine could have written the marker right after.
func TestReview30R4RefusalWhileLockedLeavesNoMarker(t *testing.T) {
	path := testDB(t)
	l := openLedger(t, path, Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r4unav", Window: WindowDaily, Hard: 0.40, Soft: 0.20})
	id := Identity{KeyID: "gk_r4unav"}
	charge(t, l, id, 0.399666, now)
	unlock := lockWrites(t, path)
	go func() {
		time.Sleep(400 * time.Millisecond)
		unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _, ref, err := l.Reserve(ctx, id, 0.001, now.Add(time.Second))
	cancel()
	if err != nil || ref == nil || ref.InFlight() {
		t.Fatalf("premise: refused for the spend from a reader; got %v err %v", ref, err)
	}
	time.Sleep(500 * time.Millisecond)
	if q := awaitState(t, l, bd, now.Add(2*time.Second), StateHard); q.State != StateHard {
		t.Errorf("refused for the spend while the ledger was locked (0.4 s): state %q, want hard", q.State)
	}
}

// Rolling window: the marker is kept at the first refusal's time, and a
// later refusal of the same amount in the same window is skipped (the
// in-memory check and writeMarks' check both), so the marker leaves the
// window one window after the first refusal, though a later refusal for
// the spend still stands: spend that came back after the first refusal
// reads soft with room $0.0003, below the $0.0004 call refused.
func TestReview30R4RollingMarkerNotRefreshed(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	T := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_r4roll", Window: "1h", Hard: 0.40, Soft: 0.20})
	id := Identity{KeyID: "gk_r4roll"}
	charge(t, l, id, 0.3997, T.Add(-59*time.Minute))
	if _, _, ref, err := l.Reserve(context.Background(), id, 0.0004, T); err != nil || ref == nil {
		t.Fatalf("first refusal %v err %v", ref, err)
	}
	if q := awaitState(t, l, bd, T.Add(time.Second), StateHard); q.State != StateHard {
		t.Fatalf("premise: hard after the first refusal, got %q", q.State)
	}
	// The first charge has aged out at T+1m; the budget fills up again.
	charge(t, l, id, 0.3997, T.Add(2*time.Minute))
	if _, _, ref, err := l.Reserve(context.Background(), id, 0.0004, T.Add(3*time.Minute)); err != nil || ref == nil || ref.InFlight() {
		t.Fatalf("second refusal %v err %v", ref, err)
	}
	at := T.Add(61 * time.Minute) // the first refusal has left the window; the second has not
	q := awaitState(t, l, bd, at, StateHard)
	if !near(q.Spent, 0.3997) {
		t.Fatalf("premise: spent %v at T+61m, want 0.3997", q.Spent)
	}
	if q.State != StateHard {
		t.Errorf("a $0.0004 call refused for the spend at T+3m, room still $%.4f at T+61m: state %q, want hard", q.Hard-q.Spent, q.State)
	}
}

// markCloseWait "bounds the markers' write transaction, Close's included"
// (2 s), but Close waits for the write in progress (up to 2 s) and then
// writes what was queued meanwhile (up to 2 s more): with the database's
// write lock held elsewhere, Close took 3.97 s, and both writes failed.
func TestReview30R4CloseWaitsTwiceTheMarkerBound(t *testing.T) {
	path := testDB(t)
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var ids []Identity
	for i := range 2 {
		key := "gk_r4close" + string(rune('a'+i))
		mustSet(t, l, Budget{Scope: ScopeKey, Subject: key, Window: WindowDaily, Hard: 0.40})
		ids = append(ids, Identity{KeyID: key})
		charge(t, l, ids[i], 0.3997, now)
		// Remembered as refused (for a call in flight), not marked.
		r, _, _, _ := l.Reserve(context.Background(), ids[i], 0.0003, now)
		if _, _, ref, _ := l.Reserve(context.Background(), ids[i], 0.0001, now); ref == nil || !ref.InFlight() {
			t.Fatalf("premise: in-flight refusal, got %v", ref)
		}
		if err := r.Release(); err != nil {
			t.Fatal(err)
		}
	}
	unlock := lockWrites(t, path)
	defer unlock()
	if _, _, ref, _ := l.Reserve(context.Background(), ids[0], 0.001, now); ref == nil {
		t.Fatal("no refusal")
	}
	time.Sleep(50 * time.Millisecond) // the goroutine waits for the lock in writeMarks
	if _, _, ref, _ := l.Reserve(context.Background(), ids[1], 0.001, now); ref == nil {
		t.Fatal("no refusal")
	}
	start := time.Now()
	_ = l.Close()
	if took := time.Since(start); took > markCloseWait+500*time.Millisecond {
		t.Errorf("Close took %s with the write lock held elsewhere, past markCloseWait (%s), which is said to bound Close's write", took.Round(time.Millisecond), markCloseWait)
	}
}
