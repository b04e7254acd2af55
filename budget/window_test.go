//go:build cgo

package budget

import (
	"strings"
	"testing"
	"time"
)

func TestWindowBounds(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	berlin := mustZone(t, "Europe/Berlin")
	santiago := mustZone(t, "America/Santiago")
	havana := mustZone(t, "America/Havana")
	cases := []struct {
		window, tz string
		now        time.Time
		start      time.Time
		resets     time.Time // zero = rolling
	}{
		{"monthly", "America/New_York", time.Date(2026, 11, 30, 23, 30, 0, 0, ny),
			time.Date(2026, 11, 1, 0, 0, 0, 0, ny), time.Date(2026, 12, 1, 0, 0, 0, 0, ny)},
		{"monthly", "America/New_York", time.Date(2026, 12, 1, 0, 10, 0, 0, ny),
			time.Date(2026, 12, 1, 0, 0, 0, 0, ny), time.Date(2027, 1, 1, 0, 0, 0, 0, ny)},
		{"monthly", "Europe/Berlin", time.Date(2026, 11, 30, 23, 30, 0, 0, berlin),
			time.Date(2026, 11, 1, 0, 0, 0, 0, berlin), time.Date(2026, 12, 1, 0, 0, 0, 0, berlin)},
		// 23:10 UTC on November 30 is already December in Berlin.
		{"monthly", "Europe/Berlin", time.Date(2026, 11, 30, 23, 10, 0, 0, time.UTC),
			time.Date(2026, 12, 1, 0, 0, 0, 0, berlin), time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)},
		{"monthly", "", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC),
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		// 2026-11-26 is a Thursday; ISO weeks start on Monday.
		{"weekly", "UTC", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"weekly", "UTC", time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC),
			time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"weekly", "UTC", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)},
		// A week spanning the end of DST in Berlin (October 25) is 169 hours.
		{"weekly", "Europe/Berlin", time.Date(2026, 10, 25, 12, 0, 0, 0, berlin),
			time.Date(2026, 10, 19, 0, 0, 0, 0, berlin), time.Date(2026, 10, 26, 0, 0, 0, 0, berlin)},
		{"daily", "America/New_York", time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), // 22:00 on the 26th in New York
			time.Date(2026, 11, 26, 0, 0, 0, 0, ny), time.Date(2026, 11, 27, 0, 0, 0, 0, ny)},
		// Where clocks jump from 00:00 to 01:00, the day starts at the jump
		// (04:00 UTC), not at 23:00 the evening before: spend of that
		// evening is not counted twice, and the reset is not in the past.
		{"daily", "America/Santiago", time.Date(2026, 9, 5, 23, 30, 0, 0, santiago),
			time.Date(2026, 9, 5, 0, 0, 0, 0, santiago), time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC).In(santiago)},
		{"daily", "America/Santiago", time.Date(2026, 9, 6, 2, 30, 0, 0, santiago),
			time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC).In(santiago), time.Date(2026, 9, 7, 0, 0, 0, 0, santiago)},
		{"daily", "America/Havana", time.Date(2026, 3, 8, 12, 0, 0, 0, havana),
			time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC).In(havana), time.Date(2026, 3, 9, 0, 0, 0, 0, havana)},
		// 2026-09-06 is a Sunday: the week from Monday, August 31 is 167 hours.
		{"weekly", "America/Santiago", time.Date(2026, 9, 7, 0, 30, 0, 0, santiago),
			time.Date(2026, 9, 7, 0, 0, 0, 0, santiago), time.Date(2026, 9, 14, 0, 0, 0, 0, santiago)},
		{"24h", "Europe/Berlin", time.Date(2026, 11, 27, 10, 7, 13, 0, time.UTC),
			time.Date(2026, 11, 26, 10, 7, 13, 0, time.UTC), time.Time{}},
	}
	for _, c := range cases {
		start, resets, err := WindowBounds(c.window, c.tz, c.now)
		if err != nil {
			t.Fatalf("WindowBounds(%s, %s, %s): %v", c.window, c.tz, c.now, err)
		}
		if !start.Equal(c.start) {
			t.Errorf("WindowBounds(%s, %s, %s) start = %s, want %s", c.window, c.tz, c.now, start, c.start)
		}
		switch {
		case c.resets.IsZero() && resets != nil:
			t.Errorf("WindowBounds(%s, %s, %s) resets = %s, want nil", c.window, c.tz, c.now, resets)
		case !c.resets.IsZero() && (resets == nil || !resets.Equal(c.resets)):
			t.Errorf("WindowBounds(%s, %s, %s) resets = %v, want %s", c.window, c.tz, c.now, resets, c.resets)
		case resets != nil && resets.Location().String() != c.resets.Location().String():
			t.Errorf("WindowBounds(%s, %s, %s) resets in %s, want %s", c.window, c.tz, c.now, resets.Location(), c.resets.Location())
		}
	}
	for _, bad := range [][2]string{{"fortnightly", "UTC"}, {"-1h", "UTC"}, {"monthly", "Mars/Olympus"}, {"monthly", "Local"}} {
		if _, _, err := WindowBounds(bad[0], bad[1], time.Now()); err == nil {
			t.Errorf("WindowBounds(%s, %s) accepted", bad[0], bad[1])
		}
	}
}

