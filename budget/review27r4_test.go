//go:build cgo

package budget

import (
	"context"
	"testing"
	"time"
)

// Review 27R4 of 7ea6d8a. A refusal whose rolling budget needs more than
// writeScanMax (2,000) charges to age out is now built after the write
// transaction, on the reader pool, with the caller's whole context
// (Reserve: l.refusal(ctx, l.rdb, ..., 0)). That is the path review 27R2
// took away: with the ledger's two readers busy (a dashboard's Quotas,
// other keys' refusals) a key at its rolling limit waits out its whole
// deadline to be refused, and is then told to come back after a whole
// window (rollingRoom's fallback, now + 24h), though its charges age out
// in about 4 h. With 1,999 charges the same call is refused at once with
// the right reset.
func TestReview27R4LongWindowRefusalWithBusyReaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
	}{{"1999 charges", 1999}, {"3000 charges", 3000}} {
		t.Run(tc.name, func(t *testing.T) {
			path := testDB(t)
			l := openLedger(t, path, Options{})
			now := time.Now()
			id := Identity{KeyID: "gk_rolling"}
			b := mustSet(t, l, Budget{Scope: ScopeKey, Subject: id.KeyID, Window: "24h", Hard: 1})
			// $0.9 spent in n equal charges between 21 h and 20 h ago.
			from, to := now.Add(-21*time.Hour), now.Add(-20*time.Hour)
			each := 0.9 / float64(tc.n)
			seedRollingCharges(t, path, b, tc.n, each, from, to)
			// A $0.75 call fits once $0.65 has aged out: charge k, k ≈ 72% of n.
			k := int(0.65/each-1e-9) + 1
			want := from.Add(time.Duration(k-1) * (to.Sub(from) / time.Duration(tc.n))).Add(24 * time.Hour)

			release := holdReaders(t, l)
			defer release()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			_, _, ref, err := l.Reserve(ctx, id, 0.75, now)
			took := time.Since(start)
			if ref == nil || err != nil {
				t.Fatalf("readers busy: refusal %v, err %v after %v", ref, err, took)
			}
			t.Logf("%d charges (room at charge %d), readers busy: refused after %v, resets at now+%v (want now+%v)",
				tc.n, k, took.Round(time.Millisecond), ref.ResetsAt.Sub(now).Round(time.Minute), want.Sub(now).Round(time.Minute))
			if d := ref.ResetsAt.Sub(want); d < -time.Minute || d > time.Minute || took > time.Second {
				t.Errorf("a key at its rolling limit, readers busy: refused after %v (deadline 2 s) with resets_at now+%v; want at once, with now+%v",
					took.Round(time.Millisecond), ref.ResetsAt.Sub(now).Round(time.Minute), want.Sub(now).Round(time.Minute))
			}
		})
	}
}

// Past writeScanMax charges inside the one 15-minute bucket where the room
// comes, rollingRoom answers that bucket's end: never earlier than the
// room, at most a bucket later, and read in a few milliseconds.
func TestRollingRoomInACrowdedBucketIsItsEnd(t *testing.T) {
	path := testDB(t)
	l := openLedger(t, path, Options{})
	now := time.Now()
	id := Identity{KeyID: "gk_crowded"}
	b := mustSet(t, l, Budget{Scope: ScopeKey, Subject: id.KeyID, Window: "24h", Hard: 1})
	// $0.9 in 5,000 charges within one bucket, 20 h ago.
	bucket := time.UnixMicro(floorBucket(now.Add(-20 * time.Hour).UnixMicro()))
	from, to := bucket.Add(time.Minute), bucket.Add(14*time.Minute)
	const n = 5000
	each := 0.9 / n
	seedRollingCharges(t, path, b, n, each, from, to)
	k := int(0.65/each-1e-9) + 1 // the charge after which $0.75 fits: 3,612th
	exact := from.Add(time.Duration(k-1) * (to.Sub(from) / n)).Add(24 * time.Hour)
	start := time.Now()
	_, _, ref, err := l.Reserve(context.Background(), id, 0.75, now)
	took := time.Since(start)
	if ref == nil || err != nil {
		t.Fatalf("refusal %v, err %v", ref, err)
	}
	end := bucket.Add(15 * time.Minute).Add(24 * time.Hour)
	t.Logf("room at charge %d: exact now+%v; answered now+%v in %v", k, exact.Sub(now).Round(time.Second), ref.ResetsAt.Sub(now).Round(time.Second), took)
	if ref.ResetsAt.Before(exact) || ref.ResetsAt.After(end) {
		t.Errorf("resets at %v; want between the room (%v) and the bucket's end (%v)", ref.ResetsAt, exact, end)
	}
}
