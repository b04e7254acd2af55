//go:build cgo

package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// README (How big the database gets): after `caddy metis prune`, "windows
// that start after the cut ... give the same figures by any group". A
// property test: for random cut instants (pruned in increasing order on one
// fixture) and random windows starting at or after the cut — ending now, on
// an hour, or at a random past instant; grains none, day and hour; random
// filters and groupings — the aggregate equals the events' (which prune
// keeps for every call at or after the cut).
func TestReview30R3PruneWindowsAfterCut(t *testing.T) {
	ctx := context.Background()
	for _, seed := range []uint64{31, 32} {
		f := newFixtureFuture(t, seed, 3000, seed%2 == 0)
		rng := rand.New(rand.NewPCG(seed, 99))
		var cuts []time.Time
		for range 8 {
			var c time.Time
			switch rng.IntN(3) {
			case 0:
				c = testNow.Add(-time.Duration(rng.Int64N(int64(48 * time.Hour)))).Truncate(time.Microsecond)
			case 1:
				c = testNow.Truncate(time.Hour).Add(-time.Duration(rng.IntN(72)) * time.Hour)
			default:
				c = testNow.Add(-time.Duration(rng.Int64N(int64(44 * 24 * time.Hour)))).Truncate(time.Microsecond)
			}
			cuts = append(cuts, c)
		}
		sort.Slice(cuts, func(i, j int) bool { return cuts[i].Before(cuts[j]) })
		dimSets := [][]dim{nil, {dimModel}, {dimProvider}, {dimKey, dimShape}, {dimUser, dimKey},
			{dimTeam, dimUser}, {dimWorkspace}, {dimSession}}
		vals := func(vs ...string) *string {
			if rng.IntN(3) != 0 {
				return nil
			}
			v := vs[rng.IntN(len(vs))]
			return &v
		}
		fails := 0
		for ci, cut := range cuts {
			if _, err := f.st.Prune(ctx, cut); err != nil {
				t.Fatal(err)
			}
			for i := range 120 {
				span := testNow.Sub(cut)
				var from time.Time
				switch rng.IntN(4) {
				case 0:
					from = cut
				case 1:
					from = cut.Truncate(time.Hour).Add(time.Hour)
				case 2:
					from = cut.Add(time.Duration(rng.Int64N(int64(min(span, 3*time.Hour)) + 1))).Truncate(time.Microsecond)
				default:
					from = cut.Add(time.Duration(rng.Int64N(int64(span) + 1))).Truncate(time.Microsecond)
				}
				if !from.Before(testNow) {
					from = cut
				}
				var to time.Time
				switch rng.IntN(3) {
				case 0:
					to = testNow
				case 1:
					to = from.Add(time.Duration(rng.Int64N(int64(testNow.Sub(from)) + 1))).Truncate(time.Hour).Add(time.Hour)
				default:
					to = from.Add(time.Duration(rng.Int64N(int64(testNow.Sub(from)) + 1))).Truncate(time.Microsecond)
				}
				if !to.After(from) {
					to = testNow
				}
				q := query{from: from, to: to, dims: dimSets[rng.IntN(len(dimSets))], grain: grain(rng.IntN(3)),
					filter: filter{keyID: vals(f.keys[0].id, f.keys[3].id, "gk_GHOST"), user: vals("alice", "", "erin"),
						team: vals("eng", ""), workspace: vals("/src/api", "/src/web"), model: vals("gpt-5-mini", "llama-3.1-8b")}}
				got, err := f.h.aggregate(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				want := fromEvents(ctx, t, f, q)
				name := fmt.Sprintf("seed %d cut %d (%s) case %d [%s, %s) dims %v grain %d", seed, ci,
					cut.Format(time.RFC3339Nano), i, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), q.dims, q.grain)
				bad := len(got) != len(want)
				var gt, wt sums
				for _, g := range got {
					gt.add(&g.sums)
					w, ok := want[groupKey(g, q.grain != grainNone)]
					if !ok || w.calls != g.calls || !near(w.cost, g.cost) || w.input != g.input {
						bad = true
					}
				}
				for _, w := range want {
					wt.add(&w)
				}
				if bad {
					fails++
					if fails <= 15 {
						t.Errorf("%s: %d groups, %d calls $%.6f; events %d groups, %d calls $%.6f",
							name, len(got), gt.calls, gt.cost, len(want), wt.calls, wt.cost)
					}
				}
			}
		}
		if fails > 0 {
			t.Errorf("seed %d: %d of %d windows differ", seed, fails, len(cuts)*120)
		}
	}
}