// TestMonthEndCharges checks which month a charge counts in, through the
// ledger, in zones behind and ahead of UTC and one offset by 5:45.
func TestMonthEndCharges(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Europe/Berlin", "Asia/Kathmandu"} {
		t.Run(zone, func(t *testing.T) {
			loc := mustZone(t, zone)
			l := openLedger(t, testDB(t), Options{})
			b := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowMonthly, TZ: zone, Hard: 100})
			id := Identity{Team: "eng"}
			nov := time.Date(2026, 11, 30, 23, 30, 0, 0, loc)
			dec := time.Date(2026, 12, 1, 0, 10, 0, 0, loc)
			charge(t, l, id, 3, time.Date(2026, 10, 31, 23, 59, 0, 0, loc)) // October
			charge(t, l, id, 7, nov)
			q := quotaOf(t, l, b, nov.Add(10*time.Minute))
			if !near(q.Spent, 7) {
				t.Fatalf("November spent $%v, want $7", q.Spent)
			}
			wantReset := time.Date(2026, 12, 1, 0, 0, 0, 0, loc)
			if q.ResetsAt == nil || !q.ResetsAt.Equal(wantReset) || q.ResetsAt.Format(time.RFC3339) != wantReset.Format(time.RFC3339) {
				t.Fatalf("November resets_at %v, want %s", q.ResetsAt, wantReset.Format(time.RFC3339))
			}
			charge(t, l, id, 11, dec)
			q = quotaOf(t, l, b, dec.Add(time.Minute))
			if !near(q.Spent, 11) {
				t.Fatalf("December spent $%v, want $11 (the 23:30 charge is November's)", q.Spent)
			}
			if want := time.Date(2027, 1, 1, 0, 0, 0, 0, loc); q.ResetsAt == nil || !q.ResetsAt.Equal(want) {
				t.Fatalf("December resets_at %v, want %s", q.ResetsAt, want)
			}
		})
	}
}

// TestRollingWindow charges around the edge of a rolling 24h window whose
// start is not on a 15-minute spend bucket boundary.
func TestRollingWindow(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	b := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "bob", Window: "24h", Hard: 1000})
	id := Identity{User: "bob"}
	now := time.Date(2026, 11, 27, 10, 7, 13, 0, time.UTC)
	day := 24 * time.Hour
	for _, c := range []struct {
		at     time.Time
		amount float64
	}{
		{now.Add(-day - time.Hour), 1},                                // long gone
		{now.Add(-day - 2*time.Minute), 2},                            // 10:05 yesterday, same bucket as the start
		{now.Add(-day + 3*time.Minute), 4},                            // 10:10 yesterday, same bucket, inside
		{now.Add(-day + 13*time.Minute), 8},                           // 10:20 yesterday, next bucket
		{now.Add(-time.Minute), 16},                                   // a minute ago
		{time.Date(2026, 11, 26, 10, 7, 13, 0, time.UTC), 32},         // exactly at the start: counts
		{time.Date(2026, 11, 26, 10, 7, 12, 999999000, time.UTC), 64}, // just before: does not
	} {
		charge(t, l, id, c.amount, c.at)
	}
	q := quotaOf(t, l, b, now)
	if want := 4.0 + 8 + 16 + 32; !near(q.Spent, want) {
		t.Fatalf("rolling spent $%v, want $%v", q.Spent, want)
	}
	if q.ResetsAt != nil {
		t.Fatalf("rolling window has resets_at %v", q.ResetsAt)
	}
	if q := quotaOf(t, l, b, now.Add(day-2*time.Minute)); !near(q.Spent, 16) {
		t.Fatalf("almost a day later spent $%v, want $16", q.Spent)
	}
}

// TestRollingRefusalTime: a refused call on a rolling window is told when
// enough old spend leaves the window for it to fit.
func TestRollingRefusalTime(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	mustSet(t, l, Budget{Scope: ScopeUser, Subject: "bob", Window: "10h", Hard: 10})
	id := Identity{User: "bob"}
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	charge(t, l, id, 3, t0)
	charge(t, l, id, 3, t0.Add(time.Hour))
	charge(t, l, id, 3, t0.Add(2*time.Hour))
	now := t0.Add(3 * time.Hour)
	_, _, ref, err := l.Reserve(t.Context(), id, 5, now) // needs $4 to leave: the first two charges
	if err != nil || ref == nil {
		t.Fatalf("Reserve: refusal %v, err %v; want a refusal", ref, err)
	}
	// The window includes its start: the $3 at t0+1h leaves it just after t0+11h.
	if want := t0.Add(11*time.Hour + time.Microsecond); !ref.ResetsAt.Equal(want) {
		t.Fatalf("refusal ResetsAt %s, want %s (%v)", ref.ResetsAt, want, ref)
	}
	// The message names a time at which the call fits: the second after.
	if msg := ref.Error(); !strings.Contains(msg, "room frees up at 2026-11-27T11:00:01Z") {
		t.Errorf("refusal message %q, want the room to free up at 11:00:01", msg)
	}
	if _, _, ref2, err := l.Reserve(t.Context(), id, 5, ref.ResetsAt.Add(-time.Microsecond)); err != nil || ref2 == nil {
		t.Fatalf("just before the promised time: refusal %v, err %v; want a refusal", ref2, err)
	}
	if r, _, ref2, err := l.Reserve(t.Context(), id, 5, ref.ResetsAt); err != nil || ref2 != nil {
		t.Fatalf("at the promised time: refusal %v, err %v", ref2, err)
	} else if err := r.Release(); err != nil {
		t.Fatal(err)
	}
}

// A quota's spent is the sum of its charges as people write it: the
// dashboard and /analytics show 0.3, not 0.30000000000000004.
func TestQuotaSpentHasNoFloatNoise(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	b := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "dave", Window: "daily", Hard: 10})
	id := Identity{User: "dave"}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	charge(t, l, id, 0.1, now)
	charge(t, l, id, 0.2, now.Add(time.Minute))
	if q := quotaOf(t, l, b, now.Add(2*time.Minute)); q.Spent != 0.3 {
		t.Errorf("spent %v, want 0.3", q.Spent)
	}
}
