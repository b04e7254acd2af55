package pricing

import (
	"math"
	"testing"

	"github.com/metisgateway/metis/ir"
)

// onGrid reports whether usd is a whole number of 1e-12 dollars, up to
// the float error of the decimal it was parsed or derived from (a few
// parts in 1e16; the tolerance allows 1e-12 of the value plus 1e-6
// quanta).
func onGrid(usd float64) bool {
	q := usd * usdQuantum
	return math.Abs(q-math.Round(q)) <= 1e-6+1e-12*q
}

// TestRatesOn1e12Grid backs roundUSD's claim: every per-token rate the
// embedded catalogue can apply (each long-context column × service tier,
// with every inference_geo/speed multiplier combination the entry has) is
// a whole multiple of 1e-12 dollars, so rounding a cost to 12 decimals
// never changes its exact value.
func TestRatesOn1e12Grid(t *testing.T) {
	cat := Default()
	n := 0
	for id, p := range cat.prices {
		if p.t == nil {
			continue
		}
		cols := [][numTiers]rateSet{p.t.base}
		for _, lt := range p.t.long {
			cols = append(cols, lt.r)
		}
		mults := []float64{1}
		for _, m := range p.e.specific {
			for _, prev := range mults {
				mults = append(mults, prev*m)
			}
		}
		for ci, col := range cols {
			for ti, r := range col {
				for _, m := range mults {
					for name, v := range map[string]float64{
						"in": r.in * m, "out": r.out * m, "read": r.read, "w5m": r.w5m, "w1h": r.w1h,
						"reasoning": r.reasoning * m,
					} {
						n++
						if !onGrid(v) {
							t.Errorf("%s column %d tier %d ×%v: %s rate %v is not a multiple of 1e-12", id, ci, ti, m, name, v)
						}
					}
				}
			}
		}
		if !onGrid(p.e.search) {
			t.Errorf("%s: web search price %v", id, p.e.search)
		}
	}
	if n < 1000 {
		t.Errorf("only %d rates checked", n)
	}
}

// TestRoundUSDRemovesNoise: the float sum of the gpt-5-nano example is not
// the hand figure; Cost's rounded result is.
func TestRoundUSDRemovesNoise(t *testing.T) {
	// 500 × $0.05/MTok + 1500 × $0.005/MTok + 287 × $0.40/MTok = 0.0001473,
	// summed in float64 at run time in Price.Cost's order.
	in, read, out := 500.0, 1500.0, 287.0
	pin, pread, pout := 0.05e-6, 0.005e-6, 0.40e-6
	raw := (in*pin+out*pout)*1 + read*pread
	if raw == 0.0001473 {
		t.Fatalf("the float sum is already exact (%v): the example no longer shows the noise", raw)
	}
	if got := roundUSD(raw); got != 0.0001473 {
		t.Errorf("roundUSD(%v) = %v, want 0.0001473", raw, got)
	}
	got, ok := Default().Cost("gpt-5-nano", ir.Usage{InputTokens: 500, CacheReadInputTokens: 1500, OutputTokens: 287})
	if !ok || got != 0.0001473 {
		t.Errorf("Cost = %v %v, want exactly 0.0001473", got, ok)
	}
	for _, tc := range []struct{ in, want float64 }{
		{0.018465000000000002, 0.018465},
		{0.0011970000000000001, 0.001197},
		{0, 0},
		{1.4999999999999999e-12, 1e-12},
		{123.456789012345678, 123.456789012346},
	} {
		if got := roundUSD(tc.in); got != tc.want {
			t.Errorf("roundUSD(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
