package metis

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
)

// The reservation a budgeted call makes must cover what the provider bills
// for it, or concurrent calls overshoot a hard limit. Each recorded request
// is sent with max_tokens cut to the output the provider reported, so only
// the prompt's estimate stands between the reservation and the bill.
func TestWorstCaseCoversRecordedCalls(t *testing.T) {
	cat := pricing.Default()
	rows := []struct {
		fixture string
		i       int
		usage   ir.Usage // as recorded (see pricing's TestCostFixtures)
	}{
		// 384-byte body with one tool, billed 402 input tokens: the tool
		// prompt the provider adds is most of it.
		{"anthropic_nonstream_tool_use_two_turns.vcr.yaml", 0, ir.Usage{InputTokens: 402, OutputTokens: 89}},
		{"anthropic_nonstream_tool_use_two_turns.vcr.yaml", 1, ir.Usage{InputTokens: 514, OutputTokens: 19}},
		{"anthropic_stream_text_then_tool_use.vcr.yaml", 0, ir.Usage{InputTokens: 394, OutputTokens: 79}},
		{"openai_nonstream_tool_call_reasoning_usage.vcr.yaml", 0, ir.Usage{InputTokens: 162, OutputTokens: 287, ReasoningTokens: 256}},
		{"openai_stream_gpt5nano_usage_chunk.vcr.yaml", 0, ir.Usage{InputTokens: 12, OutputTokens: 100}},
	}
	for _, r := range rows {
		body := vcr.MustLoad(r.fixture)[r.i].RequestBody
		model := gjson.Get(body, "model").String()
		field := "max_tokens"
		if strings.HasPrefix(model, "gpt") {
			field = "max_completion_tokens"
		}
		body, err := sjson.Set(body, field, r.usage.OutputTokens)
		if err != nil {
			t.Fatal(err)
		}
		billed, ok := cat.Cost(model, r.usage)
		if !ok {
			t.Fatalf("%s: %s has no price", r.fixture, model)
		}
		reserved, ok := worstCaseCost(cat, model, []byte(body))
		if !ok || reserved < billed {
			t.Errorf("%s #%d (%d bytes): reserved $%.7f (priced %v), billed $%.7f", r.fixture, r.i, len(body), reserved, ok, billed)
		}
	}
}

// A request that asks for caching may be billed its whole prompt as cache
// writes (2× the input price for a 1-hour TTL), a fast-mode request at the
// speed multiplier, and a web_search tool per search: the reservation
// covers each.
func TestWorstCasePricesWhatTheBodyAsksFor(t *testing.T) {
	cat := pricing.Default()
	const model = "claude-opus-4-6"
	body := func(system, extra string) string {
		return `{"model":"` + model + `","max_tokens":100,` + extra + `"system":[{"type":"text","text":"` +
			strings.Repeat("You are a careful assistant. ", 200) + `"` + system + `}],"messages":[{"role":"user","content":"hi"}]}`
	}
	cached := body(`,"cache_control":{"type":"ephemeral","ttl":"1h"}`, "")
	plain := body("", "")
	prompt := int64(len(plain) / 4) // the prompt as English prose tokenizes
	cases := []struct {
		name  string
		body  string
		usage ir.Usage
	}{
		{"whole prompt written to the 1-hour cache", cached,
			ir.Usage{CacheCreationInputTokens: prompt, CacheCreation1hInputTokens: prompt, OutputTokens: 100}},
		{"fast mode, US-only", body("", `"speed":"fast","inference_geo":"us",`),
			ir.Usage{InputTokens: prompt, OutputTokens: 100, Speed: "fast", InferenceGeo: "us"}},
		{"web search without max_uses", body("", `"tools":[{"type":"web_search_20250305","name":"web_search"}],`),
			ir.Usage{InputTokens: prompt + 400, OutputTokens: 100, WebSearchRequests: 8}},
	}
	for _, c := range cases {
		if !gjson.Valid(c.body) {
			t.Fatalf("%s: invalid JSON %s", c.name, c.body)
		}
		billed, ok := cat.Cost(model, c.usage)
		if !ok {
			t.Fatalf("%s has no price", model)
		}
		reserved, _ := worstCaseCost(cat, model, []byte(c.body))
		if reserved < billed {
			t.Errorf("%s: reserved $%.6f, billed $%.6f", c.name, reserved, billed)
		}
	}
	// OpenAI bills the output of every choice: n=8 choices of up to 4000
	// tokens each on gpt-5-mini ($2/MTok output) may cost 8 × 4000 × $2/MTok.
	nBody := `{"model":"gpt-5-mini","n":8,"max_completion_tokens":4000,"messages":[{"role":"user","content":"hi"}]}`
	billed, _ := cat.Cost("gpt-5-mini", ir.Usage{InputTokens: 10, OutputTokens: 8 * 4000})
	if reserved, _ := worstCaseCost(cat, "gpt-5-mini", []byte(nBody)); reserved < billed {
		t.Errorf("n=8: reserved $%.6f, billed up to $%.6f", reserved, billed)
	}
	if _, ok := worstCaseCost(cat, "no-such-model-anywhere", []byte(plain)); ok {
		t.Error("an unpriced model got a worst case")
	}
}
