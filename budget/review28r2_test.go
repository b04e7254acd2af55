//go:build cgo

package budget

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// README (Spend caps): a charge dated later "counts in its own window
// only"; rollingAhead's comment: one stamped far ahead (a clock set wrong,
// then corrected) "does not weigh on every window until its time comes".
// Since 642c7be rollingRoom adds every charge dated past now+1m to the
// excess, however far ahead, and its walk then runs on to that charge's own
// bucket: a refusal that would clear in 30 minutes names a month ahead.
func TestReview28R2RollingRefusalNotDelayedByChargeFarAhead(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	mustSet(t, l, Budget{Scope: ScopeUser, Subject: "ann", Window: "1h", Hard: 10})
	id := Identity{User: "ann"}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	charge(t, l, id, 8, now.Add(-30*time.Minute))
	// A gateway whose clock was set a month ahead (then corrected) settled
	// $6 dated then.
	charge(t, l, id, 6, now.Add(30*24*time.Hour))
	_, _, ref, err := l.Reserve(context.Background(), id, 5, now)
	if err != nil || ref == nil {
		t.Fatalf("$5 beside $8 spent of $10: refusal %v, err %v; want a refusal", ref, err)
	}
	// At now+30m+1µs the $8 has left and the $6 is a month off: $5 fits.
	fits := now.Add(30*time.Minute + time.Second)
	r, _, ref2, err := l.Reserve(context.Background(), id, 5, fits)
	if err != nil || ref2 != nil {
		t.Fatalf("at %s: refusal %v, err %v; want the call to fit", fits.Format(time.RFC3339), ref2, err)
	}
	_ = r.Release()
	if ref.ResetsAt.After(fits) {
		t.Errorf("refusal at %s names %s (in %v); the call fits at %s: a charge dated a month ahead should not push the named time past it",
			now.Format(time.RFC3339), ref.ResetsAt.Format(time.RFC3339Nano), ref.ResetsAt.Sub(now).Round(time.Minute), fits.Format(time.RFC3339))
	}
}

// The end edge subtracts the end bucket's charges (SQLite's SUM, which
// compensates rounding) from its spend row (a plain running sum): with
// nothing spent in the window and charges dated after the reset, spent
// reads -1.1e-16, which Quota rounds to -0: JSON "spent":-0, and list-
// budgets / a refusal print "-0.00".
func TestReview28R2SpentNeverNegativeZero(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	b := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "bea", Window: "daily", Hard: 10})
	id := Identity{User: "bea"}
	now := time.Date(2026, 11, 29, 23, 59, 50, 0, time.UTC)
	// A peer whose clock runs 20 s ahead settles two calls dated just
	// after midnight.
	// after midnight: the spend row adds them one by one (0.6), SQLite's
	// SUM compensates (0.6000000000000001).
	charge(t, l, id, 0.1, now.Add(15*time.Second))
	charge(t, l, id, 0.4, now.Add(16*time.Second))
	charge(t, l, id, 0.1, now.Add(18*time.Second))
	u, err := l.usage(context.Background(), l.rdb, b, now)
	if err != nil {
		t.Fatal(err)
	}
	q := quotaOf(t, l, b, now)
	js, _ := json.Marshal(q)
	if u.spent < 0 || math.Signbit(q.Spent) || strings.Contains(string(js), `"spent":-`) || strings.HasPrefix(Amount(q.Spent), "-") {
		t.Errorf("nothing dated in the day: usage spent %v, quota spent %v (Amount %q, JSON %s); want 0", u.spent, q.Spent, Amount(q.Spent), js)
	}
}

