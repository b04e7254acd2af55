//go:build cgo

package budget

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// sqlUsageBefore28T is sqlUsage as it was before review 28T bounded the
// spend at the window's end.
const sqlUsageBefore28T = `SELECT
	COALESCE((SELECT SUM(amount) FROM budget_spend WHERE budget_id = ?1 AND bucket_us >= ?2), 0)
	+ COALESCE((SELECT SUM(amount) FROM budget_charges WHERE budget_id = ?1 AND ts_us >= ?3 AND ts_us < ?2), 0),
	COALESCE((SELECT SUM(amount) FROM budget_reservations WHERE budget_id = ?1 AND created_us >= ?4), 0)`

// Property (review 28R): for randomized charges, windows and instants
// (including instants, starts and charges exactly on 15-minute bucket
// edges, at the window's start and at its reset, rolling windows shorter
// than a bucket, and time zones with :30/:45 offsets), the spend usage()
// reads is exactly the sum of the charges in [start, end) with end the
// reset (calendar) or now+rollingAhead (rolling); and, when no charge is
// stamped after now (clocks not skewed), it equals what the query before
// 28T read.
func TestReview28RUsageMatchesBruteForce(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(28, 18))
	windows := []string{"daily", "weekly", "monthly", "1m", "5m", "14m", "15m", "16m", "29m", "90m", "24h", "72h"}
	zones := []string{"UTC", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe", "Europe/Berlin"}
	base := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC).UnixMicro()
	span := int64(40 * 24 * time.Hour / time.Microsecond)
	pick := func(lo, hi int64) int64 { // a µs in [lo, hi], often on an edge
		if hi <= lo {
			return lo
		}
		v := lo + rng.Int64N(hi-lo+1)
		switch rng.IntN(4) {
		case 0:
			if b := floorBucket(v); b >= lo {
				v = b
			}
		case 1:
			if b := floorBucket(v) - 1; b >= lo {
				v = b
			}
		}
		return v
	}
	type ch struct {
		ts int64
		a  float64
	}
	fails := 0
	for iter := 0; iter < 400 && fails < 10; iter++ {
		w := windows[rng.IntN(len(windows))]
		tz := zones[rng.IntN(len(zones))]
		if !isCalendar(w) {
			tz = "UTC"
		}
		b := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "p", Window: w, TZ: tz, Hard: 1e9})
		now := time.UnixMicro(pick(base, base+span)).UTC()
		loc, _ := l.location(tz)
		start, resets, err := windowBounds(w, loc, now)
		if err != nil {
			t.Fatal(err)
		}
		end := now.Add(rollingAhead)
		if resets != nil {
			end = *resets
		}
		// Edge instants as charges: the start, the end, one µs either side.
		skewed := rng.IntN(2) == 0
		var charges []ch
		lo := start.Add(-2 * time.Hour).UnixMicro()
		hi := now.UnixMicro()
		if skewed {
			hi = end.Add(2 * time.Hour).UnixMicro()
		}
		for _, e := range []int64{start.UnixMicro(), start.UnixMicro() - 1, start.UnixMicro() + 1, end.UnixMicro(), end.UnixMicro() - 1, now.UnixMicro()} {
			if e <= hi {
				charges = append(charges, ch{e, float64(1 + rng.IntN(9))})
			}
		}
		for range 30 {
			charges = append(charges, ch{pick(lo, hi), float64(1 + rng.IntN(9))})
		}
		var want float64
		for i, c := range charges {
			if _, err := l.db.ExecContext(ctx, `INSERT INTO budget_charges (budget_id, reservation_id, ts_us, amount) VALUES (?, ?, ?, ?)`,
				b.ID, "rs_p"+string(rune('a'+i%26))+time.UnixMicro(int64(i)).String(), c.ts, c.a); err != nil {
				t.Fatal(err)
			}
			if _, err := l.db.ExecContext(ctx, `INSERT INTO budget_spend (budget_id, bucket_us, amount) VALUES (?, ?, ?)
				ON CONFLICT (budget_id, bucket_us) DO UPDATE SET amount = amount + excluded.amount`, b.ID, floorBucket(c.ts), c.a); err != nil {
				t.Fatal(err)
			}
			if c.ts >= start.UnixMicro() && c.ts < end.UnixMicro() {
				want += c.a
			}
		}
		u, err := l.usage(ctx, l.rdb, b, now)
		if err != nil {
			t.Fatal(err)
		}
		if !near(u.spent, want) {
			fails++
			t.Errorf("%s %s at %s (window [%s, %s)): spent %v, want %v", w, tz, now.Format(time.RFC3339Nano),
				start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano), u.spent, want)
		}
		if !skewed {
			var old, res float64
			s := start.UnixMicro()
			if err := l.rdb.QueryRowContext(ctx, sqlUsageBefore28T, b.ID, ceilBucket(s), s, now.Add(-l.opts.ReservationTTL).UnixMicro()).Scan(&old, &res); err != nil {
				t.Fatal(err)
			}
			if !near(old, u.spent) {
				fails++
				t.Errorf("%s %s at %s: spent %v, before 28T %v (no charge after now)", w, tz, now.Format(time.RFC3339Nano), u.spent, old)
			}
		}
		if err := l.Clear(ctx, b.Scope, b.Subject, b.Window); err != nil {
			t.Fatal(err)
		}
	}
}

// A rolling budget's refusal names when room frees up. Since 28T the
// window counts charges up to now+rollingAhead (1 min) only, so a charge
// stamped a few minutes ahead (a peer gateway whose clock runs ahead, the
// case 28T names) is left out of the spend now, but rollingRoom does not
// count it coming in: at the instant the refusal names, that charge is in
// the window and the call is refused again. Before 28T the named time made
// room (it waited for that charge to age out too).
func TestReview28RRollingRefusalResetFitsWithChargeAhead(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	mustSet(t, l, Budget{Scope: ScopeUser, Subject: "ann", Window: "1h", Hard: 10})
	id := Identity{User: "ann"}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	charge(t, l, id, 8, now.Add(-30*time.Minute))
	// A peer gateway sharing the ledger, its clock 10 minutes ahead,
	// settles $6: the charge is dated now+10m. Written as its settlement
	// writes it (a charge row and its 15-minute bucket).
	if _, err := l.db.ExecContext(context.Background(), `INSERT INTO budget_charges (budget_id, reservation_id, ts_us, amount)
		SELECT id, 'rs_peer', ?, 6 FROM budgets WHERE subject = 'ann'`, now.Add(10*time.Minute).UnixMicro()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.db.ExecContext(context.Background(), `INSERT INTO budget_spend (budget_id, bucket_us, amount)
		SELECT id, ?, 6 FROM budgets WHERE subject = 'ann'`, floorBucket(now.Add(10*time.Minute).UnixMicro())); err != nil {
		t.Fatal(err)
	}
	_, _, ref, err := l.Reserve(context.Background(), id, 5, now)
	if err != nil || ref == nil {
		t.Fatalf("$5 beside $8 spent of $10: refusal %v, err %v; want a refusal", ref, err)
	}
	at := ref.ResetsAt
	t.Logf("refused at %s: %v", now.Format(time.RFC3339), ref)
	r2, _, ref2, err := l.Reserve(context.Background(), id, 5, at.Add(time.Second))
	if err != nil || ref2 != nil {
		t.Errorf("retried a second after the named reset %s: refusal %v, err %v; a refusal must name a time at which the call fits", at.Format(time.RFC3339Nano), ref2, err)
	} else {
		_ = r2.Release()
	}
}
