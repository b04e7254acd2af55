package pricing_test

import (
	"math"
	"testing"

	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
)

// Review 30P: the embedded catalogue against the providers' own price
// sheets, as a buyer checking "exact cost" would on 2026-11-29.
//
// OpenAI's Fast mode (formerly Priority processing) price sheet,
// https://openai.com/api-fast-mode/ ("Priority processing was renamed Fast
// mode on July 30, 2026. You can use either service_tier: priority or
// service_tier: fast"), $/MTok input / cached input / output, short context:
//
//	GPT-5.6 Sol   10.00 / 1.00  / 60.00
//	GPT-5.5       12.50 / 1.250 / 75.00
//	GPT-5.4 mini   1.50 / 0.150 /  9.00
//	GPT-5.4        5.00 / 0.500 / 30.00
//	GPT-5.2        3.50 / 0.350 / 28.00
//	GPT-5.1        2.50 / 0.250 / 20.00
//	GPT-5          2.50 / 0.250 / 20.00
//
// LiteLLM model_prices_and_context_window.json at BerriAI/litellm commit
// 00035b69f416 (the commit catalogue.json says it was spot-checked
// against) agrees for gpt-5.6 (input_cost_per_token_priority 1e-05,
// cache_read_input_token_cost_priority 1e-06, output 6e-05), gpt-5.4
// (5e-06 / 5e-07 / 3e-05) and gpt-5.4-mini (1.5e-06 / 1.5e-07 / 9e-06).
//
// The catalogue has *_priority columns for gpt-5, gpt-5-mini, gpt-5.5,
// gpt-4.1*, gpt-4o*, o3 and o4-mini, but none for gpt-5.1, gpt-5.2,
// gpt-5.4, gpt-5.4-mini or gpt-5.6, so a call the upstream reports as
// service_tier "priority"/"fast" is priced at the standard rate: half (or
// less) of what OpenAI bills.
func TestReview30PFastTierOpenAI(t *testing.T) {
	cat := pricing.Default()
	// 9000 uncached input, 1000 cached, 1000 output (reasoning included).
	mix := func(tier string) ir.Usage {
		return ir.Usage{InputTokens: 9000, CacheReadInputTokens: 1000, OutputTokens: 1000, ServiceTier: tier}
	}
	cases := []struct {
		name, model, tier string
		want              float64
	}{
		// 9000 × 5 + 1000 × 0.50 + 1000 × 30 = 45000 + 500 + 30000 µ$ = 0.0755
		{"gpt-5.4 priority", "gpt-5.4", "priority", 0.0755},
		// same, under OpenAI's new name for the tier
		{"gpt-5.4 fast", "gpt-5.4", "fast", 0.0755},
		// 9000 × 1.50 + 1000 × 0.15 + 1000 × 9 = 13500 + 150 + 9000 µ$ = 0.02265
		{"gpt-5.4-mini priority", "gpt-5.4-mini", "priority", 0.02265},
		// 9000 × 3.50 + 1000 × 0.35 + 1000 × 28 = 31500 + 350 + 28000 µ$ = 0.05985
		{"gpt-5.2 priority", "gpt-5.2", "priority", 0.05985},
		// 9000 × 2.50 + 1000 × 0.25 + 1000 × 20 = 22500 + 250 + 20000 µ$ = 0.04275
		{"gpt-5.1 priority", "gpt-5.1", "priority", 0.04275},
		// gpt-5.6 (alias of gpt-5.6-sol, at the catalogue's $5/$30 list rate):
		// 9000 × 10 + 1000 × 1 + 1000 × 60 = 90000 + 1000 + 60000 µ$ = 0.151
		{"gpt-5.6 fast", "gpt-5.6", "fast", 0.151},
		// control, already right: gpt-5 2.50 / 0.25 / 20 = 0.04275
		{"gpt-5 priority (control)", "gpt-5", "priority", 0.04275},
		// control, already right: gpt-5.5 12.50 / 1.25 / 75 =
		// 112500 + 1250 + 75000 µ$ = 0.18875
		{"gpt-5.5 priority (control)", "gpt-5.5", "priority", 0.18875},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := cat.Cost(c.model, mix(c.tier))
			if !ok {
				t.Fatalf("%s unpriced", c.model)
			}
			if got != c.want {
				std, _ := cat.Cost(c.model, mix(""))
				t.Errorf("%s service_tier %q: cost %v, want %v (OpenAI Fast-mode sheet); standard rate gives %v",
					c.model, c.tier, got, c.want, std)
			}
		})
	}
}

// Claude Mythos 5 "shares Claude Fable 5's specifications and pricing"
// (https://platform.claude.com/docs/en/models/fable-5/overview), and Fable
// 5 has "Max output: 128K tokens" (same page; the catalogue's own
// claude-fable-5 row says 128000). The catalogue gives claude-mythos-5
// max_output_tokens 64000 ("Claude Code's default"), which the gateway
// sends as max_tokens on a translated request without one: answers are cut
// at 64K tokens that the API would have let run to 128K.
func TestReview30PMythos5MaxOutput(t *testing.T) {
	cat := pricing.Default()
	fable := cat.MaxOutputTokens("claude-fable-5")
	if got := cat.MaxOutputTokens("claude-mythos-5"); got != 128000 || got != fable {
		t.Errorf("claude-mythos-5 max_output_tokens = %d, want 128000 (= claude-fable-5's %d, platform.claude.com: same specifications)", got, fable)
	}
}

