package pricing_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
)

// TestCostClaude5 prices the Claude 5 and 5.5 entries (wire-notes.md §4.2
// "Context only" row; cache rates derived as 1.25× / 2× / 0.1× input where
// not given) and compares with == against dollars worked out by hand.
// Prices are $/MTok: input / 5m write / 1h write / read / output.
func TestCostClaude5(t *testing.T) {
	// The usual mix: 1000 in, 2000 5m writes, 4000 1h writes, 10000 reads, 500 out.
	mix := ir.Usage{InputTokens: 1000, CacheCreationInputTokens: 6000, CacheCreation5mInputTokens: 2000,
		CacheCreation1hInputTokens: 4000, CacheReadInputTokens: 10000, OutputTokens: 500}
	cases := []struct {
		name, model string
		u           ir.Usage
		want        float64
	}{
		{
			// Opus 5.5: 4 / 5 / 8 / 0.20 / 20 (the model page's read, 0.05×).
			// 1000 × 4 + 2000 × 5 + 4000 × 8 + 10000 × 0.20 + 500 × 20 (µ$)
			// = 4000 + 10000 + 32000 + 2000 + 10000 = 58000 µ$ = 0.058
			name: "opus 5.5 mix", model: "claude-opus-5-5", u: mix, want: 0.058,
		},
		{
			// Writes without a TTL split are 5-minute writes:
			// 100 × 4 + 1000 × 5 + 200 × 20 = 400 + 5000 + 4000 = 9400 µ$ = 0.0094
			name: "opus 5.5 writes without split", model: "claude-opus-5-5",
			u:    ir.Usage{InputTokens: 100, CacheCreationInputTokens: 1000, OutputTokens: 200},
			want: 0.0094,
		},
		{
			// Claude Code's id with the 1M suffix; a typical turn:
			// 3 × 4 + 500 × 5 (5m) + 20000 × 0.20 + 150 × 20
			// = 12 + 2500 + 4000 + 3000 = 9512 µ$ = 0.009512
			name: "opus 5.5 [1m] id", model: "claude-opus-5-5[1m]",
			u:    ir.Usage{InputTokens: 3, CacheCreationInputTokens: 500, CacheReadInputTokens: 20000, OutputTokens: 150},
			want: 0.009512,
		},
		{
			// Batch: half of input 4 and output 20: 1000 × 2 + 1000 × 10 = 2000 + 10000 µ$ = 0.012
			name: "opus 5.5 batch", model: "claude-opus-5-5",
			u:    ir.Usage{InputTokens: 1000, OutputTokens: 1000, ServiceTier: "batch"},
			want: 0.012,
		},
		{
			// Opus 5: 5 / 6.25 / 10 / 0.50 / 25.
			// 1000 × 5 + 2000 × 6.25 + 4000 × 10 + 10000 × 0.50 + 500 × 25
			// = 5000 + 12500 + 40000 + 5000 + 12500 = 75000 µ$ = 0.075
			name: "opus 5 mix", model: "claude-opus-5", u: mix, want: 0.075,
		},
		{
			// Sonnet 5.5: 2 / 2.50 / 4 / 0.10 (given, from 2026-10-07) / 10.
			// 1000 × 2 + 2000 × 2.50 + 4000 × 4 + 10000 × 0.10 + 500 × 10
			// = 2000 + 5000 + 16000 + 1000 + 5000 = 29000 µ$ = 0.029
			name: "sonnet 5.5 mix", model: "claude-sonnet-5-5", u: mix, want: 0.029,
		},
		{
			// Sonnet 5: 2 / 2.50 / 4 / 0.20 / 10.
			// 2000 + 5000 + 16000 + 10000 × 0.20 + 5000 = 2000 + 5000 + 16000 + 2000 + 5000
			// = 30000 µ$ = 0.03
			name: "sonnet 5 mix", model: "claude-sonnet-5", u: mix, want: 0.03,
		},
		{
			// Fable 5: 10 / 12.50 / 20 / 1 / 50.
			// 1000 × 10 + 2000 × 12.50 + 4000 × 20 + 10000 × 1 + 500 × 50
			// = 10000 + 25000 + 80000 + 10000 + 25000 = 150000 µ$ = 0.15
			name: "fable 5 mix", model: "claude-fable-5", u: mix, want: 0.15,
		},
		{
			// Fable 5.1: Fable 5 with read 0.25.
			// 10000 + 25000 + 80000 + 10000 × 0.25 + 25000 = 10000 + 25000 + 80000 + 2500 + 25000
			// = 142500 µ$ = 0.1425
			name: "fable 5.1 mix", model: "claude-fable-5-1", u: mix, want: 0.1425,
		},
		{
			// Fable 5.2 (Claude Code's "Fable"): 8 / 10 / 16 / 0.20 / 40.
			// 1000 × 8 + 2000 × 10 + 4000 × 16 + 10000 × 0.20 + 500 × 40
			// = 8000 + 20000 + 64000 + 2000 + 20000 = 114000 µ$ = 0.114
			name: "fable 5.2 mix", model: "claude-fable-5-2", u: mix, want: 0.114,
		},
		{
			// Haiku 5.5, prompt ≤ 100K (total input 17000): 0.10 / 0.125 / 0.20 / 0.01 / 0.50.
			// 1000 × 0.10 + 2000 × 0.125 + 4000 × 0.20 + 10000 × 0.01 + 500 × 0.50
			// = 100 + 250 + 800 + 100 + 250 = 1500 µ$ = 0.0015
			name: "haiku 5.5 mix", model: "claude-haiku-5-5", u: mix, want: 0.0015,
		},
		{
			// Exactly 100000 (90000 in + 10000 read) is not above: low tier.
			// 90000 × 0.10 + 10000 × 0.01 + 1000 × 0.50 = 9000 + 100 + 500 = 9600 µ$ = 0.0096
			name: "haiku 5.5 at 100k", model: "claude-haiku-5-5",
			u:    ir.Usage{InputTokens: 90000, CacheReadInputTokens: 10000, OutputTokens: 1000},
			want: 0.0096,
		},
		{
			// 100001 > 100000: the whole request at 0.50 / 0.625 / 1 / 0.05 / 2.50.
			// 90001 × 0.50 + 10000 × 0.05 + 1000 × 2.50 = 45000.5 + 500 + 2500 = 48000.5 µ$ = 0.0480005
			name: "haiku 5.5 above 100k", model: "claude-haiku-5-5",
			u:    ir.Usage{InputTokens: 90001, CacheReadInputTokens: 10000, OutputTokens: 1000},
			want: 0.0480005,
		},
		{
			// Cache writes count toward the prompt: 50000 + 30000 + 20000 + 5000 = 105000 > 100000.
			// 50000 × 0.50 + 30000 × 0.625 (5m) + 20000 × 1 (1h) + 5000 × 0.05 + 2000 × 2.50
			// = 25000 + 18750 + 20000 + 250 + 5000 = 69000 µ$ = 0.069
			name: "haiku 5.5 above 100k with writes", model: "claude-haiku-5-5",
			u: ir.Usage{InputTokens: 50000, CacheCreationInputTokens: 50000, CacheCreation5mInputTokens: 30000,
				CacheCreation1hInputTokens: 20000, CacheReadInputTokens: 5000, OutputTokens: 2000},
			want: 0.069,
		},
		{
			// Batch below 100K: half of 0.10 / 0.50: 10000 × 0.05 + 1000 × 0.25 = 500 + 250 µ$ = 0.00075
			name: "haiku 5.5 batch", model: "claude-haiku-5-5",
			u:    ir.Usage{InputTokens: 10000, OutputTokens: 1000, ServiceTier: "batch"},
			want: 0.00075,
		},
		{
			// Batch above 100K: half of 0.50 / 2.50: 200000 × 0.25 + 10000 × 1.25 = 50000 + 12500 µ$ = 0.0625
			name: "haiku 5.5 batch above 100k", model: "claude-haiku-5-5",
			u:    ir.Usage{InputTokens: 200000, OutputTokens: 10000, ServiceTier: "batch"},
			want: 0.0625,
		},
	}
	cat := pricing.Default()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := cat.Cost(c.model, c.u)
			if !ok || got != c.want {
				t.Errorf("Cost(%s) = %v %v, want exactly %v", c.model, got, ok, c.want)
			}
		})
	}
}

