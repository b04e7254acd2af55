//go:build cgo

package budget

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Review 30R7: what held. Calendar boundaries in non-UTC zones and at DST
// changes, in order and out of order; rolling 1h and 72h windows.
func TestReview30R7OKCalendarBoundaries(t *testing.T) {
	type tc struct {
		tz, window string
		near       time.Time // the boundary is the reset after this instant
	}
	var cases []tc
	for _, z := range []struct {
		tz   string
		near []time.Time
	}{
		{"Europe/Berlin", []time.Time{time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}},
		{"America/Santiago", []time.Time{time.Date(2026, 9, 5, 12, 0, 0, 0, time.UTC), time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC), time.Date(2026, 4, 5, 12, 0, 0, 0, time.UTC)}},
		{"America/Havana", []time.Time{time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)}},
		{"Australia/Lord_Howe", []time.Time{time.Date(2026, 4, 4, 2, 0, 0, 0, time.UTC), time.Date(2026, 10, 3, 2, 0, 0, 0, time.UTC)}},
		{"Asia/Kathmandu", []time.Time{time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}},
		{"America/St_Johns", []time.Time{time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC)}},
	} {
		for _, w := range []string{WindowDaily, WindowWeekly, WindowMonthly} {
			for _, n := range z.near {
				cases = append(cases, tc{z.tz, w, n})
			}
		}
	}
	for i, c := range cases {
		_, next, err := WindowBounds(c.window, c.tz, c.near)
		if err != nil {
			t.Fatal(err)
		}
		B := *next
		t.Run(fmt.Sprintf("%s/%s/%s", c.tz, c.window, B.In(mustZone(t, c.tz)).Format(time.RFC3339)), func(t *testing.T) {
			for _, order := range []string{"in-order", "out-of-order"} {
				l := openLedger(t, testDB(t), Options{})
				sub := fmt.Sprintf("gk_r7b%d%s", i, order)
				bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: sub, Window: c.window, TZ: c.tz, Hard: 10, Soft: 5})
				id := Identity{KeyID: sub}
				charge(t, l, id, 9.5, B.Add(-10*time.Minute))
				charge(t, l, id, 6, B.Add(10*time.Second))
				old := func() {
					refuseAt(t, l, id, 1, B.Add(-time.Second))
					time.Sleep(30 * time.Millisecond)
				}
				if order == "in-order" {
					old()
					if q := awaitState(t, l, bd, B.Add(-500*time.Millisecond), StateHard); q.State != StateHard {
						t.Errorf("old window after its $1 refusal: %q, want hard", q.State)
					}
					if q := quotaOf(t, l, bd, B.Add(5*time.Second)); q.State == StateHard {
						t.Errorf("new window, no refusal yet: %q", q.State)
					}
				}
				refuseAt(t, l, id, 5, B.Add(30*time.Second))
				awaitMark(t, l, bd.ID, B.Add(30*time.Second))
				if order == "out-of-order" {
					old() // reaches the ledger after the new window's refusal
				}
				time.Sleep(30 * time.Millisecond)
				q := quotaOf(t, l, bd, B.Add(time.Minute))
				mat, amt, _ := exhausted(context.Background(), l.rdb, bd.ID)
				if !near(q.Spent, 6) || q.State != StateHard || !near(amt, 5) {
					t.Errorf("%s: new window spent %v, $5 refused, room $4: state %q marker %s $%v", order, q.Spent, q.State, mat.UTC(), amt)
				}
				// The old window's state is not read back once the new
				// one has a refusal: a budget keeps its latest refusal
				// only, and a quota is read for now.
			}
		})
	}
}

// Rolling 1h and 72h: the later refusal stands whole, and the state goes
// soft once the refusal leaves the window.
func TestReview30R7OKRolling(t *testing.T) {
	for _, w := range []time.Duration{time.Hour, 72 * time.Hour} {
		t.Run(w.String(), func(t *testing.T) {
			l := openLedger(t, testDB(t), Options{})
			T := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC) // Berlin DST night, irrelevant to rolling
			sub := "gk_r7r" + w.String()
			bd := mustSet(t, l, Budget{Scope: ScopeKey, Subject: sub, Window: w.String(), TZ: "Europe/Berlin", Hard: 10, Soft: 5})
			id := Identity{KeyID: sub}
			charge(t, l, id, 9.5, T)
			refuseAt(t, l, id, 1, T.Add(time.Minute))
			awaitMark(t, l, bd.ID, T.Add(time.Minute))
			refuseAt(t, l, id, 5, T.Add(3*time.Minute))
			awaitMark(t, l, bd.ID, T.Add(3*time.Minute))
			if q := quotaOf(t, l, bd, T.Add(4*time.Minute)); q.State != StateHard {
				t.Errorf("room $0.50: %q", q.State)
			}
			if q := quotaOf(t, l, bd, T.Add(w+4*time.Minute)); q.State == StateHard {
				t.Errorf("all refusals and the spend left the window: %q", q.State)
			}
		})
	}
}
