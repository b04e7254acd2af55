package analytics

import (
	"net/url"
	"testing"
	"time"
)

func TestPlanReadsTodayAsItsDayRow(t *testing.T) {
	to := time.Date(2026, 3, 15, 13, 37, 21, 0, time.UTC)
	units := plan(to.Add(-24*time.Hour), to, grainNone, false)
	var sawDay bool
	for _, u := range units {
		for _, p := range u.parts {
			if p.src == srcDay && p.lo == time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC).UnixMicro() {
				sawDay = true
				if u.guardLo != to.UnixMicro() || len(u.fallback) == 0 {
					t.Errorf("today's day row without a guard: %+v", u)
				}
			}
		}
	}
	if !sawDay {
		t.Errorf("24h window does not read today's rollup_day row: %+v", units)
	}
	// Coverage: adding every part of the chosen plan, with subtraction,
	// covers each instant of the window exactly once.
	for _, w := range []time.Duration{90 * time.Minute, 24 * time.Hour, 36 * time.Hour, 7 * 24 * time.Hour} {
		from := to.Add(-w)
		for _, g := range []grain{grainNone, grainDay, grainHour} {
			for _, useFallback := range []bool{false, true} {
				probe := from.Add(-2 * time.Hour)
				for ; probe.Before(to.Add(2 * time.Hour)); probe = probe.Add(7 * time.Minute) {
					us, n := probe.UnixMicro(), 0
					for _, u := range plan(from, to, g, false) {
						parts := u.parts
						if useFallback && u.fallback != nil {
							parts = u.fallback
						}
						for _, p := range parts {
							if us >= p.lo && us < p.hi {
								if p.neg {
									n--
								} else {
									n++
								}
							}
						}
					}
					in := !probe.Before(from) && probe.Before(to)
					// From to on, a guarded exclusion may count the rest of
					// its hour or day: its guard finds no call there.
					if in && n != 1 || !in && n != 0 && !(useFallback == false && !probe.Before(to)) {
						t.Fatalf("window %s grain %d fallback %v: %s counted %d times", w, g, useFallback, probe, n)
					}
				}
			}
		}
	}
}

// TestCostWithoutFutureCalls exercises the day-row exclusion path for the
// window's last day, which calls after now disable.
func TestCostWithoutFutureCalls(t *testing.T) {
	f := newFixtureFuture(t, 31, 3000, false)
	for _, win := range testWindows {
		from, to := testWindow(win)
		for _, p := range testFilters(f) {
			for _, by := range []string{"model", "key", "day"} {
				q := with(p, "window", win, "group_by", by)
				var got costJSON
				f.get(t, "/analytics/cost", q, 200, &got)
				groups, total := f.expect(from, to, p, costKeyOf(by))
				ctx := "cost?" + q.Encode()
				checkMoney(t, ctx+" total_cost_usd", got.TotalCostUSD, total.cost)
				checkInt(t, ctx+" calls", got.Calls, total.calls)
				checkInt(t, ctx+" errors", got.Errors, total.errors)
				checkInt(t, ctx+" input_tokens", got.InputTokens, total.input)
				if len(got.Groups) != len(groups) {
					t.Errorf("%s: %d groups, want %d", ctx, len(got.Groups), len(groups))
				}
				for _, g := range got.Groups {
					if w := groups[g.Key]; w == nil || w.calls != g.Calls || !near(g.CostUSD, w.cost) {
						t.Errorf("%s: group %q = %d calls $%v, want %+v", ctx, g.Key, g.Calls, g.CostUSD, w)
					}
				}
			}
			var keys byKeyJSON
			f.get(t, "/analytics/by_key", with(p, "window", win), 200, &keys)
			want, _ := f.expect(from, to, p, func(c seedCall) string { return c.c.GatewayKeyID })
			for _, k := range keys.Keys {
				if w := want[k.GatewayKeyID]; w == nil ||
					!parseAPITime(t, k.LastCallAt).Equal(w.last.Truncate(time.Millisecond)) {
					t.Errorf("by_key %s %s: last_call_at %s", win, url.Values(p).Encode(), k.LastCallAt)
				}
			}
		}
	}
}

// A 1h window ending now reads the hour so far from its rollup_hour row
// (guarded: no call after now) and, of the hour before, the smaller side
// of the window's start: at 13:37:21 the calls of 12:37:21–13:00, not the
// hour's row minus 12:00–12:37:21 (review 30S: the dashboard's 1h view
// read every call of the last 60 minutes, 0.5 s at 189k).
func TestHourWindowReadsFewCalls(t *testing.T) {
	to := time.Date(2026, 3, 15, 13, 37, 21, 0, time.UTC)
	for _, g := range []grain{grainNone, grainHour} {
		var scanned int64
		for _, u := range plan(to.Add(-time.Hour), to, g, false) {
			for _, p := range u.parts {
				if p.src == srcCalls {
					scanned += p.hi - p.lo
				}
				if p.src == srcHour && p.hi > to.UnixMicro() && u.guardLo != to.UnixMicro() {
					t.Errorf("grain %d: the current hour's row without a guard from now: %+v", g, u)
				}
			}
		}
		if want := (22*time.Minute + 39*time.Second).Microseconds(); scanned != want {
			t.Errorf("grain %d: the plan scans %s of calls, want %s", g, time.Duration(scanned)*time.Microsecond, time.Duration(want)*time.Microsecond)
		}
	}
}
