//go:build cgo

package budget

import (
	"context"
	"testing"
	"time"
)

// Review 27R2 of 9ddf257. The mend bounds the reader's first judgement of
// a recently refused key at 100 ms so that busy readers do not use up the
// reservation's deadline, but the refusal it (or the write transaction)
// then builds reads a rolling budget's charges on the same reader pool with
// the caller's whole context (rollingRoom): with the two readers busy (a
// dashboard's Quotas, other refusals' scans) a key at its rolling limit
// waits out the whole deadline (the gateway's 5 s) to be refused, and is
// then told to come back after a whole window (now + 24h), though its
// charge ages out in 4 h.
func TestReview27R2RollingRefusalWithBusyReaders(t *testing.T) {
	path := testDB(t)
	l := openLedger(t, path, Options{})
	now := time.Now()
	id := Identity{KeyID: "gk_rolling"}
	mustSet(t, l, Budget{Scope: ScopeKey, Subject: id.KeyID, Window: "24h", Hard: 1})
	charge(t, l, id, 0.9, now.Add(-20*time.Hour)) // ages out at now + 4 h
	// Refused once with the readers free: the right answer.
	_, _, ref, err := l.Reserve(context.Background(), id, 0.5, now)
	if ref == nil || err != nil {
		t.Fatalf("at its limit: refusal %v, err %v", ref, err)
	}
	want := now.Add(4 * time.Hour)
	if d := ref.ResetsAt.Sub(want); d < -time.Minute || d > time.Minute {
		t.Fatalf("readers free: resets at %v, want about %v", ref.ResetsAt, want)
	}

	holdReaders(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, _, ref, err = l.Reserve(ctx, id, 0.5, now)
	took := time.Since(start)
	if ref == nil || err != nil {
		t.Fatalf("readers busy: refusal %v, err %v after %v", ref, err, took)
	}
	d := ref.ResetsAt.Sub(want)
	t.Logf("readers busy: refused after %v, resets at now+%v (want now+4h)", took.Round(time.Millisecond), ref.ResetsAt.Sub(now).Round(time.Minute))
	if d < -time.Minute || d > time.Minute || took > time.Second {
		t.Errorf("a key at its rolling limit, refused a moment ago, readers busy: refused after %v (deadline 2 s) with resets_at now+%v; want at once, with now+4h as when the readers are free",
			took.Round(time.Millisecond), ref.ResetsAt.Sub(now).Round(time.Minute))
	}
}