// Edge shapes for the brute-force property: charges at fe-1, fe, e-1, e,
// fe+bucket-1, fe+bucket, fe+2*bucket, for calendar windows (end on a
// boundary) and rolling ones (end inside a bucket), skewed clocks.
func TestReview28R2UsageEdgeShapes(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	ctx := context.Background()
	for _, w := range []string{"daily", "1m", "14m", "15m", "16m", "1h"} {
		for _, nowOff := range []time.Duration{0, -time.Minute, -time.Microsecond, time.Microsecond, 14 * time.Minute, 14*time.Minute + 59*time.Second} {
			b := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "e", Window: w, Hard: 1e9})
			now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC).Add(nowOff)
			loc, _ := l.location("UTC")
			start, resets, _ := windowBounds(w, loc, now)
			end := now.Add(rollingAhead)
			if resets != nil {
				end = *resets
			}
			s, e := start.UnixMicro(), end.UnixMicro()
			fe := floorBucket(e)
			var want float64
			for i, ts := range []int64{s - 1, s, s + 1, ceilBucket(s), fe - 1, fe, e - 1, e, e + 1, fe + bucketUS - 1, fe + bucketUS, fe + 2*bucketUS} {
				a := float64(i + 1)
				if _, err := l.db.ExecContext(ctx, `INSERT INTO budget_charges (budget_id, reservation_id, ts_us, amount) VALUES (?, ?, ?, ?)`,
					b.ID, "rs_edge"+string(rune('a'+i)), ts, a); err != nil {
					t.Fatal(err)
				}
				if _, err := l.db.ExecContext(ctx, `INSERT INTO budget_spend (budget_id, bucket_us, amount) VALUES (?, ?, ?)
					ON CONFLICT (budget_id, bucket_us) DO UPDATE SET amount = amount + excluded.amount`, b.ID, floorBucket(ts), a); err != nil {
					t.Fatal(err)
				}
				if ts >= s && ts < e {
					want += a
				}
			}
			u, err := l.usage(ctx, l.rdb, b, now)
			if err != nil {
				t.Fatal(err)
			}
			if !near(u.spent, want) {
				t.Errorf("%s at %s: spent %v, want %v", w, now.Format(time.RFC3339Nano), u.spent, want)
			}
			if err := l.Clear(ctx, b.Scope, b.Subject, b.Window); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A rolling refusal's time is never early, whatever charges are dated
// ahead: at the time named, the window's charges and the call fit. Random
// windows, charges (a third of them dated ahead, some far), limits and
// calls.
func TestRollingRefusalTimeFitsWithChargesAhead(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	r := rand.New(rand.NewPCG(28, 2))
	now := time.Date(2026, 11, 29, 12, 7, 30, 0, time.UTC)
	windows := []time.Duration{5 * time.Minute, 20 * time.Minute, time.Hour, 3 * time.Hour}
	refusals := 0
	for i := range 150 {
		d := windows[r.IntN(len(windows))]
		id := Identity{User: fmt.Sprintf("u%d", i)}
		b := mustSet(t, l, Budget{Scope: ScopeUser, Subject: id.User, Window: d.String(), Hard: 1e9})
		type ch struct {
			at  time.Time
			usd float64
		}
		var chs []ch
		for range 1 + r.IntN(12) {
			at := now.Add(-d + time.Duration(r.Int64N(int64(3*d))))
			if r.IntN(6) == 0 {
				at = now.Add(time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))) // far ahead
			}
			c := ch{at.Truncate(time.Microsecond), float64(1+r.IntN(10)) / 2} // as the ledger keeps it
			charge(t, l, id, c.usd, c.at)
			chs = append(chs, c)
		}
		b.Hard = float64(5 + r.IntN(26))
		mustSet(t, l, b)
		amount := float64(1+r.IntN(20)) / 2
		_, _, ref, err := l.Reserve(t.Context(), id, amount, now)
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil || ref.Never() || ref.InFlight() {
			continue // it fitted (its reservation left held), or no time is named
		}
		refusals++
		inAt := func(at time.Time) float64 {
			in := 0.0
			for _, c := range chs {
				if !c.at.Before(at.Add(-d)) && c.at.Before(at.Add(rollingAhead)) {
					in += c.usd
				}
			}
			return in
		}
		at := ref.ResetsAt
		if in := inAt(at); in+amount > b.Hard+1e-9 {
			t.Errorf("case %d (%v window, $%v limit, $%v call, charges %v): named %s, when $%v of charges are in the window",
				i, d, b.Hard, amount, chs, at.Format(time.RFC3339Nano), in)
		}
		// Nor late: room comes only as a charge leaves, a microsecond
		// after it is d old; the first such time at which the call fits
		// is the one to name (review 28R2: one a month ahead made it 721 h).
		first := time.Time{}
		for _, c := range chs {
			if lv := c.at.Add(d + time.Microsecond); lv.After(now) && inAt(lv)+amount <= b.Hard+1e-9 && (first.IsZero() || lv.Before(first)) {
				first = lv
			}
		}
		if !first.IsZero() && at.After(first) {
			t.Errorf("case %d (%v window, $%v limit, $%v call): named %s, but the call fits at %s",
				i, d, b.Hard, amount, at.Format(time.RFC3339Nano), first.Format(time.RFC3339Nano))
		}
	}
	if refusals < 30 {
		t.Fatalf("only %d refusals with a time: the cases prove little", refusals)
	}
}