// Every unit plan makes that subtracts calls, or is guarded, carries an
// additive fallback covering the same calls: readUnitTx's prune check can
// never find a unit it has no other way to read.
func TestReview30R3SubtractingUnitsHaveFallback(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		from := testNow.Add(-time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
		switch rng.IntN(3) {
		case 0:
			from = from.Truncate(time.Hour)
		case 1:
			from = from.Truncate(24 * time.Hour)
		}
		to := from.Add(time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
		switch rng.IntN(3) {
		case 0:
			to = to.Truncate(time.Hour)
		case 1:
			to = testNow
		}
		g := grain(rng.IntN(3))
		for _, u := range plan(from, to, g, false) {
			subtracts := false
			for _, p := range u.parts {
				subtracts = subtracts || (p.neg && p.src == srcCalls)
			}
			if (subtracts || u.guardHi > u.guardLo) && u.fallback == nil {
				t.Fatalf("[%s, %s) grain %d: unit %+v subtracts calls or is guarded and has no fallback", from, to, g, u)
			}
			if u.fallback == nil {
				continue
			}
			// The fallback adds only, and ends where the guard starts.
			hi := int64(-1 << 62)
			for _, p := range u.fallback {
				if p.neg {
					t.Fatalf("[%s, %s): fallback %+v subtracts", from, to, u.fallback)
				}
				hi = max(hi, p.hi)
			}
			if u.guardHi > u.guardLo && hi != u.guardLo {
				t.Fatalf("[%s, %s): fallback ends %d, guard starts %d", from, to, hi, u.guardLo)
			}
		}
	}
}

// README: windows reaching back before the cut "give the same figures by
// key, user, team, workspace, model, day and hour", but for an edge inside
// an hour before the cut. Windows whose edges before the cut are on the
// hour (the other edge: now, or anywhere after the cut) answer after prune
// what they answered before.
func TestReview30R3PruneWindowsBeforeCutOnTheHour(t *testing.T) {
	ctx := context.Background()
	for _, seed := range []uint64{33, 34} {
		f := newFixture(t, seed, 3000)
		rng := rand.New(rand.NewPCG(seed, 5))
		cut := testNow.Add(-time.Duration(rng.Int64N(int64(40 * time.Hour)))).Truncate(time.Microsecond)
		dimSets := [][]dim{nil, {dimModel}, {dimKey}, {dimUser}, {dimTeam}, {dimWorkspace}, {dimKey, dimModel}}
		type tc struct {
			q    query
			want result
		}
		var cases []tc
		for range 300 {
			from := cut.Truncate(time.Hour).Add(-time.Duration(rng.IntN(24*20)) * time.Hour)
			var to time.Time
			switch rng.IntN(3) {
			case 0:
				to = testNow
			case 1: // on the hour, before or after the cut
				to = from.Add(time.Duration(1+rng.IntN(int(testNow.Sub(from)/time.Hour))) * time.Hour)
			default: // anywhere after the cut
				to = cut.Add(time.Duration(rng.Int64N(int64(testNow.Sub(cut)) + 1))).Truncate(time.Microsecond)
			}
			if !to.After(from) {
				to = testNow
			}
			q := query{from: from, to: to, dims: dimSets[rng.IntN(len(dimSets))], grain: grain(rng.IntN(3))}
			if to.Before(cut) && to.Truncate(time.Hour) != to {
				continue
			}
			if to.Truncate(time.Hour).Equal(cut.Truncate(time.Hour)) && to.Truncate(time.Hour) != to {
				// An edge inside the cut's own hour: README's exception
				// ("an edge inside an hour before the cut") read broadly.
				continue
			}
			got, err := f.h.aggregate(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases, tc{q, got})
		}
		if _, err := f.st.Prune(ctx, cut); err != nil {
			t.Fatal(err)
		}
		fails := 0
		for i, c := range cases {
			got, err := f.h.aggregate(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			g, w := got.total(), c.want.total()
			if len(got) != len(c.want) || g.calls != w.calls || !near(g.cost, w.cost) || g.input != w.input {
				fails++
				if fails <= 10 {
					t.Errorf("seed %d cut %s case %d [%s, %s) dims %v grain %d: after prune %d groups %d calls $%.6f, before %d groups %d calls $%.6f",
						seed, cut.Format(time.RFC3339Nano), i, c.q.from.Format(time.RFC3339), c.q.to.Format(time.RFC3339Nano),
						c.q.dims, c.q.grain, len(got), g.calls, g.cost, len(c.want), w.calls, w.cost)
				}
			}
		}
		if fails > 0 {
			t.Errorf("seed %d: %d of %d windows changed", seed, fails, len(cases))
		}
	}
}
