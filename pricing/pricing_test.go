package pricing_test

import (
	"bytes"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// sseEvents splits an SSE body into events (name and a copy of the data).
func sseEvents(t *testing.T, body string) (names []string, data [][]byte) {
	t.Helper()
	r := sse.NewReader(strings.NewReader(body))
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return names, data
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, ev.Name)
		data = append(data, bytes.Clone(ev.Data))
	}
}

// TestCostFixtures extracts the usage of every recorded call and prices it:
// extraction and pricing end to end.
func TestCostFixtures(t *testing.T) {
	type call struct {
		name  string
		model string
		usage func(t *testing.T) ir.Usage
		want  float64
	}
	anthropicResponse := func(i int) func(t *testing.T) ir.Usage {
		return func(t *testing.T) ir.Usage {
			u, _, err := anthropic.ResponseUsage([]byte(vcr.MustLoad("anthropic_nonstream_tool_use_two_turns.vcr.yaml")[i].ResponseBody))
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
	}
	anthropicStream := func(cut bool) func(t *testing.T) ir.Usage {
		return func(t *testing.T) ir.Usage {
			var tr anthropic.StreamTracker
			names, data := sseEvents(t, vcr.MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0].ResponseBody)
			for i := range names {
				if cut && names[i] == "message_delta" {
					break
				}
				tr.Observe(names[i], data[i])
			}
			return tr.Usage()
		}
	}
	openaiStream := func(name string) func(t *testing.T) ir.Usage {
		return func(t *testing.T) ir.Usage {
			var tr openai.StreamTracker
			_, data := sseEvents(t, vcr.MustLoad(name)[0].ResponseBody)
			for _, d := range data {
				tr.Observe(d)
			}
			return tr.Usage()
		}
	}
	calls := []call{
		{
			// 394 in × $3/MTok + 79 out × $15/MTok = 0.001182 + 0.001185 = 0.002367
			name: "anthropic stream", model: "claude-3-7-sonnet-20250219",
			usage: anthropicStream(false), want: 0.002367,
		},
		{
			// cut before message_delta: 33 estimated out (⌈132 decoded
			// delta bytes / 4⌉, see the anthropic package's TestUsageStreamCut).
			// 394 × $3/MTok + 33 × $15/MTok = 0.001182 + 0.000495 = 0.001677
			name: "anthropic stream cut", model: "claude-3-7-sonnet-20250219",
			usage: anthropicStream(true), want: 0.001677,
		},
		{
			// 402 × $3/MTok + 89 × $15/MTok = 0.001206 + 0.001335 = 0.002541
			name: "anthropic nonstream call 1", model: "claude-3-7-sonnet-20250219",
			usage: anthropicResponse(0), want: 0.002541,
		},
		{
			// 514 × $3/MTok + 19 × $15/MTok = 0.001542 + 0.000285 = 0.001827
			name: "anthropic nonstream call 2", model: "claude-3-7-sonnet-20250219",
			usage: anthropicResponse(1), want: 0.001827,
		},
		{
			// tier "default" = standard. 162 × $0.05/MTok + 287 × $0.40/MTok
			// = 0.0000081 + 0.0001148 = 0.0001229 (256 reasoning inside the 287)
			name: "openai nonstream", model: "gpt-5-nano-2025-08-07",
			usage: func(t *testing.T) ir.Usage {
				u, _, err := openai.ResponseUsage([]byte(vcr.MustLoad("openai_nonstream_tool_call_reasoning_usage.vcr.yaml")[0].ResponseBody))
				if err != nil {
					t.Fatal(err)
				}
				return u
			},
			want: 0.0001229,
		},
		{
			// 12 × $0.05/MTok + 100 × $0.40/MTok = 0.0000006 + 0.00004 = 0.0000406
			name: "openai stream gpt-5-nano", model: "gpt-5-nano-2025-08-07",
			usage: openaiStream("openai_stream_gpt5nano_usage_chunk.vcr.yaml"), want: 0.0000406,
		},
		{
			// 149 × $2.50/MTok + 60 × $10/MTok = 0.0003725 + 0.0006 = 0.0009725
			name: "openai stream gpt-4o", model: "gpt-4o-2024-08-06",
			usage: openaiStream("openai_stream_parallel_tool_calls_include_usage.sse"), want: 0.0009725,
		},
	}
	cat := pricing.Default()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			u := c.usage(t)
			got, ok := cat.Cost(c.model, u)
			if !ok || !near(got, c.want) {
				t.Errorf("Cost(%s, %+v) = %.10f %v, want %.10f", c.model, u, got, ok, c.want)
			}
		})
	}
}