// TestClaude5Prices pins the per-token rates of each added entry.
func TestClaude5Prices(t *testing.T) {
	// $/MTok: input, 5m write, 1h write, read, output.
	want := map[string][5]float64{
		"claude-opus-5-5":   {4, 5, 8, 0.20, 20},
		"claude-opus-5":     {5, 6.25, 10, 0.50, 25},
		"claude-sonnet-5-5": {2, 2.50, 4, 0.10, 10},
		"claude-sonnet-5":   {2, 2.50, 4, 0.20, 10},
		"claude-fable-5-2":  {8, 10, 16, 0.20, 40},
		"claude-fable-5-1":  {10, 12.50, 20, 0.25, 50},
		"claude-fable-5":    {10, 12.50, 20, 1, 50},
		"claude-haiku-5-5":  {0.10, 0.125, 0.20, 0.01, 0.50},
	}
	cat := pricing.Default()
	for id, w := range want {
		p, ok := cat.Lookup(id)
		got := [5]float64{p.Input * 1e6, p.CacheWrite5m * 1e6, p.CacheWrite1h * 1e6, p.CacheRead * 1e6, p.Output * 1e6}
		for i := range got {
			got[i] = float64(int64(got[i]*1e6+0.5)) / 1e6 // $/MTok to 6 decimals
		}
		if !ok || got != w || p.Provider != "anthropic" || p.Mode != "chat" ||
			p.MaxInputTokens != 1000000 || p.MaxOutputTokens != 128000 || p.WebSearch != 0.01 {
			t.Errorf("%s: %v %+v, want %v $/MTok", id, got, p, w)
		}
	}
	if ant := cat.Models("anthropic"); !strings.Contains(strings.Join(ant, ","), "claude-haiku-5-5,") {
		t.Errorf("claude-haiku-5-5 not listed: %v", ant)
	}
}