// The GPT-6 family is priced from OpenAI's model pages
// (developers.openai.com/api/docs/models/gpt-6.2-sol and its siblings):
// Codex CLI 0.171's default model, gpt-6.2-sol, went unpriced before. The
// dollars are worked out by hand from the pages' $/MTok figures.
func TestGPT6PricedFromTheModelPages(t *testing.T) {
	cat := pricing.Default()
	cases := []struct {
		name, model string
		u           ir.Usage
		want        float64
	}{
		// 100,000 × 2 + 20,000 × 0.10 + 5,000 × 2.50 (30-minute write) +
		// 2,000 × 10 = 200,000 + 2,000 + 12,500 + 20,000 µ$
		{"gpt-6.2-sol", "gpt-6.2-sol", ir.Usage{InputTokens: 100000, CacheReadInputTokens: 20000, CacheCreationInputTokens: 5000, OutputTokens: 2000}, 0.2345},
		// a dated snapshot id is priced as its model
		{"dated id", "gpt-6.2-sol-2026-11-17", ir.Usage{InputTokens: 100000, CacheReadInputTokens: 20000, CacheCreationInputTokens: 5000, OutputTokens: 2000}, 0.2345},
		// over 272K input tokens: input 2× ($4), output 1.5× ($15) for the
		// whole request: 300,000 × 4 + 1,000 × 15 µ$
		{"gpt-6.2-sol long context", "gpt-6.2-sol", ir.Usage{InputTokens: 300000, OutputTokens: 1000}, 1.215},
		// Fast is 2× Standard: 10,000 × 4 + 1,000 × 20 µ$
		{"gpt-6.1-sol fast", "gpt-6.1-sol", ir.Usage{InputTokens: 10000, OutputTokens: 1000, ServiceTier: "fast"}, 0.06},
		// GPT-6 Sol's cached input is $0.20, 6.1's $0.10:
		// 10,000 × 2 + 10,000 × 0.20 + 1,000 × 10 µ$
		{"gpt-6-sol", "gpt-6-sol", ir.Usage{InputTokens: 10000, CacheReadInputTokens: 10000, OutputTokens: 1000}, 0.032},
		// 100,000 × 0.10 + 10,000 × 0.50 µ$
		{"gpt-6-luna", "gpt-6-luna", ir.Usage{InputTokens: 100000, OutputTokens: 10000}, 0.015},
		// Flex is half: 100,000 × 0.50 + 10,000 × 2.50 µ$
		{"gpt-6.1-terra flex", "gpt-6.1-terra", ir.Usage{InputTokens: 100000, OutputTokens: 10000, ServiceTier: "flex"}, 0.075},
		// GPT-5.6 Luna at the model page's 0.20 / 1.20, not the June
		// preview's 1 / 6: 100,000 × 0.20 + 10,000 × 1.20 µ$
		{"gpt-5.6-luna", "gpt-5.6-luna", ir.Usage{InputTokens: 100000, OutputTokens: 10000}, 0.032},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := cat.Cost(c.model, c.u)
			if !ok {
				t.Fatalf("%s unpriced", c.model)
			}
			if math.Abs(got-c.want) > 1e-12 {
				t.Errorf("%s: cost %v, want %v", c.model, got, c.want)
			}
		})
	}
}

// OpenAI's ultrafast tier is a multiple of the standard rate, cache and
// long context included: ×6 on GPT-6.1 Sol and GPT-6 Astra (GPT-6 Astra
// ultrafast: $60/$300 per MTok), ×3 on GPT-6.2 Sol through 2027-02-28
// (the model pages). It used to be priced at the standard rate.
func TestUltrafastIsAMultipleOfStandard(t *testing.T) {
	cat := pricing.Default()
	cases := []struct {
		name, model string
		u           ir.Usage
		want        float64
	}{
		// (10,000 × 10 + 1,000 × 50) × 6 µ$ = $60/$300 per MTok
		{"gpt-6-astra", "gpt-6-astra", ir.Usage{InputTokens: 10000, OutputTokens: 1000, ServiceTier: "ultrafast"}, 0.9},
		// (10,000 × 2 + 10,000 × 0.10 + 1,000 × 10) × 3 µ$
		{"gpt-6.2-sol", "gpt-6.2-sol", ir.Usage{InputTokens: 10000, CacheReadInputTokens: 10000, OutputTokens: 1000, ServiceTier: "ultrafast"}, 0.093},
		// long context first, then ×6: (300,000 × 4 + 1,000 × 15) × 6 µ$
		{"gpt-6.1-sol long", "gpt-6.1-sol", ir.Usage{InputTokens: 300000, OutputTokens: 1000, ServiceTier: "ULTRAFAST"}, 7.29},
		// a model without the multiplier stays at its standard rate:
		// 10,000 × 2.50 + 1,000 × 15 µ$
		{"gpt-5.4 has none", "gpt-5.4", ir.Usage{InputTokens: 10000, OutputTokens: 1000, ServiceTier: "ultrafast"}, 0.04},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := cat.Cost(c.model, c.u)
			if !ok {
				t.Fatalf("%s unpriced", c.model)
			}
			if math.Abs(got-c.want) > 1e-12 {
				t.Errorf("%s ultrafast: cost %v, want %v", c.model, got, c.want)
			}
		})
	}
}