func TestCostRules(t *testing.T) {
	cases := []struct {
		name  string
		model string
		u     ir.Usage
		want  float64
	}{
		{
			// 1000 × $3 + 2000 × $3.75 (5m) + 4000 × $6 (1h) + 10000 × $0.30 + 500 × $15
			// = 0.003 + 0.0075 + 0.024 + 0.003 + 0.0075 = 0.045
			name: "cache 5m/1h split", model: "claude-sonnet-4-5",
			u: ir.Usage{InputTokens: 1000, CacheCreationInputTokens: 6000, CacheCreation5mInputTokens: 2000,
				CacheCreation1hInputTokens: 4000, CacheReadInputTokens: 10000, OutputTokens: 500},
			want: 0.045,
		},
		{
			// no split ⇒ all 5m: 100 × $1 + 1000 × $1.25 + 200 × $5 = 0.0001 + 0.00125 + 0.001 = 0.00235
			name: "cache writes without split", model: "claude-haiku-4-5",
			u:    ir.Usage{InputTokens: 100, CacheCreationInputTokens: 1000, OutputTokens: 200},
			want: 0.00235,
		},
		{
			// split reports 1h only but the total has 500 more: those are 5m.
			// 1000 × $2 (1h) + 500 × $1.25 (5m) = 0.002 + 0.000625 = 0.002625
			name: "split short of total", model: "claude-haiku-4-5",
			u:    ir.Usage{CacheCreationInputTokens: 1500, CacheCreation1hInputTokens: 1000},
			want: 0.002625,
		},
		{
			// 50 × $5 + 100000 × $0.50 + 1000 × $25 = 0.00025 + 0.05 + 0.025 = 0.07525
			name: "cache reads", model: "claude-opus-4-6",
			u:    ir.Usage{InputTokens: 50, CacheReadInputTokens: 100000, OutputTokens: 1000},
			want: 0.07525,
		},
		{
			// in+cw+cr = 150000+30000+25000 = 205000 > 200000 ⇒ whole request at the tier:
			// 150000 × $6 + 30000 × $7.50 + 25000 × $0.60 + 2000 × $22.50
			// = 0.9 + 0.225 + 0.015 + 0.045 = 1.185
			name: "sonnet 4.5 above 200k", model: "claude-sonnet-4-5-20250929",
			u:    ir.Usage{InputTokens: 150000, CacheCreationInputTokens: 30000, CacheReadInputTokens: 25000, OutputTokens: 2000},
			want: 1.185,
		},
		{
			// exactly 200000 is not above: 200000 × $3 = 0.6
			name: "sonnet 4.5 at 200k", model: "claude-sonnet-4-5",
			u:    ir.Usage{InputTokens: 200000},
			want: 0.6,
		},
		{
			// Sonnet 4 has no 1h price above 200k: base 1h $6 × (tier input $6 / $3) = $12.
			// 200001 × $6 + 1000 × $12 = 1.200006 + 0.012 = 1.212006
			name: "sonnet 4 above 200k, scaled 1h", model: "claude-sonnet-4-20250514",
			u:    ir.Usage{InputTokens: 200001, CacheCreationInputTokens: 1000, CacheCreation1hInputTokens: 1000},
			want: 1.212006,
		},
		{
			// prompt 300000 > 272000: 200000 × $5 + 100000 cached × $0.50 + 1000 × $22.50
			// = 1.0 + 0.05 + 0.0225 = 1.0725
			name: "gpt-5.4 above 272k", model: "gpt-5.4",
			u:    ir.Usage{InputTokens: 200000, CacheReadInputTokens: 100000, OutputTokens: 1000},
			want: 1.0725,
		},
		{
			// 10000 × $0.625 + 2000 × $0.0625 + 3000 × $5 = 0.00625 + 0.000125 + 0.015 = 0.021375
			name: "gpt-5 flex", model: "gpt-5",
			u:    ir.Usage{InputTokens: 10000, CacheReadInputTokens: 2000, OutputTokens: 3000, ServiceTier: "flex"},
			want: 0.021375,
		},
		{
			// 10000 × $0.45 + 1000 × $3.60 = 0.0045 + 0.0036 = 0.0081
			name: "gpt-5-mini priority", model: "gpt-5-mini",
			u:    ir.Usage{InputTokens: 10000, OutputTokens: 1000, ServiceTier: "priority"},
			want: 0.0081,
		},
		{
			// OpenAI renamed priority processing "fast" (service_tier "fast"):
			// the same column, 10000 × $0.45 + 1000 × $3.60 = 0.0081
			name: "gpt-5-mini fast", model: "gpt-5-mini",
			u:    ir.Usage{InputTokens: 10000, OutputTokens: 1000, ServiceTier: "fast"},
			want: 0.0081,
		},
		{
			// no (trustworthy) priority column: standard 10000 × $0.05 + 1000 × $0.40 = 0.0005 + 0.0004 = 0.0009
			name: "gpt-5-nano priority falls back to standard", model: "gpt-5-nano",
			u:    ir.Usage{InputTokens: 10000, OutputTokens: 1000, ServiceTier: "priority"},
			want: 0.0009,
		},
		{
			// "default" and "scale" are standard: 10000 × $0.05 + 1000 × $0.40 = 0.0009
			name: "default tier", model: "gpt-5-nano",
			u:    ir.Usage{InputTokens: 10000, OutputTokens: 1000, ServiceTier: "default"},
			want: 0.0009,
		},
		{
			// 1000000 × $1.25 + 100000 × $5 = 1.25 + 0.5 = 1.75
			name: "gpt-4o batch", model: "gpt-4o",
			u:    ir.Usage{InputTokens: 1000000, OutputTokens: 100000, ServiceTier: "batch"},
			want: 1.75,
		},
		{
			// o3 has no *_batches: standard 1000 × $2 + 1000 × $8 = 0.01
			name: "batch without batch columns", model: "o3",
			u:    ir.Usage{InputTokens: 1000, OutputTokens: 1000, ServiceTier: "batch"},
			want: 0.01,
		},
		{
			// us ×1.1 and fast ×6 on every token, the cache read included:
			// (1000 × $5 + 1000 × $0.50 + 1000 × $25) × 6.6 = 0.0305 × 6.6 = 0.2013
			name: "opus 4.6 us + fast", model: "claude-opus-4-6",
			u:    ir.Usage{InputTokens: 1000, CacheReadInputTokens: 1000, OutputTokens: 1000, InferenceGeo: "us", Speed: "fast"},
			want: 0.2013,
		},
		{
			// opus 4.8: fast ×2 and us ×1.1: (0.005 + 0.025) × 2.2 = 0.066
			name: "opus 4.8 fast", model: "claude-opus-4-8",
			u:    ir.Usage{InputTokens: 1000, OutputTokens: 1000, InferenceGeo: "us", Speed: "fast"},
			want: 0.066,
		},
		{
			// Claude Code's default model, fast and US-only, with 5m and 1h
			// cache writes and reads at Opus 5.5's $4/$5/$8/$0.20/$20:
			// (1000 × 4 + 600 × 5 + 400 × 8 + 20000 × 0.20 + 500 × 20) × 2 × 1.1
			// = (4000 + 3000 + 3200 + 4000 + 10000) µ$ × 2.2 = 24200 × 2.2 = 53240 µ$
			name: "opus 5.5 fast us", model: "claude-opus-5-5",
			u: ir.Usage{InputTokens: 1000, CacheCreationInputTokens: 1000, CacheCreation5mInputTokens: 600, CacheCreation1hInputTokens: 400,
				CacheReadInputTokens: 20000, OutputTokens: 500, InferenceGeo: "us", Speed: "fast"},
			want: 0.05324,
		},
		{
			// Sonnet 4.6 and every later model bill US-only inference at ×1.1:
			// (1000 × $3 + 1000 × $15) × 1.1 = 0.018 × 1.1 = 0.0198
			name: "sonnet 4.6 us", model: "claude-sonnet-4-6",
			u:    ir.Usage{InputTokens: 1000, OutputTokens: 1000, InferenceGeo: "us"},
			want: 0.0198,
		},
		{
			// global geo is neutral: 1000 × $5 + 1000 × $25 = 0.03
			name: "global geo", model: "claude-opus-4-6",
			u:    ir.Usage{InputTokens: 1000, OutputTokens: 1000, InferenceGeo: "global", Speed: "standard"},
			want: 0.03,
		},
		{
			// 100 × $3 + 100 × $15 + 3 searches × $0.01 = 0.0003 + 0.0015 + 0.03 = 0.0318
			name: "web search", model: "claude-sonnet-4-6",
			u:    ir.Usage{InputTokens: 100, OutputTokens: 100, WebSearchRequests: 3},
			want: 0.0318,
		},
		{
			// no cached price: read falls back to input. 1000 × $5 + 1000 × $5 = 0.01
			name: "missing cache read price", model: "gpt-4o-2024-05-13",
			u:    ir.Usage{InputTokens: 1000, CacheReadInputTokens: 1000},
			want: 0.01,
		},
		{
			// alias without a 1h price: 2 × $15 = $30/MTok. 1000 × $30 = 0.03
			name: "missing 1h price", model: "claude-4-opus-20250514",
			u:    ir.Usage{CacheCreationInputTokens: 1000, CacheCreation1hInputTokens: 1000},
			want: 0.03,
		},
		{
			// gpt-5.6 cache write: 1000 × $5 + 2000 × $6.25 + 100 × $30 = 0.005 + 0.0125 + 0.003 = 0.0205
			name: "openai cache write", model: "gpt-5.6",
			u:    ir.Usage{InputTokens: 1000, CacheCreationInputTokens: 2000, OutputTokens: 100},
			want: 0.0205,
		},
		{
			name: "zero usage", model: "gpt-4o", u: ir.Usage{}, want: 0,
		},
		{
			// prefix + date normalisation: 1000 × $1 + 1000 × $5 = 0.006
			name: "normalised id", model: "anthropic/claude-haiku-4-5-20991231",
			u:    ir.Usage{InputTokens: 1000, OutputTokens: 1000},
			want: 0.006,
		},
	}
	cat := pricing.Default()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := cat.Cost(c.model, c.u)
			if !ok || !near(got, c.want) {
				t.Errorf("Cost(%s) = %.10f %v, want %.10f", c.model, got, ok, c.want)
			}
		})
	}
}