// TestCostRoundedExact: costs are rounded to 1e-12 dollars, so they equal
// the hand figure exactly and JSON-encode as it.
func TestCostRoundedExact(t *testing.T) {
	cat := pricing.Default()
	cases := []struct {
		name, model string
		u           ir.Usage
		want        float64
		json        string
	}{
		{
			// gpt-5-nano, 2000 prompt tokens with 1500 cached, 287 completion:
			// 500 × 0.05 + 1500 × 0.005 + 287 × 0.40 = 25 + 7.5 + 114.8 = 147.3 µ$
			// (unrounded 0.00014729999999999998)
			name: "gpt-5-nano cached", model: "gpt-5-nano",
			u:    ir.Usage{InputTokens: 500, CacheReadInputTokens: 1500, OutputTokens: 287},
			want: 0.0001473, json: "0.0001473",
		},
		{
			// claude-sonnet-4-5: 1155 × 3 + 1000 × 3.75 + 20000 × 0.30 + 400 × 15
			// = 3465 + 3750 + 6000 + 6000 = 19215 µ$
			name: "sonnet 4.5 cache", model: "claude-sonnet-4-5",
			u:    ir.Usage{InputTokens: 1155, CacheCreationInputTokens: 1000, CacheReadInputTokens: 20000, OutputTokens: 400},
			want: 0.019215, json: "0.019215",
		},
		{
			// gpt-4.1-mini: 1000 × 0.40 + 2000 × 0.10 + 373 × 1.60 = 400 + 200 + 596.8 = 1196.8 µ$
			name: "gpt-4.1-mini", model: "gpt-4.1-mini",
			u:    ir.Usage{InputTokens: 1000, CacheReadInputTokens: 2000, OutputTokens: 373},
			want: 0.0011968, json: "0.0011968",
		},
		{
			// o4-mini flex: 3 × 0.55 + 7 × 0.1375 + 11 × 2.20 = 1.65 + 0.9625 + 24.2 = 26.8125 µ$
			name: "o4-mini flex", model: "o4-mini",
			u:    ir.Usage{InputTokens: 3, CacheReadInputTokens: 7, OutputTokens: 11, ServiceTier: "flex"},
			want: 0.0000268125, json: "0.0000268125",
		},
		{
			// opus 4.6 us ×1.1 on every token, cache reads included:
			// (1234 × 5 + 8901 × 0.50 + 567 × 25) × 1.1
			// = (6170 + 4450.5 + 14175) × 1.1 = 24795.5 × 1.1 = 27275.05 µ$
			name: "opus 4.6 us", model: "claude-opus-4-6",
			u:    ir.Usage{InputTokens: 1234, CacheReadInputTokens: 8901, OutputTokens: 567, InferenceGeo: "us"},
			want: 0.02727505, json: "0.02727505",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := cat.Cost(c.model, c.u)
			if !ok || got != c.want {
				t.Errorf("Cost(%s) = %v %v, want exactly %v", c.model, got, ok, c.want)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.json {
				t.Errorf("JSON %s, want %s", b, c.json)
			}
		})
	}
	// Cache savings are rounded too.
	// claude-sonnet-5-5: 100000 × (2 − 0.10) = 190000 µ$ = 0.19
	if got := cat.CacheSavings("claude-sonnet-5-5", ir.Usage{CacheReadInputTokens: 100000}); got != 0.19 {
		t.Errorf("sonnet 5.5 savings = %v, want exactly 0.19", got)
	}
	// claude-haiku-5-5 above 100K: 150000 × (0.50 − 0.05) = 67500 µ$ = 0.0675
	if got := cat.CacheSavings("claude-haiku-5-5", ir.Usage{CacheReadInputTokens: 150000}); got != 0.0675 {
		t.Errorf("haiku 5.5 savings = %v, want exactly 0.0675", got)
	}
	// gpt-5-nano: 1500 × (0.05 − 0.005) = 67.5 µ$ = 0.0000675
	if got := cat.CacheSavings("gpt-5-nano", ir.Usage{InputTokens: 500, CacheReadInputTokens: 1500}); got != 0.0000675 {
		t.Errorf("gpt-5-nano savings = %v, want exactly 0.0000675", got)
	}
}