func TestCostUnknownModel(t *testing.T) {
	cat := pricing.Default()
	// claude-mythos-6: an id the catalogue has no price for.
	for _, m := range []string{"claude-mythos-6", "", "gpt-99", "openai/"} {
		if usd, ok := cat.Cost(m, ir.Usage{InputTokens: 1000, OutputTokens: 10}); ok || usd != 0 {
			t.Errorf("Cost(%q) = %v %v, want 0 false", m, usd, ok)
		}
	}
	var nilCat *pricing.Catalogue
	if _, ok := nilCat.Cost("gpt-4o", ir.Usage{InputTokens: 1}); ok {
		t.Error("nil catalogue priced a call")
	}
	// An entry without an output price is unpriced, not free.
	c, err := pricing.Load(strings.NewReader(`{"half": {"input_cost_per_token": 1e-06}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Cost("half", ir.Usage{InputTokens: 1}); ok {
		t.Error("entry without output price was priced")
	}
}

func TestCacheSavings(t *testing.T) {
	cat := pricing.Default()
	// 100000 × ($5 − $0.50) = 0.45
	if got := cat.CacheSavings("claude-opus-4-6", ir.Usage{CacheReadInputTokens: 100000}); !near(got, 0.45) {
		t.Errorf("savings = %v, want 0.45", got)
	}
	// fast ×6, which multiplies the read price too: 100000 × ($5 − $0.50) × 6 = 2.7
	if got := cat.CacheSavings("claude-opus-4-6", ir.Usage{CacheReadInputTokens: 100000, Speed: "fast"}); !near(got, 2.7) {
		t.Errorf("fast savings = %v, want 2.7", got)
	}
	// at the >200k tier: 250000 × ($6 − $0.60) = 1.35
	if got := cat.CacheSavings("claude-sonnet-4-5", ir.Usage{CacheReadInputTokens: 250000}); !near(got, 1.35) {
		t.Errorf("tier savings = %v, want 1.35", got)
	}
	// gpt-5 flex: 2000 × ($0.625 − $0.0625) = 0.001125
	if got := cat.CacheSavings("gpt-5", ir.Usage{CacheReadInputTokens: 2000, ServiceTier: "flex"}); !near(got, 0.001125) {
		t.Errorf("flex savings = %v, want 0.001125", got)
	}
	if got := cat.CacheSavings("unknown", ir.Usage{CacheReadInputTokens: 2000}); got != 0 {
		t.Errorf("unknown savings = %v", got)
	}
}

func TestLookup(t *testing.T) {
	cat := pricing.Default()
	cases := map[string]float64{ // id → input $/token expected
		"claude-haiku-4-5":                   1e-6,
		"claude-haiku-4-5-20251001":          1e-6,
		"anthropic/claude-haiku-4-5":         1e-6,
		"Claude-Haiku-4-5":                   1e-6,
		"claude-sonnet-4-5[1m]":              3e-6,
		"claude-sonnet-4-5-20250929[1m]":     3e-6,
		"claude-opus-4-6-20260205":           5e-6,
		"claude-3-7-sonnet-latest":           3e-6,
		"claude-3-5-haiku-latest":            0.8e-6,
		"openai:gpt-5-mini":                  0.25e-6,
		"openai/gpt-4o-2024-08-06":           2.5e-6,
		"gpt-4.1-2099-01-01":                 2e-6,
		"vertex_ai/claude-sonnet-4-5-latest": 3e-6,
		"gpt-5-nano-2025-08-07":              0.05e-6,
		" gpt-4o ":                           2.5e-6,
		"claude-opus-5-5":                    4e-6,
		"claude-opus-5-5[1m]":                4e-6,
		"anthropic/claude-haiku-5-5":         0.1e-6,
		"claude-sonnet-5-5-20260929":         2e-6,
		"claude-fable-5-1":                   10e-6,
	}
	for id, want := range cases {
		p, ok := cat.Lookup(id)
		if !ok || !near(p.Input, want) {
			t.Errorf("Lookup(%q) = %v %v, want input %v", id, p.Input, ok, want)
		}
	}
	// Exact ids win over normalisation: the dated 2024-05-13 gpt-4o differs.
	if p, _ := cat.Lookup("gpt-4o-2024-05-13"); !near(p.Input, 5e-6) {
		t.Errorf("gpt-4o-2024-05-13 input = %v", p.Input)
	}
	for _, id := range []string{"claude-mythos-6-1", "claude-opus-5-6", "gpt-4o-2024", "x:y:gpt-4o-", "claude"} {
		if _, ok := cat.Lookup(id); ok {
			t.Errorf("Lookup(%q) found", id)
		}
	}
	p, _ := cat.Lookup("claude-sonnet-4-5")
	want := pricing.Price{Provider: "anthropic", Mode: "chat", MaxInputTokens: 1000000, MaxOutputTokens: 64000,
		Input: 3e-6, Output: 15e-6, CacheRead: 0.3e-6, CacheWrite5m: 3.75e-6, CacheWrite1h: 6e-6, WebSearch: 0.01}
	if p.Provider != want.Provider || p.Mode != want.Mode || p.MaxInputTokens != want.MaxInputTokens ||
		p.MaxOutputTokens != want.MaxOutputTokens || !near(p.Input, want.Input) || !near(p.Output, want.Output) ||
		!near(p.CacheRead, want.CacheRead) || !near(p.CacheWrite5m, want.CacheWrite5m) ||
		!near(p.CacheWrite1h, want.CacheWrite1h) || !near(p.WebSearch, want.WebSearch) {
		t.Errorf("price = %+v, want %+v", p, want)
	}
}

func TestCatalogueMetadata(t *testing.T) {
	cat := pricing.Default()
	if got := cat.MaxOutputTokens("claude-opus-4-6"); got != 128000 {
		t.Errorf("max output opus 4.6 = %d", got)
	}
	if got := cat.MaxOutputTokens("claude-haiku-4-5-20251001"); got != 64000 {
		t.Errorf("max output haiku 4.5 = %d", got)
	}
	// 128K only with a beta header: the default an OpenAI-shape request
	// gets must be what the API takes without it.
	for _, id := range []string{"claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219"} {
		if got := cat.MaxOutputTokens(id); got != 64000 {
			t.Errorf("max output %s = %d, want 64000", id, got)
		}
	}
	if got := cat.MaxOutputTokens("nope"); got != 0 {
		t.Errorf("unknown max output = %d", got)
	}
	if cat.ListedProvider("gpt-4o-2024-08-06") != "openai" || cat.ListedProvider("claude-sonnet-4-6") != "anthropic" || cat.ListedProvider("x") != "" {
		t.Error("ListedProvider mismatch")
	}
	// Only exact ids: the forms Lookup forgives for pricing are not ids.
	for _, id := range []string{"anthropic/claude-sonnet-4-6", "Claude-Sonnet-4-6", " claude-sonnet-4-6", "claude-sonnet-4-6[1m]"} {
		if p := cat.ListedProvider(id); p != "" {
			t.Errorf("ListedProvider(%q) = %q, want none", id, p)
		}
	}
	ant := cat.Models("anthropic")
	if !slices.IsSorted(ant) || !slices.Contains(ant, "claude-haiku-4-5") || !slices.Contains(ant, "claude-sonnet-4-5-20250929") {
		t.Errorf("anthropic models = %v", ant)
	}
	oai := cat.Models("openai")
	if !slices.Contains(oai, "gpt-5-mini") || slices.ContainsFunc(oai, func(s string) bool { return strings.HasPrefix(s, "claude") }) {
		t.Errorf("openai models = %v", oai)
	}
	oai[0] = "mutated"
	if cat.Models("openai")[0] == "mutated" {
		t.Error("Models returned the internal slice")
	}
	if len(cat.Models("nobody")) != 0 {
		t.Error("unknown provider has models")
	}
}

// TestCatalogueData checks the embedded table's internal consistency.
func TestCatalogueData(t *testing.T) {
	cat := pricing.Default()
	ids := append(cat.Models("anthropic"), cat.Models("openai")...)
	if len(ids) < 40 {
		t.Fatalf("only %d models", len(ids))
	}
	for _, id := range ids {
		p, _ := cat.Lookup(id)
		if p.Input <= 0 || p.Output < p.Input || p.CacheRead > p.Input || p.MaxOutputTokens <= 0 || p.MaxInputTokens <= 0 {
			t.Errorf("%s: implausible %+v", id, p)
		}
		if p.Provider == "anthropic" {
			// §4.2: 5m write 1.25×, 1h write 2×, read 0.1× input; Claude 3
			// Haiku's official 5m write ($0.30) and read ($0.03) differ, and
			// wire-notes gives Sonnet 5.5 a $0.10 read (0.05×) and Fable 5.1
			// a $0.25 read (0.025×); Opus 5.5's model page a $0.20 read (0.05×),
			// and Fable 5.2's listed prices a $0.20 read (0.025×); Claude
			// Code's catalogue gives Mythos 5.1 and 5.2 Fable's.
			readRatio := map[string]float64{"claude-sonnet-5-5": 0.05, "claude-fable-5-1": 0.025, "claude-opus-5-5": 0.05, "claude-fable-5-2": 0.025,
				"claude-mythos-5-1": 0.025, "claude-mythos-5-2": 0.025}[id]
			if readRatio == 0 {
				readRatio = 0.1
			}
			ratiosOK := near(p.CacheWrite1h, 2*p.Input)
			if id != "claude-3-haiku-20240307" {
				ratiosOK = ratiosOK && near(p.CacheWrite5m, 1.25*p.Input) && near(p.CacheRead, readRatio*p.Input)
			}
			if !ratiosOK {
				t.Errorf("%s: cache ratios %+v", id, p)
			}
		}
	}
	// gpt-5-nano priority copy error omitted: priority = standard.
	std, _ := cat.Cost("gpt-5-nano", ir.Usage{InputTokens: 1000})
	prio, _ := cat.Cost("gpt-5-nano", ir.Usage{InputTokens: 1000, ServiceTier: "priority"})
	if !near(std, prio) {
		t.Errorf("gpt-5-nano priority %v != standard %v", prio, std)
	}
}

func TestMerge(t *testing.T) {
	override, err := pricing.Load(strings.NewReader(`{
		"_comment": "operator overrides",
		"sample_spec": {"input_cost_per_token": "see docs", "max_tokens": "set to max"},
		"claude-haiku-4-5": {"output_cost_per_token": 6e-06, "provider_specific_entry": {"us": 1.5}},
		"my-model": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": "1e-06", "output_cost_per_token": 2e-06,
			"output_cost_per_reasoning_token": 4e-06, "cache_read_input_token_cost": null, "some_future_field": [1, 2]}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	base := pricing.Default()
	merged := base.Merge(override)
	// Output overridden, everything else kept:
	// 1000 × $1 + 1000 × $0.10 + 1000 × $6 = 0.001 + 0.0001 + 0.006 = 0.0071
	u := ir.Usage{InputTokens: 1000, CacheReadInputTokens: 1000, OutputTokens: 1000}
	if got, ok := merged.Cost("claude-haiku-4-5", u); !ok || !near(got, 0.0071) {
		t.Errorf("merged cost = %v %v, want 0.0071", got, ok)
	}
	// us multiplier added, on every token: 0.0071 × 1.5 = 0.01065
	u.InferenceGeo = "us"
	if got, _ := merged.Cost("claude-haiku-4-5", u); !near(got, 0.01065) {
		t.Errorf("merged us cost = %v, want 0.01065", got)
	}
	// The dated id is a separate entry and the base is unchanged:
	// 1000 × $1 + 1000 × $0.10 + 1000 × $5 = 0.0061
	u.InferenceGeo = ""
	if got, _ := merged.Cost("claude-haiku-4-5-20251001", u); !near(got, 0.0061) {
		t.Errorf("dated cost = %v, want 0.0061", got)
	}
	if got, _ := base.Cost("claude-haiku-4-5", u); !near(got, 0.0061) {
		t.Errorf("base mutated: %v", got)
	}
	if merged.MaxOutputTokens("claude-haiku-4-5") != 64000 || merged.ListedProvider("claude-haiku-4-5") != "anthropic" {
		t.Error("merge lost metadata")
	}
	// New model; reasoning priced separately; missing cache read → input.
	// (100 − 40) × $2 + 40 × $4 + 10 × $1 (read fallback) + 10 × $1 = 0.00012 + 0.00016 + 0.00001 + 0.00001 = 0.0003
	got, ok := merged.Cost("my-model", ir.Usage{InputTokens: 10, CacheReadInputTokens: 10, OutputTokens: 100, ReasoningTokens: 40})
	if !ok || !near(got, 0.0003) {
		t.Errorf("my-model = %v %v, want 0.0003", got, ok)
	}
	if !slices.Contains(merged.Models("openai"), "my-model") || slices.Contains(base.Models("openai"), "my-model") {
		t.Error("Models after merge")
	}
	if _, ok := merged.Lookup("sample_spec"); ok {
		t.Error("sample_spec loaded")
	}
	// nil sides
	if _, ok := base.Merge(nil).Lookup("gpt-4o"); !ok {
		t.Error("Merge(nil) lost entries")
	}
	var nilCat *pricing.Catalogue
	if _, ok := nilCat.Merge(override).Lookup("my-model"); !ok {
		t.Error("nil.Merge lost entries")
	}
}

func TestLoadErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`[]`,
		`{"m": 3}`,
		`{"m": {"input_cost_per_token": "cheap"}}`,
		`{"m": {"input_cost_per_token": -1e-06}}`,
		`{"m": {"output_cost_per_token": true}}`,
		`{"m": {"search_context_cost_per_query": {"search_context_size_low": "x"}}}`,
	} {
		if _, err := pricing.Load(strings.NewReader(in)); err == nil {
			t.Errorf("Load(%q): no error", in)
		}
	}
	if _, err := pricing.LoadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("LoadFile(missing): no error")
	}
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(`{"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06, "search_context_cost_per_query": 0.02}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := pricing.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// 1 × $1 + 1 × $1 + 1 search × $0.02 = 0.020002
	if got, _ := c.Cost("m", ir.Usage{InputTokens: 1, OutputTokens: 1, WebSearchRequests: 1}); !near(got, 0.020002) {
		t.Errorf("cost = %v", got)
	}
}

func TestConcurrentReads(t *testing.T) {
	cat := pricing.Default()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if _, ok := cat.Cost("anthropic/claude-sonnet-4-5-20250929", ir.Usage{InputTokens: int64(j), OutputTokens: 3}); !ok {
					t.Error("not priced")
					return
				}
				_ = cat.Models("openai")
			}
		}()
	}
	wg.Wait()
}

func BenchmarkCost(b *testing.B) {
	cat := pricing.Default()
	u := ir.Usage{InputTokens: 394, CacheReadInputTokens: 1200, CacheCreationInputTokens: 300, OutputTokens: 79, ServiceTier: "standard"}
	for _, model := range []string{"claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5-20250929[1m]"} {
		b.Run(strings.ReplaceAll(model, "/", "_"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := cat.Cost(model, u); !ok {
					b.Fatal("not priced")
				}
			}
		})
	}
}

// FuzzCost prices arbitrary ids and counts: no panic, never negative, and
// priced exactly when the id resolves.
func FuzzCost(f *testing.F) {
	f.Add("claude-sonnet-4-5-20250929[1m]", int64(150000), int64(30000), int64(1000), int64(25000), int64(2000), int64(10), "priority", "us", "fast")
	f.Add("openai:gpt-5-mini", int64(10), int64(0), int64(0), int64(5), int64(3), int64(0), "flex", "", "")
	f.Add("x/y:z-2024-01-01-latest", int64(-1), int64(-5), int64(-2), int64(0), int64(-9), int64(-1), "batch", "global", "standard")
	cat := pricing.Default()
	f.Fuzz(func(t *testing.T, model string, in, cw, cw1h, cr, out, reasoning int64, tier, geo, speed string) {
		u := ir.Usage{InputTokens: in, CacheCreationInputTokens: cw, CacheCreation1hInputTokens: cw1h,
			CacheReadInputTokens: cr, OutputTokens: out, ReasoningTokens: reasoning,
			ServiceTier: tier, InferenceGeo: geo, Speed: speed}
		usd, ok := cat.Cost(model, u)
		_, found := cat.Lookup(model)
		if ok != found || usd < 0 || math.IsNaN(usd) {
			t.Fatalf("Cost(%q) = %v %v (found %v)", model, usd, ok, found)
		}
		if s := cat.CacheSavings(model, u); s < 0 || math.IsNaN(s) {
			t.Fatalf("savings %v", s)
		}
	})
}

// TestCacheHitPrice: LiteLLM's DeepSeek entries price cache reads as
// input_cost_per_token_cache_hit instead of cache_read_input_token_cost.
func TestCacheHitPrice(t *testing.T) {
	c, err := pricing.Load(strings.NewReader(`{
		"deepseek-chat": {"litellm_provider": "deepseek", "mode": "chat", "input_cost_per_token": 2.7e-07,
			"input_cost_per_token_cache_hit": 7e-08, "output_cost_per_token": 1.1e-06}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	// 40 × $0.27 + 60 × $0.07 + 20 × $1.10 per MTok = 0.0000108 + 0.0000042 + 0.000022 = 0.000037
	got, ok := c.Cost("deepseek-chat", ir.Usage{InputTokens: 40, CacheReadInputTokens: 60, OutputTokens: 20})
	if !ok || !near(got, 0.000037) {
		t.Errorf("cost = %v %v, want 0.000037 (cache hits at $0.07/MTok, not the input price)", got, ok)
	}
}