// TestLongContextThresholds: any *_above_<N>k_tokens (or _above_<N>_tokens)
// column is a long-context tier; the highest threshold the total input
// exceeds wins; malformed suffixes are not tiers.
func TestLongContextThresholds(t *testing.T) {
	c, err := pricing.Load(strings.NewReader(`{
		"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
			"input_cost_per_token_above_128k_tokens": 3e-06, "output_cost_per_token_above_128k_tokens": 4e-06,
			"input_cost_per_token_above_1000_tokens": 1.5e-06,
			"input_cost_per_token_above_k_tokens": 9e-06,
			"input_cost_per_token_above_12x_tokens": 9e-06,
			"input_cost_per_token_above_50k_tokens_priority": 9e-06}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   int64
		want float64
	}{
		// ≤ 1000: 1000 × $1 + 10 × $2 = 1000 + 20 = 1020 µ$
		{1000, 0.00102},
		// > 1000 (plain-number threshold): 1001 × $1.50 + 10 × ($2 × 1.5 ratio = $3)
		// = 1501.5 + 30 = 1531.5 µ$
		{1001, 0.0015315},
		// > 50000 but the _priority-only column is not a tier: still the 1000 tier:
		// 60000 × $1.50 + 10 × $3 = 90000 + 30 = 90030 µ$
		{60000, 0.09003},
		// exactly 128000: not above: 128000 × $1.50 + 30 = 192000 + 30 = 192030 µ$
		{128000, 0.19203},
		// > 128000: 128001 × $3 + 10 × $4 = 384003 + 40 = 384043 µ$
		{128001, 0.384043},
	}
	for _, tc := range cases {
		got, ok := c.Cost("m", ir.Usage{InputTokens: tc.in, OutputTokens: 10})
		if !ok || got != tc.want {
			t.Errorf("in %d: cost %v %v, want exactly %v", tc.in, got, ok, tc.want)
		}
	}
}
